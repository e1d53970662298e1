#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "allocator/allocator.h"
#include "fixtures.h"

namespace tf::allocator {
namespace {
using testing::gpu;
using testing::request;
using Ann = std::map<std::string, std::string>;

NodeFit fitOf(const std::vector<NodeFit>& fits, const std::string& node) {
  for (const auto& f : fits)
    if (f.node == node) return f;
  throw std::runtime_error("no node " + node);
}

std::vector<NodeFit> filterOk(const Allocator& a, const Request& r, const std::vector<std::string>& nodes) {
  auto f = a.filter(r, nodes);
  if (!f) throw std::runtime_error(f.status().toString());
  return *f;
}

Request booked(Allocator& a, const std::string& name, Ann ann, const std::string& node, const std::string& ns = "default") {
  Request r = request(name, std::move(ann), ns);
  auto ids = a.assume(r, node);
  if (!ids) throw std::runtime_error(ids.status().toString());
  if (Status s = a.commit(r.uid); !s) throw std::runtime_error(s.toString());
  r.gpuIds = *ids;
  return r;
}

TEST(Allocator, AvailableIsCapacityMinusRequests) {
  Allocator a;
  a.upsertGpu(gpu("g1", "n1"));
  booked(a, "p1", {{"tflops-request", "10"}, {"tflops-limit", "50"}, {"vram-request", "4Gi"}}, "n1");
  EXPECT_EQ(*a.available("g1"), (Amount{90000, 36LL << 30}));
  booked(a, "p2", {{"compute-percent-request", "25"}, {"vram-request", "1Gi"}}, "n1");
  EXPECT_EQ(*a.available("g1"), (Amount{65000, 35LL << 30}));  // 25% of 100 TFLOPS
  EXPECT_TRUE(a.release("uid-p1"));
  EXPECT_EQ(*a.available("g1"), (Amount{75000, 39LL << 30}));
  EXPECT_FALSE(a.release("uid-p1"));
}

TEST(Allocator, CapacityFilterGivesTheReason) {
  Allocator a;
  a.upsertGpu(gpu("g1", "n1", 100, 10));
  booked(a, "p1", {{"tflops-request", "60"}, {"vram-request", "1Gi"}}, "n1");
  Request r = request("p2", {{"tflops-request", "50"}, {"vram-request", "1Gi"}});
  const auto& f = fitOf(filterOk(a, r, {"n1"}), "n1");
  EXPECT_FALSE(f.fits);
  EXPECT_EQ(f.reason, "insufficient GPU capacity: the pod requests 50 TFLOPS, 1Gi VRAM per GPU");
  EXPECT_TRUE(fitOf(filterOk(a, request("p3", {{"tflops-request", "40"}}), {"n1"}), "n1").fits);
  // A share in percent, said without a '%' (kube-scheduler formats the reason it shows).
  const auto& pct = fitOf(filterOk(a, request("p4", {{"compute-percent-request", "45"}, {"vram-request", "1Gi"}}), {"n1"}), "n1");
  EXPECT_FALSE(pct.fits);
  EXPECT_EQ(pct.reason, "insufficient GPU capacity: the pod requests 45 percent compute, 1Gi VRAM per GPU");
  auto no = a.assume(r, "n1");
  ASSERT_FALSE(no);
  EXPECT_EQ(no.status().code(), Code::ResourceExhausted);
}

TEST(Allocator, VramCountsToo) {
  Allocator a;
  a.upsertGpu(gpu("g1", "n1", 100, 10));
  EXPECT_FALSE(fitOf(filterOk(a, request("p", {{"tflops-request", "1"}, {"vram-request", "11Gi"}}), {"n1"}), "n1").fits);
  EXPECT_TRUE(fitOf(filterOk(a, request("p", {{"tflops-request", "1"}, {"vram-request", "10Gi"}}), {"n1"}), "n1").fits);
}

TEST(Allocator, PhaseAndUsedByFilter) {
  Allocator a;
  Gpu g = gpu("g1", "n1");
  g.phase = "Pending";
  a.upsertGpu(g);
  Request r = request("p", {{"tflops-request", "1"}});
  EXPECT_EQ(fitOf(filterOk(a, r, {"n1"}), "n1").reason, "GPU not Running");
  g.phase = "Running";
  g.usedBy = "nvidia-device-plugin";
  a.upsertGpu(g);
  EXPECT_FALSE(fitOf(filterOk(a, r, {"n1"}), "n1").fits);
  g.usedBy = "tensor-fusion";
  a.upsertGpu(g);
  EXPECT_TRUE(fitOf(filterOk(a, r, {"n1"}), "n1").fits);
  EXPECT_EQ(fitOf(filterOk(a, r, {"n9"}), "n9").reason, "node has no TensorFusion GPU");
}

TEST(Allocator, ACordonedGpuTakesNoNewWork) {
  Allocator a;
  Gpu g = gpu("g1", "n1");
  g.cordoned = true;
  a.upsertGpu(g);
  Request r = request("p", {{"tflops-request", "1"}});
  EXPECT_EQ(fitOf(filterOk(a, r, {"n1"}), "n1").reason, "GPU cordoned");
  g.cordoned = false;
  a.upsertGpu(g);
  EXPECT_TRUE(fitOf(filterOk(a, r, {"n1"}), "n1").fits);
}

TEST(Allocator, ModelVendorIndexPoolIsolationFilters) {
  Allocator a;
  Gpu g0 = gpu("g0", "n1");
  g0.index = 0;
  Gpu g1 = gpu("g1", "n1", 100, 40, "H100");
  g1.index = 1;
  g1.isolationMode = "hard";
  a.upsertGpu(g0);
  a.upsertGpu(g1);
  a.upsertGpu(gpu("g2", "n2", 100, 40, "A100", "pool-b"));
  auto fits = [&](Ann ann) { return fitOf(filterOk(a, request("p", ann), {"n1"}), "n1"); };
  EXPECT_EQ(fits({{"gpu-model", "B200"}}).reason, "no GPU of model \"B200\"");
  EXPECT_TRUE(fits({{"gpu-model", "H100"}, {"isolation", "hard"}}).fits);
  EXPECT_EQ(fits({{"gpu-model", "H100"}}).reason, "no GPU of model \"H100\"");  // H100 is hard only
  EXPECT_EQ(fits({{"vendor", "AMD"}}).reason, "no GPU of vendor \"AMD\"");
  EXPECT_EQ(fits({{"gpu-indices", "5"}}).reason, "no GPU with index in [5]");
  EXPECT_TRUE(fits({{"gpu-indices", "1"}, {"isolation", "hard"}}).fits);
  EXPECT_EQ(fits({{"gpu-indices", "1"}}).reason, "no GPU with index in [1]");
  EXPECT_EQ(fits({{"isolation", "partitioned"}}).reason, "no GPU in isolation mode partitioned");
  EXPECT_TRUE(fits({{"isolation", "shared"}}).fits);  // shared fits any mode
  EXPECT_EQ(fitOf(filterOk(a, request("p", {{"gpupool", "pool-a"}}), {"n2"}), "n2").reason, "no GPU of pool \"pool-a\"");
  // The chosen GPU honours the filters.
  auto ids = a.assume(request("p", {{"gpu-model", "H100"}, {"isolation", "hard"}}), "n1");
  ASSERT_TRUE(ids);
  EXPECT_EQ(*ids, std::vector<std::string>{"g1"});
}

// A soft GPU whose hypervisor also makes hard vGPUs (ours) takes hard pods; one that does not
// say so does not, and neither takes partitioned pods.
TEST(Allocator, IsolationModesTheHypervisorMakesBesideItsOwn) {
  Allocator a;
  Gpu ours = gpu("g0", "n1");
  ours.isolationMode = "soft";
  ours.isolationModes = {"shared", "soft", "hard"};
  Gpu plain = gpu("g1", "n2");
  plain.isolationMode = "soft";
  a.upsertGpu(ours);
  a.upsertGpu(plain);
  auto fit = [&](const char* isolation, const char* node) {
    return fitOf(filterOk(a, request("p", {{"isolation", isolation}}), {node}), node);
  };
  EXPECT_TRUE(fit("hard", "n1").fits);
  EXPECT_TRUE(fit("soft", "n1").fits);
  EXPECT_EQ(fit("hard", "n2").reason, "no GPU in isolation mode hard");
  EXPECT_EQ(fit("partitioned", "n1").reason, "no GPU in isolation mode partitioned");
}

TEST(Allocator, GpuCountNeedsThatManyOnOneNode) {
  Allocator a;
  a.upsertGpu(gpu("g1", "n1"));
  a.upsertGpu(gpu("g2", "n1"));
  a.upsertGpu(gpu("g3", "n2"));
  Request r = request("p", {{"tflops-request", "60"}, {"gpu-count", "2"}});
  auto f = filterOk(a, r, {"n1", "n2"});
  EXPECT_TRUE(fitOf(f, "n1").fits);
  EXPECT_FALSE(fitOf(f, "n2").fits);
  auto ids = a.assume(r, "n1");
  ASSERT_TRUE(ids);
  EXPECT_EQ(*ids, (std::vector<std::string>{"g1", "g2"}));
  // Each GPU is charged the full per-GPU request.
  EXPECT_EQ(a.available("g1")->milliTflops, 40000);
  EXPECT_EQ(a.available("g2")->milliTflops, 40000);
  EXPECT_EQ(fitOf(filterOk(a, request("q", {{"tflops-request", "50"}, {"gpu-count", "2"}}), {"n1"}), "n1").reason,
            "insufficient GPU capacity: the pod requests 50 TFLOPS, 0 VRAM per GPU (2 GPUs on one node)");
}

TEST(Allocator, SharedAndDedicatedTakeAWholeIdleGpu) {
  Allocator a;
  a.upsertGpu(gpu("g1", "n1"));
  a.upsertGpu(gpu("g2", "n1"));
  booked(a, "small", {{"tflops-request", "1"}}, "n1");  // lands on g1 or g2
  auto ids = a.assume(request("whole", {{"isolation", "shared"}}), "n1");
  ASSERT_TRUE(ids);
  EXPECT_EQ(*a.available(ids->front()), (Amount{0, 0}));
  Request d = request("ded", {{"dedicated-gpu", "true"}, {"gpu-model", "A100"}});
  EXPECT_EQ(fitOf(filterOk(a, d, {"n1"}), "n1").reason, "no idle GPU (dedicated-gpu takes a whole GPU)");
  // The GPU the small pod uses still takes fractional pods; the whole one takes none.
  auto tiny = a.assume(request("tiny", {{"tflops-request", "1"}}), "n1");
  ASSERT_TRUE(tiny);
  EXPECT_NE(tiny->front(), ids->front());
  a.release("uid-small");
  a.release("uid-tiny");
  EXPECT_TRUE(fitOf(filterOk(a, d, {"n1"}), "n1").fits);
}

TEST(Allocator, MaxWorkersPerNode) {
  Allocator a;
  a.upsertGpu(gpu("g1", "n1", 100000, 1000));
  for (int i = 0; i < kMaxWorkersPerNode; ++i) booked(a, "p" + std::to_string(i), {{"tflops-request", "1"}}, "n1");
  EXPECT_EQ(fitOf(filterOk(a, request("last", {{"tflops-request", "1"}}), {"n1"}), "n1").reason,
            "node has 256 TensorFusion workers, the most per node");
  // The node's workers outlive its GPUs' records: a GPU that goes and comes back (re-registered
  // by its hypervisor) finds the node as full as it was.
  a.removeGpu("g1");
  EXPECT_EQ(fitOf(filterOk(a, request("last", {{"tflops-request", "1"}}), {"n1"}), "n1").reason,
            "node has no TensorFusion GPU");
  a.upsertGpu(gpu("g1", "n1", 100000, 1000));
  EXPECT_EQ(fitOf(filterOk(a, request("last", {{"tflops-request", "1"}}), {"n1"}), "n1").reason,
            "node has 256 TensorFusion workers, the most per node");
  ASSERT_TRUE(a.release("uid-p0"));
  EXPECT_TRUE(fitOf(filterOk(a, request("last", {{"tflops-request", "1"}}), {"n1"}), "n1").fits);
}

TEST(Allocator, ExactNodeScoresAndGpuPickPerMode) {
  // n1: g1 half used (50/100 TFLOPS, 20/40 GiB), g2 idle. n2: one idle GPU.
  for (Placement mode : {Placement::CompactFirst, Placement::LowLoadFirst, Placement::NodeCompactGpuLowLoad}) {
    Allocator a;
    a.setPool("pool-a", {mode, 100});
    a.upsertGpu(gpu("g1", "n1"));
    a.upsertGpu(gpu("g2", "n1"));
    a.upsertGpu(gpu("g3", "n2"));
    Request first = request("first", {{"gpupool", "pool-a"}, {"tflops-request", "50"}, {"vram-request", "20Gi"}});
    ASSERT_TRUE(a.assume(first, "n1"));
    // Two idle GPUs score equally in every mode: the first by name.
    ASSERT_EQ(a.allocation("uid-first")->bookings.front().gpu, "g1");
    auto f = filterOk(a, request("p", {{"gpupool", "pool-a"}, {"tflops-request", "10"}, {"vram-request", "1Gi"}}), {"n1", "n2"});
    // g1: ta = va = 50 → compact 50, low-load 50; g2 idle: compact 0, low-load 100.
    switch (mode) {
      case Placement::CompactFirst:
        EXPECT_EQ(fitOf(f, "n1").score, 25);  // (50 + 0) / 2
        EXPECT_EQ(fitOf(f, "n2").score, 0);
        break;
      case Placement::LowLoadFirst:
        EXPECT_EQ(fitOf(f, "n1").score, 75);  // (50 + 100) / 2
        EXPECT_EQ(fitOf(f, "n2").score, 100);
        break;
      case Placement::NodeCompactGpuLowLoad:
        EXPECT_EQ(fitOf(f, "n1").score, 25);
        EXPECT_EQ(fitOf(f, "n2").score, 0);
        break;
    }
    auto ids = a.assume(request("p", {{"gpupool", "pool-a"}, {"tflops-request", "10"}, {"vram-request", "1Gi"}}), "n1");
    ASSERT_TRUE(ids);
    // GPU inside the node: compact picks the used g1; low-load and the default pick idle g2.
    EXPECT_EQ(ids->front(), mode == Placement::CompactFirst ? "g1" : "g2") << placementName(mode);
  }
}

TEST(Allocator, QuotaWorkersNamed) {
  Allocator a;
  a.upsertGpu(gpu("g1", "n1"));
  Quota q;
  q.ns = "team";
  q.name = "gpu-quota";
  q.maxWorkers = 2;
  a.setQuota(q);
  booked(a, "p1", {{"tflops-request", "1"}}, "n1", "team");
  booked(a, "p2", {{"tflops-request", "1"}}, "n1", "team");
  auto f = a.filter(request("p3", {{"tflops-request", "1"}}, "team"), {"n1"});
  ASSERT_FALSE(f);
  EXPECT_EQ(f.status().message(), "GPUResourceQuota team/gpu-quota: total.maxWorkers is 2 and 2 workers are placed");
  EXPECT_FALSE(a.assume(request("p3", {{"tflops-request", "1"}}, "team"), "n1"));
  EXPECT_TRUE(a.filter(request("p3", {{"tflops-request", "1"}}, "other"), {"n1"}));  // other namespace
  a.release("uid-p1");
  EXPECT_TRUE(a.filter(request("p3", {{"tflops-request", "1"}}, "team"), {"n1"}));
}

TEST(Allocator, QuotaTotalsAndSingles) {
  Allocator a;
  a.upsertGpu(gpu("g1", "n1"));
  a.upsertGpu(gpu("g2", "n1"));
  Quota q;
  q.ns = "team";
  q.name = "q";
  q.totalRequests = Amount{30000, 10LL << 30};
  q.totalLimits = Amount{50000, 100LL << 30};
  q.singleMaxRequests = Amount{20000, 0};  // vram 0: not limited
  q.singleMaxGpuCount = 2;
  a.setQuota(q);
  auto msg = [&](Ann ann) {
    auto f = a.filter(request("x", ann, "team"), {"n1"});
    return f ? std::string("ok") : f.status().message();
  };
  EXPECT_EQ(msg({{"tflops-request", "25"}}), "GPUResourceQuota team/q: single.maxRequests.tflops exceeded by the pod's tflops-request");
  EXPECT_EQ(msg({{"tflops-request", "1"}, {"gpu-count", "3"}}), "GPUResourceQuota team/q: single.maxGPUCount is 2, the pod asks for 3");
  EXPECT_EQ(msg({{"tflops-request", "20"}, {"vram-request", "20Gi"}}).substr(0, 46), "GPUResourceQuota team/q: total.requests (30 TF");
  booked(a, "p1", {{"tflops-request", "10"}, {"tflops-limit", "20"}, {"gpu-count", "2"}}, "n1", "team");  // 20 req, 40 lim
  EXPECT_EQ(msg({{"tflops-request", "10"}}), "ok");
  EXPECT_NE(msg({{"tflops-request", "11"}}).find("total.requests"), std::string::npos);
  EXPECT_NE(msg({{"tflops-request", "1"}, {"tflops-limit", "11"}}).find("total.limits"), std::string::npos);
  // compute-percent requests count 0 TFLOPS toward the quota (TensorFusion's rule).
  EXPECT_EQ(msg({{"compute-percent-request", "90"}}), "ok");
}

TEST(Allocator, PreemptionPicksFewestLowerQosUnprotected) {
  Allocator a;
  a.upsertGpu(gpu("g1", "n1", 100, 40));
  a.upsertGpu(gpu("g2", "n2", 100, 40));
  const Clock::time_point now = Clock::from_time_t(1767225600) + std::chrono::minutes(10);
  booked(a, "low1", {{"tflops-request", "40"}, {"qos", "low"}}, "n1");
  booked(a, "low2", {{"tflops-request", "40"}, {"qos", "low"}}, "n1");
  booked(a, "med", {{"tflops-request", "90"}, {"qos", "medium"}}, "n2");
  Request hi = request("hi", {{"tflops-request", "50"}, {"qos", "high"}});
  EXPECT_FALSE(fitOf(filterOk(a, hi, {"n1", "n2"}), "n1").fits);
  auto plan = a.planPreemption(hi, {"n1", "n2"}, now);
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->node, "n1");  // one low victim beats one medium victim
  ASSERT_EQ(plan->victims.size(), 1u);
  EXPECT_EQ(plan->victims[0].qos, Qos::Low);
  // Medium does not preempt; a same-QoS victim is never taken.
  EXPECT_FALSE(a.planPreemption(request("m", {{"tflops-request", "50"}, {"qos", "medium"}}), {"n1"}, now));
  auto onN2 = a.planPreemption(request("h2", {{"tflops-request", "50"}, {"qos", "high"}}), {"n2"}, now);
  ASSERT_TRUE(onN2);
  EXPECT_EQ(onN2->victims.front().name, "med");
  EXPECT_FALSE(a.planPreemption(request("h3", {{"tflops-request", "50"}, {"qos", "medium"}}), {"n2"}, now));
  // Nothing to gain: the pod would not fit even on an empty node.
  EXPECT_FALSE(a.planPreemption(request("big", {{"tflops-request", "101"}, {"qos", "critical"}}), {"n1", "n2"}, now));
}

// The preemptor holds what its victims free: nothing else takes it while they terminate or
// after; it binds there; a reservation nobody comes back for is dropped at its time.
TEST(Allocator, APreemptorsReservationHoldsTheFreedCapacity) {
  Allocator a;
  a.upsertGpu(gpu("g1", "n1", 100, 40));
  const Clock::time_point now = Clock::from_time_t(1767225600) + std::chrono::minutes(10);
  booked(a, "low", {{"tflops-request", "80"}, {"qos", "low"}}, "n1");
  Request hi = request("hi", {{"tflops-request", "50"}, {"qos", "high"}});
  auto plan = a.planPreemption(hi, {"n1"}, now);
  ASSERT_TRUE(plan);
  ASSERT_TRUE(a.reserve(hi, *plan, now + std::chrono::minutes(2)));
  EXPECT_FALSE(a.reserve(hi, *plan, now + std::chrono::minutes(2)));  // once
  EXPECT_EQ(a.available("g1")->milliTflops, -30000);  // booked past capacity until low goes
  EXPECT_TRUE(fitOf(filterOk(a, hi, {"n1"}), "n1").fits);  // pinned to its node
  a.release("uid-low");
  Request rival = request("rival", {{"tflops-request", "60"}});
  EXPECT_FALSE(fitOf(filterOk(a, rival, {"n1"}), "n1").fits);
  EXPECT_EQ(a.expireReservations(now + std::chrono::minutes(1)), 0u);
  ASSERT_TRUE(a.assume(hi, "n1"));  // the bind: its reserved GPUs
  ASSERT_TRUE(a.commit("uid-hi"));
  EXPECT_EQ(a.expireReservations(now + std::chrono::minutes(5)), 0u);  // committed: kept
  EXPECT_EQ(a.available("g1")->milliTflops, 50000);

  // A preemptor that never comes back: its hold ends at its time.
  booked(a, "low2", {{"tflops-request", "50"}, {"qos", "low"}}, "n1");  // fills g1 beside hi
  Request hi2 = request("hi2", {{"tflops-request", "50"}, {"qos", "critical"}});
  auto plan2 = a.planPreemption(hi2, {"n1"}, now);
  ASSERT_TRUE(plan2);
  ASSERT_TRUE(a.reserve(hi2, *plan2, now + std::chrono::minutes(2)));
  a.release("uid-low2");
  EXPECT_EQ(a.expireReservations(now + std::chrono::minutes(3)), 1u);
  EXPECT_FALSE(a.allocation("uid-hi2"));
  EXPECT_FALSE(fitOf(filterOk(a, rival, {"n1"}), "n1").fits);  // hi still holds 50
  EXPECT_TRUE(fitOf(filterOk(a, request("small", {{"tflops-request", "50"}}), {"n1"}), "n1").fits);
}

TEST(Allocator, SameQosIsNeverAVictim) {
  Allocator a;
  a.upsertGpu(gpu("g1", "n1", 100, 40));
  booked(a, "high", {{"tflops-request", "80"}, {"qos", "high"}}, "n1");
  EXPECT_FALSE(a.planPreemption(request("h", {{"tflops-request", "50"}, {"qos", "high"}}), {"n1"}, Clock::now()));
  auto plan = a.planPreemption(request("c", {{"tflops-request", "50"}, {"qos", "critical"}}), {"n1"}, Clock::now());
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->victims.front().name, "high");
}

