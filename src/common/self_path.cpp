#include "common/self_path.h"

#include <climits>

#include <unistd.h>

namespace tf {

std::string selfPath() {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  return n > 0 ? std::string(exe, static_cast<size_t>(n)) : std::string();
}

std::string selfDir() {
  std::string p = selfPath();
  auto slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

} // namespace tf
