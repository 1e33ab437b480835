#include "proxy/hint.hpp"

namespace linesman::proxy {

namespace {

// proxy_in_problem: the sentence for a connection ended over its PROXY protocol header.
std::string proxy_in_problem(const record& r) {
  const auto& p = *r.proxy_protocol;
  const std::string from = "from " + r.client.ip;
  if (p.error == "untrusted_source") {
    return "PROXY protocol header " + from +
           " refused: that address is not in the listener's trusted networks "
           "(add it to trusted / --proxy-trusted if it is your load balancer)";
  }
  if (p.error == "malformed") {
    return "malformed PROXY protocol header " + from +
           ": the client side sent something that starts like a PROXY header but breaks the "
           "spec";
  }
  if (p.error == "incomplete") {
    return "PROXY protocol header " + from +
           " never completed (truncated, or the client stopped sending in the middle of it)";
  }
  if (p.error == "version_mismatch") {
    return "PROXY protocol v" + std::to_string(p.version) + " header " + from +
           " but the listener expects the other version (set proxy_protocol_in to auto or to "
           "match the sender)";
  }
  return "no PROXY protocol header " + from +
         " although the listener requires one (the client side does not send PROXY protocol: "
         "use proxy_protocol_in auto or off)";
}

}  // namespace

std::string hint_for(const record& r) {
  if (r.proxy_protocol && !r.proxy_protocol->error.empty()) {
    std::string out = proxy_in_problem(r);
    for (char& c : out) {
      c = (c == '\n' || c == '\r') ? ' ' : c;
    }
    return out;
  }
  if (r.transparent_error == "redirect_loop") {
    return "transparent mode: the original destination " +
           (r.original_dst ? r.original_dst->ip + ":" + std::to_string(r.original_dst->port)
                           : std::string("?")) +
           " is linesman's own listener (a redirect loop: the client dialled linesman directly, or "
           "the nftables rule also catches linesman's own upstream connections); refused";
  }
  if (r.transparent_error == "no_original_dst") {
    return "transparent mode: the connection has no original destination (it was not redirected "
           "by an nftables/iptables REDIRECT rule, or conntrack is not loaded); refused";
  }
  std::string out(default_hint(r.stop.phase, r.stop.reason));
  const auto add = [&out](const std::string& s) { out += " (" + s + ")"; };
  const bool has_sni = r.tls && r.tls->sni && !r.tls->sni->empty();
  switch (r.stop.reason) {
    case stop_reason::no_route:
      add(has_sni ? "SNI was '" + *r.tls->sni + "'"
                  : std::string(r.tls ? "the ClientHello carried no SNI" : "the client did not "
                                                                           "send a ClientHello"));
      break;
    case stop_reason::upstream_tls_alert:
      if (r.server_tls && r.server_tls->alert) {
        add("alert " + r.server_tls->alert->description +
            (has_sni ? ", SNI '" + *r.tls->sni + "'" : std::string()));
      }
      break;
    case stop_reason::upstream_not_tls:
    case stop_reason::upstream_error_reply:
      if (r.upstream_first && !r.upstream_first->summary.empty()) {
        add("upstream said: " + r.upstream_first->summary);
      }
      break;
    case stop_reason::upstream_refused:
    case stop_reason::upstream_timeout:
    case stop_reason::upstream_unreachable:
    case stop_reason::upstream_resolve_failed:
    case stop_reason::upstream_error:
      if (r.upstream) {
        add("upstream " + r.upstream->address);
      }
      break;
    case stop_reason::upstream_closed_silently:
    case stop_reason::upstream_silent:
    case stop_reason::upstream_reset:
      if (has_sni && r.stop.phase == stop_phase::first_reply) {
        add("SNI was '" + *r.tls->sni + "'");
      }
      break;
    default: break;
  }
  // A PROXY header the listener does not expect (proxy_protocol_in off): the hop in front sends
  // PROXY protocol where it should not, or this listener should accept it.
  if (!r.proxy_protocol && r.client_first &&
      (r.client_first->protocol == "proxy_v1" || r.client_first->protocol == "proxy_v2")) {
    add("the client sent a PROXY protocol " + r.client_first->protocol.substr(6) +
        " header this listener does not expect: the hop in front sends PROXY protocol, set "
        "proxy_protocol_in on this listener or stop sending it");
  }
  // linesman put a PROXY header first and the upstream refused, reset or went quiet.
  const bool sent_pp = r.proxy_out || (r.proxy_protocol && r.proxy_protocol->forwarded);
  // (An HTTP server answers the header line with a 400, Redis with -ERR, and both close: the
  // record may still read as a completed exchange.)
  const std::string reply = r.upstream_first ? r.upstream_first->summary : std::string();
  const bool error_answer = reply.starts_with("-ERR") ||
                            (reply.starts_with("HTTP/1.") && reply.find(" 400") != std::string::npos);
  const bool refused = r.stop.phase == stop_phase::first_reply ||
                       (r.stop.by == stop_by::upstream && r.bytes.from_upstream < 512 && !r.ok) ||
                       error_answer;
  if (sent_pp && refused) {
    const int v = r.proxy_out ? r.proxy_out->version : r.proxy_protocol->version;
    add("linesman sent a PROXY protocol v" + std::to_string(v) +
        " header first: the backend may not speak PROXY protocol");
  }
  for (char& c : out) {
    if (c == '\n' || c == '\r') {
      c = ' ';
    }
  }
  return out;
}

}  // namespace linesman::proxy
