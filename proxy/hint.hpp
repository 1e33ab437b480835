// hint: the record's `hint` sentence, refined from default_hint with what the record shows.
#pragma once

#include "proxy/access_record.hpp"

#include <string>

namespace linesman::proxy {

// hint_for: default_hint(stop.phase, stop.reason) plus the facts the record holds that help a
// Traefik user (the SNI asked for, the upstream's answer, the alert name). Never throws on any
// record content; the result is one line.
std::string hint_for(const access_record& r);

}  // namespace linesman::proxy
