#include "k8s/informer.h"

#include <unordered_set>

#define TF_LOG_COMPONENT "k8s"
#include "common/log.h"

namespace tf::k8s {
namespace {

class ClientListerWatcher : public ListerWatcher {
public:
  ClientListerWatcher(Client& client, ResourceRef ref, std::string ns, ListWatchOptions o)
      : client_(client), ref_(std::move(ref)), ns_(std::move(ns)), o_(std::move(o)) {}

  ApiResult<ObjectList> list() override {
    ListOptions lo;
    lo.labelSelector = o_.labelSelector;
    lo.fieldSelector = o_.fieldSelector;
    lo.limit = o_.pageSize;
    return client_.listAll(ref_, ns_, lo);
  }
  ApiStatus watch(const WatchOptions& options, const std::function<bool(const WatchEvent&)>& onEvent,
                  StopSignal* stop) override {
    WatchOptions wo = options;
    wo.labelSelector = o_.labelSelector;
    wo.fieldSelector = o_.fieldSelector;
    return client_.watch(ref_, ns_, wo, onEvent, stop);
  }

private:
  Client& client_;
  ResourceRef ref_;
  std::string ns_;
  ListWatchOptions o_;
};

std::string rvOf(const nlohmann::json& o) {
  auto md = o.find("metadata");
  if (md == o.end()) return {};
  return md->value("resourceVersion", "");
}

}  // namespace

std::unique_ptr<ListerWatcher> makeListerWatcher(Client& client, const ResourceRef& ref, std::string ns,
                                                 ListWatchOptions options) {
  return std::make_unique<ClientListerWatcher>(client, ref, std::move(ns), std::move(options));
}

Informer::Informer(std::unique_ptr<ListerWatcher> lw, InformerOptions options)
    : lw_(std::move(lw)), options_(options) {}

Informer::~Informer() { stop(); }

void Informer::addHandlers(ResourceEventHandlers handlers) { handlers_.push_back(std::move(handlers)); }

void Informer::start() {
  thread_ = std::thread([this] { run(); });
  if (options_.resyncPeriod > Duration::zero()) resyncThread_ = std::thread([this] { resyncLoop(); });
}

void Informer::stop() {
  stop_.stop();
  {
    std::lock_guard<std::mutex> lock(mu_);
    syncedCv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  if (resyncThread_.joinable()) resyncThread_.join();
}

bool Informer::waitForSync(Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return syncedCv_.wait_for(lock, timeout, [&] { return synced_.load() || stop_.stopped(); }) && synced_.load();
}

std::string Informer::lastResourceVersion() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rv_;
}

void Informer::replace(std::vector<nlohmann::json>& items) {
  std::lock_guard<std::mutex> dispatch(dispatchMu_);
  std::unordered_set<std::string> seen;
  for (auto& item : items) {
    auto obj = std::make_shared<const nlohmann::json>(std::move(item));
    seen.insert(objectKey(*obj));
    ObjectPtr old = store_.upsert(obj);
    for (auto& h : handlers_) {
      if (!old) {
        if (h.onAdd) h.onAdd(obj);
      } else if (rvOf(*old) != rvOf(*obj) && h.onUpdate) {
        h.onUpdate(old, obj);
      }
    }
  }
  // What vanished while we were not watching is deleted now.
  for (const auto& key : store_.keys()) {
    if (seen.count(key)) continue;
    ObjectPtr old = store_.remove(key);
    for (auto& h : handlers_)
      if (old && h.onDelete) h.onDelete(old);
  }
}

bool Informer::handle(const WatchEvent& ev) {
  std::string rv = ev.resourceVersion();
  if (ev.type != WatchEventType::Bookmark) {
    std::lock_guard<std::mutex> dispatch(dispatchMu_);
    auto obj = std::make_shared<const nlohmann::json>(ev.object);
    if (ev.type == WatchEventType::Deleted) {
      ObjectPtr old = store_.remove(objectKey(*obj));
      for (auto& h : handlers_)
        if (h.onDelete) h.onDelete(obj);
    } else {
      ObjectPtr old = store_.upsert(obj);
      for (auto& h : handlers_) {
        if (old && h.onUpdate) h.onUpdate(old, obj);
        if (!old && h.onAdd) h.onAdd(obj);
      }
    }
  }
  if (!rv.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    rv_ = rv;
  }
  return !stop_.stopped();
}

void Informer::run() {
  bool needList = true;
  int failures = 0;
  while (!stop_.stopped()) {
    if (needList) {
      auto list = lw_->list();
      if (!list) {
        TF_LOG(Warn, "informer: list failed: %s", list.error().toString().c_str());
        if (stop_.waitFor(options_.backoff.delay(failures++))) return;
        continue;
      }
      lists_++;
      replace(list->items);
      {
        std::lock_guard<std::mutex> lock(mu_);
        rv_ = list->resourceVersion;
        synced_ = true;
        syncedCv_.notify_all();
      }
      needList = false;
      failures = 0;
    }
    WatchOptions wo;
    wo.resourceVersion = lastResourceVersion();
    wo.timeoutSeconds = options_.watchTimeoutSeconds;
    wo.allowBookmarks = true;
    auto st = lw_->watch(wo, [this](const WatchEvent& ev) { return handle(ev); }, &stop_);
    if (stop_.stopped()) return;
    if (st) {
      failures = 0;  // the server closed a healthy watch: continue from the last version
      continue;
    }
    watchFailures_++;
    if (st.error().isGone()) {
      TF_LOG(Info, "informer: resourceVersion %s expired; re-listing", lastResourceVersion().c_str());
      needList = true;
      continue;
    }
    TF_LOG(Warn, "informer: watch failed: %s", st.error().toString().c_str());
    if (stop_.waitFor(options_.backoff.delay(failures++))) return;
  }
}

void Informer::resyncLoop() {
  while (!stop_.waitFor(options_.resyncPeriod)) {
    if (!synced_) continue;
    std::lock_guard<std::mutex> dispatch(dispatchMu_);
    for (const auto& obj : store_.list())
      for (auto& h : handlers_)
        if (h.onUpdate) h.onUpdate(obj, obj);
  }
}

}  // namespace tf::k8s
