#include "proxy/hint.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace linesman::proxy {

namespace {

// kMaxFact: the longest piece of peer-controlled text (a summary, an SNI) quoted in a hint; the
// record carries the whole value in its own field.
constexpr std::size_t kMaxFact = 80;

std::string bounded(std::string_view s) {
  std::string out(s.substr(0, kMaxFact));
  if (s.size() > kMaxFact) {
    out += "...";
  }
  return out;
}

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

bool contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}

std::string_view strip_dot(std::string_view s) {
  if (!s.empty() && s.back() == '.') {
    s.remove_suffix(1);
  }
  return s;
}

// cn_of: the CN value of an RFC 2253 subject ("CN=a.example,O=x"), empty when there is none.
// An escaped comma ("\,") does not end the value.
std::string cn_of(std::string_view subject) {
  std::size_t pos = 0;
  while (pos < subject.size()) {
    if ((pos == 0 || subject[pos - 1] == ',') && subject.substr(pos, 3) == "CN=") {
      std::string out;
      for (std::size_t i = pos + 3; i < subject.size(); ++i) {
        if (subject[i] == '\\' && i + 1 < subject.size()) {
          out += subject[++i];
          continue;
        }
        if (subject[i] == ',') {
          break;
        }
        out += subject[i];
      }
      return out;
    }
    ++pos;
  }
  return {};
}

// name_matches: RFC 6125 6.4.3 for one presented DNS name: case-insensitive, a trailing dot
// ignored; a wildcard only as the whole left-most label, matching exactly one label (so
// *.example.test covers a.example.test but neither example.test nor a.b.example.test).
bool name_matches(std::string_view presented, std::string_view sni) {
  presented = strip_dot(presented);
  sni = strip_dot(sni);
  if (presented.substr(0, 2) == "*.") {
    const std::string_view rest = presented.substr(1);  // ".example.test"
    const auto dot = sni.find('.');
    if (dot == std::string_view::npos || dot == 0 || rest.find('.', 1) == std::string_view::npos) {
      return false;  // no wildcard over a bare label or a single-label parent (e.g. "*.test")
    }
    return iequals(sni.substr(dot), rest);
  }
  return iequals(presented, sni);
}

// certificate_covers: whether `c` covers `sni`: the DNS SANs when there are any (RFC 6125
// 6.4.4: then the CN is not looked at), else the subject's CN. IP SANs never match a host name.
bool certificate_covers(const certificate_obs& c, std::string_view sni) {
  bool any_dns = false;
  for (const auto& san : c.san) {
    // IP SANs are recorded as text: "::1" or dotted digits (a DNS name always has a letter
    // in its last label, RFC 1123 2.1, so digits and dots alone are an address).
    const bool is_ip = contains(san, ":") || std::all_of(san.begin(), san.end(), [](char ch) {
                         return ch == '.' || std::isdigit(static_cast<unsigned char>(ch)) != 0;
                       });
    if (is_ip) {
      continue;
    }
    any_dns = true;
    if (name_matches(san, sni)) {
      return true;
    }
  }
  if (any_dns) {
    return false;
  }
  const std::string cn = cn_of(c.subject);
  return !cn.empty() && name_matches(cn, sni);
}

std::string address_of(const access_record& r) {
  if (!r.upstream) {
    return "the upstream";
  }
  return bounded(r.upstream->address.empty() ? r.upstream->ip : r.upstream->address);
}

// host_of: the host part of "host:port" or "[v6]:port" (the whole text when there is no port).
std::string host_of(std::string_view address) {
  if (!address.empty() && address.front() == '[') {
    const auto end = address.find(']');
    return std::string(address.substr(1, end == std::string_view::npos ? address.npos : end - 1));
  }
  const auto colon = address.rfind(':');
  if (colon != std::string_view::npos && address.find(':') == colon) {
    return std::string(address.substr(0, colon));
  }
  return std::string(address);
}

bool is_v4_mapped(std::string_view ip) {
  return ip.size() > 7 && iequals(ip.substr(0, 7), "::ffff:") && contains(ip, ".");
}

bool proxy_header_v4_mapped(const access_record& r) {
  const auto mapped = [](const std::optional<endpoint_value>& e) {
    return e && is_v4_mapped(e->ip);
  };
  if (r.proxy_protocol &&
      (mapped(r.proxy_protocol->source) || mapped(r.proxy_protocol->destination))) {
    return true;
  }
  return r.proxy_out &&
         (is_v4_mapped(r.proxy_out->source.ip) || is_v4_mapped(r.proxy_out->destination.ip));
}

