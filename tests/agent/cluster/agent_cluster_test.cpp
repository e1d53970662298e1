// The agent end to end: a real kube-apiserver (its own control-plane-only cluster, brought up
// and down by the CTest fixture agent_cluster), the real portal in-process (TLS on loopback, a
// SQLite file), and the agent between them through a fault-injecting TCP proxy. After each
// event (initial sync, a change, an agent restart, a cut link, a slow link, a portal restart,
// commands) the portal must have converged on the cluster: its objects equal the cluster's,
// object by object with resourceVersions and bodies (a lost update leaves an old version or a
// missing object; a duplicate or reordered one an old version or a resurrected object), and
// every sequenced message the agent made was applied once (the portal's lastSeq is the
// agent's, nothing left in flight). A revoked agent is refused; a wrong pin gets nothing.
//
// TF_AGENT_E2E_CUT_SECONDS: how long the link stays cut (default 60, as in issue 14).
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <regex>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>

#include "agent/agent.h"
#include "agent/synced_kinds.h"
#include "hypervisor/hypervisor.h"
#include "k8s/api/well_known.h"
#include "k8s/api/v1/types.h"
#include "fault_proxy.h"
#include "k8s/base64.h"
#include "k8s/builtin.h"
#include "k8s/client.h"
#include "k8s/config.h"
#include "portal/portal.h"
#include "temp_dir.h"
#include "test_agent.h"

namespace tf::agent {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kAdminPassword = "agent test admin password";
constexpr const char* kNs = "tf-agent-e2e";       // workloads, connections and pods of the test
constexpr const char* kAgentNs = "tf-agent-sys";  // the agent's credential Secret
constexpr const char* kSecret = "tensor-fusion-agent";
const char* kTestLabel = "tf-agent-e2e";
// vGPU pods (never scheduled: the cluster has no nodes) go where the ServiceAccount exists.
constexpr const char* kPodNs = "default";

bool eventually(const std::function<bool()>& f, std::chrono::milliseconds limit = 30s) {
  const auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return f();
}

std::chrono::seconds cutDuration() {
  const char* v = std::getenv("TF_AGENT_E2E_CUT_SECONDS");
  return std::chrono::seconds(v && *v ? std::atoi(v) : 60);
}

long long msSince(Clock::time_point t0) {
  return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count());
}

// kind/ns/name -> {resourceVersion, body}
using Table = std::map<std::string, std::pair<std::string, json>>;

std::string describe(const Table& t) {
  std::string s;
  for (const auto& [k, v] : t) s += "  " + k + " @" + v.first + "\n";
  return s;
}

class AgentClusterTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    auto cfg = k8s::loadDefaultConfig();
    ASSERT_TRUE(cfg) << cfg.status().toString();
    auto c = k8s::Client::create(*cfg, k8s::ClientOptions{.qps = 200, .burst = 400});
    ASSERT_TRUE(c) << c.status().toString();
    client_ = std::move(*c);
    for (const char* ns : {kNs, kAgentNs}) {
      auto r = client_->create(k8s::builtin::kNamespaces, {{"metadata", {{"name", ns}}}});
      ASSERT_TRUE(r || r.error().isAlreadyExists()) << r.error().toString();
    }
  }
  static void TearDownTestSuite() { client_.reset(); }

  void SetUp() override {
    dir_ = portal::testing::freshTestDir("tf-agent-e2e-");
    cleanCluster();
    startPortal(0);
    auto r = console_.post("/api/v1/clusters", {{"agentId", "acme:e2e"}});
    ASSERT_EQ(r.status, 201) << r.body;
    clusterId_ = r.json()["cluster"]["id"];
    install_ = r.json()["installCommand"];
    proxy_ = std::make_unique<testing::FaultProxy>(portalPort_);
  }
  void TearDown() override {
    agent_.reset();
    proxy_.reset();
    portal_.reset();
    cleanCluster();
    std::filesystem::remove_all(dir_);
  }

  // Everything an earlier run (or test) may have left: our objects and the credential Secret.
  void cleanCluster() {
    k8s::ListOptions sel{.labelSelector = std::string("test=") + kTestLabel};
    for (const SyncedKind& k : syncedKinds()) {
      const char* ns = k.resource.kind == "Pod" ? kPodNs : k.resource.namespaced ? kNs : "";
      auto r = client_->removeCollection(k.resource, ns, sel);
      ASSERT_TRUE(r || r.error().isNotFound()) << k.resource.kind << ": " << r.error().toString();
    }
    auto s = client_->remove(k8s::builtin::kSecrets, kAgentNs, kSecret);
    ASSERT_TRUE(s || s.error().isNotFound()) << s.error().toString();
    ASSERT_TRUE(eventually([&] { return clusterTable().empty(); })) << describe(clusterTable());
  }

  void startPortal(int port) {
    portal::PortalOptions o;
    o.dataDir = dir_.string();
    o.adminPassword = kAdminPassword;
    o.server.port = port;
    auto p = portal::Portal::start(o);
    ASSERT_TRUE(p) << p.status().toString();
    portal_ = std::move(*p);
    portalPort_ = portal_->port();
    console_ = portal::testing::ConsoleClient(portalPort_);
    ASSERT_EQ(console_.login("admin", kAdminPassword).status, 200);
  }

  // The agent's options exactly as the portal's install command gives them (the Secret's
  // --from-literal pairs are the agent's environment), pointed at the proxy.
  AgentOptions optionsFromInstallCommand() {
    std::map<std::string, std::string> env;
    std::regex lit("--from-literal=([A-Z_]+)=(\\S+)");
    for (std::sregex_iterator it(install_.begin(), install_.end(), lit), end; it != end; ++it)
      env[(*it)[1]] = (*it)[2];
    EXPECT_EQ(env.size(), 4u) << install_;
    AgentOptions o;
    o.portalUrl = env["CLOUD_ENDPOINT"];
    o.agentId = env["AGENT_ID"];
    o.enrollToken = env["ENROLL_TOKEN"];
    o.portalPin = env["PORTAL_PIN"];
    EXPECT_EQ(o.portalUrl.rfind("wss://", 0), 0u) << o.portalUrl;
    EXPECT_EQ(o.portalUrl.substr(o.portalUrl.rfind(':')), ":" + std::to_string(portalPort_) + "/_ws") << o.portalUrl;
    o.portalUrl = "wss://127.0.0.1:" + std::to_string(proxy_->port()) + "/_ws";
    o.ns = kAgentNs;
    o.secretName = kSecret;
    o.reconnect.initial = 100ms;
    o.reconnect.max = 1s;
    return o;
  }

  void startAgent(const AgentOptions& o) {
    auto a = Agent::start(o, *client_);
    ASSERT_TRUE(a) << a.status().toString();
    agent_ = std::move(*a);
  }

  // The cluster as the agent should mirror it.
  static Table clusterTable() {
    Table t;
    for (const SyncedKind& k : syncedKinds()) {
      auto list = client_->listAll(k.resource, "", {.labelSelector = k.labelSelector});
      EXPECT_TRUE(list) << list.error().toString();
      if (!list) continue;
      for (auto& item : list->items) {
        auto o = toSyncedObject(k.resource, item);
        EXPECT_TRUE(o) << o.status().toString();
        if (o) t[o->kind + "/" + o->ns + "/" + o->name] = {o->resourceVersion, o->body};
      }
    }
    return t;
  }
  Table portalTable() {
    Table t;
    auto r = console_.get("/api/v1/clusters/" + std::to_string(clusterId_) + "/objects");
    if (r.status != 200) {
      ADD_FAILURE() << "GET objects: " << r.status << " " << r.body;
      return t;
    }
    // Held in a local: `for (auto& o : r.json()["objects"])` would iterate a reference into a
    // temporary destroyed before the loop runs (C++20 extends only the last temporary's life).
    const json reply = r.json();
    for (const auto& o : reply.at("objects"))
      t[o.at("kind").get<std::string>() + "/" + o.at("namespace").get<std::string>() + "/" +
        o.at("name").get<std::string>()] = {o.at("resourceVersion"), o.at("body")};
    return t;
  }
  // The portal holds exactly the cluster's objects, with the same versions and bodies.
  ::testing::AssertionResult inSync(std::chrono::milliseconds limit = 30s) {
    Table want, got;
    const bool ok = eventually(
        [&] {
          want = clusterTable();
          got = portalTable();
          return want == got;
        },
        limit);
    if (ok) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "cluster:\n" << describe(want) << "portal:\n" << describe(got);
  }

  // inSync(), and every sequenced message the agent made is applied and acked: the portal
  // holds the agent's epoch and last seq, the agent has nothing in flight or waiting.
  ::testing::AssertionResult converged(const char* after, std::chrono::milliseconds limit = 30s) {
    const auto t0 = Clock::now();
    if (auto r = inSync(limit); !r) return r << " (after " << after << ")";
    AgentStats st;
    json c;
    const bool settled = eventually(
        [&] {
          st = agent_->stats();
          c = cluster();
          return st.online && st.outboxDepth == 0 && st.pendingChanges == 0 && st.ackedSeq == st.lastSeq &&
                 c["epoch"] == std::to_string(st.epoch) && c["lastSeq"] == st.lastSeq;
        },
        limit);
    if (!settled)
      return ::testing::AssertionFailure() << "after " << after << ": agent epoch " << st.epoch << " lastSeq "
                                           << st.lastSeq << " acked " << st.ackedSeq << " outbox " << st.outboxDepth
                                           << " pending " << st.pendingChanges << "; portal " << c.dump();
    if (auto r = inSync(limit); !r) return r << " (after " << after << ", settled)";
    std::printf("converged after %s: %zu objects, epoch %llu, seq %llu (%lld ms)\n", after, clusterTable().size(),
                static_cast<unsigned long long>(st.epoch), static_cast<unsigned long long>(st.lastSeq), msSince(t0));
    return ::testing::AssertionSuccess();
  }
  json cluster() { return console_.get("/api/v1/clusters/" + std::to_string(clusterId_)).json(); }

  static json meta(const std::string& name, const std::string& ns = "") {
    json m{{"name", name}, {"labels", {{"test", kTestLabel}}}};
    if (!ns.empty()) m["namespace"] = ns;
    return m;
  }
  static json gpu(const std::string& name) {
    return {{"apiVersion", "tensor-fusion.ai/v1"}, {"kind", "GPU"}, {"metadata", meta(name)}};
  }
  static json pool(const std::string& name) {
    return {{"apiVersion", "tensor-fusion.ai/v1"},
            {"kind", "GPUPool"},
            {"metadata", meta(name)},
            {"spec",
             {{"nodeManagerConfig", {{"provisioningMode", "AutoSelect"}}},
              {"capacityConfig", {{"oversubscription", {{"tflopsOversellRatio", 200}}}}}}}};
  }
  static json workload(const std::string& name, int replicas) {
    return {{"apiVersion", "tensor-fusion.ai/v1"},
            {"kind", "TensorFusionWorkload"},
            {"metadata", meta(name, kNs)},
            {"spec", {{"replicas", replicas}, {"poolName", "pool-a"}}}};
  }
  static json workerPod(const std::string& name) {
    json m = meta(name, kPodNs);
    m["labels"]["tensor-fusion.ai/component"] = "worker";
    return {{"apiVersion", "v1"},
            {"kind", "Pod"},
            {"metadata", m},
            {"spec", {{"automountServiceAccountToken", false}, {"containers", {{{"name", "w"}, {"image", "localhost/none"}}}}}}};
  }
  template <typename R> static json created(R&& r) {
    EXPECT_TRUE(r) << r.error().toString();
    return r ? *r : json();
  }
  std::string rvOf(const std::string& key) {
    auto t = portalTable();
    auto it = t.find(key);
    return it == t.end() ? "" : it->second.first;
  }
  json command(const json& body) {
    auto r = console_.post("/api/v1/clusters/" + std::to_string(clusterId_) + "/commands", body);
    EXPECT_EQ(r.status, 201) << r.body;
    const std::string id = std::to_string(r.json()["id"].get<int64_t>());
    json c;
    EXPECT_TRUE(eventually([&] {
      c = console_.get("/api/v1/clusters/" + std::to_string(clusterId_) + "/commands/" + id).json();
      return c["state"] == "done" || c["state"] == "failed";
    })) << c.dump();
    return c;
  }

  static std::unique_ptr<k8s::Client> client_;
  std::filesystem::path dir_;
  std::unique_ptr<portal::Portal> portal_;
  int portalPort_ = 0;
  portal::testing::ConsoleClient console_{0};
  int64_t clusterId_ = 0;
  std::string install_;
  std::unique_ptr<testing::FaultProxy> proxy_;
  std::unique_ptr<Agent> agent_;
};
std::unique_ptr<k8s::Client> AgentClusterTest::client_;