TEST(Allocator, EvictionProtectionIsHonouredUntilItElapses) {
  Allocator a;
  a.upsertGpu(gpu("g1", "n1", 100, 40));
  const Clock::time_point created = Clock::from_time_t(1767225600);
  booked(a, "guarded", {{"tflops-request", "80"}, {"qos", "low"}, {"eviction-protection", "1h"}}, "n1");
  Request hi = request("hi", {{"tflops-request", "50"}, {"qos", "critical"}});
  EXPECT_FALSE(a.planPreemption(hi, {"n1"}, created + std::chrono::minutes(59)));
  auto plan = a.planPreemption(hi, {"n1"}, created + std::chrono::minutes(61));
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->victims.front().name, "guarded");
}

TEST(Allocator, AssumedIsNotAVictimAndRollsBack) {
  Allocator a;
  a.upsertGpu(gpu("g1", "n1", 100, 40));
  Request low = request("low", {{"tflops-request", "80"}, {"qos", "low"}});
  ASSERT_TRUE(a.assume(low, "n1"));
  EXPECT_FALSE(a.planPreemption(request("hi", {{"tflops-request", "50"}, {"qos", "high"}}), {"n1"}, Clock::now()));
  EXPECT_TRUE(a.rollback("uid-low"));
  EXPECT_EQ(a.available("g1")->milliTflops, 100000);
  ASSERT_TRUE(a.assume(low, "n1"));
  ASSERT_TRUE(a.commit("uid-low"));
  EXPECT_FALSE(a.rollback("uid-low"));  // committed: only release() frees it
  EXPECT_EQ(a.commit("nope").code(), Code::NotFound);
}

