#include "k8s/rate_limiter.h"

#include <algorithm>
#include <thread>

#include "k8s/stop_signal.h"

namespace tf::k8s {

Clock& Clock::real() {
  struct Steady : Clock {
    TimePoint now() const override { return std::chrono::steady_clock::now(); }
  };
  static Steady clock;
  return clock;
}

TokenBucket::TokenBucket(double qps, int burst, Clock& clock)
    : clock_(clock), qps_(qps), burst_(std::max(burst, 1)), tokens_(std::max(burst, 1)),
      last_(clock.now()) {}

void TokenBucket::refillLocked(TimePoint now) {
  if (now <= last_) return;
  double secs = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min<double>(burst_, tokens_ + secs * qps_);
  last_ = now;
}

Duration TokenBucket::reserve() {
  if (qps_ <= 0) return Duration::zero();
  std::lock_guard<std::mutex> lock(mu_);
  refillLocked(clock_.now());
  tokens_ -= 1;
  if (tokens_ >= 0) return Duration::zero();
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(-tokens_ / qps_));
}

bool TokenBucket::tryAccept() {
  if (qps_ <= 0) return true;
  std::lock_guard<std::mutex> lock(mu_);
  refillLocked(clock_.now());
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

void TokenBucket::wait(StopSignal* stop) {
  Duration d = reserve();
  if (d <= Duration::zero()) return;
  if (stop) stop->waitFor(d);
  else std::this_thread::sleep_for(d);
}

}  // namespace tf::k8s