namespace v1 = k8s::api::v1;

TEST_F(AgentClusterTest, MirrorsTheClusterThroughRestartsCutsAndDelays) {
  auto& c = *client_;
  created(c.create(v1::GpuPool::kResource, pool("pool-a")));
  created(c.create(v1::Gpu::kResource, gpu("gpu-a")));
  created(c.create(v1::Gpu::kResource, gpu("gpu-b")));
  created(c.create(v1::TensorFusionWorkload::kResource, workload("llm", 1)));
  created(c.create(k8s::builtin::kPods, workerPod("worker-0")));
  ASSERT_EQ(clusterTable().size(), 5u);
  const AgentOptions options = optionsFromInstallCommand();
  ASSERT_EQ(options.agentId, "acme:e2e");

  // Enrolment and the initial sync.
  startAgent(options);
  ASSERT_TRUE(converged("the initial sync"));
  auto secret = c.get(k8s::builtin::kSecrets, kAgentNs, kSecret);
  ASSERT_TRUE(secret) << secret.error().toString();
  auto cred = credentialFromSecret(*secret);
  ASSERT_TRUE(cred) << cred.status().toString();
  EXPECT_EQ(cred->agentId, "acme:e2e");
  EXPECT_TRUE(cred->enrolled);
  const uint64_t epoch = agent_->stats().epoch;

  // A change reaches the portal within 2 s.
  {
    const auto t0 = Clock::now();
    auto p = c.patch(v1::Gpu::kResource, "", "gpu-a", k8s::PatchType::Merge, {{"metadata", {{"labels", {{"x", "1"}}}}}});
    ASSERT_TRUE(p) << p.error().toString();
    const std::string rv = (*p)["metadata"]["resourceVersion"];
    ASSERT_TRUE(eventually([&] { return rvOf("GPU//gpu-a") == rv; }, 10s));
    const long long took = msSince(t0);
    EXPECT_LT(took, 2000) << "the change took " << took << " ms";
    std::printf("change visible in the portal after %lld ms\n", took);
    ASSERT_TRUE(converged("a change"));
  }

  // Agent restart, with changes while it is down: no second enrolment (no token given: it
  // would refuse to start if it needed one), a new epoch, a snapshot that drops what was deleted.
  agent_.reset();
  ASSERT_TRUE(c.remove(v1::Gpu::kResource, "", "gpu-b")) << "delete gpu-b";
  created(c.create(v1::Gpu::kResource, gpu("gpu-c")));
  AgentOptions restarted = options;
  restarted.enrollToken.clear();
  startAgent(restarted);
  ASSERT_TRUE(converged("an agent restart"));
  EXPECT_NE(agent_->stats().epoch, epoch);
  const uint64_t epoch2 = agent_->stats().epoch;
  auto tokens = console_.get("/api/v1/clusters/" + std::to_string(clusterId_) + "/tokens").json()["tokens"];
  ASSERT_EQ(tokens.size(), 1u);
  EXPECT_EQ(tokens[0]["state"], "used");

  // A cut link, changes while it is down (some objects changed many times, one created and
  // deleted), then restored: the agent resumes in its epoch and the portal converges.
  {
    const auto cut = cutDuration();
    const uint64_t sessionsBefore = agent_->stats().sessions;
    const auto t0 = Clock::now();
    proxy_->cut();
    ASSERT_TRUE(eventually([&] { return !agent_->stats().online && cluster()["online"] == false; }, 10s));
    const int acceptedBefore = proxy_->accepted();
    created(c.patch(v1::TensorFusionWorkload::kResource, kNs, "llm", k8s::PatchType::Merge, {{"spec", {{"replicas", 2}}}}));
    created(c.create(v1::Gpu::kResource, gpu("gpu-d")));
    ASSERT_TRUE(c.remove(v1::Gpu::kResource, "", "gpu-c"));
    ASSERT_TRUE(c.remove(k8s::builtin::kPods, kPodNs, "worker-0"));
    created(c.create(v1::Gpu::kResource, gpu("gpu-short-lived")));
    for (int i = 0; i < 20; ++i)
      created(c.patch(v1::Gpu::kResource, "", "gpu-a", k8s::PatchType::Merge,
                      {{"metadata", {{"labels", {{"x", "cut-" + std::to_string(i)}}}}}}));
    ASSERT_TRUE(c.remove(v1::Gpu::kResource, "", "gpu-short-lived"));
    EXPECT_NE(portalTable(), clusterTable()) << "the portal cannot have seen the changes";
    // The cut lasts its whole duration (the case is about its length); the agent keeps trying.
    const auto left = cut - (Clock::now() - t0);
    if (left > 0s) std::this_thread::sleep_for(left);
    EXPECT_EQ(proxy_->accepted(), acceptedBefore) << "nothing got through while cut";
    EXPECT_GT(agent_->stats().connectionsEnded, 2u) << "the agent kept retrying";
    proxy_->restore();
    const auto restored = Clock::now();
    ASSERT_TRUE(converged("a cut link"));
    std::printf("link cut for %lld ms; converged %lld ms after it came back\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(restored - t0).count()),
                msSince(restored));
    EXPECT_GT(agent_->stats().sessions, sessionsBefore);
    EXPECT_EQ(agent_->stats().epoch, epoch2) << "resumed, not restarted";
  }

  // A slow link: every chunk delayed, both ways.
  proxy_->setDelay(150ms);
  created(c.patch(v1::GpuPool::kResource, "", "pool-a", k8s::PatchType::Merge,
                  {{"spec", {{"capacityConfig", {{"oversubscription", {{"tflopsOversellRatio", 300}}}}}}}}));
  created(c.create(v1::Gpu::kResource, gpu("gpu-e")));
  for (int i = 0; i < 10; ++i)
    created(c.patch(v1::Gpu::kResource, "", "gpu-e", k8s::PatchType::Merge,
                    {{"metadata", {{"labels", {{"x", "slow-" + std::to_string(i)}}}}}}));
  ASSERT_TRUE(converged("a slow link"));
  EXPECT_EQ(agent_->stats().epoch, epoch2);
  proxy_->setDelay(0ms);

  // A portal restart (same data, same port), with a change while it is down.
  portal_.reset();
  ASSERT_TRUE(eventually([&] { return !agent_->stats().online; }, 10s));
  created(c.patch(v1::Gpu::kResource, "", "gpu-a", k8s::PatchType::Merge, {{"metadata", {{"labels", {{"x", "2"}}}}}}));
  startPortal(portalPort_);
  ASSERT_TRUE(converged("a portal restart"));
  EXPECT_EQ(agent_->stats().epoch, epoch2) << "the portal kept its state: a resume";
  EXPECT_EQ(agent_->stats().overflows, 0u);
}

