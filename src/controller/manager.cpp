#define TF_LOG_COMPONENT "controller"
#include "controller/manager.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstdio>
#include <memory>
#include <random>
#include <thread>

#include <httplib.h>

#include "common/log.h"
#include "controller/metrics.h"
#include "controller/reconcilers.h"
#include "k8s/builtin.h"
#include "k8s/config.h"
#include "k8s/leader_election.h"
#include "scheduler/service.h"

namespace tf::controller {
namespace v1 = k8s::api::v1;
using k8s::ObjectPtr;

namespace {

// Unique per process, as client-go's host_uuid: a replica restarted in the same pod must not
// mistake the lease its previous process held for its own.
std::string uniqueIdentity(std::string base) {
  if (base.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    base = host;
  }
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%08x", rd());
  return base + "_" + suffix;
}

scheduler::ServiceOptions extenderOptions(const ManagerOptions& o) {
  scheduler::ServiceOptions s;
  s.listenHost = o.extenderHost;
  s.listenPort = o.extenderPort;
  if (const char* pod = std::getenv("POD_NAME")) s.podName = pod;
  if (const char* ns = std::getenv("POD_NAMESPACE")) s.podNamespace = ns;
  return s;
}

// The informers and loops of one term of leadership.
class Controllers {
public:
  Controllers(k8s::Client& client, k8s::Client& schedulerClient, k8s::EventRecorder& events, const ManagerOptions& o,
              Metrics& metrics)
      : nodes_(k8s::makeListerWatcher(client, k8s::builtin::kNodes)),
        clusters_(k8s::makeListerWatcher(client, v1::TensorFusionCluster::kResource)),
        pools_(k8s::makeListerWatcher(client, v1::GpuPool::kResource)),
        gpuNodes_(k8s::makeListerWatcher(client, v1::GpuNode::kResource)),
        gpus_(k8s::makeListerWatcher(client, v1::Gpu::kResource)),
        workloads_(k8s::makeListerWatcher(client, v1::TensorFusionWorkload::kResource)),
        pods_(k8s::makeListerWatcher(client, k8s::builtin::kPods, "",
                                     {.labelSelector = k8s::api::kLabelWorkload})),
        connections_(k8s::makeListerWatcher(client, v1::TensorFusionConnection::kResource)),
        ctx_{client, events, nodes_, clusters_, pools_, gpuNodes_, gpus_, workloads_, pods_, connections_, o.settings},
        clusterR_(ctx_), poolR_(ctx_), nodeR_(ctx_), gpuNodeR_(ctx_), workloadR_(ctx_),
        connectionR_(ctx_, {.defaultImage = o.settings.workerImage, .port = k8s::api::kWorkerPort}),
        clusterLoop_("tensorfusioncluster", [this](const std::string& k) { return clusterR_.reconcile(k); }, metrics),
        poolLoop_("gpupool", [this](const std::string& k) { return poolR_.reconcile(k); }, metrics),
        nodeLoop_("node", [this](const std::string& k) { return nodeR_.reconcile(k); }, metrics),
        gpuNodeLoop_("gpunode", [this](const std::string& k) { return gpuNodeR_.reconcile(k); }, metrics),
        workloadLoop_("tensorfusionworkload", [this](const std::string& k) { return workloadR_.reconcile(k); },
                      metrics),
        connectionLoop_("tensorfusionconnection", [this](const std::string& k) { return connectionR_.reconcile(k); },
                        metrics),
        workers_(o.workers) {
    if (o.extenderPort >= 0) {
      scheduler_ = std::make_unique<scheduler::SchedulerService>(client, schedulerClient, events, extenderOptions(o));
      using Stats = scheduler::ExtenderStats;
      for (auto [verb, pick] : {std::pair{"filter", &Stats::filter}, {"prioritize", &Stats::prioritize}, {"bind", &Stats::bind}}) {
        const std::string label = std::string("verb=\"") + verb + "\"";
        auto* s = scheduler_.get();
        metrics.addCounter("tensor_fusion_extender_requests_total", label,
                           [s, pick] { return static_cast<double>((s->stats().*pick).calls); });
        metrics.addCounter("tensor_fusion_extender_refusals_total", label,
                           [s, pick] { return static_cast<double>((s->stats().*pick).refusals); });
        metrics.addCounter("tensor_fusion_extender_seconds_total", label,
                           [s, pick] { return (s->stats().*pick).seconds; });
      }
    }
    for (k8s::Informer* inf : {&pools_, &gpuNodes_, &gpus_})
      inf->addIndexer(kIndexManagedBy, k8s::labelIndexFunc(k8s::api::kLabelManagedBy));
    auto on = [](std::function<void(const nlohmann::json&)> f) {
      return k8s::ResourceEventHandlers{
          .onAdd = [f](const ObjectPtr& o) { f(*o); },
          .onUpdate = [f](const ObjectPtr& a, const ObjectPtr& b) { f(*a); f(*b); },
          .onDelete = [f](const ObjectPtr& o) { f(*o); }};
    };
    auto owner = [](const nlohmann::json& o) { return labelOf(o, k8s::api::kLabelManagedBy); };
    clusters_.addHandlers(on([this](const nlohmann::json& o) { clusterLoop_.add(nameOf(o)); }));
    pools_.addHandlers(on([this, owner](const nlohmann::json& o) {
      poolLoop_.add(nameOf(o));
      if (auto c = owner(o); !c.empty()) clusterLoop_.add(c);
      enqueueAll(nodes_, nodeLoop_);  // a selector may now take or release any node
    }));
    nodes_.addHandlers(k8s::ResourceEventHandlers{
        .onAdd = [this](const ObjectPtr& o) { nodeLoop_.add(nameOf(*o)); enqueueAll(pools_, poolLoop_); },
        .onUpdate =
            [this](const ObjectPtr& a, const ObjectPtr& b) {
              // Node status changes every few seconds; only labels and cordoning matter here.
              if ((*a)["metadata"].value("labels", nlohmann::json::object()) ==
                      (*b)["metadata"].value("labels", nlohmann::json::object()) &&
                  a->value("/spec/unschedulable"_json_pointer, false) == b->value("/spec/unschedulable"_json_pointer, false))
                return;
              nodeLoop_.add(nameOf(*b));
              enqueueAll(pools_, poolLoop_);
            },
        .onDelete = [this](const ObjectPtr& o) { nodeLoop_.add(nameOf(*o)); enqueueAll(pools_, poolLoop_); }});
    gpuNodes_.addHandlers(on([this, owner](const nlohmann::json& o) {
      gpuNodeLoop_.add(nameOf(o));
      nodeLoop_.add(nameOf(o));  // deleted by someone else: the node reconciler decides again
      if (auto p = owner(o); !p.empty()) poolLoop_.add(p);
    }));
    gpus_.addHandlers(on([this, owner](const nlohmann::json& o) {
      if (auto n = owner(o); !n.empty()) gpuNodeLoop_.add(n);
    }));
    pods_.addIndexer(kIndexWorkload, [](const nlohmann::json& p) {
      std::string k = workloadIndexKey(p);
      return k.empty() ? std::vector<std::string>{} : std::vector<std::string>{k};
    });
    pods_.addIndexer(kIndexConnection, connectionIndexKeys);
    workloads_.addHandlers(on([this](const nlohmann::json& o) { workloadLoop_.add(k8s::objectKey(o)); }));
    pods_.addHandlers(on([this](const nlohmann::json& o) {
      if (std::string k = workloadIndexKey(o); !k.empty()) workloadLoop_.add(k);
      for (const auto& k : connectionIndexKeys(o)) connectionLoop_.add(k);
    }));
    connections_.addHandlers(on([this](const nlohmann::json& o) { connectionLoop_.add(k8s::objectKey(o)); }));
    for (ReconcileLoop* loop : loops())
      metrics.addGauge("tensor_fusion_controller_queue_depth", "controller=\"" + loop->name() + "\"",
                       [loop] { return static_cast<double>(loop->depth()); });
    for (auto [kind, inf] : {std::pair{"Node", &nodes_}, {"GPUPool", &pools_}, {"GPUNode", &gpuNodes_}, {"GPU", &gpus_}})
      metrics.addGauge("tensor_fusion_controller_cache_objects", std::string("kind=\"") + kind + "\"",
                       [inf] { return static_cast<double>(inf->store().size()); });
  }

