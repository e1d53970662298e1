#include "hypervisor/tier_policy.h"

#include <gtest/gtest.h>

namespace tf::hypervisor {
namespace {

TEST(TierPolicy, ReadsTensorFusionsAutoFreezePerQos) {
  auto config = nlohmann::json::parse(R"({"hypervisor": {"autoFreezeAndResume": {"autoFreeze": [
      {"qos": "low", "freezeToMemTTL": "5m", "freezeToDiskTTL": "1h", "enable": true},
      {"qos": "critical", "freezeToMemTTL": "30s", "enable": false}]}}})");
  TierPolicy p;
  ASSERT_TRUE(applySchedulingConfig(config, &p).isOk());
  EXPECT_TRUE(p.enabled);
  EXPECT_EQ(p.freezeToMemMs[static_cast<int>(Qos::Low)], 300000u);
  EXPECT_EQ(p.freezeToDiskMs[static_cast<int>(Qos::Low)], 3600000u);
  EXPECT_EQ(p.freezeToMemMs[static_cast<int>(Qos::Medium)], 0u);
  EXPECT_EQ(p.freezeToMemMs[static_cast<int>(Qos::Critical)], 0u) << "a disabled entry freezes nothing";

  TierPolicy all;  // no qos: every level; the bare autoFreezeAndResume object works too
  ASSERT_TRUE(applySchedulingConfig(nlohmann::json::parse(R"({"autoFreeze": [{"freezeToMemTTL": "90s"}]})"), &all).isOk());
  for (uint64_t ms : all.freezeToMemMs) EXPECT_EQ(ms, 90000u);

  TierPolicy none;
  ASSERT_TRUE(applySchedulingConfig(nlohmann::json::parse(R"({"placement": {}})"), &none).isOk());
  EXPECT_FALSE(none.enabled);
}

TEST(TierPolicy, RefusesBadEntriesNamingTheField) {
  const char* bad[] = {
      R"({"autoFreeze": {}})",
      R"({"autoFreeze": [3]})",
      R"({"autoFreeze": [{"qos": "urgent"}]})",
      R"({"autoFreeze": [{"qos": 1}]})",
      R"({"autoFreeze": [{"freezeToMemTTL": "5"}]})",
      R"({"autoFreeze": [{"freezeToMemTTL": 300}]})",
      R"({"autoFreeze": [{"enable": "yes"}]})",
      R"({"autoFreeze": [{"freezeToMemTTL": "1h", "freezeToDiskTTL": "5m"}]})",
      R"({"autoFreezeAndResume": []})",
  };
  for (const char* text : bad) {
    TierPolicy p;
    Status s = applySchedulingConfig(nlohmann::json::parse(text), &p);
    EXPECT_EQ(s.code(), Code::InvalidArgument) << text;
    if (std::string(text).find("autoFreeze\": [") != std::string::npos)
      EXPECT_NE(s.message().find("autoFreeze"), std::string::npos) << s.message();
  }
}

TEST(TierPolicy, FreezesIdleLowQosFirstAndNoMoreThanNeeded) {
  constexpr uint64_t G = 1ull << 30;
  std::vector<FreezeCandidate> c = {
      {"busy", Qos::Low, 8 * G, 0},          // in use: never
      {"high", Qos::High, 4 * G, 60000},
      {"low-recent", Qos::Low, 2 * G, 1500},
      {"low-old", Qos::Low, 1 * G, 90000},
      {"empty", Qos::Low, 0, 90000},          // nothing on the device
      {"medium", Qos::Medium, 3 * G, 5000},
  };
  EXPECT_EQ(chooseFreezes(c, 1 * G, 1000), (std::vector<std::string>{"low-old"}));
  EXPECT_EQ(chooseFreezes(c, 2 * G, 1000), (std::vector<std::string>{"low-old", "low-recent"}));
  EXPECT_EQ(chooseFreezes(c, 5 * G, 1000), (std::vector<std::string>{"low-old", "low-recent", "medium"}));
  EXPECT_EQ(chooseFreezes(c, 100 * G, 1000), (std::vector<std::string>{"low-old", "low-recent", "medium", "high"}));
  EXPECT_EQ(chooseFreezes(c, 1 * G, 10000), (std::vector<std::string>{"low-old"}));
  EXPECT_TRUE(chooseFreezes(c, 0, 1000).empty());
}