TEST_F(AgentClusterTest, CommandsChangeTheClusterOnce) {
  auto& c = *client_;
  created(c.create(v1::GpuPool::kResource, pool("pool-a")));
  created(c.create(v1::Gpu::kResource, gpu("gpu-a")));
  created(c.create(v1::TensorFusionWorkload::kResource, workload("llm", 1)));
  startAgent(optionsFromInstallCommand());
  ASSERT_TRUE(converged("the initial sync"));

  auto r = command({{"verb", "scaleWorkload"}, {"args", {{"namespace", kNs}, {"name", "llm"}, {"replicas", 5}}}});
  EXPECT_EQ(r["state"], "done") << r.dump();
  EXPECT_EQ(created(c.get(v1::TensorFusionWorkload::kResource, kNs, "llm"))["spec"]["replicas"], 5);
  r = command({{"verb", "cordonGpu"}, {"args", {{"gpu", "gpu-a"}}}});
  EXPECT_EQ(r["state"], "done") << r.dump();
  EXPECT_EQ(created(c.get(v1::Gpu::kResource, "", "gpu-a"))["metadata"]["labels"]["tensor-fusion.ai/cordoned"], "true");
  ASSERT_TRUE(converged("cordonGpu"));
  EXPECT_EQ(portalTable().at("GPU//gpu-a").second["metadata"]["labels"]["tensor-fusion.ai/cordoned"], "true")
      << "the portal shows the cordon";
  const json spec = {{"capacityConfig", {{"oversubscription", {{"tflopsOversellRatio", 400}}}}}};
  r = command({{"verb", "applyPoolSpec"}, {"args", {{"pool", "pool-a"}, {"spec", spec}}}});
  EXPECT_EQ(r["state"], "done") << r.dump();
  EXPECT_EQ(created(c.get(v1::GpuPool::kResource, "", "pool-a"))["spec"]["capacityConfig"]["oversubscription"]["tflopsOversellRatio"], 400);
  // A GPU that does not exist: failed, with the apiserver's words.
  r = command({{"verb", "cordonGpu"}, {"args", {{"gpu", "no-such-gpu"}}}});
  EXPECT_EQ(r["state"], "failed") << r.dump();
  EXPECT_NE(r.dump().find("not found"), std::string::npos) << r.dump();
  // Queued while the agent is away: run once it is back (re-sent on the welcome).
  proxy_->cut();
  ASSERT_TRUE(eventually([&] { return !agent_->stats().online; }, 10s));
  auto q = console_.post("/api/v1/clusters/" + std::to_string(clusterId_) + "/commands",
                         {{"verb", "scaleWorkload"}, {"args", {{"namespace", kNs}, {"name", "llm"}, {"replicas", 2}}}});
  ASSERT_EQ(q.status, 201) << q.body;
  EXPECT_EQ(q.json()["state"], "queued");
  proxy_->restore();
  ASSERT_TRUE(eventually([&] {
    auto w = c.get(v1::TensorFusionWorkload::kResource, kNs, "llm");
    return w && (*w)["spec"]["replicas"] == 2;
  }));
  EXPECT_EQ(agent_->stats().commandsRun, 5) << "each command ran once";
  EXPECT_TRUE(converged("commands"));
}