bool default_certificate(const access_record& r) {
  if (!r.server_tls || !r.server_tls->certificate) {
    return false;
  }
  const certificate_obs& cert = *r.server_tls->certificate;
  const bool has_sni = r.tls && r.tls->sni && !r.tls->sni->empty();
  return contains(cert.subject, "TRAEFIK DEFAULT CERT") ||
         (has_sni && !certificate_covers(cert, *r.tls->sni));
}

// failed_quietly: the upstream closed without a byte, reset, or answered with a default or
// foreign certificate: how a router that did not see the SNI answers.
bool failed_quietly(const access_record& r) {
  const bool first_reply = r.stop.phase == stop_phase::first_reply;
  return (first_reply && r.stop.reason == stop_reason::upstream_closed_silently &&
          r.close.first != stop_by::client) ||
         (first_reply && r.stop.reason == stop_reason::upstream_reset) ||
         has_warning(r, kWarnDefaultCertificate);
}

std::string what_failed(const access_record& r) {
  if (has_warning(r, kWarnDefaultCertificate)) {
    return "answered with a default or foreign certificate";
  }
  return r.stop.reason == stop_reason::upstream_reset ? "reset the connection"
                                                      : "closed without a byte";
}

// kRetryClassic: how to confirm that the hello's size, not the route, is the cause.
constexpr const char* kRetryClassic =
    " Confirm with a classic group, which keeps the hello in one segment: openssl s_client "
    "-groups X25519 -servername NAME, or curl --curves X25519; if that connection works, the "
    "router is the cause.";

// modern_hello_hint: the hint when a router in front most likely could not read the SNI of a
// modern (post-quantum sized, split or ECH) hello; "" otherwise.
std::string modern_hello_hint(const access_record& r) {
  if (!r.tls || !failed_quietly(r)) {
    return {};
  }
  const tls_obs& t = *r.tls;
  const std::string sni = t.sni ? "'" + bounded(*t.sni) + "'" : std::string("(none)");
  const std::string pq = t.pq_key_share() ? " (a post-quantum key share makes it about 2 KB)" : "";
  if (t.sni_read >= 2) {
    return "The upstream " + what_failed(r) + " after a ClientHello whose SNI " + sni +
           " arrived in read " + std::to_string(t.sni_read) + pq +
           ": a router that inspects only the first segment misses this SNI (HAProxy without "
           "tcp-request inspect-delay, Traefik before v3.6.11) and falls back to its default." +
           kRetryClassic;
  }
  if (t.hello_records > 1 || t.hello_bytes > 16384) {
    return "The upstream " + what_failed(r) + " after a ClientHello of " +
           std::to_string(t.hello_bytes) + " bytes in " + std::to_string(t.hello_records) +
           " TLS records (SNI " + sni +
           "): a router that reads only the first record or 16 KB misses the SNI (Traefik "
           "before v3.6.11; Envoy counts client_hello_too_large)." +
           kRetryClassic;
  }
  return {};
}

