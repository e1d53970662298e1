// One reconciler's loop: a deduplicating work queue of keys and worker threads that call the
// reconcile function, as controller-runtime does. A failed reconcile is retried with the
// key's exponential back-off; a successful one may ask to be called again after a delay
// (time-based state such as a heartbeat going stale).
//
//   ReconcileLoop loop("gpupool", [&](const std::string& key) { return pools.reconcile(key); }, metrics);
//   loop.start(2);
//   informer.addHandlers({.onAdd = [&](auto& o) { loop.add(k8s::objectKey(*o)); }});
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "k8s/work_queue.h"

namespace tf::controller {

class Metrics;

struct Outcome {
  std::optional<k8s::Duration> requeueAfter;
  static Outcome done() { return {}; }
  static Outcome after(k8s::Duration d) { return {d}; }
};

class ReconcileLoop {
public:
  using Fn = std::function<tf::Result<Outcome>(const std::string& key)>;

  ReconcileLoop(std::string name, Fn fn, Metrics& metrics);
  ~ReconcileLoop();

  void add(const std::string& key) { queue_.add(key); }
  void start(int workers);
  void stop();  // shuts the queue down and joins the workers

  const std::string& name() const { return name_; }
  size_t depth() const { return queue_.len(); }

private:
  void work();

  std::string name_;
  Fn fn_;
  Metrics& metrics_;
  k8s::WorkQueue queue_;
  std::vector<std::thread> workers_;
};

}  // namespace tf::controller