// The lossy stream: the GPU's allocation (status.capacity vs available) reaches the portal's
// time series, read back through REST.
TEST_F(AgentClusterTest, UtilizationReachesThePortal) {
  auto& c = *client_;
  created(c.create(v1::Gpu::kResource, gpu("gpu-a")));
  const json status = {{"phase", "Running"},        {"vendor", "NVIDIA"},
                       {"uuid", "GPU-e2e-a"},       {"gpuModel", "H100"},
                       {"message", "test"},         {"nodeSelector", {{"kubernetes.io/hostname", "none"}}},
                       {"capacity", {{"tflops", "1000"}, {"vram", "80Gi"}}},
                       {"available", {{"tflops", "250"}, {"vram", "60Gi"}}}};
  created(c.patch(v1::Gpu::kResource, "", "gpu-a", k8s::PatchType::Merge, {{"status", status}},
                  {.subresource = "status"}));
  AgentOptions o = optionsFromInstallCommand();
  o.metricsInterval = 200ms;
  startAgent(o);
  ASSERT_TRUE(converged("the initial sync"));
  const std::string url = "/api/v1/clusters/" + std::to_string(clusterId_) + "/metrics?series=";
  json series;
  ASSERT_TRUE(eventually([&] {
    series = console_.get(url + "gpu.gpu-a.tflops").json()["series"];
    return series.is_object() && series.contains("gpu.gpu-a.tflops") && !series["gpu.gpu-a.tflops"].empty();
  }, 10s)) << series.dump();
  EXPECT_DOUBLE_EQ(series["gpu.gpu-a.tflops"][0][1].get<double>(), 0.75);
  series = console_.get(url + "gpu.gpu-a.vram").json()["series"];
  ASSERT_FALSE(series["gpu.gpu-a.vram"].empty()) << series.dump();
  EXPECT_DOUBLE_EQ(series["gpu.gpu-a.vram"][0][1].get<double>(), 0.25);
  EXPECT_GT(agent_->stats().metricsSent, 0u);
  EXPECT_EQ(agent_->stats().metricsDropped, 0u);
}

