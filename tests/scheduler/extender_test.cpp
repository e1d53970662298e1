#include <gtest/gtest.h>

#include <thread>

#include "allocator/expansion.h"
#include "allocator/fixtures.h"
#include "scheduler/extender.h"

namespace tf::scheduler {
namespace {
using allocator::testing::gpu;
using allocator::testing::pod;
using Ann = std::map<std::string, std::string>;

// The cluster as the extender sees it: pods by ns/name; what was done to them.
class FakeOps : public ClusterOps {
public:
  std::map<std::string, nlohmann::json> pods;
  std::vector<std::string> bound, deleted, events;
  Status failBind;
  bool bindAppliesAnyway = false;  // the failure is a lost answer: the write happened

  void add(const nlohmann::json& p) {
    std::lock_guard l(mu);
    pods[p["metadata"]["namespace"].get<std::string>() + "/" + p["metadata"]["name"].get<std::string>()] = p;
  }
  Result<nlohmann::json> getPod(const std::string& ns, const std::string& name) override {
    std::lock_guard l(mu);
    auto it = pods.find(ns + "/" + name);
    if (it == pods.end()) return notFound("pods \"" + name + "\" not found");
    return it->second;
  }
  Result<nlohmann::json> readPod(const std::string& ns, const std::string& name) override { return getPod(ns, name); }
  // As the apiserver: the node and the binding's annotations in one write, or nothing.
  Status bindPod(const std::string& ns, const std::string& name, const std::string&, const std::string& node,
                 const std::map<std::string, std::string>& a) override {
    std::lock_guard l(mu);
    if (!failBind && !bindAppliesAnyway) return failBind;
    nlohmann::json& p = pods[ns + "/" + name];
    for (const auto& [k, v] : a) p["metadata"]["annotations"][k] = v;
    p["spec"]["nodeName"] = node;
    bound.push_back(ns + "/" + name + "@" + node);
    return failBind;
  }
  Status deletePod(const std::string& ns, const std::string& name, const std::string&) override {
    std::lock_guard l(mu);
    deleted.push_back(ns + "/" + name);
    return Status::ok();
  }
  void podEvent(const nlohmann::json&, bool, const std::string& reason, const std::string& message) override {
    std::lock_guard l(mu);
    events.push_back(reason + ": " + message);
  }
  std::string annotation(const std::string& key, const std::string& name, const std::string& ns = "default") {
    std::lock_guard l(mu);
    return pods[ns + "/" + name]["metadata"]["annotations"].value("tensor-fusion.ai/" + key, "");
  }
  std::mutex mu;
};

std::string args(const nlohmann::json& p, std::vector<std::string> nodes) {
  return nlohmann::json{{"Pod", p}, {"Nodes", nullptr}, {"NodeNames", nodes}}.dump();
}
std::string binding(const nlohmann::json& p, const std::string& node) {
  return nlohmann::json{{"PodName", p["metadata"]["name"]}, {"PodNamespace", p["metadata"]["namespace"]},
                        {"PodUID", p["metadata"]["uid"]}, {"Node", node}}
      .dump();
}

struct ExtenderTest : ::testing::Test {
  allocator::Allocator ledger;
  FakeOps ops;
  Extender ext{ledger, ops};
  void SetUp() override {
    ledger.upsertGpu(gpu("g1", "n1", 100, 40));
    ledger.upsertGpu(gpu("g2", "n2", 100, 40));
    ext.setReady(true);
  }
  nlohmann::json make(const std::string& name, Ann ann) {
    auto p = pod(name, std::move(ann));
    ops.add(p);
    return p;
  }
};

TEST_F(ExtenderTest, FilterPrioritizeBindRecordsGpuIds) {
  auto p = make("p", {{"tflops-request", "60"}, {"vram-request", "1Gi"}});
  ASSERT_TRUE(ledger.assume(allocator::testing::request("other", {{"tflops-request", "50"}}), "n2"));
  Reply f = ext.filter(args(p, {"n1", "n2", "n3"}));
  EXPECT_EQ(f.status, 200);
  EXPECT_EQ(f.json()["NodeNames"], nlohmann::json({"n1"}));
  EXPECT_EQ(f.json()["FailedNodes"]["n2"], "insufficient GPU capacity: the pod requests 60 TFLOPS, 1Gi VRAM per GPU");
  EXPECT_EQ(f.json()["FailedNodes"]["n3"], "node has no TensorFusion GPU");
  EXPECT_EQ(f.json()["Error"], "");
  Reply pr = ext.prioritize(args(p, {"n1", "n2"}));
  EXPECT_EQ(pr.json(), nlohmann::json::parse(R"([{"Host":"n1","Score":0},{"Host":"n2","Score":0}])"));
  Reply b = ext.bind(binding(p, "n1"));
  EXPECT_EQ(b.json(), nlohmann::json::parse(R"({"Error":""})"));
  EXPECT_EQ(ops.annotation("gpu-ids", "p"), "g1");
  EXPECT_EQ(ops.bound, std::vector<std::string>{"default/p@n1"});
  EXPECT_TRUE(ledger.allocation("uid-p")->committed);
  // Now n1 is 60% used: prioritize shows it (NodeCompactGPULowLoad: node = compact score).
  auto q = make("q", {{"tflops-request", "10"}});
  Reply pq = ext.prioritize(args(q, {"n1"}));
  // n1: tu = 60, vu = 2.5 → round(1.75 + 18) = 20 → 2 of 10.
  EXPECT_EQ(pq.json()[0]["Score"], 2);
}

// A pool that expands VRAM with tiers (as the service reads GPUPools, templates and GPUNodes):
// two hard pods of a tiered QoS whose VRAM adds past the GPU's 40 GiB are both bound on it, a
// third past the expanded 56 GiB is refused naming VRAM, and the score counts the allowance.
TEST_F(ExtenderTest, APoolsVramExpansionLetsTieredHardPodsPastTheGpusMemory) {
  allocator::Gpu g = gpu("g1", "n1", 100, 40);
  g.isolationModes = {"hard"};
  ledger.upsertGpu(g);
  const nlohmann::json pool = {{"metadata", {{"name", "pool-a"}}},
                               {"spec", {{"capacityConfig", {{"oversubscription", {{"vramExpandToHostMem", 50},
                                                                                   {"vramExpandToHostDisk", 0}}}}}}}};
  const nlohmann::json tpl = {{"spec", {{"hypervisor", {{"autoFreezeAndResume", {{"autoFreeze", {{{"qos", "low"},
                                                                                              {"freezeToMemTTL", "30s"}}}}}}}}}}};
  ledger.setPool("pool-a", allocator::poolConfigOf(pool, &tpl).config);
  ledger.setNodeHost("n1", *allocator::hostFactsOf({{"status", {{"nodeInfo", {{"ramSize", "32Gi"}}}}}}));
  const Ann hard = {{"isolation", "hard"}, {"qos", "low"}, {"vram-request", "25Gi"}, {"tflops-request", "1"}};
  const int idle = ext.prioritize(args(make("probe", hard), {"n1"})).json()[0]["Score"];
  for (const char* name : {"a", "b"}) {
    auto p = make(name, hard);
    ASSERT_EQ(ext.filter(args(p, {"n1"})).json()["NodeNames"], nlohmann::json({"n1"})) << name;
    ASSERT_EQ(ext.bind(binding(p, "n1")).json()["Error"], "") << name;
  }
  EXPECT_EQ(ops.bound, (std::vector<std::string>{"default/a@n1", "default/b@n1"}));
  Ann small = hard;
  small["vram-request"] = "7Gi";
  Reply f = ext.filter(args(make("c", small), {"n1"}));
  EXPECT_EQ(f.json()["FailedNodes"]["n1"], "insufficient GPU capacity: the pod requests 1 TFLOPS, 7Gi VRAM per GPU");
  small["vram-request"] = "6Gi";
  EXPECT_EQ(ext.filter(args(make("d", small), {"n1"})).json()["NodeNames"], nlohmann::json({"n1"}));
  // Compact placement: 50 GiB of 56 booked scores higher than nothing booked.
  EXPECT_GT(ext.prioritize(args(make("e", small), {"n1"})).json()[0]["Score"].get<int>(), idle);
}

TEST_F(ExtenderTest, PrioritizeReusesFilterOnlyWhileTheLedgerIsUnchanged) {
  auto q = make("q", {{"tflops-request", "10"}});
  ext.filter(args(q, {"n1"}));
  EXPECT_EQ(ext.prioritize(args(q, {"n1"})).json()[0]["Score"], 0);  // n1 idle: compact score 0
  ASSERT_TRUE(ledger.assume(allocator::testing::request("big", {{"tflops-request", "50"}, {"vram-request", "20Gi"}}), "n1"));
  EXPECT_EQ(ext.prioritize(args(q, {"n1"})).json()[0]["Score"], 5);  // half used: the cache is stale
}

TEST_F(ExtenderTest, ScoreMapping) {
  EXPECT_EQ(extenderScore(0), 0);
  EXPECT_EQ(extenderScore(4), 0);
  EXPECT_EQ(extenderScore(5), 1);
  EXPECT_EQ(extenderScore(64), 6);
  EXPECT_EQ(extenderScore(65), 7);
  EXPECT_EQ(extenderScore(100), 10);
}

TEST_F(ExtenderTest, NotOursPassesUntouched) {
  auto p = pod("plain", {});
  p["metadata"]["labels"].erase("tensor-fusion.ai/component");
  Reply f = ext.filter(args(p, {"n1", "n9"}));
  EXPECT_EQ(f.json()["NodeNames"], nlohmann::json({"n1", "n9"}));
  EXPECT_TRUE(f.json()["FailedNodes"].empty());
}

TEST_F(ExtenderTest, NotReadyIsAnError) {
  ext.setReady(false);
  auto p = make("p", {{"tflops-request", "1"}});
  EXPECT_NE(ext.filter(args(p, {"n1"})).json()["Error"].get<std::string>().find("not ready"), std::string::npos);
  EXPECT_NE(ext.bind(binding(p, "n1")).json()["Error"].get<std::string>().find("not ready"), std::string::npos);
  EXPECT_TRUE(ops.bound.empty());
}

TEST_F(ExtenderTest, BadAnnotationsFailEveryNodeWithTheReason) {
  auto p = make("p", {{"gpu-count", "many"}});
  Reply f = ext.filter(args(p, {"n1", "n2"}));
  EXPECT_EQ(f.json()["NodeNames"], nlohmann::json::array());
  EXPECT_EQ(f.json()["FailedNodes"]["n1"], "tensor-fusion.ai/gpu-count: \"many\" is not an integer");
  EXPECT_EQ(f.json()["FailedNodes"]["n2"], f.json()["FailedNodes"]["n1"]);
}

TEST_F(ExtenderTest, MalformedRequestsAre400WithTheReason) {
  Reply f = ext.filter("{");
  EXPECT_EQ(f.status, 400);
  EXPECT_EQ(f.json()["Error"], "ExtenderArgs: the body is not JSON");
  Reply p = ext.prioritize(R"({"Pod":{}})");
  EXPECT_EQ(p.status, 400);
  Reply b = ext.bind(R"({"PodName":"p"})");
  EXPECT_EQ(b.status, 400);
  EXPECT_EQ(b.json()["Error"], "ExtenderBindingArgs: PodNamespace is missing");
  Reply gone = ext.bind(R"({"PodName":"ghost","PodNamespace":"default","Node":"n1"})");
  EXPECT_EQ(gone.status, 200);
  EXPECT_EQ(gone.json()["Error"], "pod default/ghost: pods \"ghost\" not found");
}

// gpu-ids travels on the binding: bound and recorded in one write, or neither.
TEST_F(ExtenderTest, BindFailuresRollBackUnlessTheBindingHappened) {
  auto p = make("p", {{"tflops-request", "60"}});
  ops.failBind = unavailable("apiserver down");
  Reply b = ext.bind(binding(p, "n1"));
  EXPECT_EQ(b.json()["Error"], "pod default/p: binding to n1: apiserver down");
  EXPECT_TRUE(b.refused);
  EXPECT_FALSE(ledger.allocation("uid-p"));  // rolled back: nothing was written
  EXPECT_EQ(ledger.available("g1")->milliTflops, 100000);
  EXPECT_EQ(ops.annotation("gpu-ids", "p"), "");
  // The write happened but its answer was lost: the apiserver's pod is bound as asked.
  ops.bindAppliesAnyway = true;
  b = ext.bind(binding(p, "n1"));
  EXPECT_EQ(b.json()["Error"], "");
  EXPECT_TRUE(ledger.allocation("uid-p")->committed);
  EXPECT_EQ(ledger.available("g1")->milliTflops, 40000);
  EXPECT_EQ(ops.annotation("gpu-ids", "p"), "g1");
  // A record an earlier version wrote before binding: bound on those GPUs, nothing booked twice.
  ops.bindAppliesAnyway = false;
  ops.failBind = Status::ok();
  auto q = make("q", {{"tflops-request", "30"}, {"gpu-ids", "g2"}});
  ledger.observe(allocator::requestFromPod(q).value(), "n2");
  b = ext.bind(binding(q, "n2"));
  EXPECT_EQ(b.json()["Error"], "");
  EXPECT_EQ(ledger.available("g2")->milliTflops, 70000);
  EXPECT_EQ(ops.bound.back(), "default/q@n2");
  // It cannot move: the record pins it.
  EXPECT_EQ(ext.filter(args(ops.getPod("default", "q").value(), {"n1", "n2"})).json()["NodeNames"], nlohmann::json({"n2"}));
}

TEST_F(ExtenderTest, BindRechecksCapacity) {
  auto a = make("a", {{"tflops-request", "60"}});
  auto b = make("b", {{"tflops-request", "60"}});
  // Both passed filter for n1 before either bound; only one may have it.
  EXPECT_EQ(ext.filter(args(a, {"n1"})).json()["NodeNames"], nlohmann::json({"n1"}));
  EXPECT_EQ(ext.filter(args(b, {"n1"})).json()["NodeNames"], nlohmann::json({"n1"}));
  EXPECT_EQ(ext.bind(binding(a, "n1")).json()["Error"], "");
  EXPECT_NE(ext.bind(binding(b, "n1")).json()["Error"].get<std::string>().find("insufficient GPU capacity"),
            std::string::npos);
  EXPECT_EQ(ops.annotation("gpu-ids", "b"), "");
}

TEST_F(ExtenderTest, QuotaRefusalNamesTheQuota) {
  allocator::Quota q;
  q.ns = "default";
  q.name = "two";
  q.maxWorkers = 0;
  ledger.setQuota(q);
  auto p = make("p", {{"tflops-request", "1"}});
  Reply f = ext.filter(args(p, {"n1"}));
  EXPECT_EQ(f.json()["FailedNodes"]["n1"], "GPUResourceQuota default/two: total.maxWorkers is 0 and 0 workers are placed");
}

TEST_F(ExtenderTest, HardIsolationGetsEffectiveSmPercent) {
  allocator::Gpu hard = gpu("g1", "n1", 100, 40);
  hard.isolationMode = "hard";
  ledger.upsertGpu(hard);
  auto p = make("p", {{"tflops-request", "10"}, {"tflops-limit", "33.3"}, {"isolation", "hard"}});
  ASSERT_EQ(ext.bind(binding(p, "n1")).json()["Error"], "");
  EXPECT_EQ(ops.annotation("effective-hard-sm-percent", "p"), "34");  // ceil(33.3 / 100 × 100)
  auto s = make("s", {{"tflops-request", "10"}, {"tflops-limit", "20"}});  // soft: no SM percent
  ASSERT_EQ(ext.bind(binding(s, "n2")).json()["Error"], "");
  EXPECT_EQ(ops.annotation("gpu-ids", "s"), "g2");
  EXPECT_EQ(ops.annotation("effective-hard-sm-percent", "s"), "");
}

TEST_F(ExtenderTest, HighQosPreemptsByDeletingVictimsOnce) {
  auto low = make("low", {{"tflops-request", "80"}, {"qos", "low"}});
  auto low2 = make("low2", {{"tflops-request", "80"}, {"qos", "low"}, {"eviction-protection", "87600h"}});
  ASSERT_EQ(ext.bind(binding(low, "n1")).json()["Error"], "");
  ASSERT_EQ(ext.bind(binding(low2, "n2")).json()["Error"], "");
  auto hi = make("hi", {{"tflops-request", "50"}, {"qos", "high"}});
  Reply f = ext.filter(args(hi, {"n1", "n2"}));
  EXPECT_EQ(f.json()["NodeNames"], nlohmann::json::array());
  EXPECT_EQ(f.json()["FailedNodes"]["n1"], "preempting 1 lower-QoS pod(s) on node n1");
  EXPECT_EQ(ops.deleted, std::vector<std::string>{"default/low"});  // low2 is protected
  ASSERT_EQ(ops.events.size(), 1u);
  EXPECT_EQ(ops.events[0], "Preempting: preempting default/low (low) on node n1 for this high-QoS pod");
  // A retry while the victim terminates deletes nothing more.
  f = ext.filter(args(hi, {"n1", "n2"}));
  EXPECT_EQ(f.json()["FailedNodes"]["n1"], "waiting for 1 preempted pod(s) to release their GPUs");
  EXPECT_EQ(ops.deleted.size(), 1u);
  ledger.release("uid-low");  // the informer saw it go
  // What low freed is reserved for hi: a pod that would fit the freed GPU does not get it.
  auto rival = make("rival", {{"tflops-request", "60"}, {"qos", "medium"}});
  EXPECT_EQ(ext.filter(args(rival, {"n1"})).json()["NodeNames"], nlohmann::json::array());
  f = ext.filter(args(hi, {"n1", "n2"}));
  EXPECT_EQ(f.json()["NodeNames"], nlohmann::json({"n1"}));
  EXPECT_EQ(ext.bind(binding(hi, "n1")).json()["Error"], "");
  EXPECT_TRUE(ledger.allocation("uid-hi")->committed);
  EXPECT_EQ(ledger.available("g1")->milliTflops, 50000);
  // Medium QoS never preempts.
  auto med = make("med", {{"tflops-request", "90"}, {"qos", "medium"}});
  ext.filter(args(med, {"n2"}));
  EXPECT_EQ(ops.deleted.size(), 1u);
}

TEST_F(ExtenderTest, GangBindsAllOrNone) {
  Ann gang = {{"tflops-request", "10"}, {"gang-group-key", "default/w"}, {"gang-required-members", "2"},
              {"gang-timeout", "200ms"}};
  auto m1 = make("m1", gang);
  Reply lonely = ext.bind(binding(m1, "n1"));
  EXPECT_NE(lonely.json()["Error"].get<std::string>().find("1 of 2 members"), std::string::npos) << lonely.body;
  EXPECT_FALSE(ledger.allocation("uid-m1"));
  EXPECT_TRUE(ops.bound.empty());
  EXPECT_EQ(ops.annotation("gpu-ids", "m1"), "");
  gang["gang-timeout"] = "10s";
  m1 = make("m1", gang);
  auto m2 = make("m2", gang);
  Reply r1;
  std::thread t([&] { r1 = ext.bind(binding(m1, "n1")); });
  Reply r2 = ext.bind(binding(m2, "n2"));
  t.join();
  EXPECT_EQ(r1.json()["Error"], "");
  EXPECT_EQ(r2.json()["Error"], "");
  EXPECT_EQ(ops.bound.size(), 2u);
}

}  // namespace
}  // namespace tf::scheduler
