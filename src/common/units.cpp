#include "common/units.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace tf::units {

Result<uint64_t> parseBytes(std::string_view text) {
  std::string s(text);
  while (!s.empty() && s.back() == ' ') s.pop_back();
  while (!s.empty() && s.front() == ' ') s.erase(s.begin());
  if (s.empty()) return invalidArgument("empty size");
  size_t i = 0;
  while (i < s.size() && (isdigit((unsigned char)s[i]) || s[i] == '.')) ++i;
  if (i == 0) return invalidArgument("size '" + s + "' does not start with a number");
  double num = std::strtod(s.substr(0, i).c_str(), nullptr);
  std::string suffix = s.substr(i);
  while (!suffix.empty() && suffix.front() == ' ') suffix.erase(suffix.begin());
  double mult = 0;
  struct Unit { const char* name; double mult; };
  static const Unit kUnits[] = {
      {"", 1},       {"B", 1},
      {"Ki", 1024.0}, {"KiB", 1024.0}, {"Mi", 1048576.0}, {"MiB", 1048576.0},
      {"Gi", 1073741824.0}, {"GiB", 1073741824.0}, {"Ti", 1099511627776.0}, {"TiB", 1099511627776.0},
      {"K", 1e3},    {"KB", 1e3},      {"k", 1e3},         {"M", 1e6},          {"MB", 1e6},
      {"G", 1e9},    {"GB", 1e9},      {"T", 1e12},        {"TB", 1e12},
  };
  for (const auto& u : kUnits)
    if (suffix == u.name) mult = u.mult;
  if (mult == 0) return invalidArgument("size '" + s + "' has an unknown unit '" + suffix + "'");
  double bytes = num * mult;
  if (!std::isfinite(bytes) || bytes >= 18446744073709551615.0)
    return invalidArgument("size '" + s + "' is too large");
  return static_cast<uint64_t>(std::llround(bytes));
}

std::string formatBytes(uint64_t bytes) {
  static const char* kNames[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) { v /= 1024; ++u; }
  char buf[32];
  if (u == 0) snprintf(buf, sizeof buf, "%llu B", (unsigned long long)bytes);
  else snprintf(buf, sizeof buf, "%.4g %s", v, kNames[u]);
  return buf;
}

} // namespace tf::units
