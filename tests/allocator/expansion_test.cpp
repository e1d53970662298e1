#include <gtest/gtest.h>

#include "allocator/allocator.h"
#include "allocator/expansion.h"
#include "fixtures.h"

namespace tf::allocator {
namespace {
using testing::gpu;
using testing::request;
using json = nlohmann::json;
using Ann = std::map<std::string, std::string>;

constexpr int64_t kGi = int64_t{1} << 30;

json poolWith(json oversubscription) {
  return {{"metadata", {{"name", "pool-a"}}}, {"spec", {{"capacityConfig", {{"oversubscription", oversubscription}}}}}};
}

json tiersTemplate(json autoFreeze) {
  return {{"metadata", {{"name", "t"}}},
          {"spec", {{"placement", {{"mode", "LowLoadFirst"}}},
                    {"hypervisor", {{"autoFreezeAndResume", {{"autoFreeze", autoFreeze}}}}}}}};
}

TEST(VramExpansion, PoolValuesOrTensorFusionsDefaults) {
  EXPECT_EQ(*vramExpansionOf(json{{"metadata", {{"name", "p"}}}}), (VramExpansion{50, 70}));
  EXPECT_EQ(*vramExpansionOf(poolWith({{"vramExpandToHostMem", 20}})), (VramExpansion{20, 70}));
  EXPECT_EQ(*vramExpansionOf(poolWith({{"vramExpandToHostMem", 0}, {"vramExpandToHostDisk", 100}})),
            (VramExpansion{0, 100}));
  EXPECT_FALSE(vramExpansionSet(poolWith({{"tflopsOversellRatio", 200}})));
  EXPECT_TRUE(vramExpansionSet(poolWith({{"vramExpandToHostDisk", 0}})));
}

TEST(VramExpansion, BadValuesAreRefusedNamingTheField) {
  for (const auto& [o, field, why] :
       {std::tuple{json{{"vramExpandToHostMem", -5}}, "vramExpandToHostMem", "out of range [0, 100]"},
        std::tuple{json{{"vramExpandToHostDisk", 101}}, "vramExpandToHostDisk", "out of range [0, 100]"},
        std::tuple{json{{"vramExpandToHostMem", "50%"}}, "vramExpandToHostMem", "not an integer"}}) {
    auto e = vramExpansionOf(poolWith(o));
    ASSERT_FALSE(e) << o.dump();
    EXPECT_NE(e.status().message().find(std::string("spec.capacityConfig.oversubscription.") + field),
              std::string::npos)
        << e.status().message();
    EXPECT_NE(e.status().message().find(why), std::string::npos) << e.status().message();
  }
}

TEST(VramExpansion, HostFactsFromTheGpuNode) {
  auto h = hostFactsOf(json{{"status", {{"nodeInfo", {{"ramSize", "64Gi"}, {"dataDiskSize", "100Gi"}}}}}});
  ASSERT_TRUE(h);
  EXPECT_EQ(h->ramBytes, 64 * kGi);
  EXPECT_EQ(h->diskBytes, 100 * kGi);
  EXPECT_EQ(*hostFactsOf(json{{"status", json::object()}}), HostFacts{});  // nothing published yet
  auto bad = hostFactsOf(json{{"status", {{"nodeInfo", {{"ramSize", "lots"}}}}}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.status().message().find("status.nodeInfo.ramSize"), std::string::npos) << bad.status().message();
}

TEST(VramExpansion, WhatANodeLendsAndEachGpusShare) {
  // 50% of 64 GiB + 70% of 100 GiB, each in whole MiB (70% of 100 GiB is 71680 MiB exactly).
  auto lent = nodeVramLent({50, 70}, {64 * kGi, 100 * kGi});
  ASSERT_TRUE(lent);
  EXPECT_EQ(*lent, 32 * kGi + 70 * kGi);
  EXPECT_EQ(*nodeVramLent({50, 0}, {int64_t{3} * (1 << 20) + 1, std::nullopt}), 1 << 20);  // 1.5 MiB -> 1 MiB
  // A GPU's share is in proportion to its VRAM: 80 GiB and 40 GiB share 30 GiB as 20 and 10.
  EXPECT_EQ(gpuVramAllowance(30 * kGi, 80 * kGi, 120 * kGi), 20 * kGi);
  EXPECT_EQ(gpuVramAllowance(30 * kGi, 40 * kGi, 120 * kGi), 10 * kGi);
  EXPECT_EQ(gpuVramAllowance(30 * kGi, 40 * kGi, 0), 0);
  EXPECT_EQ(gpuVramAllowance(0, 40 * kGi, 40 * kGi), 0);
}

TEST(VramExpansion, MissingHostFactsLendNothingAndSayWhich) {
  auto lent = nodeVramLent({50, 70}, {64 * kGi, std::nullopt});
  ASSERT_FALSE(lent);
  EXPECT_EQ(lent.status().code(), Code::FailedPrecondition);
  EXPECT_NE(lent.status().message().find("dataDiskSize"), std::string::npos) << lent.status().message();
  EXPECT_EQ(lent.status().message().find("ramSize"), std::string::npos) << lent.status().message();
  // A fact the pool does not use need not be there.
  EXPECT_EQ(*nodeVramLent({50, 0}, {64 * kGi, std::nullopt}), 32 * kGi);
}

TEST(VramExpansion, PoolConfigTakesTiersPerQosFromItsTemplate) {
  const json tpl = tiersTemplate({{{"qos", "low"}, {"freezeToMemTTL", "30s"}},
                                  {{"qos", "high"}, {"freezeToMemTTL", "1m"}, {"enable", false}}});
  PoolReading r = poolConfigOf(poolWith({{"vramExpandToHostMem", 25}, {"tflopsOversellRatio", 300}}), &tpl);
  EXPECT_EQ(r.warning, "");
  EXPECT_EQ(r.config.placement, Placement::LowLoadFirst);
  EXPECT_EQ(r.config.tflopsOversellRatio, 300);
  EXPECT_EQ(r.config.vramExpansion, (VramExpansion{25, 70}));
  EXPECT_EQ(r.config.vramTiers, (std::array<bool, 4>{true, false, false, false}));
  EXPECT_TRUE(r.config.expandsVram());
}

TEST(VramExpansion, AnExpansionWithoutTiersIsNotAppliedAndSaysWhy) {
  // Asked for, no template: a pod past its GPU's memory could not be moved off it.
  PoolReading r = poolConfigOf(poolWith({{"vramExpandToHostMem", 50}}), nullptr);
  EXPECT_FALSE(r.config.expandsVram());
  EXPECT_NE(r.warning.find("tiers no QoS"), std::string::npos) << r.warning;
  // A template whose tiers cannot be read: said with the field.
  const json bad = tiersTemplate({{{"qos", "urgent"}, {"freezeToMemTTL", "30s"}}});
  r = poolConfigOf(poolWith({{"vramExpandToHostDisk", 10}}), &bad);
  EXPECT_FALSE(r.config.expandsVram());
  EXPECT_NE(r.warning.find("autoFreeze[0].qos"), std::string::npos) << r.warning;
  // Bad values: nothing expanded, the field named.
  const json tpl = tiersTemplate({{{"freezeToMemTTL", "30s"}}});
  r = poolConfigOf(poolWith({{"vramExpandToHostMem", 150}}), &tpl);
  EXPECT_FALSE(r.config.expandsVram());
  EXPECT_NE(r.warning.find("vramExpandToHostMem: 150 is out of range"), std::string::npos) << r.warning;
  // TensorFusion's defaults apply to every pool: no tiers there is no reason to warn.
  EXPECT_EQ(poolConfigOf(json{{"metadata", {{"name", "p"}}}}, nullptr).warning, "");
}

// One node, one 40 GiB GPU taking hard isolation, 64 GiB of host memory lent at 50%: 32 GiB
// more VRAM for the pool's tiered QoS (low).
struct Expanded : ::testing::Test {
  Allocator a;
  PoolConfig pool;
  void SetUp() override {
    Gpu g = gpu("g1", "n1", 100, 40);
    g.isolationModes = {"soft", "hard"};
    a.upsertGpu(g);
    pool.vramExpansion = {50, 0};
    pool.vramTiers = {true, false, false, false};
    a.setPool("pool-a", pool);
    a.setNodeHost("n1", {64 * kGi, std::nullopt});
  }
  NodeFit fit(Ann ann, const std::string& name = "x") {
    auto f = a.filter(request(name, std::move(ann)), {"n1"});
    if (!f) throw std::runtime_error(f.status().toString());
    return f->at(0);
  }
  void book(const std::string& name, Ann ann) {
    Request r = request(name, std::move(ann));
    auto ids = a.assume(r, "n1");
    if (!ids) throw std::runtime_error(ids.status().toString());
    ASSERT_TRUE(a.commit(r.uid));
  }
};

Ann hard(const std::string& qos, const std::string& vram) {
  return {{"isolation", "hard"}, {"qos", qos}, {"vram-request", vram}, {"tflops-request", "1"}};
}

TEST_F(Expanded, TieredHardPodsBookPastTheGpusMemoryUpToItsShare) {
  EXPECT_EQ(a.vramAllowance("g1"), 32 * kGi);
  book("p1", hard("low", "30Gi"));
  EXPECT_TRUE(fit(hard("low", "30Gi")).fits) << "30 + 30 GiB fit 40 + 32";
  book("p2", hard("low", "30Gi"));
  const NodeFit third = fit(hard("low", "20Gi"));
  EXPECT_FALSE(third.fits) << "60 + 20 GiB do not fit 72";
  EXPECT_NE(third.reason.find("VRAM"), std::string::npos) << third.reason;
  // GPU status shows the device's own memory: nothing of it left (not a negative amount).
  EXPECT_EQ(a.gpuStatus("g1")->at("available").at("vram"), "0");
  EXPECT_EQ(a.available("g1")->vramBytes, 12 * kGi);  // what the ledger admits against
}

TEST_F(Expanded, UntieredQosAndSoftIsolationGetTheGpusMemoryOnly) {
  book("p1", hard("low", "30Gi"));
  EXPECT_FALSE(fit(hard("medium", "30Gi")).fits) << "medium is not tiered";
  EXPECT_TRUE(fit(hard("medium", "10Gi")).fits);
  EXPECT_FALSE(fit({{"qos", "low"}, {"vram-request", "30Gi"}, {"tflops-request", "1"}}).fits)
      << "a soft vGPU's memory cannot leave the device";
}

TEST_F(Expanded, NoTiersOrNoHostFactsNoExpansion) {
  book("p1", hard("low", "30Gi"));
  pool.vramTiers = {};
  a.setPool("pool-a", pool);
  EXPECT_EQ(a.vramAllowance("g1"), 0);
  EXPECT_FALSE(fit(hard("low", "30Gi")).fits);
  pool.vramTiers = {true, false, false, false};
  a.setPool("pool-a", pool);
  EXPECT_TRUE(fit(hard("low", "30Gi")).fits);
  a.setNodeHost("n1", {});  // the registrar has not published the node's memory
  EXPECT_EQ(a.vramAllowance("g1"), 0);
  EXPECT_FALSE(fit(hard("low", "30Gi")).fits);
  a.setNodeHost("n1", {64 * kGi, std::nullopt});
  a.removeNodeHost("n1");
  EXPECT_FALSE(fit(hard("low", "30Gi")).fits);
}

TEST_F(Expanded, TheNodesExpansionIsSplitInProportionToVram) {
  Gpu g2 = gpu("g2", "n1", 100, 80);
  g2.isolationModes = {"hard"};
  a.upsertGpu(g2);  // 32 GiB over 40 + 80 GiB
  EXPECT_EQ(a.vramAllowance("g1"), gpuVramAllowance(32 * kGi, 40 * kGi, 120 * kGi));
  EXPECT_EQ(a.vramAllowance("g2"), gpuVramAllowance(32 * kGi, 80 * kGi, 120 * kGi));
  EXPECT_EQ(a.vramAllowance("g1") + a.vramAllowance("g2"), 32 * kGi - 1);  // rounded down
  a.removeGpu("g2");
  EXPECT_EQ(a.vramAllowance("g1"), 32 * kGi);
}

TEST_F(Expanded, AWholeGpuTakesItsAllowanceToo) {
  book("d", {{"isolation", "hard"}, {"qos", "low"}, {"dedicated-gpu", "true"}});
  EXPECT_FALSE(fit(hard("low", "1Gi")).fits);
}

}  // namespace
}  // namespace tf::allocator
