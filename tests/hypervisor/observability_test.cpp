// What docs/hypervisor-api.md promises and http_api_test.cpp does not reach: /readyz before the
// hypervisor is ready, every documented metric name, the --influx-log line protocol, the
// `critical` QoS, and a device that disappears staying listed as not present. On the soft GPU
// (an H100 and an L4), over real HTTP where the API is the subject.
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include "hypervisor/device_inventory.h"
#include "hypervisor/hypervisor.h"
#include "hypervisor/quota_controller.h"

namespace tf::hypervisor {
namespace {

namespace fs = std::filesystem;

class ObservabilityTest : public ::testing::Test {
protected:
  void SetUp() override {
    setenv("TF_SOFTGPU_DEVICES", "H100,L4", 1);
    setenv("TF_SOFTGPU_STATE_DIR", TF_TEST_SOFTGPU_STATE, 1);
    dir_ = fs::temp_directory_path() / ("tf-hv-obs-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (hv_) hv_->stop();
    hv_.reset();
    fs::remove_all(dir_);
  }
  HypervisorOptions options() {
    HypervisorOptions o;
    o.stateDir = (dir_ / "state").string();
    o.regionDir = (dir_ / "regions").string();
    o.tickMs = 600000; // after the controller's first tick at start, ticks come from the test
    o.node = "obs-node";
    return o;
  }
  void start(HypervisorOptions o) {
    hv_ = std::make_unique<Hypervisor>(o);
    Status s = hv_->start();
    ASSERT_TRUE(s) << s.toString();
  }
  Vgpu grant(const std::string& name, Qos qos = Qos::Medium) {
    VgpuRequest r;
    r.name = name;
    r.vramLimit = r.vramRequest = 2ull << 30;
    r.percentLimit = r.percentRequest = 30;
    r.qos = qos;
    auto v = hv_->createVgpu(r);
    EXPECT_TRUE(v) << v.status().toString();
    return v ? *v : Vgpu{};
  }

  fs::path dir_;
  std::unique_ptr<Hypervisor> hv_;
};

TEST_F(ObservabilityTest, ReadyzIs503UntilTheHypervisorIsReady) {
  // The routes of a hypervisor that has not started (no devices discovered, no state restored).
  Hypervisor notStarted(options());
  httplib::Server server;
  installRoutes(server, notStarted);
  const int port = server.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread t([&] { server.listen_after_bind(); });
  for (int i = 0; i < 500 && !server.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  httplib::Client c("127.0.0.1", port);
  auto ready = c.Get("/readyz");
  auto health = c.Get("/healthz");
  server.stop();
  t.join();
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_NE(ready->body.find("\"error\""), std::string::npos) << ready->body;
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200); // alive, though not ready
  EXPECT_FALSE(notStarted.ready());

  start(options());
  EXPECT_TRUE(hv_->ready());
  httplib::Client started("127.0.0.1", hv_->port());
  auto after = started.Get("/readyz");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
}

TEST_F(ObservabilityTest, EveryDocumentedMetricIsExported) {
  start(options());
  Vgpu v = grant("m1");
  hv_->tick();
  httplib::Client c("127.0.0.1", hv_->port());
  auto r = c.Get("/metrics");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  const std::string& text = r->body;
  // name{labels} value, for each series docs/hypervisor-api.md lists.
  auto series = [&](const std::string& name, const std::string& mustContain) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
      if (line.rfind(name + "{", 0) == 0 && line.find(mustContain) != std::string::npos) return line;
    return std::string();
  };
  const std::string dev = "node=\"obs-node\",uuid=\"GPU-";
  const std::string vg = "node=\"obs-node\",vgpu=\"m1\",uuid=\"" + v.devices.front().deviceUuid + "\"";
  for (const char* kind : {"total", "used"})
    EXPECT_NE(series("tf_device_memory_bytes", std::string("kind=\"") + kind + "\""), "") << kind;
  EXPECT_NE(series("tf_device_memory_bytes", dev), "");
  EXPECT_NE(series("tf_device_utilization_percent", dev), "");
  EXPECT_EQ(series("tf_vgpu_memory_bytes", vg + ",kind=\"limit\""), "tf_vgpu_memory_bytes{" + vg + ",kind=\"limit\"} 2147483648");
  EXPECT_EQ(series("tf_vgpu_memory_bytes", vg + ",kind=\"used\""), "tf_vgpu_memory_bytes{" + vg + ",kind=\"used\"} 0");
  EXPECT_EQ(series("tf_vgpu_compute_share", vg + ",kind=\"limit\""), "tf_vgpu_compute_share{" + vg + ",kind=\"limit\"} 0.3");
  EXPECT_NE(series("tf_vgpu_compute_share", vg + ",kind=\"allowed\""), "");
  EXPECT_NE(series("tf_vgpu_compute_share", vg + ",kind=\"used\""), "");
  for (const char* name : {"tf_vgpu_throttled_seconds_total", "tf_vgpu_launches_total",
                           "tf_vgpu_gpu_seconds_total", "tf_worker_restarts_total"})
    EXPECT_EQ(series(name, vg), std::string(name) + "{" + vg + "} 0") << name;
  // Each family is declared once with its type.
  for (const char* name : {"tf_device_memory_bytes", "tf_device_utilization_percent", "tf_vgpu_memory_bytes",
                           "tf_vgpu_compute_share", "tf_vgpu_throttled_seconds_total", "tf_vgpu_launches_total",
                           "tf_vgpu_gpu_seconds_total", "tf_worker_restarts_total"})
    EXPECT_NE(text.find(std::string("# TYPE ") + name + " "), std::string::npos) << name;
}

TEST_F(ObservabilityTest, InfluxLogGetsLineProtocolEveryTick) {
  HypervisorOptions o = options();
  o.influxLog = (dir_ / "metrics.influx").string();
  start(o);
  // The controller's own first tick writes the file; start counting after it.
  for (int i = 0; i < 1000 && (!fs::exists(o.influxLog) || fs::file_size(o.influxLog) == 0); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(fs::exists(o.influxLog)) << "the first tick wrote no influx log";
  fs::remove(o.influxLog);
  grant("w1");
  hv_->tick();
  hv_->tick();
  std::ifstream in(o.influxLog);
  ASSERT_TRUE(in) << "no influx log at " << o.influxLog;
  const std::regex gpu(R"(tf_gpu_usage,node=obs-node,uuid=GPU-[0-9a-f-]+ memory_used=\d+i,memory_total=\d+i,utilization=\d+i \d{19})");
  const std::regex worker(
      R"(tf_worker_usage,node=obs-node,worker=w1,uuid=GPU-[0-9a-f-]+ memory_used=0i,compute_share=[0-9.]+,throttled_ns=\d+i,launches=0i \d{19})");
  int gpuLines = 0, workerLines = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (std::regex_match(line, gpu)) ++gpuLines;
    else if (std::regex_match(line, worker)) ++workerLines;
    else ADD_FAILURE() << "not line protocol as documented: " << line;
  }
  EXPECT_EQ(gpuLines, 4);    // two devices, two ticks
  EXPECT_EQ(workerLines, 2); // one vGPU, two ticks
}

TEST_F(ObservabilityTest, CriticalQosIsAcceptedAndBorrowsBeforeHigh) {
  start(options());
  httplib::Client c("127.0.0.1", hv_->port());
  auto ok = c.Post("/api/v1/vgpus", R"({"name":"crit","vramLimit":"1GiB","computeLimit":20,"qos":"critical"})",
                   "application/json");
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->status, 201) << ok->body;
  auto body = nlohmann::json::parse(ok->body);
  EXPECT_EQ(body["request"]["qos"], "critical");
  auto bad = c.Post("/api/v1/vgpus", R"({"vramLimit":"1GiB","qos":"urgent"})", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(bad->body.find("critical"), std::string::npos) << bad->body; // lists the levels

  // Idle time goes to the critical vGPU up to its limit before a high one gets any.
  Vgpu crit, high, idle;
  crit.devices = {DeviceGrant{0, "GPU-a", 2000, 8000}}, crit.request.qos = Qos::Critical;
  high.devices = {DeviceGrant{0, "GPU-a", 2000, 8000}}, high.request.qos = Qos::High;
  idle.devices = {DeviceGrant{0, "GPU-a", 4000, 4000}};
  auto s = computeShares({{&high, 2000, 2000, true}, {&crit, 2000, 2000, true}, {&idle, 0, 4000, false}});
  EXPECT_EQ(s[1], 8000u);
  EXPECT_EQ(s[0], 2000u);
  EXPECT_GT(qosWeight(Qos::Critical), qosWeight(Qos::High));
}

TEST_F(ObservabilityTest, ADeviceThatDisappearsStaysListedNotPresent) {
  auto inv = DeviceInventory::open();
  ASSERT_TRUE(inv) << inv.status().toString();
  ASSERT_EQ((*inv)->devices().size(), 2u);
  const GpuDevice l4 = (*inv)->devices()[1];
  EXPECT_TRUE(l4.present);
  // NVML now reports one device: the L4 is gone (fell off the bus, driver reset).
  (*inv)->nvmlForTest().nvmlDeviceGetCount_v2 = [](unsigned* count) {
    *count = 1;
    return NVML_SUCCESS;
  };
  ASSERT_TRUE((*inv)->refresh());
  ASSERT_EQ((*inv)->devices().size(), 2u);
  EXPECT_TRUE((*inv)->devices()[0].present);
  const GpuDevice* gone = (*inv)->find(l4.uuid);
  ASSERT_NE(gone, nullptr);
  EXPECT_FALSE(gone->present);
  EXPECT_EQ(gone->name, l4.name); // what was known of it is kept
  EXPECT_EQ(toJson(*gone)["present"], false);
  EXPECT_EQ(toJson((*inv)->devices()[0])["present"], true);
  // Still gone on the next refresh: listed once, not duplicated.
  ASSERT_TRUE((*inv)->refresh());
  EXPECT_EQ((*inv)->devices().size(), 2u);
}

} // namespace
} // namespace tf::hypervisor
