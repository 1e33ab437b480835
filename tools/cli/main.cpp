// linesman: the CLI front-end. Thin by design: every subcommand is in tools/cli/cmd_<name>.cpp.
#include "build_info.hpp"  // generated: LINESMAN_VERSION, LINESMAN_GIT_COMMIT
#include "tools/cli/commands.hpp"

#include <cstring>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <asio/version.hpp>
#include <openssl/crypto.h>

namespace {

// version_text: what `linesman --version` prints: our version and commit, then the versions of
// the libraries that decide behaviour on the wire (Asio as compiled in, OpenSSL as loaded).
std::string version_text() {
  const std::string asio = std::to_string(ASIO_VERSION / 100000) + "." +
                           std::to_string(ASIO_VERSION / 100 % 1000) + "." +
                           std::to_string(ASIO_VERSION % 100);
  return std::string("linesman ") + LINESMAN_VERSION + "\ncommit " + LINESMAN_GIT_COMMIT +
         "\nAsio " + asio + "\n" + OpenSSL_version(OPENSSL_VERSION);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"linesman: a transparent TCP/TLS debugging proxy for Traefik routes"};
  app.require_subcommand(1);
  app.set_version_flag("--version", version_text());
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