// Measured utilization: the agent finds the hypervisor pods (here one pod object whose status
// points at a real hypervisor running in this process on the soft GPU) and sends what their API
// reports, per device and per pod vGPU, as series the portal keeps.
TEST_F(AgentClusterTest, MeasuredUtilizationComesFromTheHypervisors) {
  setenv("TF_SOFTGPU_DEVICES", "H100", 1);
  setenv("TF_SOFTGPU_STATE_DIR", dir_.c_str(), 1);
  hypervisor::HypervisorOptions ho;
  ho.stateDir = (dir_ / "hv-state").string();
  ho.regionDir = (dir_ / "hv-regions").string();
  ho.tickMs = 50;
  hypervisor::Hypervisor hv(ho);
  ASSERT_TRUE(hv.start());
  auto& c = *client_;
  const json worker = created(c.create(k8s::builtin::kPods, workerPod("worker-u")));
  const std::string uid = worker["metadata"]["uid"];
  httplib::Client api("127.0.0.1", hv.port());
  auto made = api.Post("/api/v1/vgpus", json{{"name", k8s::api::podVgpuName(uid)}, {"vramLimit", "1GiB"}}.dump(),
                       "application/json");
  ASSERT_TRUE(made && made->status == 201) << (made ? made->body : "no answer");
  json hvPod = workerPod("hv-0");
  hvPod["metadata"]["labels"]["tensor-fusion.ai/component"] = "hypervisor";
  hvPod["spec"]["containers"][0]["ports"] = json::array({{{"name", "api"}, {"containerPort", hv.port()}}});
  created(c.create(k8s::builtin::kPods, hvPod));
  created(c.patch(k8s::builtin::kPods, kPodNs, "hv-0", k8s::PatchType::Merge,
                  {{"status", {{"phase", "Running"}, {"podIP", "127.0.0.1"}}}}, {.subresource = "status"}));
  auto uuid = json::parse(api.Get("/api/v1/devices")->body)["devices"][0]["uuid"].get<std::string>();
  std::transform(uuid.begin(), uuid.end(), uuid.begin(), [](unsigned char ch) { return std::tolower(ch); });

  AgentOptions o = optionsFromInstallCommand();
  o.metricsInterval = 200ms;
  startAgent(o);
  ASSERT_TRUE(converged("the initial sync"));
  const std::string url = "/api/v1/clusters/" + std::to_string(clusterId_) + "/metrics?series=";
  for (const std::string& s : {"vgpu." + std::string(kPodNs) + "/worker-u.compute", "vgpu." + std::string(kPodNs) + "/worker-u.vram",
                              "gpu." + uuid + ".utilization", "gpu." + uuid + ".memory"}) {
    json series;
    EXPECT_TRUE(eventually([&] {
      series = console_.get(url + s).json()["series"];
      return series.is_object() && series.contains(s) && !series[s].empty();
    }, 20s)) << s << ": " << series.dump();
  }
  EXPECT_GT(agent_->stats().hypervisorScrapes, 0u);
  agent_.reset();  // before the hypervisor goes
}