TEST(Allocator, AssumeIsIdempotentPerPodAndPinsTheNode) {
  Allocator a;
  a.upsertGpu(gpu("g1", "n1"));
  a.upsertGpu(gpu("g2", "n2"));
  Request r = request("p", {{"tflops-request", "60"}});
  auto first = a.assume(r, "n1");
  ASSERT_TRUE(first);
  auto again = a.assume(r, "n1");
  ASSERT_TRUE(again);
  EXPECT_EQ(*first, *again);
  EXPECT_EQ(a.available("g1")->milliTflops, 40000);  // booked once
  EXPECT_EQ(a.assume(r, "n2").status().code(), Code::FailedPrecondition);
  auto f = filterOk(a, r, {"n1", "n2"});
  EXPECT_TRUE(fitOf(f, "n1").fits);
  EXPECT_EQ(fitOf(f, "n2").reason, "pod is allocated on node n1");
}

TEST(Allocator, RebuildFromAnnotationsEqualsTheLiveLedger) {
  Allocator live;
  std::vector<Gpu> gpus = {gpu("g1", "n1"), gpu("g2", "n1"), gpu("g3", "n2"), gpu("g4", "n2")};
  for (const auto& g : gpus) live.upsertGpu(g);
  std::vector<Request> pods;
  pods.push_back(booked(live, "a", {{"tflops-request", "30"}, {"vram-request", "3Gi"}, {"gpu-count", "2"}}, "n1"));
  pods.push_back(booked(live, "b", {{"compute-percent-request", "40"}}, "n2"));
  pods.push_back(booked(live, "c", {{"isolation", "shared"}}, "n2") );
  pods.push_back(request("unbound", {{"tflops-request", "5"}}));  // no gpu-ids: not booked
  Allocator fresh;
  fresh.rebuild(gpus, pods);
  EXPECT_EQ(fresh.dump(), live.dump());
  // Pods listed before their GPUs: charged when the GPU appears.
  Allocator late;
  late.rebuild({}, pods);
  for (const auto& g : gpus) late.upsertGpu(g);
  EXPECT_EQ(late.dump()["gpus"], live.dump()["gpus"]);
  // observe() is idempotent and books an unknown pod.
  fresh.observe(pods[0], "n1");
  EXPECT_EQ(fresh.dump(), live.dump());
  Allocator watching;
  for (const auto& g : gpus) watching.upsertGpu(g);
  for (const auto& p : pods) watching.observe(p, "");
  EXPECT_EQ(watching.dump()["gpus"], live.dump()["gpus"]);
}

