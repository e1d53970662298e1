#include "k8s/leader_election.h"

#include "k8s/backoff.h"
#include "k8s/builtin.h"
#include "k8s/time_format.h"

#define TF_LOG_COMPONENT "k8s"
#include "common/log.h"

namespace tf::k8s {

using nlohmann::json;

namespace {
long seconds(Duration d) {
  return std::max<long>(1, static_cast<long>(std::chrono::duration_cast<std::chrono::seconds>(d).count()));
}
}  // namespace

LeaderElector::LeaderElector(Client& client, LeaseLock lock, LeaderCallbacks callbacks, Clock& clock)
    : client_(client), lock_(std::move(lock)), callbacks_(std::move(callbacks)), clock_(clock) {}

std::string LeaderElector::observedHolder() const {
  std::lock_guard<std::mutex> l(mu_);
  return observedHolder_;
}

bool LeaderElector::tryAcquireOrRenew() {
  TimePoint now = clock_.now();
  std::string wall = formatMicroTime(std::chrono::system_clock::now());
  auto got = client_.get(builtin::kLeases, lock_.ns, lock_.name);
  if (!got) {
    if (!got.error().isNotFound()) {
      TF_LOG(Warn, "leader election: reading lease %s/%s: %s", lock_.ns.c_str(), lock_.name.c_str(),
             got.error().toString().c_str());
      return false;
    }
    json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata", {{"name", lock_.name}, {"namespace", lock_.ns}}},
                  {"spec",
                   {{"holderIdentity", lock_.identity},
                    {"leaseDurationSeconds", seconds(lock_.leaseDuration)},
                    {"acquireTime", wall},
                    {"renewTime", wall},
                    {"leaseTransitions", 0}}}};
    auto created = client_.create(builtin::kLeases, lease);
    if (!created) return false;  // someone created it first (409) or the apiserver is away
    std::lock_guard<std::mutex> l(mu_);
    observedLease_ = *created;
    observedRecord_.clear();
    observedTime_ = now;
    observedHolder_ = lock_.identity;
    return true;
  }

  json lease = std::move(*got);
  json spec = lease.value("spec", json::object());
  std::string holder = spec.value("holderIdentity", "");
  long durationSecs = spec.value("leaseDurationSeconds", seconds(lock_.leaseDuration));
  std::string record = holder + "|" + spec.value("renewTime", "") + "|" + std::to_string(durationSecs);
  bool holderChanged = false;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (record != observedRecord_) {
      observedRecord_ = record;
      observedTime_ = now;  // OUR clock: when we saw this record appear
    }
    holderChanged = holder != observedHolder_;
    observedHolder_ = holder;
    observedLease_ = lease;
  }
  if (holderChanged && callbacks_.onNewLeader) callbacks_.onNewLeader(holder);

  if (!holder.empty() && holder != lock_.identity) {
    TimePoint observed;
    {
      std::lock_guard<std::mutex> l(mu_);
      observed = observedTime_;
    }
    if (now < observed + std::chrono::seconds(durationSecs)) return false;  // still held
  }

  // Ours to take (free or expired) or to renew.
  if (holder != lock_.identity) {
    spec["acquireTime"] = wall;
    spec["leaseTransitions"] = spec.value("leaseTransitions", 0) + (holder.empty() ? 0 : 1);
  }
  spec["holderIdentity"] = lock_.identity;
  spec["leaseDurationSeconds"] = seconds(lock_.leaseDuration);
  spec["renewTime"] = wall;
  lease["spec"] = spec;
  auto updated = client_.update(builtin::kLeases, lease);  // carries the resourceVersion we read
  if (!updated) {
    if (!updated.error().isConflict())
      TF_LOG(Warn, "leader election: writing lease: %s", updated.error().toString().c_str());
    return false;  // 409: another candidate wrote first
  }
  std::lock_guard<std::mutex> l(mu_);
  observedLease_ = *updated;
  observedHolder_ = lock_.identity;
  return true;
}

void LeaderElector::release() {
  json lease;
  {
    std::lock_guard<std::mutex> l(mu_);
    lease = observedLease_;
  }
  if (!lease.is_object() || lease.value("spec", json::object()).value("holderIdentity", "") != lock_.identity)
    return;
  std::string wall = formatMicroTime(std::chrono::system_clock::now());
  lease["spec"]["holderIdentity"] = "";
  lease["spec"]["leaseDurationSeconds"] = 1;
  lease["spec"]["renewTime"] = wall;
  lease["spec"]["acquireTime"] = wall;
  auto r = client_.update(builtin::kLeases, lease);
  if (!r) TF_LOG(Warn, "leader election: releasing lease: %s", r.error().toString().c_str());
}

bool LeaderElector::run(StopSignal& stop) {
  ExponentialBackoff jitter{lock_.retryPeriod, lock_.retryPeriod, 1.0, 0.2};
  while (!stop.stopped() && !tryAcquireOrRenew())
    if (stop.waitFor(jitter.delay(0))) return false;
  if (stop.stopped()) return false;

  leader_ = true;
  TF_LOG(Info, "leader election: %s leads %s/%s", lock_.identity.c_str(), lock_.ns.c_str(), lock_.name.c_str());
  if (callbacks_.onStartedLeading) callbacks_.onStartedLeading();
  TimePoint lastRenew = clock_.now();
  while (!stop.waitFor(lock_.retryPeriod)) {
    if (!paused_ && tryAcquireOrRenew()) {
      lastRenew = clock_.now();
      continue;
    }
    if (!paused_ && observedHolder() != lock_.identity) break;  // someone else holds it now
    if (clock_.now() - lastRenew >= lock_.renewDeadline) break;  // could not renew in time
  }
  leader_ = false;
  if (stop.stopped() && lock_.releaseOnStop && !paused_) release();
  TF_LOG(Info, "leader election: %s stopped leading", lock_.identity.c_str());
  if (callbacks_.onStoppedLeading) callbacks_.onStoppedLeading();
  return true;
}

}  // namespace tf::k8s