TEST_F(AgentClusterTest, ARevokedAgentIsCutOffAndStaysOut) {
  startAgent(optionsFromInstallCommand());
  ASSERT_TRUE(converged("the initial sync"));
  const auto t0 = Clock::now();
  auto r = console_.post("/api/v1/clusters/" + std::to_string(clusterId_) + "/agent/revoke");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(eventually([&] { return !agent_->stats().online; }, 5s));
  std::printf("revoked agent offline after %lld ms\n", msSince(t0));
  EXPECT_EQ(agent_->stats().lastCloseCode, 4403);
  // Its retries (at the longest delay, 1 s here) are refused with 4403 too, each at once (not
  // at the 10 s handshake deadline).
  const uint64_t ended = agent_->stats().connectionsEnded;
  ASSERT_TRUE(eventually([&] { return agent_->stats().connectionsEnded >= ended + 1; }, 8s))
      << "no refused retry within 8 s: " << agent_->stats().lastError;
  auto st = agent_->stats();
  EXPECT_FALSE(st.online);
  EXPECT_EQ(st.sessions, 1u);
  EXPECT_EQ(st.lastCloseCode, 4403) << st.lastError;
  EXPECT_EQ(console_.get("/api/v1/clusters/" + std::to_string(clusterId_)).json()["online"], false);
}

TEST_F(AgentClusterTest, AWrongPinGetsNoTokenAndNoSignature) {
  AgentOptions o = optionsFromInstallCommand();
  o.portalPin = "sha256:" + std::string(64, '0');
  startAgent(o);
  ASSERT_TRUE(eventually([&] { return agent_->stats().lastError.find("pin") != std::string::npos; }, 10s))
      << agent_->stats().lastError;
  EXPECT_EQ(agent_->stats().sessions, 0u);
  auto tokens = console_.get("/api/v1/clusters/" + std::to_string(clusterId_) + "/tokens").json()["tokens"];
  ASSERT_EQ(tokens.size(), 1u);
  EXPECT_EQ(tokens[0]["state"], "active") << "the token never reached the portal";
}

}  // namespace
}  // namespace tf::agent
