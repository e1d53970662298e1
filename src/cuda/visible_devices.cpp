#include "cuda/visible_devices.h"

#include <algorithm>
#include <cctype>
#include <strings.h>

namespace tf::cuda {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// The device an entry names, or -1.
int deviceOf(std::string_view entry, const std::vector<std::string>& uuids) {
  if (entry.empty()) return -1;
  if (std::all_of(entry.begin(), entry.end(), [](char c) { return isdigit(static_cast<unsigned char>(c)); })) {
    if (entry.size() > 9) return -1;
    int i = std::stoi(std::string(entry));
    return i < static_cast<int>(uuids.size()) ? i : -1;
  }
  if (entry.size() < 5 || strncasecmp(entry.data(), "GPU-", 4) != 0) return -1;
  int found = -1;
  for (size_t i = 0; i < uuids.size(); ++i) {
    if (uuids[i].size() < entry.size() || strncasecmp(uuids[i].data(), entry.data(), entry.size()) != 0) continue;
    if (found >= 0) return -1;  // a prefix of two devices names neither
    found = static_cast<int>(i);
  }
  return found;
}

}  // namespace

std::vector<int> selectVisibleDevices(std::string_view list, const std::vector<std::string>& uuids) {
  std::vector<int> out;
  for (;;) {
    const size_t comma = list.find(',');
    const int d = deviceOf(trim(list.substr(0, comma)), uuids);
    if (d < 0 || std::find(out.begin(), out.end(), d) != out.end()) break;
    out.push_back(d);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace tf::cuda