  // Caches first, then the loops: a reconciler never acts on a half-filled cache.
  bool start(k8s::StopSignal& stop) {
    for (k8s::Informer* inf : informers()) inf->start();
    for (k8s::Informer* inf : informers())
      while (!inf->waitForSync(std::chrono::seconds(1)))
        if (stop.stopped()) return false;
    for (ReconcileLoop* loop : loops()) loop->start(workers_);
    if (scheduler_ && !scheduler_->start(stop)) return false;
    synced_ = true;
    return true;
  }
  // Informers first: once they are joined no handler adds to a queue that is going away.
  void stop() {
    if (scheduler_) scheduler_->stop();
    for (k8s::Informer* inf : informers()) inf->stop();
    for (ReconcileLoop* loop : loops()) loop->stop();
  }
  bool synced() const { return synced_.load(); }

private:
  static void enqueueAll(const k8s::Informer& inf, ReconcileLoop& loop) {
    for (const auto& key : inf.store().keys()) loop.add(key);
  }
  std::vector<k8s::Informer*> informers() {
    return {&nodes_, &clusters_, &pools_, &gpuNodes_, &gpus_, &workloads_, &pods_, &connections_};
  }
  std::vector<ReconcileLoop*> loops() {
    return {&clusterLoop_, &poolLoop_, &nodeLoop_, &gpuNodeLoop_, &workloadLoop_, &connectionLoop_};
  }

