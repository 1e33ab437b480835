// `linesman demo [--json] [--verbose] [--linesman PATH] [--admin ADDR [--hold S]]`: the README's
// first command. Reproduces the quiet Traefik TCP failures with in-process peers and `linesman run`
// as a child, prints the records and a table (see tools/demo/demo.hpp). Exit 0 when every scenario
// produced the record it should, 1 otherwise (the differing scenario is named on stderr).
#include "tools/cli/commands.hpp"
#include "tools/demo/demo.hpp"

#include <iostream>
#include <string>

namespace linesman::tools {

void add_demo_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "demo", "Reproduce the quiet Traefik TCP failures through linesman and show each record");
  // Static: CLI11 keeps pointers to these until the callback runs, after this function returned.
  static demo::demo_options o;
  cmd->add_flag("--json", o.json, "print only the JSON records, one per line");
  cmd->add_flag("--verbose", o.verbose, "also print the stderr of the linesman child");
  cmd->add_option("--linesman", o.linesman, "linesman binary to run (default: this one)");
  cmd->add_option("--admin", o.admin,
                  "give the linesman child this admin address (e.g. 127.0.0.1:9180) and keep it "
                  "running after the scenarios, to look at them on its admin page");
  cmd->add_option("--hold", o.hold_seconds, "with --admin: seconds to keep linesman running")
      ->check(CLI::Range(0U, 86400U));
  cmd->callback([] { exit_code() = demo::run_demo(o, std::cout, std::cerr); });
}

}  // namespace linesman::tools
