#include <cstdio>
#include <cstring>

#include "cli/build_info.h"
#include "cli/commands.h"

namespace tf::cli {

void addVersionCommand(CLI::App& app, int& exitCode) {
  auto* cmd = app.add_subcommand("version", "Print the version and the commit it was built from");
  cmd->callback([&exitCode] {
    if (strlen(TF_BUILD_GIT_COMMIT) > 0)
      printf("tensor-fusion %s (commit %s)\n", TF_BUILD_VERSION, TF_BUILD_GIT_COMMIT);
    else
      printf("tensor-fusion %s\n", TF_BUILD_VERSION);
    exitCode = 0;
  });
}

} // namespace tf::cli
