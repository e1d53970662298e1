#define TF_LOG_COMPONENT "controller"
#include "controller/reconcile_loop.h"

#include "common/log.h"
#include "controller/metrics.h"

namespace tf::controller {

ReconcileLoop::ReconcileLoop(std::string name, Fn fn, Metrics& metrics)
    : name_(std::move(name)), fn_(std::move(fn)), metrics_(metrics),
      queue_(k8s::ExponentialBackoff{std::chrono::milliseconds(100), std::chrono::seconds(60), 2.0, 0.1}) {}

ReconcileLoop::~ReconcileLoop() { stop(); }

void ReconcileLoop::start(int workers) {
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { work(); });
}

void ReconcileLoop::stop() {
  queue_.shutDown();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  workers_.clear();
}

void ReconcileLoop::work() {
  while (auto key = queue_.get()) {
    tf::Result<Outcome> r = [&]() -> tf::Result<Outcome> {
      try {
        return fn_(*key);
      } catch (const std::exception& e) {  // a bug in a reconciler must not end the loop
        return tf::internalError(std::string("reconcile threw: ") + e.what());
      }
    }();
    metrics_.reconciled(name_, r.isOk());
    if (!r.isOk()) {
      TF_LOG(Warn, "%s: reconcile %s failed (retry %d): %s", name_.c_str(), key->c_str(),
             queue_.numRequeues(*key) + 1, r.status().toString().c_str());
      queue_.addRateLimited(*key);
    } else {
      queue_.forget(*key);
      if (r->requeueAfter) queue_.addAfter(*key, *r->requeueAfter);
    }
    queue_.done(*key);
  }
}

}  // namespace tf::controller
