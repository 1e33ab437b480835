// commands: each `linesman` subcommand lives in tools/cli/cmd_<name>.cpp and registers itself on
// the CLI11 app here. A subcommand's callback throws on bad input (the control plane may); main
// turns that into a message naming the flag or file and a non-zero exit.
#pragma once

#include <CLI/CLI.hpp>

namespace linesman::tools {

// exit_code: set by a subcommand's callback; main returns it.
int& exit_code();

void add_inspect_command(CLI::App& app);
void add_run_command(CLI::App& app);        // tools/cli/cmd_run.cpp
void add_doctor_command(CLI::App& app);     // tools/cli/cmd_doctor.cpp
void add_summary_command(CLI::App& app);    // tools/cli/cmd_summary.cpp
void add_correlate_command(CLI::App& app);  // tools/cli/cmd_correlate.cpp
void add_replay_command(CLI::App& app);     // tools/cli/cmd_replay.cpp
void add_demo_command(CLI::App& app);       // tools/cli/cmd_demo.cpp
void add_top_command(CLI::App& app);        // tools/cli/cmd_top.cpp

}  // namespace linesman::tools
