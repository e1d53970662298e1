// Measured utilization: what the agent reads from a node's hypervisor, against the real
// hypervisor (in-process, on the soft GPU, its HTTP API over loopback), and the hypervisor
// pods it would ask.
#include "agent/usage_scrape.h"

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include "hypervisor/hypervisor.h"
#include "k8s/api/well_known.h"

namespace tf::agent {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

std::map<std::string, double> byName(const std::vector<protocol::MetricPoint>& points) {
  std::map<std::string, double> out;
  for (const auto& p : points) out[p.series] = p.value;
  return out;
}

class HypervisorScrape : public ::testing::Test {
protected:
  void SetUp() override {
    setenv("TF_SOFTGPU_DEVICES", "H100,L4", 1);
    setenv("TF_SOFTGPU_STATE_DIR", TF_TEST_SOFTGPU_STATE, 1);
    dir_ = fs::temp_directory_path() / ("tf-agent-scrape-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    hypervisor::HypervisorOptions o;
    o.stateDir = (dir_ / "state").string();
    o.regionDir = (dir_ / "regions").string();
    o.tickMs = 50;
    hv_ = std::make_unique<hypervisor::Hypervisor>(o);
    Status s = hv_->start();
    ASSERT_TRUE(s) << s.toString();
  }
  void TearDown() override {
    hv_.reset();
    fs::remove_all(dir_);
  }
  json get(const std::string& path) {
    httplib::Client c("127.0.0.1", hv_->port());
    auto r = c.Get(path);
    EXPECT_TRUE(r && r->status == 200) << path;
    return r ? json::parse(r->body) : json();
  }
  fs::path dir_;
  std::unique_ptr<hypervisor::Hypervisor> hv_;
};

TEST_F(HypervisorScrape, DevicesAndPodVgpusBecomeSeries) {
  // A pod's vGPU, as the hypervisor names it in cluster mode, and one that is no pod's.
  const std::string uid = "6f1c0d3e-0000-4000-8000-00000000abcd";
  httplib::Client c("127.0.0.1", hv_->port());
  auto made = c.Post("/api/v1/vgpus", json{{"name", k8s::api::podVgpuName(uid)}, {"vramLimit", "2GiB"}, {"computeLimit", 30}}.dump(),
                     "application/json");
  ASSERT_TRUE(made && made->status == 201) << (made ? made->body : "no answer");
  auto other = c.Post("/api/v1/vgpus", R"({"name":"standalone","vramLimit":"1GiB"})", "application/json");
  ASSERT_TRUE(other && other->status == 201);

  const std::map<std::string, std::string> pods = {{k8s::api::podVgpuName(uid), "ml/trainer-0"}};
  auto points = scrapeHypervisor({"tensor-fusion-sys/hv-0", "127.0.0.1", hv_->port()}, pods, 1234, 2000ms);
  ASSERT_TRUE(points) << points.status().toString();
  auto s = byName(*points);
  const json devices = get("/api/v1/devices")["devices"];
  ASSERT_EQ(devices.size(), 2u);
  for (const json& d : devices) {
    std::string name = d["uuid"];
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
    ASSERT_TRUE(s.count("gpu." + name + ".utilization")) << "device " << name;
    ASSERT_TRUE(s.count("gpu." + name + ".memory")) << "device " << name;
    EXPECT_GE(s["gpu." + name + ".memory"], 0.0);
    EXPECT_LE(s["gpu." + name + ".memory"], 1.0);
  }
  ASSERT_TRUE(s.count("vgpu.ml/trainer-0.compute"));
  ASSERT_TRUE(s.count("vgpu.ml/trainer-0.vram"));
  EXPECT_EQ(s["vgpu.ml/trainer-0.vram"], 0.0) << "nothing allocated in it yet";
  EXPECT_EQ(points->size(), 2 * devices.size() + 2) << "the standalone vGPU is no pod's: no series";
  for (const auto& p : *points) EXPECT_EQ(p.tsMs, 1234);
}

TEST_F(HypervisorScrape, AHypervisorThatDoesNotAnswerIsAnError) {
  httplib::Server silent;
  const int port = silent.bind_to_any_port("127.0.0.1");
  silent.Get(".*", [](const httplib::Request&, httplib::Response& res) { res.set_content("<html>", "text/html"); });
  std::thread t([&] { silent.listen_after_bind(); });
  while (!silent.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto notJson = scrapeHypervisor({"ns/hv", "127.0.0.1", port}, {}, 0, 2000ms);
  silent.stop();
  t.join();
  ASSERT_FALSE(notJson);
  EXPECT_NE(notJson.status().message().find("not a JSON object"), std::string::npos) << notJson.status().message();
  auto refused = scrapeHypervisor({"ns/hv", "127.0.0.1", port}, {}, 0, 500ms);  // nobody listens now
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.status().message().find("hypervisor ns/hv"), std::string::npos) << refused.status().message();
}

// Four hypervisors that answer /devices only once all four have been asked: asked one at a
// time, the first would wait for the others until its timeout. A dead one in the middle costs
// only its own answer.
TEST(UsageScrapeTest, HypervisorsAreAskedSideBySide) {
  constexpr int kAnswering = 4;
  std::mutex mu;
  std::condition_variable cv;
  int asked = 0;
  bool done = false;
  std::vector<std::unique_ptr<httplib::Server>> servers;
  std::vector<std::thread> threads;
  std::vector<HypervisorEndpoint> targets;
  for (int i = 0; i < kAnswering; ++i) {
    auto srv = std::make_unique<httplib::Server>();
    srv->Get("/api/v1/devices", [&](const httplib::Request&, httplib::Response& res) {
      std::unique_lock lock(mu);
      ++asked;
      cv.notify_all();
      cv.wait(lock, [&] { return asked >= kAnswering || done; });
      res.set_content(R"({"devices":[]})", "application/json");
    });
    srv->Get("/api/v1/vgpus", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"vgpus":[]})", "application/json");
    });
    const int port = srv->bind_to_any_port("127.0.0.1");
    threads.emplace_back([s = srv.get()] { s->listen_after_bind(); });
    targets.push_back({"ns/hv-" + std::to_string(i), "127.0.0.1", port});
    servers.push_back(std::move(srv));
  }
  // A port nobody listens on, between them: bound, never listened on, so connecting is refused.
  const int dead = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(dead, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(getsockname(dead, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int deadPort = ntohs(addr.sin_port);
  targets.insert(targets.begin() + 2, HypervisorEndpoint{"ns/dead", "127.0.0.1", deadPort});
  for (auto& srv : servers)
    while (!srv->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));

  auto answers = scrapeHypervisors(targets, {}, 0, 20s, 8);
  {
    std::lock_guard lock(mu);
    done = true;  // release any handler still waiting, whatever happened
  }
  cv.notify_all();
  for (auto& srv : servers) srv->stop();
  for (auto& t : threads) t.join();
  close(dead);
  ASSERT_EQ(answers.size(), targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    if (targets[i].pod == "ns/dead") {
      ASSERT_FALSE(answers[i]);
      EXPECT_NE(answers[i].status().message().find("hypervisor ns/dead"), std::string::npos);
    } else {
      EXPECT_TRUE(answers[i]) << targets[i].pod << ": " << answers[i].status().toString();
    }
  }
  EXPECT_TRUE(scrapeHypervisors({}, {}, 0, 1s, 8).empty());
}

TEST(UsageScrapeTest, AsksRunningHypervisorPodsOnTheirApiPort) {
  auto pod = [](const std::string& name, const std::string& phase, const std::string& ip, json ports) {
    return json{{"metadata", {{"name", name}, {"namespace", "tensor-fusion-sys"}}},
                {"spec", {{"containers", json::array({{{"name", "hypervisor"}, {"ports", ports}}})}}},
                {"status", {{"phase", phase}, {"podIP", ip}}}};
  };
  auto targets = hypervisorEndpoints({pod("a", "Running", "10.0.0.1", json::array({{{"name", "api"}, {"containerPort", 9100}}})),
                                      pod("b", "Running", "10.0.0.2", json::array()),
                                      pod("c", "Pending", "", json::array()), pod("d", "Running", "", json::array())});
  ASSERT_EQ(targets.size(), 2u);
  EXPECT_EQ(targets[0].pod, "tensor-fusion-sys/a");
  EXPECT_EQ(targets[0].host, "10.0.0.1");
  EXPECT_EQ(targets[0].port, 9100);
  EXPECT_EQ(targets[1].port, k8s::api::kHypervisorPort) << "no port named api: the default";
}

TEST(UsageScrapeTest, PodsAreFoundByTheirVgpuName) {
  protocol::SyncedObject p{"Pod", "ml", "w-0", "1", {{"metadata", {{"name", "w-0"}, {"namespace", "ml"}, {"uid", "aa-bb"}}}}};
  protocol::SyncedObject g{"GPU", "", "gpu-1", "1", {{"metadata", {{"name", "gpu-1"}, {"uid", "cc"}}}}};
  auto m = podsByVgpuName({p, g});
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m.at("pod-aabb"), "ml/w-0");
}

TEST(UsageScrapeTest, MalformedAnswersGiveNoPoints) {
  const std::map<std::string, std::string> pods = {{"pod-1", "ml/a"}};
  json devices = {{"devices", json::array({{{"uuid", 5}}, {{"uuid", "GPU-X"}, {"utilization", "busy"}, {"memoryTotal", 0}},
                                           {{"uuid", "GPU-Y"}, {"present", false}, {"utilization", 50}}})}};
  json vgpus = {{"vgpus", json::array({{{"request", {{"name", "pod-1"}}}}, {{"usage", {{"computeShare", 0.5}}}},
                                       {{"request", {{"name", "pod-1"}, {"vramLimit", 0}}}, {"usage", {{"computeShare", 2.0}}}}})}};
  auto s = byName(usagePoints(devices, vgpus, pods, 0));
  EXPECT_EQ(s.size(), 1u) << "only the last vGPU's compute share, clamped";
  EXPECT_EQ(s["vgpu.ml/a.compute"], 1.0);
  EXPECT_TRUE(usagePoints(json::object(), json::array(), pods, 0).empty());
}

}  // namespace
}  // namespace tf::agent