TEST(Allocator, APodWhoseGpuIdsChangeAfterBindIsBookedOnTheNewGpus) {
  // The pod's node's hypervisor moved its vGPU from g1 to g2 and patched its gpu-ids.
  Allocator a;
  a.upsertGpu(gpu("g1", "n1"));
  a.upsertGpu(gpu("g2", "n1"));
  Request r = booked(a, "p", {{"tflops-request", "30"}, {"vram-request", "4Gi"}}, "n1");
  ASSERT_EQ(r.gpuIds, std::vector<std::string>{"g1"});
  a.observe(r, "n1");  // the same record: nothing changes
  EXPECT_EQ(a.available("g1")->milliTflops, 70000);
  r.gpuIds = {"g2"};
  a.observe(r, "n1");
  EXPECT_EQ(a.available("g1")->milliTflops, 100000);
  EXPECT_EQ(a.available("g2")->milliTflops, 70000);
  EXPECT_EQ(a.available("g2")->vramBytes, 36ll << 30);
  EXPECT_EQ(a.gpuStatus("g1")->at("runningApps").size(), 0u);
  EXPECT_EQ(a.gpuStatus("g2")->at("runningApps").size(), 1u);
  // And it is released from there.
  EXPECT_TRUE(a.release(r.uid));
  EXPECT_EQ(a.available("g2")->milliTflops, 100000);
}

