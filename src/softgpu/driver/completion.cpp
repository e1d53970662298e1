#include <ctime>

#include "softgpu/driver/driver.h"

namespace tf::softgpu {
namespace {
uint64_t monotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}
} // namespace

bool Completion::complete(CUresult r) {
  std::lock_guard<std::mutex> lock(mu);
  result = r;
  timestampNs = monotonicNs();
  done = true;
  cv.notify_all();
  return waiters > 0;
}

void Completion::wait() {
  std::unique_lock<std::mutex> lock(mu);
  ++waiters;
  cv.wait(lock, [&] { return done; });
  --waiters;
}

bool Completion::isDone() {
  std::lock_guard<std::mutex> lock(mu);
  return done;
}

} // namespace tf::softgpu
