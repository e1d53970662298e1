// An informer: list, then watch from the list's resourceVersion, into a Store, calling
// handlers for add / update (old and new) / delete. Re-lists when the watch expires (HTTP 410
// or an in-band ERROR 410), re-watches from the last resourceVersion when the server ends a
// watch, and survives an apiserver restart by reconnecting with exponential back-off.
// Handlers run one at a time on the informer's thread (resync too), never concurrently.
//
//   Informer pods(makeListerWatcher(client, builtin::kPods, "default"));
//   pods.addHandlers({.onAdd = [](const ObjectPtr& p) { queue.add(objectKey(*p)); }});
//   pods.addIndexer(kNamespaceIndex, namespaceIndexFunc());
//   pods.start();
//   pods.waitForSync(std::chrono::seconds(10));
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "k8s/backoff.h"
#include "k8s/client.h"
#include "k8s/stop_signal.h"
#include "k8s/store.h"

namespace tf::k8s {

// The seam between the informer and the apiserver (tests give a scripted one).
class ListerWatcher {
public:
  virtual ~ListerWatcher() = default;
  virtual ApiResult<ObjectList> list() = 0;  // every page
  virtual ApiStatus watch(const WatchOptions& options,
                          const std::function<bool(const WatchEvent&)>& onEvent, StopSignal* stop) = 0;
};

struct ListWatchOptions {
  std::string labelSelector;
  std::string fieldSelector;
  int pageSize = 500;
};
std::unique_ptr<ListerWatcher> makeListerWatcher(Client& client, const ResourceRef& ref,
                                                 std::string ns = {}, ListWatchOptions options = {});

struct ResourceEventHandlers {
  std::function<void(const ObjectPtr&)> onAdd;
  std::function<void(const ObjectPtr& oldObject, const ObjectPtr& newObject)> onUpdate;
  std::function<void(const ObjectPtr&)> onDelete;  // the last state known
};

struct InformerOptions {
  Duration resyncPeriod = Duration::zero();  // > 0: onUpdate(o, o) for every cached object
  int watchTimeoutSeconds = 300;
  ExponentialBackoff backoff{std::chrono::milliseconds(200), std::chrono::seconds(30), 2.0, 0.2};
};

class Informer {
public:
  explicit Informer(std::unique_ptr<ListerWatcher> lw, InformerOptions options = {});
  ~Informer();  // stops

  // Before start().
  void addHandlers(ResourceEventHandlers handlers);
  void addIndexer(const std::string& name, IndexFunc func) { store_.addIndexer(name, std::move(func)); }

  void start();
  void stop();  // ends the watch at once and joins

  const Store& store() const { return store_; }
  bool hasSynced() const { return synced_.load(); }
  // True once the first list is in the store; false on timeout or stop.
  bool waitForSync(Duration timeout);
  std::string lastResourceVersion() const;

  // Counters for tests and metrics.
  int lists() const { return lists_.load(); }
  int watchFailures() const { return watchFailures_.load(); }

private:
  void run();
  void replace(std::vector<nlohmann::json>& items);
  bool handle(const WatchEvent& ev);
  void resyncLoop();

  std::unique_ptr<ListerWatcher> lw_;
  InformerOptions options_;
  Store store_;
  std::vector<ResourceEventHandlers> handlers_;
  std::mutex dispatchMu_;  // one handler call at a time
  StopSignal stop_;
  std::thread thread_, resyncThread_;
  std::atomic<bool> synced_{false};
  std::atomic<int> lists_{0}, watchFailures_{0};
  mutable std::mutex mu_;
  std::condition_variable syncedCv_;
  std::string rv_;
};

}  // namespace tf::k8s
