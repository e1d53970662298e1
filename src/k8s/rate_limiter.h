// Client-side rate limit: a token bucket of `burst` tokens refilled at `qps` per second, as
// client-go's flowcontrol. One per Client, shared by all its threads; every request takes one.
//
//   TokenBucket bucket(5.0, 10);     // 10 at once, then 5 per second
//   bucket.wait();                   // blocks until a token is ours
#pragma once

#include <mutex>

#include "k8s/clock.h"

namespace tf::k8s {

class StopSignal;

class TokenBucket {
public:
  // qps <= 0: no limit.
  TokenBucket(double qps, int burst, Clock& clock = Clock::real());

  // Takes a token now or reserves the next one; returns how long the caller must wait before
  // using it (zero when one was free).
  Duration reserve();
  // Takes a token only if one is free now.
  bool tryAccept();
  // reserve() and sleep the delay (ends early when `stop` is set; the token is spent anyway).
  void wait(StopSignal* stop = nullptr);

  double qps() const { return qps_; }
  int burst() const { return burst_; }

private:
  void refillLocked(TimePoint now);

  std::mutex mu_;
  Clock& clock_;
  double qps_;
  int burst_;
  double tokens_;  // may go negative: tokens reserved by waiting callers
  TimePoint last_;
};

}  // namespace tf::k8s
