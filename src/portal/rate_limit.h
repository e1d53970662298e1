// Token buckets: one per agent session (messages/s), and keyed ones for logins (per user and per
// client address). Times in milliseconds, passed in.
#pragma once

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace tf::portal {

class TokenBucket {
public:
  TokenBucket(double capacity, double perSecond) : capacity_(capacity), perMs_(perSecond / 1000), tokens_(capacity) {}
  // Takes one token if there is one.
  bool take(int64_t nowMs) {
    refill(nowMs);
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }
  bool hasToken(int64_t nowMs) {
    refill(nowMs);
    return tokens_ >= 1;
  }
  // Seconds until one token is there.
  int64_t retryAfterSeconds() const { return tokens_ >= 1 ? 0 : int64_t((1 - tokens_) / perMs_ / 1000) + 1; }

private:
  void refill(int64_t nowMs) {
    if (last_ != 0 && nowMs > last_) tokens_ = std::min(capacity_, tokens_ + double(nowMs - last_) * perMs_);
    last_ = nowMs;
  }
  double capacity_, perMs_, tokens_;
  int64_t last_ = 0;
};

// Buckets by key ("user:alice", "addr:10.0.0.1"); thread-safe. A bucket that is full again is
// forgotten, so the map holds only keys that failed recently.
class KeyedLimiter {
public:
  KeyedLimiter(double capacity, double perSecond) : capacity_(capacity), perSecond_(perSecond) {}
  // 0 when `key` may try now, else the seconds to wait.
  int64_t retryAfter(const std::string& key, int64_t nowMs) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = buckets_.find(key);
    if (it == buckets_.end() || it->second.hasToken(nowMs)) return 0;
    return it->second.retryAfterSeconds();
  }
  void recordFailure(const std::string& key, int64_t nowMs) {
    std::lock_guard<std::mutex> lock(mu_);
    if (buckets_.size() > 100000) buckets_.clear();  // bound memory under a spray of keys
    buckets_.try_emplace(key, capacity_, perSecond_).first->second.take(nowMs);
  }

private:
  std::mutex mu_;
  double capacity_, perSecond_;
  std::unordered_map<std::string, TokenBucket> buckets_;
};

}  // namespace tf::portal
