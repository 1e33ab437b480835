// linesman: the CLI front-end. Thin by design: every subcommand is in tools/cli/cmd_<name>.cpp.
#include "tools/cli/commands.hpp"

#include <cstring>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  CLI::App app{"linesman: a transparent TCP/TLS debugging proxy for Traefik routes"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "linesman 0.1.0");
  linesman::tools::add_inspect_command(app);
  linesman::tools::add_run_command(app);
  linesman::tools::add_doctor_command(app);
  linesman::tools::add_summary_command(app);
  linesman::tools::add_correlate_command(app);
  linesman::tools::add_replay_command(app);
  linesman::tools::add_demo_command(app);
  linesman::tools::add_top_command(app);

  // `linesman --listen ...` means `linesman run --listen ...`.
  std::vector<char*> args(argv, argv + argc);
  std::string run = "run";
  if (argc > 1 && std::strncmp(argv[1], "--", 2) == 0 && std::strcmp(argv[1], "--help") != 0 &&
      std::strcmp(argv[1], "--version") != 0 &&
      !app.get_subcommands([](CLI::App* s) { return s->get_name() == "run"; }).empty()) {
    args.insert(args.begin() + 1, run.data());
  }
  try {
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "linesman: " << e.what() << "\n";
    return 2;
  }
  return linesman::tools::exit_code();
}
