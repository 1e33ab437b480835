// `linesman summary [--json] LOG...`: read access logs and print what to look at first (see
// tools/logs/summary.hpp). Exit 0; exit 2 when a file cannot be read (the message names it). Lines
// that do not parse are skipped and listed on stderr as file:line.
#include "tools/cli/commands.hpp"
#include "tools/logs/reader.hpp"
#include "tools/logs/summary.hpp"

#include <iostream>
#include <string>
#include <vector>

namespace linesman::tools {

void add_summary_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "summary", "Summarize access logs: funnel per listener and SNI, top stop reasons, timings");
  // Static: CLI11 keeps pointers to these until the callback runs, after this function returned.
  static std::vector<std::string> paths;
  static bool json = false;
  cmd->add_option("logs", paths, "access-log files (JSON lines); - for standard input")->required();
  cmd->add_flag("--json", json, "print one JSON object instead of tables");
  cmd->callback([] {
    log_contents logs;
    for (const auto& path : paths) {
      try {
        read_log_file(path, logs);
      } catch (const log_open_error& e) {
        std::cerr << "linesman summary: " << e.what() << "\n";
        exit_code() = 2;
        return;
      }
    }
    report_bad_lines("linesman summary", logs.bad_lines, std::cerr);
    const summary s = summarize(logs);
    if (json) {
      std::cout << to_json(s).dump(2) << "\n";
    } else {
      std::cout << render_text(s);
    }
    exit_code() = 0;
  });
}

}  // namespace linesman::tools
