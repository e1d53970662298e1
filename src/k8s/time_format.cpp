#include "k8s/time_format.h"

#include <ctime>

namespace tf::k8s {
namespace {
std::string format(std::chrono::system_clock::time_point t, bool micros) {
  auto secs = std::chrono::time_point_cast<std::chrono::seconds>(t);
  std::time_t tt = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  if (micros) {
    long us = static_cast<long>(std::chrono::duration_cast<std::chrono::microseconds>(t - secs).count());
    n += snprintf(buf + n, sizeof buf - n, ".%06ld", us);
  }
  return std::string(buf, n) + "Z";
}
}  // namespace

std::string formatTime(std::chrono::system_clock::time_point t) { return format(t, false); }
std::string formatMicroTime(std::chrono::system_clock::time_point t) { return format(t, true); }

}  // namespace tf::k8s
