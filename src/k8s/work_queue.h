// A work queue of keys ("namespace/name") for reconcilers, as client-go's rate-limited
// workqueue: a key added many times before a worker takes it is handled once; a key being
// handled is never given to a second worker (re-adds wait until done()); failures requeue
// with per-key exponential back-off; shutDown() wakes every waiting worker.
//
//   while (auto key = queue.get()) {
//     if (reconcile(*key)) queue.forget(*key); else queue.addRateLimited(*key);
//     queue.done(*key);
//   }
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "k8s/backoff.h"
#include "k8s/clock.h"

namespace tf::k8s {

class WorkQueue {
public:
  explicit WorkQueue(ExponentialBackoff backoff = {}, Clock& clock = Clock::real());

  void add(const std::string& key);
  // Adds `key` after `delay` (an earlier pending time for the same key wins).
  void addAfter(const std::string& key, Duration delay);
  // Adds after the key's next back-off delay (5 ms, 10 ms, ... by default).
  void addRateLimited(const std::string& key);
  // Resets the key's back-off (call after a success).
  void forget(const std::string& key);
  int numRequeues(const std::string& key) const { return backoff_.numRequeues(key); }

  // Blocks for the next key; nullopt once shut down and drained of ready keys.
  std::optional<std::string> get();
  // Like get() but gives up after `timeout`.
  std::optional<std::string> getFor(Duration timeout);
  // The worker finished `key`; if it was re-added meanwhile it becomes ready again.
  void done(const std::string& key);

  void shutDown();
  bool shuttingDown() const;
  size_t len() const;  // ready keys
  size_t waitingLen() const;  // keys whose delay has not passed

private:
  void insertLocked(const std::string& key);
  void promoteLocked();  // moves delayed keys whose time has come
  std::optional<std::string> popLocked();

  Clock& clock_;
  ItemBackoff backoff_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::set<std::string> dirty_;       // queued or to be queued once done
  std::set<std::string> processing_;  // handed to a worker
  std::map<std::string, TimePoint> waiting_;  // delayed adds
  bool shutDown_ = false;
};

}  // namespace tf::k8s
