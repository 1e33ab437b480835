#include "proxy/admin_faults.hpp"

#include "proxy/access_record.hpp"

#include <algorithm>
#include <charconv>

#include <nlohmann/json.hpp>

namespace linesman::proxy {
namespace {

void reply(httplib::Response& res, int status, const nlohmann::json& j) {
  res.status = status;
  res.set_content(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

nlohmann::json entry_json(const fault_entry& e) {
  fault_value v;
  v.name = std::string(to_string(e.spec->kind));
  v.params = e.spec->params;
  nlohmann::json j = fault_json(v);
  j["id"] = e.id;
  j["listener"] = e.listener.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.listener);
  j["source"] = e.source;
  j["spec"] = e.spec->text;
  return j;
}

// add_fault: the POST handler's work; answers 201 or 400 (nothing added).
void add_fault(const httplib::Request& req, httplib::Response& res, fault_table& faults,
               const std::vector<std::string>& listeners) {
  const auto body = nlohmann::json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    reply(res, 400,
          {{"error", "body: expected a JSON object {\"spec\": \"NAME[:key=value,...]\"}"}});
    return;
  }
  for (const auto& [k, v] : body.items()) {
    if (k != "spec" && k != "listener") {
      reply(res, 400, {{"error", "body: unknown key '" + k + "' (spec, listener)"}});
      return;
    }
  }
  if (!body.contains("spec") || !body["spec"].is_string()) {
    reply(res, 400, {{"error", "body: key 'spec': a string is required"}});
    return;
  }
  std::string listener;
  if (body.contains("listener")) {
    if (!body["listener"].is_string() ||
        std::find(listeners.begin(), listeners.end(), body["listener"].get<std::string>()) ==
            listeners.end()) {
      reply(res, 400, {{"error", "body: key 'listener': not the name of a listener"}});
      return;
    }
    listener = body["listener"].get<std::string>();
  }
  fault_spec spec;
  try {
    spec = parse_fault(body["spec"].get<std::string>(), "spec");
  } catch (const config_error& e) {
    reply(res, 400, {{"error", e.what()}});
    return;
  }
  const auto id = faults.add(std::move(spec), listener, "admin");
  if (id == 0) {
    reply(res, 409, {{"error", "the fault table is full (256 faults): delete some first"}});
    return;
  }
  for (const auto& e : faults.list()) {
    if (e.id == id) {
      reply(res, 201, entry_json(e));
      return;
    }
  }
  reply(res, 201, {{"id", id}});  // removed again in between by another request
}

}  // namespace

void add_fault_routes(httplib::Server& http, fault_table& faults,
                      std::vector<std::string> listeners) {
  http.Get("/api/faults", [&faults](const httplib::Request&, httplib::Response& res) {
    auto arr = nlohmann::json::array();
    for (const auto& e : faults.list()) {
      arr.push_back(entry_json(e));
    }
    reply(res, 200, arr);
  });
  http.Post("/api/faults", [&faults, listeners = std::move(listeners)](const httplib::Request& req,
                                                                       httplib::Response& res) {
    add_fault(req, res, faults, listeners);
  });
  http.Delete(R"(/api/faults/([0-9]{1,19}))",
              [&faults](const httplib::Request& req, httplib::Response& res) {
                const std::string text = req.matches[1];
                std::uint64_t id = 0;
                const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
                if (ec != std::errc() || !faults.remove(id)) {
                  reply(res, 404, {{"error", "no fault with id " + text}});
                  return;
                }
                reply(res, 200, {{"deleted", id}});
              });
}

}  // namespace linesman::proxy
