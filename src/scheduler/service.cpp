#define TF_LOG_COMPONENT "scheduler"
#include "scheduler/service.h"

#include <httplib.h>

#include <set>

#include "common/log.h"
#include "allocator/expansion.h"
#include "k8s/api/v1/types.h"
#include "k8s/api/well_known.h"
#include "k8s/builtin.h"
#include "k8s/store.h"

namespace tf::scheduler {
namespace api = k8s::api;
namespace v1 = k8s::api::v1;
using k8s::ObjectPtr;

namespace {

std::string str(const nlohmann::json& j, const nlohmann::json::json_pointer& p) {
  return j.contains(p) && j.at(p).is_string() ? j.at(p).get<std::string>() : std::string();
}

Status fromApi(const k8s::ApiError& e) {
  return {e.code == 404 ? Code::NotFound : Code::Unavailable,
          (e.reason.empty() ? "" : e.reason + ": ") + e.message};
}

k8s::ResourceEventHandlers handlers(std::mutex& mu, std::function<void(const nlohmann::json&)> upsert,
                                    std::function<void(const nlohmann::json&)> remove) {
  return {.onAdd = [&mu, upsert](const ObjectPtr& o) { std::lock_guard l(mu); upsert(*o); },
          .onUpdate = [&mu, upsert](const ObjectPtr&, const ObjectPtr& o) { std::lock_guard l(mu); upsert(*o); },
          .onDelete = [&mu, remove](const ObjectPtr& o) { std::lock_guard l(mu); remove(*o); }};
}

}  // namespace

// ClusterOps on the apiserver; pods read from the worker-pod informer's cache when there.
class SchedulerService::KubeOps : public ClusterOps {
public:
  KubeOps(k8s::Client& client, k8s::EventRecorder& events, k8s::Informer& pods)
      : client_(client), events_(events), pods_(pods) {}

  Result<nlohmann::json> getPod(const std::string& ns, const std::string& name) override {
    if (ObjectPtr p = pods_.store().get(k8s::objectKey(ns, name))) return *p;
    auto r = client_.get(k8s::builtin::kPods, ns, name);
    if (!r) return fromApi(r.error());
    return *r;
  }
  Result<nlohmann::json> readPod(const std::string& ns, const std::string& name) override {
    auto r = client_.get(k8s::builtin::kPods, ns, name);
    if (!r) return fromApi(r.error());
    return *r;
  }
  Status bindPod(const std::string& ns, const std::string& name, const std::string& uid, const std::string& node,
                 const std::map<std::string, std::string>& annotations) override {
    nlohmann::json ann = nlohmann::json::object();
    for (const auto& [k, v] : annotations) ann[k] = v;
    // The apiserver copies a Binding's annotations onto the pod in the same write as the node.
    nlohmann::json binding = {{"apiVersion", "v1"},
                              {"kind", "Binding"},
                              {"metadata", {{"name", name}, {"namespace", ns}, {"uid", uid}, {"annotations", ann}}},
                              {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node}}}};
    auto r = client_.createSubresource(k8s::builtin::kPods, ns, name, "binding", binding);
    return r ? Status::ok() : fromApi(r.error());
  }
  Status deletePod(const std::string& ns, const std::string& name, const std::string& uid) override {
    k8s::DeleteOptions o;
    o.preconditionUid = uid;
    auto r = client_.remove(k8s::builtin::kPods, ns, name, o);
    return r || r.error().isNotFound() ? Status::ok() : fromApi(r.error());
  }
  void podEvent(const nlohmann::json& pod, bool warning, const std::string& reason,
                const std::string& message) override {
    // kube-scheduler sends the pod without its TypeMeta (Go's typed objects omit it).
    nlohmann::json about = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", pod.value("metadata", nlohmann::json::object())}};
    auto r = events_.event(about, warning ? k8s::EventType::Warning : k8s::EventType::Normal, reason, message);
    if (!r) TF_LOG(Warn, "event %s: %s", reason.c_str(), r.error().message.c_str());
  }

private:
  k8s::Client& client_;
  k8s::EventRecorder& events_;
  k8s::Informer& pods_;
};

SchedulerService::SchedulerService(k8s::Client& client, k8s::Client& bindClient, k8s::EventRecorder& events,
                                   ServiceOptions options)
    : client_(client),
      options_(std::move(options)),
      ops_(std::make_unique<KubeOps>(bindClient, events, pods_)),
      extender_(ledger_, *ops_, options_.extender),
      pods_(k8s::makeListerWatcher(client, k8s::builtin::kPods, "",
                                   {.labelSelector = std::string(api::kLabelComponent) + "=" + api::kComponentWorker})),
      gpus_(k8s::makeListerWatcher(client, v1::Gpu::kResource)),
      quotas_(k8s::makeListerWatcher(client, v1::GpuResourceQuota::kResource)),
      pools_(k8s::makeListerWatcher(client, v1::GpuPool::kResource)),
      templates_(k8s::makeListerWatcher(client, v1::SchedulingConfigTemplate::kResource)),
      gpuNodes_(k8s::makeListerWatcher(client, v1::GpuNode::kResource)),
      events_(events) {
  wireInformers();
}

