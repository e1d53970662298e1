// A stop request shared by the threads of one piece of work (a watch, an informer, a leader
// elector): sleeps that end early when stop() is called, and wakers that kick a blocked
// transfer (a curl multi handle in poll) so no thread stays stuck in I/O.
//
//   StopSignal stop;
//   std::thread t([&] { while (!stop.waitFor(1s)) work(); });
//   stop.stop(); t.join();
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>

namespace tf::k8s {

class StopSignal {
public:
  // Wakers run under the lock, so one that removeWaker() has returned from never runs again;
  // they must be quick and must not call back into this signal.
  void stop() {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    cv_.notify_all();
    for (auto& [id, wake] : wakers_) wake();
  }
  bool stopped() const { return stopped_.load(); }

  // Sleeps for `d` or until stop(); returns true when stopped.
  template <typename Rep, typename Period> bool waitFor(std::chrono::duration<Rep, Period> d) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, d, [&] { return stopped_.load(); });
  }

  // A waker runs on stop(); while registered it must stay callable. Returns an id for remove.
  int addWaker(std::function<void()> wake) {
    std::lock_guard<std::mutex> lock(mu_);
    wakers_[++nextId_] = std::move(wake);
    return nextId_;
  }
  void removeWaker(int id) {
    std::lock_guard<std::mutex> lock(mu_);
    wakers_.erase(id);
  }

private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> stopped_{false};
  std::map<int, std::function<void()>> wakers_;
  int nextId_ = 0;
};

}  // namespace tf::k8s
