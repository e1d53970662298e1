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

Result<uint64_t> parseDurationMs(std::string_view text) {
  const std::string all(text);
  if (all == "0") return uint64_t{0};
  if (all.empty()) return invalidArgument("empty duration");
  struct Unit { const char* name; double ms; };
  static const Unit kUnits[] = {{"ns", 1e-6}, {"us", 1e-3}, {"µs", 1e-3}, {"ms", 1}, {"s", 1e3}, {"m", 6e4}, {"h", 3.6e6}};
  double total = 0;
  size_t i = 0;
  while (i < all.size()) {
    const size_t start = i;
    while (i < all.size() && (isdigit(static_cast<unsigned char>(all[i])) || all[i] == '.')) ++i;
    if (i == start) return invalidArgument("duration '" + all + "': expected a number at '" + all.substr(start) + "'");
    const double num = std::strtod(all.substr(start, i - start).c_str(), nullptr);
    const size_t unitStart = i;
    while (i < all.size() && !isdigit(static_cast<unsigned char>(all[i])) && all[i] != '.') ++i;
    const std::string unit = all.substr(unitStart, i - unitStart);
    double ms = -1;
    for (const auto& u : kUnits)
      if (unit == u.name) ms = u.ms;
    if (ms < 0) return invalidArgument("duration '" + all + "' has " + (unit.empty() ? "a number without a unit" : "an unknown unit '" + unit + "'"));
    total += num * ms;
  }
  if (!std::isfinite(total) || total >= 9.2e18) return invalidArgument("duration '" + all + "' is too long");
  return static_cast<uint64_t>(std::llround(total));
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
