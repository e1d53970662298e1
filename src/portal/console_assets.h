// The console's files (src/portal/console/), compiled into the binary by embed_console.cmake so
// that the portal serves them itself: one executable, nothing fetched at run time.
#pragma once

#include <string_view>
#include <vector>

namespace tf::portal {

struct ConsoleAsset {
  std::string_view path;   // relative to src/portal/console/, e.g. "vendor/uPlot.esm.js"
  std::string_view bytes;
};

// Sorted by path (generated).
const std::vector<ConsoleAsset>& consoleAssets();

}  // namespace tf::portal