// specific_hint: the hint for a situation the record identifies beyond its stop reason, or ""
// when nothing more specific than default_hint applies.
std::string specific_hint(const access_record& r) {
  const bool client_tls = r.tls.has_value();
  const std::optional<std::string>& sni = client_tls ? r.tls->sni : std::nullopt;
  const bool has_sni = sni && !sni->empty();
  const std::string sni_text = has_sni ? bounded(*sni) : std::string();
  const std::string up_proto = r.upstream_first ? r.upstream_first->protocol : std::string();
  const std::string up_summary = r.upstream_first ? r.upstream_first->summary : std::string();
  const bool client_plain = !client_tls && r.client_first && r.client_first->protocol != "tls" &&
                            r.client_first->protocol != "none";
  const stop_reason reason = r.stop.reason;

  if (std::string modern = modern_hello_hint(r); !modern.empty()) {
    return modern;
  }

  // The certificate (visible in TLS 1.2 and older) tells who answered, whatever the stop.
  if (r.server_tls && r.server_tls->certificate) {
    const certificate_obs& cert = *r.server_tls->certificate;
    if (contains(cert.subject, "TRAEFIK DEFAULT CERT")) {
      return "No TCP router matched and Traefik's default TLS handling answered with its default "
             "certificate: the router for SNI " +
             (has_sni ? "'" + sni_text + "'" : std::string("(none sent)")) +
             " is missing, not on this entrypoint, or is an HTTP router; add a TCP router with "
             "HostSNI and tls on this entrypoint.";
    }
    if (has_sni && !certificate_covers(cert, *sni)) {
      const std::string cn = cn_of(cert.subject);
      return "TLS was terminated where passthrough was meant: the certificate presented (" +
             (cn.empty() ? bounded(cert.subject) : "CN=" + bounded(cn)) + ") does not cover '" +
             sni_text + "'; set tls.passthrough=true on the router or fix the certificate.";
    }
  }

  // The client closed first: the upstream's close without a byte answers that close, so no
  // router rule, SNI or TLS setting is to blame (and the hints below would say so).
  if (r.close.first == stop_by::client && reason == stop_reason::upstream_closed_silently) {
    return "The client closed first, before the upstream sent a byte; the upstream then closed "
           "too. That is the client giving up (its own timeout, or it sent everything and "
           "half-closed), not a routing failure: check the client.";
  }

  // A client without SNI (an IP literal) to an entrypoint that routes on it.
  if (client_tls && !has_sni &&
      (reason == stop_reason::no_route || reason == stop_reason::upstream_closed_silently)) {
    return "The client sent no SNI (an IP literal?); HostSNI routes cannot match it: use "
           "HostSNI(`*`) or connect by name.";
  }

  // Something other than the entrypoint (or a TLS backend) answered a TLS client.
  if (client_tls && reason == stop_reason::upstream_not_tls) {
    if (up_proto == "http1") {
      return "TLS passthrough to a backend that speaks plain HTTP (it answered '" +
             bounded(up_summary) +
             "'): point the service at the backend's TLS port, or drop tls.passthrough so "
             "Traefik terminates TLS and forwards plaintext.";
    }
    if (!up_proto.empty() && up_proto != "unknown" && up_proto != "none") {
      return "Another program (" + (up_proto == "postgres" ? std::string("PostgreSQL") : up_proto) +
             ") holds the entrypoint port " + address_of(r) + " and answered the TLS client" +
             (up_summary.empty() ? std::string() : " ('" + bounded(up_summary) + "')") +
             ": move it or the entrypoint's address.";
    }
  }
  // A plaintext client to a TLS backend.
  if (client_plain && (reason == stop_reason::upstream_tls_alert || up_proto == "tls")) {
    std::string out =
        "The backend requires TLS: the router must terminate TLS or the client must "
        "use TLS (it sent plaintext " +
        r.client_first->protocol + ")";
    if (r.server_tls && r.server_tls->alert) {
      out += " and got the alert ";
      out += r.server_tls->alert->description().view();
    }
    return out + ".";
  }
  if (client_plain && reason == stop_reason::upstream_closed_silently) {
    return "The upstream closed without a byte after the client's plaintext " +
           r.client_first->protocol +
           ": a TLS backend does this, so if the backend requires TLS the router must terminate "
           "TLS or the client must use TLS; otherwise a plaintext TCP router needs HostSNI(`*`).";
  }

  switch (reason) {
    case stop_reason::upstream_closed_silently:
      if (has_sni && r.stop.phase == stop_phase::first_reply) {
        return "The entrypoint closed without a byte: no TCP router on this entrypoint matched "
               "SNI '" +
               sni_text + "': a Host() rule on a TCP router, or HostSNI(`" + sni_text +
               "`) on a router without tls, makes Traefik drop the router; use HostSNI with a "
               "tls section.";
      }
      break;
    case stop_reason::upstream_error_reply:
      if (up_proto == "postgres" && contains(up_summary, "no encryption")) {
        return "PostgreSQL refused the plaintext connection ('no encryption': pg_hba.conf has "
               "only hostssl lines for it): the client must use TLS (sslmode=require, passed "
               "through), or pg_hba.conf needs a host line.";
      }
      break;
    case stop_reason::upstream_refused:
      return "Nothing listens on " + address_of(r) +
             ": the Traefik entrypoint is missing from the static configuration or failed to "
             "bind its port (see Traefik's start-up log), or the service's address is wrong.";
    case stop_reason::upstream_resolve_failed:
      return "The host name '" +
             (r.upstream ? bounded(host_of(r.upstream->address)) : std::string("?")) +
             "' does not resolve: check the service's server address and the DNS Traefik uses "
             "(container names resolve only on their network).";
    case stop_reason::upstream_unreachable:
      return "The network says " + address_of(r) +
             " cannot be reached (no route to host or network): check the service's server "
             "address, the container network and routes.";
    default:
      break;
  }
  return {};
}

