#include "k8s/work_queue.h"

namespace tf::k8s {

WorkQueue::WorkQueue(ExponentialBackoff backoff, Clock& clock) : clock_(clock), backoff_(backoff) {}

void WorkQueue::insertLocked(const std::string& key) {
  if (shutDown_ || dirty_.count(key)) return;
  dirty_.insert(key);
  if (processing_.count(key)) return;  // done() queues it
  queue_.push_back(key);
  cv_.notify_one();
}

void WorkQueue::add(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  insertLocked(key);
}

void WorkQueue::addAfter(const std::string& key, Duration delay) {
  if (delay <= Duration::zero()) return add(key);
  std::lock_guard<std::mutex> lock(mu_);
  if (shutDown_) return;
  TimePoint when = clock_.now() + delay;
  auto [it, inserted] = waiting_.emplace(key, when);
  if (!inserted && when < it->second) it->second = when;
  cv_.notify_all();  // a waiting worker may need to wake sooner
}

void WorkQueue::addRateLimited(const std::string& key) { addAfter(key, backoff_.when(key)); }

void WorkQueue::forget(const std::string& key) { backoff_.forget(key); }

void WorkQueue::promoteLocked() {
  TimePoint now = clock_.now();
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (it->second <= now) {
      insertLocked(it->first);
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
}

std::optional<std::string> WorkQueue::popLocked() {
  if (queue_.empty()) return std::nullopt;
  std::string key = std::move(queue_.front());
  queue_.pop_front();
  dirty_.erase(key);
  processing_.insert(key);
  return key;
}

std::optional<std::string> WorkQueue::getFor(Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  TimePoint deadline = clock_.now() + timeout;
  for (;;) {
    promoteLocked();
    if (auto key = popLocked()) return key;
    if (shutDown_) return std::nullopt;
    TimePoint now = clock_.now();
    if (now >= deadline) return std::nullopt;
    // Sleep until the first delayed key is due, the deadline, or a notify; with a manual
    // clock re-check every 50 ms so time moved by a test is seen.
    TimePoint wake = deadline;
    for (const auto& [k, t] : waiting_) wake = std::min(wake, t);
    Duration d = wake - now;
    if (&clock_ != &Clock::real()) d = std::min<Duration>(d, std::chrono::milliseconds(50));
    cv_.wait_for(lock, d);
  }
}

std::optional<std::string> WorkQueue::get() { return getFor(std::chrono::hours(24 * 365)); }

void WorkQueue::done(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  processing_.erase(key);
  if (dirty_.count(key)) {
    queue_.push_back(key);
    cv_.notify_one();
  }
}

void WorkQueue::shutDown() {
  std::lock_guard<std::mutex> lock(mu_);
  shutDown_ = true;
  waiting_.clear();
  cv_.notify_all();
}

bool WorkQueue::shuttingDown() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shutDown_;
}

size_t WorkQueue::len() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

size_t WorkQueue::waitingLen() const {
  std::lock_guard<std::mutex> lock(mu_);
  return waiting_.size();
}

}  // namespace tf::k8s
