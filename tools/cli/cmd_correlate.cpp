// `linesman correlate [--json] [--window DUR] A.jsonl B.jsonl`: pair the records of two
// placements and list what reached one side and not the other (see tools/logs/correlate.hpp).
// Exit 0 when every record paired, 1 when something is unpaired, 2 for bad input (an unreadable
// file, a bad --window, not exactly two files). Lines that do not parse are skipped and listed on
// stderr as file:line; interim ("open") records are left out of the pairing.
#include "tools/cli/commands.hpp"
#include "tools/logs/correlate.hpp"
#include "tools/logs/reader.hpp"

#include <iostream>
#include <string>
#include <vector>

namespace linesman::tools {

void add_correlate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "correlate",
      "Pair the access logs of two placements (A: client -> Traefik, B: Traefik -> backend)");
  // Static: CLI11 keeps pointers to these until the callback runs, after this function returned.
  static std::vector<std::string> files;
  static std::string window = "1s";
  static bool json = false;
  cmd->add_option("logs", files, "A.jsonl (in front of Traefik) and B.jsonl (behind it)")
      ->required();
  cmd->add_option("--window", window,
                  "how long after A's connection ended B's may start (e.g. 500ms, 1s; default 1s)");
  cmd->add_flag("--json", json, "print one JSON object instead of lists");
  cmd->callback([] {
    constexpr const char* kName = "linesman correlate";
    if (files.size() != 2) {
      std::cerr << kName << ": expected two logs, A.jsonl and B.jsonl, got " << files.size()
                << "\n";
      exit_code() = 2;
      return;
    }
    if (files[0] == "-" && files[1] == "-") {
      std::cerr << kName << ": only one of A and B can be standard input (-)\n";
      exit_code() = 2;
      return;
    }
    const auto window_us = parse_duration_us(window);
    if (!window_us) {
      std::cerr << kName << ": --window: '" << window
                << "' is not a duration (use a number with us, ms, s or m, e.g. 500ms)\n";
      exit_code() = 2;
      return;
    }
    log_contents a;
    log_contents b;
    try {
      read_log_file(files[0], a);
      read_log_file(files[1], b);
    } catch (const log_open_error& e) {
      std::cerr << kName << ": " << e.what() << "\n";
      exit_code() = 2;
      return;
    }
    report_bad_lines(kName, a.bad_lines, std::cerr);
    report_bad_lines(kName, b.bad_lines, std::cerr);
    const auto c = correlate(a.records, b.records, *window_us);
    const correlate_input in{files[0], files[1], &a.records, &b.records, *window_us};
    if (json) {
      std::cout << to_json(in, c).dump(2) << "\n";
    } else {
      std::cout << render_text(in, c);
    }
    exit_code() = c.all_paired() ? 0 : 1;
  });
}

}  // namespace linesman::tools
