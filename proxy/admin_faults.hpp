// admin_faults: the admin API's fault endpoints (with --admin-faults), beside proxy/admin.cpp.
//   GET    /api/faults       every fault: id, listener, source, spec, name, params
//   POST   /api/faults       body {"spec": "...", "listener": "NAME"?}: 201 {"id": N, ...}
//   DELETE /api/faults/ID    200, or 404 when there is no such fault
// A malformed body or spec gets a 400 whose message names the bad key, and changes nothing. The
// token rule of the admin endpoint (pre-routing, proxy/admin.cpp) covers these paths too.
#pragma once

#include "proxy/fault.hpp"

#include <string>
#include <vector>

#include <httplib.h>

namespace linesman::proxy {

// add_fault_routes: registers the three endpoints on `http`; `faults` must outlive it.
// `listeners` are the names a POST may narrow a fault to.
void add_fault_routes(httplib::Server& http, fault_table& faults,
                      std::vector<std::string> listeners);

// is_fault_post: the one request of the admin API that carries a body.
inline bool is_fault_post(const httplib::Request& req) {
  return req.method == "POST" && req.path == "/api/faults";
}

}  // namespace linesman::proxy
