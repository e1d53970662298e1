// The hypervisor's HTTP API over real HTTP (loopback, port 0), on the soft GPU (H100 + L4).
#include <filesystem>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include "hypervisor/hypervisor.h"
#include "limiter/quota_region.h"

namespace tf::hypervisor {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class HypervisorApiTest : public ::testing::Test {
protected:
  void SetUp() override {
    // The soft GPU this hypervisor discovers: an H100 and an L4.
    setenv("TF_SOFTGPU_DEVICES", "H100,L4", 1);
    setenv("TF_SOFTGPU_STATE_DIR", TF_TEST_SOFTGPU_STATE, 1);
    dir_ = fs::temp_directory_path() / ("tf-hv-test-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    start();
  }
  void TearDown() override {
    hv_.reset();
    fs::remove_all(dir_);
  }
  void start() {
    HypervisorOptions o;
    o.stateDir = (dir_ / "state").string();
    o.regionDir = (dir_ / "regions").string();
    o.tickMs = 50;
    hv_ = std::make_unique<Hypervisor>(o);
    Status s = hv_->start();
    ASSERT_TRUE(s) << s.toString();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", hv_->port());
  }
  std::pair<int, json> call(const std::string& method, const std::string& path, const std::string& body = "") {
    httplib::Result r = method == "GET"    ? client_->Get(path.c_str())
                        : method == "POST" ? client_->Post(path.c_str(), body, "application/json")
                                           : client_->Delete(path.c_str());
    EXPECT_TRUE(r) << method << " " << path;
    if (!r) return {0, json()};
    return {r->status, r->body.empty() ? json() : json::parse(r->body, nullptr, false)};
  }

  fs::path dir_;
  std::unique_ptr<Hypervisor> hv_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(HypervisorApiTest, HealthAndDevices) {
  auto r = client_->Get("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(client_->Get("/readyz")->status, 200);
  auto [status, body] = call("GET", "/api/v1/devices");
  EXPECT_EQ(status, 200);
  EXPECT_TRUE(body["softGpu"].get<bool>());
  ASSERT_EQ(body["devices"].size(), 2u);
  EXPECT_EQ(body["devices"][0]["name"], "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(body["devices"][0]["smCount"], 132);
  EXPECT_NEAR(body["devices"][0]["fp16Tflops"].get<double>(), 989.4, 0.01);
  EXPECT_EQ(body["devices"][1]["name"], "NVIDIA L4");
}

TEST_F(HypervisorApiTest, GrantInspectAndRevokeVgpus) {
  auto [created, v] = call("POST", "/api/v1/vgpus", R"({"name":"train","vramLimit":"8GiB","computeLimit":30})");
  ASSERT_EQ(created, 201) << v.dump();
  EXPECT_EQ(v["id"], "train");
  EXPECT_EQ(v["computeLimitPercent"], 30.0);
  EXPECT_TRUE(fs::exists(v["region"].get<std::string>()));
  auto [again, v2] = call("POST", "/api/v1/workers", R"({"name":"train","vramLimit":"1GiB"})");
  ASSERT_EQ(again, 201);
  EXPECT_EQ(v2["id"], "train-1"); // names are unique
  auto [listed, list] = call("GET", "/api/v1/vgpus");
  EXPECT_EQ(listed, 200);
  EXPECT_EQ(list["vgpus"].size(), 2u);
  auto [got, one] = call("GET", "/api/v1/vgpus/train");
  EXPECT_EQ(got, 200);
  EXPECT_EQ(one["usage"]["vramUsed"], 0);
  auto metrics = client_->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("tf_vgpu_memory_bytes{node="), std::string::npos);
  EXPECT_NE(metrics->body.find("vgpu=\"train\""), std::string::npos);
  EXPECT_NE(metrics->body.find("tf_device_utilization_percent"), std::string::npos);
  EXPECT_EQ(call("DELETE", "/api/v1/vgpus/train").first, 204);
  EXPECT_FALSE(fs::exists(v["region"].get<std::string>()));
  EXPECT_EQ(call("GET", "/api/v1/vgpus/train").first, 404);
}

// A vGPU over several devices (gpu-count): one region holding each device with the limits,
// per-device usage and metrics, and a refusal naming how many devices fit.
TEST_F(HypervisorApiTest, AVgpuOverSeveralDevices) {
  auto [created, v] = call("POST", "/api/v1/vgpus", R"({"name":"pair","vramLimit":"2GiB","computeLimit":40,"count":2})");
  ASSERT_EQ(created, 201) << v.dump();
  ASSERT_EQ(v["devices"].size(), 2u);
  EXPECT_NE(v["devices"][0]["uuid"], v["devices"][1]["uuid"]);
  auto region = limiter::QuotaRegion::open(v["region"].get<std::string>());
  ASSERT_TRUE(region) << region.status().toString();
  ASSERT_EQ((*region)->deviceCount(), 2);
  for (int d = 0; d < 2; ++d) {
    EXPECT_EQ((*region)->vramLimit(d), 2ull << 30) << d;
    EXPECT_EQ((*region)->computeBasisPoints(d), 4000u) << d;
  }
  auto [got, one] = call("GET", "/api/v1/vgpus/pair");
  ASSERT_EQ(got, 200);
  ASSERT_EQ(one["usage"]["devices"].size(), 2u) << one.dump();
  auto metrics = client_->Get("/metrics");
  ASSERT_TRUE(metrics);
  for (const auto& d : v["devices"])
    EXPECT_NE(metrics->body.find("vgpu=\"pair\",uuid=\"" + d["uuid"].get<std::string>() + "\",kind=\"limit\""),
              std::string::npos)
        << d.dump();
  auto [refused, why] = call("POST", "/api/v1/vgpus", R"({"vramLimit":"1GiB","computeLimit":10,"count":3})");
  EXPECT_EQ(refused, 409) << why.dump();
  EXPECT_NE(why.dump().find("needs 3 GPUs and fits on 2"), std::string::npos) << why.dump();
  // It survives a restart with both devices.
  hv_.reset();
  start();
  auto [after, back] = call("GET", "/api/v1/vgpus/pair");
  ASSERT_EQ(after, 200);
  EXPECT_EQ(back["devices"], v["devices"]);
}

TEST_F(HypervisorApiTest, BadRequestsGetFourHundredsWithAMessage) {
  auto [notJson, a] = call("POST", "/api/v1/vgpus", "{not json");
  EXPECT_EQ(notJson, 400);
  EXPECT_NE(a["error"].get<std::string>().find("not JSON"), std::string::npos);
  auto [unknown, b] = call("POST", "/api/v1/vgpus", R"({"vramLimit":"1GiB","colour":"red"})");
  EXPECT_EQ(unknown, 400);
  EXPECT_NE(b["error"].get<std::string>().find("colour"), std::string::npos);
  auto [tooBig, c] = call("POST", "/api/v1/vgpus", R"({"vramLimit":"200GiB"})");
  EXPECT_EQ(tooBig, 409);
  EXPECT_NE(c["error"].get<std::string>().find("does not fit"), std::string::npos);
  EXPECT_EQ(call("DELETE", "/api/v1/vgpus/nope").first, 404);
  auto [missing, d] = call("GET", "/api/v1/nothing-here");
  EXPECT_EQ(missing, 404);
  EXPECT_TRUE(d.contains("error"));
  EXPECT_EQ(call("GET", "/api/v1/vgpus").second["vgpus"].size(), 0u); // nothing half-made
}

TEST_F(HypervisorApiTest, StateSurvivesARestart) {
  ASSERT_EQ(call("POST", "/api/v1/vgpus", R"({"name":"keep","vramLimit":"2GiB","computeLimit":50})").first, 201);
  hv_->stop();
  hv_.reset();
  start();
  auto [status, v] = call("GET", "/api/v1/vgpus/keep");
  ASSERT_EQ(status, 200);
  EXPECT_EQ(v["computeLimitPercent"], 50.0);
  // A region lost with the machine's shared memory is made again.
  fs::remove(v["region"].get<std::string>());
  hv_->stop();
  hv_.reset();
  start();
  EXPECT_TRUE(fs::exists(v["region"].get<std::string>()));
}

TEST_F(HypervisorApiTest, CorruptStateIsAClearError) {
  hv_->stop();
  hv_.reset();
  std::ofstream(dir_ / "state" / "state.json") << "{\"vgpus\": 7}";
  HypervisorOptions o;
  o.stateDir = (dir_ / "state").string();
  o.regionDir = (dir_ / "regions").string();
  Hypervisor h(o);
  Status s = h.start();
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("not a hypervisor state file"), std::string::npos) << s.message();
}

} // namespace
} // namespace tf::hypervisor
