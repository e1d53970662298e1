// Where the running executable lives: the installed layout (bin/, lib/, bench/) is found from
// it, so the tools work from any current directory.
#pragma once

#include <string>

namespace tf {

// The executable's path (/proc/self/exe), or "" if it cannot be read.
std::string selfPath();
// Its directory, or "." if unknown.
std::string selfDir();

} // namespace tf