TEST(Allocator, GpuCapacityChangeKeepsBookings) {
  Allocator a;
  a.upsertGpu(gpu("g1", "n1", 100, 40));
  booked(a, "p", {{"tflops-request", "30"}}, "n1");
  a.upsertGpu(gpu("g1", "n1", 200, 40));
  EXPECT_EQ(a.available("g1")->milliTflops, 170000);
  a.removeGpu("g1");
  EXPECT_FALSE(a.available("g1"));
  a.upsertGpu(gpu("g1", "n1", 100, 40));
  EXPECT_EQ(a.available("g1")->milliTflops, 70000);  // the booking is still the record
}

TEST(Allocator, GpuStatusAndDirty) {
  Allocator a;
  a.upsertGpu(gpu("g1", "n1", 100, 40));
  a.takeDirty();
  booked(a, "p", {{"tflops-request", "30"}, {"tflops-limit", "60"}, {"vram-request", "1Gi"}, {"qos", "low"}}, "n1");
  EXPECT_EQ(a.takeDirty(), std::vector<std::string>{"g1"});
  EXPECT_TRUE(a.takeDirty().empty());
  auto st = a.gpuStatus("g1");
  ASSERT_TRUE(st);
  EXPECT_EQ((*st)["available"], (nlohmann::json{{"tflops", "70"}, {"vram", "39Gi"}}));
  ASSERT_EQ((*st)["runningApps"].size(), 1u);
  EXPECT_EQ((*st)["runningApps"][0]["name"], "p");
  EXPECT_EQ((*st)["runningApps"][0]["count"], 1);
  EXPECT_EQ((*st)["runningApps"][0]["pods"][0]["qos"], "low");
  EXPECT_FALSE(a.gpuStatus("nope"));
  a.setPool("pool-a", {Placement::NodeCompactGpuLowLoad, 500});
  EXPECT_EQ(a.dump()["gpus"]["g1"]["virtualAvailableTflops"], "440");  // 500 - 60 of limits
}

