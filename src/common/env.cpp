#include "common/env.h"

#include <cerrno>
#include <cstdlib>
#include <strings.h>

namespace tf::env {

std::optional<std::string> get(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  return std::string(v);
}

std::string getOr(const char* name, const std::string& fallback) {
  auto v = get(name);
  return v ? *v : fallback;
}

Result<bool> getBool(const char* name, bool fallback) {
  auto v = get(name);
  if (!v) return fallback;
  const char* s = v->c_str();
  for (const char* t : {"1", "true", "yes", "on"})
    if (!strcasecmp(s, t)) return true;
  for (const char* f : {"0", "false", "no", "off"})
    if (!strcasecmp(s, f)) return false;
  return invalidArgument(std::string(name) + "='" + *v + "' is not a boolean (use 1/0, true/false)");
}

Result<long long> getInt(const char* name, long long fallback) {
  auto v = get(name);
  if (!v) return fallback;
  errno = 0;
  char* end = nullptr;
  long long x = std::strtoll(v->c_str(), &end, 0);
  if (errno || end == v->c_str() || *end)
    return invalidArgument(std::string(name) + "='" + *v + "' is not an integer");
  return x;
}

} // namespace tf::env
