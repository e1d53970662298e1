// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection:
// - a candidate takes the lease only when it is free or when the holder's record (holder,
//   renewTime) has not changed for leaseDuration as measured by OUR clock since we first saw
//   it (never by comparing the holder's timestamps with our wall clock);
// - the leader renews every retryPeriod; if it cannot renew for renewDeadline it stops
//   leading; a 409 on write means someone else won;
// - on stop, a leader releases the lease (empty holder) so a standby takes over at once.
//
//   LeaderElector elector(client, {.ns = "tf-system", .name = "tf-controller", .identity = pod},
//                         {.onStartedLeading = [&] { startControllers(); },
//                          .onStoppedLeading = [&] { exit(1); }});
//   elector.run(stop);   // blocks until stop, or until leadership is lost
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>

#include "k8s/client.h"
#include "k8s/clock.h"
#include "k8s/stop_signal.h"

namespace tf::k8s {

struct LeaseLock {
  std::string ns;
  std::string name;
  std::string identity;
  Duration leaseDuration = std::chrono::seconds(15);
  Duration renewDeadline = std::chrono::seconds(10);
  Duration retryPeriod = std::chrono::seconds(2);
  bool releaseOnStop = true;
};

struct LeaderCallbacks {
  std::function<void()> onStartedLeading;
  std::function<void()> onStoppedLeading;
  std::function<void(const std::string& identity)> onNewLeader;  // any observed change of holder
};

class LeaderElector {
public:
  LeaderElector(Client& client, LeaseLock lock, LeaderCallbacks callbacks, Clock& clock = Clock::real());

  // Acquires (waiting as long as needed), leads, and returns when leadership is lost or `stop`
  // is set. Returns true if it led at some point.
  bool run(StopSignal& stop);

  bool isLeader() const { return leader_.load(); }
  std::string observedHolder() const;

  // Test hook: while paused, a leader neither renews nor releases (as if it hung).
  void pauseRenewalsForTest(bool paused) { paused_ = paused; }

private:
  // One try to take or renew the lease; true when we hold it afterwards.
  bool tryAcquireOrRenew();
  void release();

  Client& client_;
  LeaseLock lock_;
  LeaderCallbacks callbacks_;
  Clock& clock_;
  std::atomic<bool> leader_{false};
  std::atomic<bool> paused_{false};
  mutable std::mutex mu_;
  nlohmann::json observedLease_;    // last lease read (for resourceVersion)
  std::string observedRecord_;      // holder + renewTime + duration, as last seen
  TimePoint observedTime_{};        // our clock when observedRecord_ last changed
  std::string observedHolder_;
};

}  // namespace tf::k8s