SchedulerService::~SchedulerService() { stop(); }

void SchedulerService::wireInformers() {
  gpus_.addHandlers(handlers(
      feedMu_,
      [this](const nlohmann::json& o) {
        if (auto g = allocator::gpuFromObject(o)) ledger_.upsertGpu(*g);
        else TF_LOG(Warn, "GPU %s: %s", str(o, "/metadata/name"_json_pointer).c_str(), g.status().message().c_str());
      },
      [this](const nlohmann::json& o) { ledger_.removeGpu(str(o, "/metadata/name"_json_pointer)); }));
  pods_.addHandlers(handlers(
      feedMu_,
      [this](const nlohmann::json& o) {
        const std::string uid = str(o, "/metadata/uid"_json_pointer);
        if (allocator::isTerminal(o)) {
          if (ledger_.release(uid)) nudge_ = true;
          return;
        }
        auto r = allocator::requestFromPod(o);
        if (r && !r->gpuIds.empty()) ledger_.observe(*r, str(o, "/spec/nodeName"_json_pointer));
      },
      [this](const nlohmann::json& o) {
        if (ledger_.release(str(o, "/metadata/uid"_json_pointer))) nudge_ = true;
      }));
  quotas_.addHandlers(handlers(
      feedMu_,
      [this](const nlohmann::json& o) {
        if (auto q = allocator::quotaFromObject(o)) ledger_.setQuota(*q);
        else TF_LOG(Warn, "GPUResourceQuota: %s", q.status().message().c_str());
      },
      [this](const nlohmann::json& o) {
        ledger_.removeQuota(str(o, "/metadata/namespace"_json_pointer), str(o, "/metadata/name"_json_pointer));
      }));
  // A pool's placement mode and VRAM tiers live in its SchedulingConfigTemplate: recompute
  // every pool when either changes (both are few). An expansion the pool asks for but cannot
  // have is said once, as a Warning Event on the pool.
  auto pools = [this](const nlohmann::json&) {
    for (const ObjectPtr& p : pools_.store().list()) {
      allocator::PoolReading r = poolReading(*p);
      ledger_.setPool(str(*p, "/metadata/name"_json_pointer), r.config);
      expansionIgnored(*p, v1::GpuPool::kResource.apiVersion(), "GPUPool", r.warning);
    }
  };
  pools_.addHandlers(handlers(feedMu_, pools, [this, pools](const nlohmann::json& o) {
    ledger_.removePool(str(o, "/metadata/name"_json_pointer));
    pools(o);
  }));
  templates_.addHandlers(handlers(feedMu_, pools, pools));
  // The nodes' host memory and disk (the node registrar's facts), the base of the expansion.
  gpuNodes_.addHandlers(handlers(
      feedMu_,
      [this](const nlohmann::json& o) {
        const std::string node = str(o, "/metadata/name"_json_pointer);
        auto h = allocator::hostFactsOf(o);
        ledger_.setNodeHost(node, h ? *h : allocator::HostFacts{});
        // Said when its pool expands VRAM (with tiers) and the node's facts do not allow it.
        std::string why = h ? "" : h.status().message();
        const std::string pool = str(o, nlohmann::json::json_pointer("/metadata/labels/tensor-fusion.ai~1managed-by"));
        if (ObjectPtr p = h && !pool.empty() ? pools_.store().get(k8s::objectKey("", pool)) : nullptr)
          if (allocator::PoolConfig c = poolReading(*p).config; c.expandsVram())
            if (auto lent = allocator::nodeVramLent(c.vramExpansion, *h); !lent) why = lent.status().message();
        expansionIgnored(o, v1::GpuNode::kResource.apiVersion(), "GPUNode", why);
      },
      [this](const nlohmann::json& o) { ledger_.removeNodeHost(str(o, "/metadata/name"_json_pointer)); }));
}

allocator::PoolReading SchedulerService::poolReading(const nlohmann::json& pool) const {
  const std::string tpl = str(pool, "/spec/schedulingConfigTemplate"_json_pointer);
  ObjectPtr t = tpl.empty() ? nullptr : templates_.store().get(k8s::objectKey("", tpl));
  return allocator::poolConfigOf(pool, t.get());
}

