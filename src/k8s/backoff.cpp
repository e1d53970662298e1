#include "k8s/backoff.h"

#include <cmath>
#include <random>

namespace tf::k8s {

Duration ExponentialBackoff::delay(int attempt) const {
  double secs = std::chrono::duration<double>(base).count() * std::pow(factor, std::max(attempt, 0));
  double cap = std::chrono::duration<double>(max).count();
  if (!(secs < cap)) secs = cap;  // also catches overflow to inf
  if (jitter > 0) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    secs += secs * jitter * std::uniform_real_distribution<double>(0, 1)(rng);
  }
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(secs));
}

Duration ItemBackoff::when(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  int n = failures_[key]++;
  return backoff_.delay(n);
}

void ItemBackoff::forget(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  failures_.erase(key);
}

int ItemBackoff::numRequeues(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

}  // namespace tf::k8s