TEST(Allocator, GangAllOrNone) {
  Allocator a;
  a.upsertGpu(gpu("g1", "n1"));
  Ann gang = {{"tflops-request", "10"}, {"gang-group-key", "default/w"}, {"gang-required-members", "3"}};
  auto deadline = [] { return std::chrono::steady_clock::now() + std::chrono::seconds(10); };
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 3; ++i)
    threads.emplace_back([&, i] {
      Request r = request("m" + std::to_string(i), gang);
      ASSERT_TRUE(a.assume(r, "n1"));
      if (a.waitForGang(r, deadline())) ++ok;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 3);
  // Once satisfied, a later member passes at once.
  Request late = request("m9", gang);
  ASSERT_TRUE(a.assume(late, "n1"));
  EXPECT_TRUE(a.waitForGang(late, std::chrono::steady_clock::now()));
}

TEST(Allocator, GangTimeoutFailsEveryWaitingMember) {
  Allocator a;
  a.upsertGpu(gpu("g1", "n1"));
  Ann gang = {{"tflops-request", "10"}, {"gang-group-key", "default/w"}, {"gang-required-members", "3"}};
  const auto start = std::chrono::steady_clock::now();
  Status first, second;
  std::thread t1([&] {
    Request r = request("m1", gang);
    ASSERT_TRUE(a.assume(r, "n1"));
    first = a.waitForGang(r, start + std::chrono::seconds(30));  // would wait long
    if (!first) a.rollback(r.uid);
  });
  Request r2 = request("m2", gang);
  ASSERT_TRUE(a.assume(r2, "n1"));
  second = a.waitForGang(r2, start + std::chrono::milliseconds(200));
  if (!second) a.rollback(r2.uid);
  t1.join();
  EXPECT_FALSE(second);
  EXPECT_NE(second.message().find("2 of 3 members"), std::string::npos) << second.message();
  EXPECT_FALSE(first);  // woken by the peer's timeout: none placed
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  EXPECT_EQ(a.available("g1")->milliTflops, 100000);
  EXPECT_TRUE(a.waitForGang(request("solo", {{"tflops-request", "1"}}), start));  // not a gang
}

TEST(Allocator, ConcurrentAssumesNeverOverbook) {
  Allocator a;
  for (int g = 0; g < 4; ++g) a.upsertGpu(gpu("g" + std::to_string(g), "n" + std::to_string(g % 2)));
  std::atomic<int> placed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        Request r = request("p" + std::to_string(t) + "-" + std::to_string(i), {{"tflops-request", "7"}});
        const std::string node = (i + t) % 2 ? "n1" : "n0";
        if (a.assume(r, node)) {
          ++placed;
          if (i % 3 == 0) a.rollback(r.uid), --placed;
          else ASSERT_TRUE(a.commit(r.uid));
        }
      }
    });
  for (auto& t : threads) t.join();
  int64_t used = 0;
  for (int g = 0; g < 4; ++g) {
    auto av = a.available("g" + std::to_string(g));
    ASSERT_GE(av->milliTflops, 0);
    used += 100000 - av->milliTflops;
  }
  EXPECT_EQ(used, placed.load() * 7000);
  EXPECT_EQ(placed.load(), 4 * 14);  // 14 × 7 TFLOPS per 100-TFLOPS GPU
}

}  // namespace
}  // namespace tf::allocator
