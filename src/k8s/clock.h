// The clock the rate limiter, work queue back-off and leader election read, so tests can
// move time by hand (ManualClock) instead of sleeping.
#pragma once

#include <chrono>
#include <mutex>

namespace tf::k8s {

using Duration = std::chrono::steady_clock::duration;
using TimePoint = std::chrono::steady_clock::time_point;

class Clock {
public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
  static Clock& real();  // std::chrono::steady_clock
};

class ManualClock : public Clock {
public:
  TimePoint now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  void advance(Duration d) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += d;
  }

private:
  mutable std::mutex mu_;
  TimePoint now_{std::chrono::hours(1)};
};

}  // namespace tf::k8s
