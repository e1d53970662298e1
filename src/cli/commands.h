// The tensor-fusion subcommands. Each registers itself on the app and sets `exitCode` when it
// runs; nothing throws out of a command.
#pragma once

#include <CLI/CLI.hpp>

namespace tf::cli {

void addVersionCommand(CLI::App& app, int& exitCode);
void addDevicesCommand(CLI::App& app, int& exitCode);
void addVgpuCommand(CLI::App& app, int& exitCode);
void addStandaloneCommands(CLI::App& app, int& exitCode);
void addBenchCommand(CLI::App& app, int& exitCode);
void addControllerCommand(CLI::App& app, int& exitCode);
void addDiscoverCommand(CLI::App& app, int& exitCode);
void addPortalCommand(CLI::App& app, int& exitCode);
void addAgentCommand(CLI::App& app, int& exitCode);

} // namespace tf::cli