void SchedulerService::expansionIgnored(const nlohmann::json& o, const std::string& apiVersion, const char* kind,
                                        const std::string& why) {
  const std::string name = str(o, "/metadata/name"_json_pointer);
  std::string& said = expansionWarnings_[std::string(kind) + "/" + name];
  if (why == said) return;
  said = why;
  if (why.empty()) return;
  TF_LOG(Warn, "%s %s: %s", kind, name.c_str(), why.c_str());
  nlohmann::json about = o;
  about["apiVersion"] = apiVersion;
  about["kind"] = kind;
  if (auto e = events_.event(about, k8s::EventType::Warning, "VramExpansionIgnored", why); !e)
    TF_LOG(Warn, "event VramExpansionIgnored: %s", e.error().message.c_str());
}

ExtenderStats SchedulerService::stats() const {
  const auto read = [](const VerbCounters& c) {
    return VerbStats{c.calls.load(std::memory_order_relaxed), c.refusals.load(std::memory_order_relaxed),
                     c.nanos.load(std::memory_order_relaxed) / 1e9};
  };
  return {read(filterStats_), read(prioritizeStats_), read(bindStats_)};
}

void SchedulerService::rebuild() {
  std::lock_guard lock(feedMu_);
  std::vector<allocator::Gpu> gpus;
  for (const ObjectPtr& o : gpus_.store().list())
    if (auto g = allocator::gpuFromObject(*o)) gpus.push_back(std::move(*g));
  std::vector<allocator::Request> pods;
  for (const ObjectPtr& o : pods_.store().list()) {
    if (allocator::isTerminal(*o)) continue;
    auto r = allocator::requestFromPod(*o);
    if (!r) {
      TF_LOG(Warn, "pod %s: %s", k8s::objectKey(*o).c_str(), r.status().message().c_str());
      continue;
    }
    if (!r->gpuIds.empty()) pods.push_back(std::move(*r));
  }
  ledger_.rebuild(gpus, pods);
  TF_LOG(Info, "ledger rebuilt: %zu GPUs, %zu allocations", gpus.size(), pods.size());
}

bool SchedulerService::start(k8s::StopSignal& stop) {
  for (k8s::Informer* inf : {&pods_, &gpus_, &quotas_, &pools_, &templates_, &gpuNodes_}) inf->start();
  for (k8s::Informer* inf : {&pods_, &gpus_, &quotas_, &pools_, &templates_, &gpuNodes_})
    while (!inf->waitForSync(std::chrono::seconds(1)))
      if (stop.stopped()) return false;
  rebuild();
  http_ = std::make_unique<httplib::Server>();
  // Answers go out in more than one write (headers, body): without TCP_NODELAY each waited on
  // kube-scheduler's delayed ACK, about 40 ms per pod in its one scheduling cycle, which held
  // ours to a quarter of the default scheduler's rate (bench/scheduler/pods_bench.sh).
  http_->set_tcp_nodelay(true);
  http_->new_task_queue = [] { return new httplib::ThreadPool(32); };  // binds wait for gangs
  const auto route = [this](Reply (Extender::*verb)(const std::string&), VerbCounters& stats) {
    return [this, verb, &stats](const httplib::Request& req, httplib::Response& res) {
      const auto start = std::chrono::steady_clock::now();
      Reply r = (extender_.*verb)(req.body);
      res.status = r.status;
      res.set_content(std::move(r.body), "application/json");
      stats.calls.fetch_add(1, std::memory_order_relaxed);
      if (r.refused || r.status != 200) stats.refusals.fetch_add(1, std::memory_order_relaxed);
      stats.nanos.fetch_add(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                      std::chrono::steady_clock::now() - start)
                                                      .count()),
                            std::memory_order_relaxed);
    };
  };
  http_->Post("/filter", route(&Extender::filter, filterStats_));
  http_->Post("/prioritize", route(&Extender::prioritize, prioritizeStats_));
  http_->Post("/bind", route(&Extender::bind, bindStats_));
  http_->Get("/debug/allocations", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(ledger_.dump().dump(1), "application/json");
  });
  http_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  port_ = options_.listenPort == 0 ? http_->bind_to_any_port(options_.listenHost)
                                   : (http_->bind_to_port(options_.listenHost, options_.listenPort) ? options_.listenPort : -1);
  if (port_ < 0) {
    TF_LOG(Error, "extender: cannot listen on %s:%d", options_.listenHost.c_str(), options_.listenPort);
    return false;
  }
  httpThread_ = std::thread([this] { http_->listen_after_bind(); });
  statusThread_ = std::thread([this] {
    // The pending pods are retried twice, once the Service has had time to route to us.
    const auto start = std::chrono::steady_clock::now();
    int retries = 0;
    while (!statusStop_.waitFor(options_.statusInterval)) {
      writeStatuses();
      const auto since = std::chrono::steady_clock::now() - start;
      if ((retries == 0 && since > std::chrono::seconds(3)) || (retries == 1 && since > std::chrono::seconds(10))) {
        retryPendingPods();
        ++retries;
      } else if (nudge_.exchange(false)) {
        retryPendingPods();  // GPUs were freed: kube-scheduler may have retried before we saw it
      }
    }
  });
  extender_.setReady(true);
  ready_ = true;
  setLeaderLabel(true);
  std::printf("tensor-fusion controller: scheduler extender serving on %s:%d\n", options_.listenHost.c_str(), port_);
  std::fflush(stdout);
  return true;
}

