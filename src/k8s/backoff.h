// Exponential back-off: base * factor^n, capped, with optional jitter; and the per-item
// variant the work queue uses for rate-limited requeues (client-go's
// ItemExponentialFailureRateLimiter).
//
//   ExponentialBackoff b{.base = 5ms, .max = 1000s};
//   b.delay(0) == 5ms, b.delay(1) == 10ms, ...
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "k8s/clock.h"

namespace tf::k8s {

struct ExponentialBackoff {
  Duration base = std::chrono::milliseconds(5);
  Duration max = std::chrono::seconds(1000);
  double factor = 2.0;
  double jitter = 0.0;  // 0.1: up to 10% added at random

  // The delay before retry number `attempt` (0 = the first retry).
  Duration delay(int attempt) const;
};

// Failures counted per key: each when() returns the next, longer delay until forget().
class ItemBackoff {
public:
  explicit ItemBackoff(ExponentialBackoff backoff = {}) : backoff_(backoff) {}
  Duration when(const std::string& key);
  void forget(const std::string& key);
  int numRequeues(const std::string& key) const;

private:
  ExponentialBackoff backoff_;
  mutable std::mutex mu_;
  std::map<std::string, int> failures_;
};

}  // namespace tf::k8s