TEST(TierPolicy, SummarisesAWorkersClients) {
  using remoting::TierRecord;
  using remoting::TierState;
  TierRecord a, b;
  a.state = TierState::Warm;
  a.warmBytes = 10;
  a.warmStoredBytes = 4;
  a.freezes = 2;
  a.idleMs = 500;
  b.state = TierState::Hot;
  b.hotBytes = 7;
  b.idleMs = 100;
  b.waitingBytes = 3;
  TierView v = summarize({a, b});
  EXPECT_EQ(v.state, TierState::Warm);
  EXPECT_EQ(v.hotBytes, 7u);
  EXPECT_EQ(v.warmBytes, 10u);
  EXPECT_EQ(v.warmStoredBytes, 4u);
  EXPECT_EQ(v.waitingBytes, 3u);
  EXPECT_EQ(v.idleMs, 100u) << "a vGPU is as idle as its least idle client";
  EXPECT_EQ(v.clients, 2);
  b.idleMs = 0;  // in a call
  EXPECT_EQ(summarize({a, b}).idleMs, 0u);
  EXPECT_EQ(toJson(v)["state"], "warm");
  EXPECT_EQ(toJson(v)["warmStoredBytes"], 4u);
}

}  // namespace
}  // namespace tf::hypervisor

namespace tf::hypervisor {
namespace {
TEST(TierPolicy, APodsTiersComeFromItsPoolsTemplateForItsQos) {
  auto spec = nlohmann::json::parse(R"({"hypervisor": {"autoFreezeAndResume": {"autoFreeze": [
      {"qos": "low", "freezeToMemTTL": "30s", "freezeToDiskTTL": "5m", "enable": true},
      {"qos": "high", "freezeToMemTTL": "1m", "enable": false}]}}})");
  auto low = vgpuTiersFor(spec, Qos::Low);
  ASSERT_TRUE(low.isOk());
  EXPECT_TRUE(low->enabled);
  EXPECT_EQ(low->freezeToMemMs, 30000u);
  EXPECT_EQ(low->freezeToDiskMs, 300000u);
  EXPECT_FALSE(vgpuTiersFor(spec, Qos::Medium)->enabled) << "no entry for its QoS";
  EXPECT_FALSE(vgpuTiersFor(spec, Qos::High)->enabled) << "its entry is disabled";
  EXPECT_FALSE(vgpuTiersFor(nlohmann::json::object(), Qos::Low)->enabled);
  EXPECT_FALSE(vgpuTiersFor(nlohmann::json::parse(R"({"autoFreeze": [{"freezeToMemTTL": "soon"}]})"), Qos::Low).isOk());
}

TEST(TierPolicy, AVgpusOwnTiersSurviveItsRecord) {
  Vgpu v;
  v.id = "pod-1";
  v.request.vramLimit = v.request.vramRequest = 1 << 30;
  v.request.percentLimit = v.request.percentRequest = 50;
  v.request.isolation = Isolation::Hard;
  v.request.tiers = {true, 30000, 300000};
  v.devices.push_back({0, "GPU-a", 5000, 5000});
  v.regionPath = "/dev/shm/x";
  auto back = vgpuFromJson(nlohmann::json::parse(toJson(v).dump()));
  ASSERT_TRUE(back.isOk()) << back.status().toString();
  EXPECT_TRUE(back->request.tiers.enabled);
  EXPECT_EQ(back->request.tiers.freezeToMemMs, 30000u);
  EXPECT_EQ(back->request.tiers.freezeToDiskMs, 300000u);
}
}  // namespace
}  // namespace tf::hypervisor
