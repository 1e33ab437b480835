// demo: `linesman demo`, the README's first command. Starts in-process upstreams
// (tools/demo/peers.hpp), starts `linesman run` as a child with one listener per scenario, drives
// one real client connection through each, stops linesman with SIGTERM and checks that every
// scenario's access-log record says what it should (phase/reason plus the fact the scenario is
// about: the SNI, the upstream's summary, the certificate seen).
//
// The records and their hints are linesman's own: the demo only reads them.
#pragma once

#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace linesman::tools::demo {

// expectation: what a scenario's record must show. `reasons` lists the acceptable stop reasons
// in `phase` (a healthy connection may end completed or closed by either side). `check` looks at
// the rest of the record and returns "" when it holds, else what differed.
struct expectation {
  std::string phase;
  std::vector<std::string> reasons;
  std::function<std::string(const nlohmann::json&)> check;
};

// outcome: one scenario after the run.
struct outcome {
  std::string id;     // listener name in linesman's config and in the record, e.g. "2-router-rule"
  std::string title;  // what it stands for, e.g. "router rule matches no SNI"
  expectation expect;
  std::string client_saw;             // what the client got (its error, or the reply's first line)
  std::optional<nlohmann::json> rec;  // the record linesman wrote for the client's connection
  std::string mismatch;               // "" when the record is what it should be
};

// evaluate: fills o.mismatch from o.rec and o.expect ("no record" when there is none).
void evaluate(outcome& o);

// stopped_at: "phase / reason / by" of a record, "-" when a field is missing.
std::string stopped_at(const nlohmann::json& rec);

// render_table: the readable table, lines of at most `width` columns (the hint is cut with "...";
// the JSON keeps it whole).
std::string render_table(const std::vector<outcome>& results, std::size_t width = 100);

// demo_options: the flags of `linesman demo`.
struct demo_options {
  bool json = false;     // print only the JSON records, one per line
  std::string linesman;  // the binary to run (default: /proc/self/exe)
  bool verbose = false;  // also print linesman's stderr
  // admin: `--admin ADDR` for the linesman child (its admin page, docs/live-view.md). The demo
  // then keeps linesman running after the scenarios, for hold_seconds or until SIGINT/SIGTERM,
  // and prints the page's address and the access logs' directory first.
  std::string admin;
  unsigned hold_seconds = 600;
};

// run_demo: does the whole demo, printing to out/err. Returns 0 when every scenario produced the
// record it should, 1 otherwise (each differing scenario named on err). Never runs longer than
// about 20 s; everything it starts (threads, the linesman child, its temp dir) is gone on return.
int run_demo(const demo_options& opt, std::ostream& out, std::ostream& err);

}  // namespace linesman::tools::demo
