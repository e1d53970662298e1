// console_fixture: a portal (in-process, real TLS) with two clusters: "acme:prod", whose agent
// (TestAgent) mirrors a small fixture cluster (a pool, 2 nodes, 4 GPUs, vGPU pods, 2 workloads),
// streams utilization every 2 s after 10 minutes of back-filled history, and runs cordonGpu
// commands; and "acme:staging", never enrolled. For the browser tests (console_browser_test.mjs)
// and for looking at the console by hand.
//
//   console_fixture DATA_DIR ADMIN_PASSWORD   prints "READY <port>", serves until stdin closes
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include "portal/portal.h"
#include "test_agent.h"

namespace {
using namespace tf;
using namespace tf::portal;
using nlohmann::json;
using protocol::SyncedObject;

constexpr int kGpus = 4;
constexpr const char* kCordoned = "tensor-fusion.ai/cordoned";

std::string gpuName(int i) { return "gpu-" + std::to_string(i); }
std::string nodeOf(int i) { return "node-" + std::string(i < 2 ? "a" : "b"); }

// Fraction of GPU i allocated at time t: a slow wave per GPU, so the charts have shape.
double load(int i, int64_t tMs) { return 0.45 + 0.35 * std::sin(double(tMs) / 90000.0 + i * 1.3); }

json gpuBody(int i, bool cordoned, uint64_t rv) {
  const double f = load(i, systemNowMs());
  json labels = json::object();
  if (cordoned) labels[kCordoned] = "true";
  return {{"metadata", {{"name", gpuName(i)}, {"resourceVersion", std::to_string(rv)}, {"labels", labels}}},
          {"status",
           {{"phase", "Running"}, {"gpuModel", "NVIDIA H100 80GB"}, {"uuid", "GPU-7f3a2c1" + std::to_string(i)},
            {"nodeSelector", {{"kubernetes.io/hostname", nodeOf(i)}}},
            {"capacity", {{"tflops", "989"}, {"vram", "80Gi"}}},
            {"available", {{"tflops", std::to_string(int(989 * (1 - f)))}, {"vram", std::to_string(int(80 * (1 - f))) + "Gi"}}},
            {"runningApps", json::array({{{"name", "llm-serve"}, {"namespace", "ml"}, {"count", i % 2 + 1}}})}}}};
}

SyncedObject gpu(int i, bool cordoned, uint64_t rv) {
  return {"GPU", "", gpuName(i), std::to_string(rv), gpuBody(i, cordoned, rv)};
}

SyncedObject pod(const std::string& name, const std::string& workload, int gpuIndex, const std::string& tflops,
                 const std::string& vram) {
  return {"Pod", "ml", name, "1",
          {{"metadata", {{"name", name}, {"namespace", "ml"}, {"resourceVersion", "1"},
                         {"labels", {{"tensor-fusion.ai/component", "worker"}, {"tensor-fusion.ai/workload", workload}}},
                         {"annotations", {{"tensor-fusion.ai/gpu-ids", gpuName(gpuIndex)},
                                          {"tensor-fusion.ai/tflops-request", tflops},
                                          {"tensor-fusion.ai/vram-request", vram}}}}},
           {"spec", {{"nodeName", nodeOf(gpuIndex)}}},
           {"status", {{"phase", "Running"}}}}};
}

SyncedObject workload(const std::string& name, int replicas, const std::string& tflops, const std::string& vram) {
  return {"TensorFusionWorkload", "ml", name, "1",
          {{"metadata", {{"name", name}, {"namespace", "ml"}, {"resourceVersion", "1"}}},
           {"spec", {{"replicas", replicas}, {"poolName", "default-pool"}, {"qos", "high"}, {"isLocalGPU", true},
                     {"resources", {{"requests", {{"tflops", tflops}, {"vram", vram}}}}}}},
           {"status", {{"phase", "Running"}, {"workerCount", replicas}, {"readyWorkers", replicas}}}}};
}

std::vector<SyncedObject> fixtureObjects() {
  std::vector<SyncedObject> out;
  out.push_back({"GPUPool", "", "default-pool", "1",
                 {{"metadata", {{"name", "default-pool"}, {"resourceVersion", "1"}}},
                  {"status", {{"phase", "Running"}, {"totalNodes", 2}, {"totalGPUs", kGpus}, {"totalTFlops", "3956"},
                              {"availableTFlops", "2100"}, {"totalVRAM", "320Gi"}, {"availableVRAM", "150Gi"}}}}});
  for (const char* n : {"node-a", "node-b"})
    out.push_back({"GPUNode", "", n, "1",
                   {{"metadata", {{"name", n}, {"resourceVersion", "1"}}},
                    {"status", {{"phase", "Running"}, {"totalGPUs", 2}, {"totalTFlops", "1978"}, {"availableTFlops", "1050"},
                                {"totalVRAM", "160Gi"}, {"availableVRAM", "75Gi"},
                                {"hypervisorStatus", {{"hypervisorState", "Running"}}}}}}});
  for (int i = 0; i < kGpus; ++i) out.push_back(gpu(i, false, 1));
  out.push_back(pod("llm-serve-0", "llm-serve", 0, "200", "20Gi"));
  out.push_back(pod("llm-serve-1", "llm-serve", 1, "200", "20Gi"));
  out.push_back(pod("trainer-0", "trainer", 2, "600", "60Gi"));
  out.push_back(workload("llm-serve", 2, "200", "20Gi"));
  out.push_back(workload("trainer", 1, "600", "60Gi"));
  return out;
}

protocol::Metrics sample(int64_t tMs) {
  protocol::Metrics m;
  for (int i = 0; i < kGpus; ++i) {
    const std::string p = "gpu." + gpuName(i) + ".";
    m.points.push_back({p + "tflops", tMs, load(i, tMs)});
    m.points.push_back({p + "vram", tMs, std::min(1.0, load(i, tMs) * 0.8 + 0.1)});
    m.points.push_back({p + "apps", tMs, double(i % 2 + 1)});
    m.points.push_back({p + "utilization", tMs, std::min(1.0, load(i, tMs) * 0.9)});  // measured
  }
  // Measured per vGPU pod (the hypervisors' figures, as the agent names them).
  const std::pair<const char*, int> pods[] = {{"llm-serve-0", 0}, {"llm-serve-1", 1}, {"trainer-0", 2}};
  for (const auto& [name, i] : pods) {
    const std::string p = std::string("vgpu.ml/") + name + ".";
    m.points.push_back({p + "compute", tMs, load(i, tMs) * 0.3});
    m.points.push_back({p + "vram", tMs, std::min(1.0, load(i, tMs) + 0.2)});
  }
  return m;
}

int fail(const std::string& what) {
  std::fprintf(stderr, "console_fixture: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return std::fprintf(stderr, "usage: console_fixture DATA_DIR ADMIN_PASSWORD\n"), 2;
  PortalOptions o;
  o.dataDir = argv[1];
  o.adminPassword = argv[2];
  std::filesystem::create_directories(o.dataDir);
  auto p = Portal::start(o);
  if (!p) return fail("portal: " + p.status().toString());
  auto& portal = *p;

  testing::ConsoleClient admin(portal->port());
  if (admin.login("admin", argv[2]).status != 200) return fail("admin login");
  auto created = admin.post("/api/v1/clusters", {{"agentId", "acme:prod"}, {"name", "Production"}});
  if (created.status != 201) return fail("create cluster: " + created.body);
  if (admin.post("/api/v1/clusters", {{"agentId", "acme:staging"}, {"name", "Staging"}}).status != 201)
    return fail("create second cluster");

  testing::TestAgent agent(portal->port(), portal->pin());
  auto key = protocol::Ed25519Key::generate();
  if (!key || !agent.connect().isOk()) return fail("agent connect");
  const uint64_t epoch = 1;
  if (!agent.authenticate("acme:prod", *key, created.json()["enrollToken"].get<std::string>(), epoch, 0).ok)
    return fail("agent enroll");
  if (!agent.send(protocol::Snapshot{epoch, 1, fixtureObjects()}).isOk() || agent.read().type() != "ack")
    return fail("snapshot");
  // Ten minutes of history, one point per GPU and measure every 10 s.
  const int64_t now = systemNowMs();
  for (int64_t t = now - 600000; t < now; t += 10000)
    if (!agent.send(sample(t)).isOk()) return fail("metrics backfill");

  std::atomic<bool> done{false};
  std::thread stdinWatch([&] {
    for (std::string line; std::getline(std::cin, line);) {}
    done = true;
  });
  std::printf("READY %d\n", portal->port());
  std::fflush(stdout);

  // Every 2 s: a utilization sample and one GPU's new allocation (a delta). Reading until that
  // delta's ack picks up the commands that came meanwhile (a read never times out here: a timed
  // out read would leave the TLS stream unusable).
  uint64_t seq = 1, rv = 100;
  bool cordoned[kGpus] = {};
  // Revoked from the console, say: the portal serves on without its agent until stdin closes.
  auto agentGone = [&](const std::string& why) {
    std::fprintf(stderr, "console_fixture: %s; the portal serves on\n", why.c_str());
    while (!done) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  };
  auto sendGpu = [&](int i) { return agent.send(protocol::Delta{epoch, ++seq, {gpu(i, cordoned[i], ++rv)}, {}}); };
  for (int round = 0; !done; ++round) {
    if (!agent.send(sample(systemNowMs())).isOk() || !agent.send(protocol::Heartbeat{seq, 0, 0}).isOk() ||
        !sendGpu(round % kGpus).isOk()) {
      agentGone("the agent could not send");
      break;
    }
    for (uint64_t acked = 0; acked < seq;) {
      auto f = agent.read(std::chrono::seconds(30));
      if (f.closed || f.timedOut) {
        agentGone("the agent's connection ended (" + std::to_string(f.closeCode) + ")");
        break;
      }
      const json msg = f.json(), body = msg.value("body", json::object());
      if (f.type() == "ack") acked = body.value("seq", uint64_t(0));
      if (f.type() != "command") continue;
      // cordonGpu: the GPU's label changes (a delta), then the result, as the real agent does.
      const json args = body.value("args", json::object());
      const std::string name = args.value("gpu", "");
      protocol::CommandResult result{body.value("id", ""), false, "", json::object()};
      int index = -1;
      for (int i = 0; i < kGpus; ++i)
        if (gpuName(i) == name) index = i;
      if (body.value("verb", "") != "cordonGpu") result.detail = "the fixture runs only cordonGpu";
      else if (index < 0) result.detail = "no GPU " + name;
      else {
        cordoned[index] = args.value("cordon", true);
        if (!sendGpu(index).isOk()) return fail("delta");
        result.ok = true;
        result.detail = cordoned[index] ? "cordoned" : "uncordoned";
        result.result = {{"resourceVersion", std::to_string(rv)}};
      }
      if (!agent.send(result).isOk()) return fail("command result");
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));  // the agent's pace, not a wait for something
  }
  stdinWatch.join();
  return 0;
}