void SchedulerService::writeStatuses() {
  std::vector<std::string> dirty = ledger_.takeDirty();
  std::set<std::string>& retry = statusRetry_;  // failed last time, tried again
  retry.insert(dirty.begin(), dirty.end());
  std::set<std::string> failed;
  for (const auto& name : retry) {
    auto st = ledger_.gpuStatus(name);
    if (!st) continue;  // deleted meanwhile
    // A new leader marks every GPU: write only those whose status says otherwise.
    if (ObjectPtr cached = gpus_.store().get(k8s::objectKey("", name))) {
      const auto& cur = cached->value("status", nlohmann::json::object());
      if (cur.value("available", nlohmann::json()) == (*st)["available"] &&
          cur.value("runningApps", nlohmann::json::array()) == (*st)["runningApps"])
        continue;
    }
    k8s::PatchOptions po;
    po.subresource = "status";
    auto r = client_.patch(v1::Gpu::kResource, "", name, k8s::PatchType::Merge, {{"status", *st}}, po);
    if (!r && !r.error().isNotFound()) {
      failed.insert(name);
      TF_LOG(Warn, "GPU %s status: %s", name.c_str(), r.error().message.c_str());
    }
  }
  retry = std::move(failed);
}

void SchedulerService::setLeaderLabel(bool on) {
  if (options_.podName.empty() || options_.podNamespace.empty()) return;
  nlohmann::json value = on ? nlohmann::json("true") : nlohmann::json(nullptr);
  auto r = client_.patch(k8s::builtin::kPods, options_.podNamespace, options_.podName, k8s::PatchType::Merge,
                         {{"metadata", {{"labels", {{kLeaderLabel, value}}}}}});
  if (!r) TF_LOG(Warn, "labelling pod %s: %s", options_.podName.c_str(), r.error().message.c_str());
}

void SchedulerService::retryPendingPods() {
  const std::string stamp = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                               allocator::Clock::now().time_since_epoch()).count());
  for (const ObjectPtr& p : pods_.store().list()) {
    if (str(*p, "/spec/schedulerName"_json_pointer) != api::kSchedulerName ||
        !str(*p, "/spec/nodeName"_json_pointer).empty() || !str(*p, "/metadata/deletionTimestamp"_json_pointer).empty())
      continue;
    auto r = client_.patch(k8s::builtin::kPods, str(*p, "/metadata/namespace"_json_pointer),
                           str(*p, "/metadata/name"_json_pointer), k8s::PatchType::Merge,
                           {{"metadata", {{"annotations", {{kRetryAnnotation, stamp}}}}}});
    if (!r && !r.error().isNotFound()) TF_LOG(Warn, "retrying %s: %s", k8s::objectKey(*p).c_str(), r.error().message.c_str());
  }
}

void SchedulerService::stop() {
  if (ready_.exchange(false)) setLeaderLabel(false);
  extender_.setReady(false);
  statusStop_.stop();
  if (statusThread_.joinable()) statusThread_.join();
  if (http_) http_->stop();
  if (httpThread_.joinable()) httpThread_.join();
  for (k8s::Informer* inf : {&pods_, &gpus_, &quotas_, &pools_, &templates_, &gpuNodes_}) inf->stop();
}

bool clearLeaderLabel(k8s::Client& client, const ServiceOptions& options) {
  if (options.podName.empty() || options.podNamespace.empty()) return true;
  auto r = client.patch(k8s::builtin::kPods, options.podNamespace, options.podName, k8s::PatchType::Merge,
                        {{"metadata", {{"labels", {{kLeaderLabel, nullptr}}}}}});
  if (!r && !r.error().isNotFound()) {
    TF_LOG(Warn, "clearing %s: %s", kLeaderLabel, r.error().message.c_str());
    return false;
  }
  return true;
}

}  // namespace tf::scheduler