// with_facts: default_hint plus the facts of the record that refine it, in parentheses.
std::string with_facts(const access_record& r) {
  std::string out(default_hint(r.stop.phase, r.stop.reason));
  const auto add = [&out](const std::string& s) { out += " (" + s + ")"; };
  const bool has_sni = r.tls && r.tls->sni && !r.tls->sni->empty();
  switch (r.stop.reason) {
    case stop_reason::no_route:
      add(has_sni ? "SNI was '" + bounded(*r.tls->sni) + "'"
                  : std::string(r.tls ? "the ClientHello carried no SNI"
                                      : "the client did not send a ClientHello"));
      break;
    case stop_reason::upstream_tls_alert:
      if (r.server_tls && r.server_tls->alert) {
        add("alert " + std::string(r.server_tls->alert->description().view()) +
            (has_sni ? ", SNI '" + bounded(*r.tls->sni) + "'" : std::string()));
      }
      break;
    case stop_reason::upstream_not_tls:
    case stop_reason::upstream_error_reply:
      if (r.upstream_first && !r.upstream_first->summary.empty()) {
        add("upstream said: " + bounded(r.upstream_first->summary));
      }
      break;
    case stop_reason::upstream_timeout:
    case stop_reason::upstream_error:
      if (r.upstream) {
        add("upstream " + address_of(r));
      }
      break;
    case stop_reason::upstream_silent:
    case stop_reason::upstream_reset:
      if (has_sni && r.stop.phase == stop_phase::first_reply) {
        add("SNI was '" + bounded(*r.tls->sni) + "'");
      }
      break;
    default:
      break;
  }
  return out;
}

// proxy_in_problem: the sentence for a connection ended over its PROXY protocol header.
std::string proxy_in_problem(const access_record& r) {
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

std::string hint_for(const access_record& r) {
  if (r.proxy_protocol && !r.proxy_protocol->error.empty()) {
    std::string out = proxy_in_problem(r);
    for (char& c : out) {
      c = (c == '\n' || c == '\r') ? ' ' : c;
    }
    return out;
  }
  if (std::find(r.warnings.begin(), r.warnings.end(), "forwarding_loop") != r.warnings.end()) {
    return "forwarding loop: this connection came from linesman's own upstream connection, so an "
           "upstream or route points back at one of linesman's listeners (directly or through "
           "another listener); ended at once so the loop cannot use up every connection: fix the "
           "upstream address";
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
  std::string out = specific_hint(r);
  if (out.empty()) {
    out = with_facts(r);
  }
  if (r.fault) {
    // An injected fault (proxy/fault.hpp) made or shaped this stop: say so before the usual hint.
    out =
        "linesman injected the fault " + r.fault->name + " on this connection; without it: " + out;
  }
  const auto add = [&out](const std::string& s) { out += " (" + s + ")"; };
  if (has_warning(r, kWarnEchOuterNameOnly)) {
    add("the hello carried ECH or GREASE ECH, which look the same on the wire: a HostSNI router "
        "could only have matched the outer name '" +
        bounded(*r.tls->sni) +
        "', never the inner one; route on the outer (public) name, or terminate ECH behind the "
        "router");
  }
  if (has_warning(r, kWarnProxyV4Mapped)) {
    add("a PROXY header carries an IPv4-mapped IPv6 address (::ffff:a.b.c.d): Traefik drops such "
        "headers and logs it only at DEBUG; send the plain IPv4 address (a v4 listener or "
        "bindv6only on the hop in front)");
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
  const bool error_answer = reply.starts_with("-ERR") || (reply.starts_with("HTTP/1.") &&
                                                          reply.find(" 400") != std::string::npos);
  const bool refused = r.stop.phase == stop_phase::first_reply ||
                       (r.stop.by == stop_by::upstream && r.bytes.from_upstream < 512 && !r.ok) ||
                       error_answer;
  if (sent_pp && refused) {
    const int v = r.proxy_out ? r.proxy_out->version : r.proxy_protocol->version;
    add("linesman sent a PROXY protocol v" + std::to_string(v) +
        " header first: the backend may not speak PROXY protocol");
  }

  // One printable line: SNI and summaries are escaped already, but a hint must hold even if a
  // field was not.
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      c = ' ';
    }
  }
  return out;
}

bool has_warning(const access_record& r, std::string_view name) {
  return std::find(r.warnings.begin(), r.warnings.end(), name) != r.warnings.end();
}

void add_record_warnings(access_record& r) {
  const auto add = [&r](const char* name) {
    if (!has_warning(r, name)) {
      r.warnings.emplace_back(name);
    }
  };
  if (default_certificate(r)) {
    add(kWarnDefaultCertificate);
  }
  if (r.tls) {
    const tls_obs& t = *r.tls;
    if (t.sni_read >= 2) {
      add(kWarnSniAfterFirstSegment);
    }
    if (t.hello_records > 1) {
      add(kWarnHelloMultiRecord);
    }
    const bool has_sni = t.sni && !t.sni->empty();
    if (t.ech && has_sni && ((!r.ok && !r.open_state) || has_warning(r, kWarnDefaultCertificate))) {
      add(kWarnEchOuterNameOnly);
    }
  }
  if (proxy_header_v4_mapped(r)) {
    add(kWarnProxyV4Mapped);
  }
}

}  // namespace linesman::proxy