  k8s::Informer nodes_, clusters_, pools_, gpuNodes_, gpus_, workloads_, pods_, connections_;
  Context ctx_;
  ClusterReconciler clusterR_;
  PoolReconciler poolR_;
  NodeReconciler nodeR_;
  GpuNodeReconciler gpuNodeR_;
  WorkloadReconciler workloadR_;
  ConnectionReconciler connectionR_;
  ReconcileLoop clusterLoop_, poolLoop_, nodeLoop_, gpuNodeLoop_, workloadLoop_, connectionLoop_;
  int workers_;
  std::unique_ptr<scheduler::SchedulerService> scheduler_;
  std::atomic<bool> synced_{false};
};

// http://<cluster IP>:<port "http"> of the controller's Service, or nothing.
std::string serviceEndpoint(k8s::Client& client, const std::string& ns, const std::string& name) {
  auto svc = client.get(k8s::builtin::kServices, ns, name);
  if (!svc) {
    TF_LOG(Warn, "Service %s/%s: %s", ns.c_str(), name.c_str(), svc.error().message.c_str());
    return {};
  }
  const std::string ip = svc->value("/spec/clusterIP"_json_pointer, std::string());
  if (ip.empty() || ip == "None") return {};
  int port = 0;
  for (const auto& p : svc->value("/spec/ports"_json_pointer, nlohmann::json::array()))
    if (port == 0 || p.value("name", "") == "http") port = p.value("port", 0);
  return port ? "http://" + ip + ":" + std::to_string(port) : std::string();
}

}  // namespace

int runManager(const ManagerOptions& o, k8s::StopSignal& stop) {
  auto config = o.kubeconfig.empty() ? k8s::loadDefaultConfig() : k8s::loadKubeconfigFiles({o.kubeconfig});
  if (!config) {
    std::fprintf(stderr, "tensor-fusion controller: %s\n", config.status().toString().c_str());
    return 1;
  }
  auto client = k8s::Client::create(*config);
  if (!client) {
    std::fprintf(stderr, "tensor-fusion controller: %s\n", client.status().toString().c_str());
    return 1;
  }
  // The extender's writes on kube-scheduler's behalf (gpu-ids, binding: two per bound pod) get
  // their own token bucket, as the webhook's reads do below.
  auto schedulerClient = k8s::Client::create(*config, {.qps = 500, .burst = 1000});
  if (!schedulerClient) {
    std::fprintf(stderr, "tensor-fusion controller: %s\n", schedulerClient.status().toString().c_str());
    return 1;
  }
  const std::string identity = uniqueIdentity(o.identity);
  // A replica that led before this process (same pod) may have left the extender's label: until
  // it is gone the extender's Service would send kube-scheduler here, where nothing answers.
  // Cleared before anything else (the apiserver may be coming back itself).
  if (o.extenderPort >= 0)
    while (!scheduler::clearLeaderLabel(**client, extenderOptions(o)))
      if (stop.waitFor(std::chrono::seconds(1))) return 0;
  k8s::EventRecorder events(**client, "tensor-fusion-controller", identity);
  Metrics metrics;
  std::atomic<bool> leading{false};
  std::unique_ptr<Controllers> controllers;
  std::mutex controllersMu;

  httplib::Server http;
  http.set_tcp_nodelay(true);  // as the extender's: no delayed-ACK wait on multi-write answers
  http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  http.Get("/readyz", [&](const httplib::Request&, httplib::Response& res) {
    // A standby is ready (it is where it should be); a leader once its caches are filled.
    std::lock_guard lock(controllersMu);
    const bool ready = !leading.load() || (controllers && controllers->synced());
    res.status = ready ? 200 : 503;
    res.set_content(ready ? (leading ? "ok: leading\n" : "ok: standby\n") : "caches not synced\n", "text/plain");
  });
  http.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics.render(), "text/plain; version=0.0.4");
  });
  // Remote clients long-poll /api/connection: each holds a thread for up to minutes.
  http.new_task_queue = [] { return new httplib::ThreadPool(64); };
  ConnectionApi connectionApi(**client, o.connectionApi);
  connectionApi.registerOn(http);
  connectionApi.start();
  int port = o.listenPort;
  if (port == 0) port = http.bind_to_any_port(o.listenHost);
  else if (!http.bind_to_port(o.listenHost, port)) port = -1;
  if (port < 0) {
    std::fprintf(stderr, "tensor-fusion controller: cannot listen on %s:%d\n", o.listenHost.c_str(), o.listenPort);
    return 1;
  }
  std::printf("tensor-fusion controller: %s serving health and metrics on %s:%d\n", identity.c_str(),
              o.listenHost.c_str(), port);
  std::fflush(stdout);
  std::thread httpThread([&] { http.listen_after_bind(); });
  std::unique_ptr<webhook::WebhookServer> admission;
  // The webhook's own client and token bucket: a burst of pod creations (three reads each)
  // neither waits on the reconcilers' budget nor starves it.
  auto webhookClient = k8s::Client::create(*config, {.qps = 500, .burst = 1000});
  if (o.webhook) {
    if (!webhookClient) {
      std::fprintf(stderr, "tensor-fusion controller: webhook: %s\n", webhookClient.status().toString().c_str());
      connectionApi.stop();
      http.stop();
      httpThread.join();
      return 1;
    }
    webhook::WebhookOptions wh = *o.webhook;
    if (!o.operatorEndpoint.empty()) wh.patch.operatorEndpoint = o.operatorEndpoint;
    else if (std::string e = serviceEndpoint(**client, o.leaseNamespace, o.controllerService); !e.empty())
      wh.patch.operatorEndpoint = e;
    std::printf("tensor-fusion controller: remote clients ask %s%s\n", wh.patch.operatorEndpoint.c_str(),
                k8s::api::kConnectionApiPath);
    admission = std::make_unique<webhook::WebhookServer>(**webhookClient, wh);
    if (Status s = admission->start(); !s) {
      std::fprintf(stderr, "tensor-fusion controller: webhook: %s\n", s.toString().c_str());
      connectionApi.stop();
      http.stop();
      httpThread.join();
      return 1;
    }
    const webhook::Admitter& admitter = admission->admitter();
    metrics.addCounter("tensor_fusion_webhook_admissions_total", "view=\"cache\"",
                       [&admitter] { return static_cast<double>(admitter.cachedViews()); });
    metrics.addCounter("tensor_fusion_webhook_admissions_total", "view=\"apiserver\"",
                       [&admitter] { return static_cast<double>(admitter.liveViews()); });
    std::printf("tensor-fusion controller: webhook serving https on %s:%d\n", o.webhook->listenHost.c_str(),
                admission->port());
    std::fflush(stdout);
  }

  auto lead = [&] {
    leading = true;
    metrics.setLeader(true);
    TF_LOG(Info, "%s leads", identity.c_str());
    std::printf("tensor-fusion controller: %s leads\n", identity.c_str());
    std::fflush(stdout);
    std::lock_guard lock(controllersMu);
    controllers = std::make_unique<Controllers>(**client, **schedulerClient, events, o, metrics);
  };
  int rc = 0;
  if (o.leaderElect) {
    k8s::LeaseLock lock;
    lock.ns = o.leaseNamespace;
    lock.name = o.leaseName;
    lock.identity = identity;
    lock.leaseDuration = o.leaseDuration;
    lock.renewDeadline = o.leaseDuration * 2 / 3;
    lock.retryPeriod = o.leaseDuration / 7;
    k8s::StopSignal termStop;  // ends this term: leadership lost or the process asked to stop
    std::thread relay([&] {
      while (!stop.waitFor(std::chrono::milliseconds(200)))
        if (termStop.stopped()) return;
      termStop.stop();
    });
    std::thread starter;  // fills the caches off the elector's thread, so renewals go on
    k8s::LeaderElector elector(**client, lock,
                               {.onStartedLeading =
                                    [&] {
                                      lead();
                                      starter = std::thread([&] { controllers->start(termStop); });
                                    },
                                .onStoppedLeading = [&] { termStop.stop(); }});
    const bool led = elector.run(termStop);
    termStop.stop();
    relay.join();
    if (starter.joinable()) starter.join();
    // Leadership lost while we were not asked to stop: end, as a fresh standby will start.
    if (led && !stop.stopped()) {
      std::fprintf(stderr, "tensor-fusion controller: %s lost the lease; exiting\n", identity.c_str());
      rc = 1;
    }
  } else {
    lead();
    controllers->start(stop);
    while (!stop.waitFor(std::chrono::seconds(1))) {}
  }
  {
    std::lock_guard lock(controllersMu);
    if (controllers) controllers->stop();
    controllers.reset();
  }
  metrics.setLeader(false);
  if (admission) admission->stop();
  connectionApi.stop();
  http.stop();
  httpThread.join();
  return rc;
}

}  // namespace tf::controller
