#include "proxy/hint.hpp"

namespace linesman::proxy {

std::string hint_for(const record& r) {
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
  for (char& c : out) {
    if (c == '\n' || c == '\r') {
      c = ' ';
    }
  }
  return out;
}

}  // namespace linesman::proxy
