// `linesman inspect`: placeholder registration until tls/ lands; see issue 2.
#include <iostream>
#include <string>
#include <vector>

#include "tools/commands.hpp"

namespace linesman::tools {

void add_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Read raw first-flight files and print what they are");
  static std::vector<std::string> paths;
  static bool json = false;
  cmd->add_option("paths", paths, "files of raw first-flight bytes")->required()->check(CLI::ExistingFile);
  cmd->add_flag("--json", json, "one JSON object per line");
  cmd->callback([] {
    std::cerr << "linesman inspect: not implemented yet\n";
    exit_code() = 2;
  });
}

}  // namespace linesman::tools
