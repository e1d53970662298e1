#include <cstdio>
#include <exception>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"TensorFusion: GPU virtualization and pooling", "tensor-fusion"};
  app.require_subcommand(1);
  int exitCode = 0;
  tf::cli::addVersionCommand(app, exitCode);
  tf::cli::addDevicesCommand(app, exitCode);
  tf::cli::addVgpuCommand(app, exitCode);
  tf::cli::addStandaloneCommands(app, exitCode);
  tf::cli::addBenchCommand(app, exitCode);
  tf::cli::addControllerCommand(app, exitCode);
  tf::cli::addDiscoverCommand(app, exitCode);
  tf::cli::addPortalCommand(app, exitCode);
  tf::cli::addAgentCommand(app, exitCode);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    fprintf(stderr, "tensor-fusion: %s\n", e.what());
    return 1;
  }
  return exitCode;
}
