// pods_bench: pods bound per second end to end through the real kube-scheduler, with our
// extender (the tensor-fusion-scheduler profile: filter, prioritize and bind over HTTP to
// `tensor-fusion controller`, which records gpu-ids before it binds) beside the same pods given
// to the default scheduler, in one run. Nodes and GPUs are objects only (no kubelets): what is
// measured is scheduling, from the first pod created to the last one bound.
//
// pods_bench.sh brings up what it needs (a control-plane-only cluster, the controller, the second
// kube-scheduler) and runs this against it:
//
//   KUBECONFIG=... pods_bench [nodes=50] [pods=300]
//
// Each extender-bound pod is checked: its gpu-ids name GPUs of the node it was bound to, and no
// GPU is booked past its capacity.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "k8s/api/v1/types.h"
#include "k8s/builtin.h"
#include "k8s/client.h"
#include "k8s/informer.h"

namespace {

using namespace tf::k8s;
using nlohmann::json;
using Steady = std::chrono::steady_clock;
const ResourceRef& kGpus = tf::k8s::api::v1::Gpu::kResource;
constexpr int kGpusPerNode = 8;
constexpr const char* kNs = "tf-pods-bench";
// Each pod asks for 10 GiB of an 80 GiB GPU's VRAM: 8 fit a GPU.
constexpr long long kVramPerPod = 10LL << 30;
constexpr long long kGpuVram = 80LL << 30;

std::string nodeName(int i) { return "bench-node-" + std::to_string(i); }

json nodeObject(int i) {
  json resources = {{"cpu", "64"}, {"memory", "256Gi"}, {"pods", "250"}};
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata", {{"name", nodeName(i)}, {"labels", {{"kubernetes.io/hostname", nodeName(i)}, {"pods-bench", "1"}}}}},
          {"status",
           {{"capacity", resources},
            {"allocatable", resources},
            {"conditions", json::array({{{"type", "Ready"}, {"status", "True"}, {"reason", "KubeletReady"}}})}}}};
}

json gpuStatus(int node, int k) {
  json cap = {{"tflops", "989400m"}, {"vram", "80Gi"}};
  return {{"phase", "Running"}, {"vendor", "NVIDIA"}, {"model", "NVIDIA H100 80GB HBM3"}, {"gpuModel", "H100"},
          {"capacity", cap}, {"available", cap}, {"uuid", "GPU-bench-" + std::to_string(node) + "-" + std::to_string(k)},
          {"index", k}, {"nodeSelector", {{"kubernetes.io/hostname", nodeName(node)}}}, {"isolationMode", "soft"},
          {"usedBy", "tensor-fusion"}, {"message", "managed by the benchmark"}};
}

// The same pod for both schedulers; ours gets the worker label and resource annotations the
// webhook would have written. No kubelet will run it: it tolerates the taints a node without
// one gets, so the node lifecycle controller cannot change the answer mid-run.
json podObject(const std::string& run, int i, bool ours) {
  json meta = {{"name", run + "-" + std::to_string(i)}, {"namespace", kNs}, {"labels", {{"pods-bench-run", run}}}};
  if (ours) {
    meta["labels"]["tensor-fusion.ai/component"] = "worker";
    meta["annotations"] = {{"tensor-fusion.ai/vram-request", "10Gi"}, {"tensor-fusion.ai/vram-limit", "10Gi"},
                           {"tensor-fusion.ai/tflops-request", "10"}, {"tensor-fusion.ai/tflops-limit", "20"},
                           {"tensor-fusion.ai/qos", "medium"}, {"tensor-fusion.ai/isolation", "soft"}};
  }
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", meta},
          {"spec",
           {{"schedulerName", ours ? "tensor-fusion-scheduler" : "default-scheduler"},
            {"nodeSelector", {{"pods-bench", "1"}}},
            {"tolerations", json::array({{{"operator", "Exists"}}})},
            {"containers", json::array({{{"name", "app"}, {"image", "localhost/none:bench"},
                                         {"resources", {{"requests", {{"cpu", "10m"}, {"memory", "16Mi"}}}}}}})}}}};
}

template <typename Fn> int inParallel(int count, int threads, Fn make) {
  std::atomic<int> next{0}, failed{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      for (int i; (i = next++) < count;)
        if (!make(i)) failed++;
    });
  for (auto& t : ts) t.join();
  return failed.load();
}

struct Outcome {
  double seconds = 0;
  int bound = 0;
};

// Creates `count` pods of `run` and waits until every one is bound (or `limit` passes).
Outcome schedule(Client& c, Informer& pods, const std::string& run, int count, bool ours,
                 std::chrono::seconds limit) {
  const auto t0 = Steady::now();
  std::thread creator([&] {
    int failed = inParallel(count, 4, [&](int i) {
      auto r = c.create(builtin::kPods, podObject(run, i, ours));
      if (!r) std::fprintf(stderr, "pods_bench: creating %s-%d: %s\n", run.c_str(), i, r.error().toString().c_str());
      return static_cast<bool>(r);
    });
    if (failed) std::fprintf(stderr, "pods_bench: %d pods of %s not created\n", failed, run.c_str());
  });
  Outcome o;
  for (;;) {
    int bound = 0;
    for (const auto& ptr : pods.store().list())
      if (const json& p = *ptr; p["metadata"].value("labels", json::object()).value("pods-bench-run", "") == run &&
          !p["spec"].value("nodeName", "").empty())
        ++bound;
    o.bound = bound;
    o.seconds = std::chrono::duration<double>(Steady::now() - t0).count();
    if (bound >= count || Steady::now() - t0 > limit) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  creator.join();
  return o;
}

// Every extender-bound pod: gpu-ids names GPUs of its node; no GPU booked past its VRAM.
bool checkBookings(Informer& pods, const std::string& run) {
  std::map<std::string, long long> booked;
  bool ok = true;
  for (const auto& ptr : pods.store().list()) {
    const json& p = *ptr;
    if (p["metadata"].value("labels", json::object()).value("pods-bench-run", "") != run) continue;
    const std::string node = p["spec"].value("nodeName", "");
    const std::string ids =
        p["metadata"].value("annotations", json::object()).value("tensor-fusion.ai/gpu-ids", "");
    if (ids.empty() || ids.find(',') != std::string::npos) {
      std::fprintf(stderr, "pods_bench: %s has gpu-ids \"%s\"\n", p["metadata"].value("name", "").c_str(), ids.c_str());
      ok = false;
      continue;
    }
    // bench-node-N-K ("GPU-bench-N-K" lower-cased by the object name rule)
    if (ids.rfind("gpu-bench-" + node.substr(std::string("bench-node-").size()) + "-", 0) != 0) {
      std::fprintf(stderr, "pods_bench: %s is on %s but holds %s\n", p["metadata"].value("name", "").c_str(),
                   node.c_str(), ids.c_str());
      ok = false;
    }
    booked[ids] += kVramPerPod;
  }
  for (const auto& [gpu, bytes] : booked)
    if (bytes > kGpuVram) {
      std::fprintf(stderr, "pods_bench: %s is booked %lld GiB of 80\n", gpu.c_str(), bytes >> 30);
      ok = false;
    }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const int nodes = argc > 1 ? std::atoi(argv[1]) : 50;
  const int count = argc > 2 ? std::atoi(argv[2]) : 300;
  if (nodes < 1 || count < 1 || count > nodes * kGpusPerNode * 8) {
    std::fprintf(stderr, "pods_bench: want 1..%d pods on %d nodes\n", nodes * kGpusPerNode * 8, nodes);
    return 2;
  }
  auto cfg = loadDefaultConfig();
  if (!cfg) {
    std::fprintf(stderr, "pods_bench: %s\n", cfg.status().toString().c_str());
    return 2;
  }
  auto client = Client::create(*cfg, ClientOptions{.qps = 0});
  if (!client) return 2;
  Client& c = **client;

  (void)c.create(builtin::kNamespaces, {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", kNs}}}});
  // Nodes (status written as a kubelet's registration does) and their GPUs, with status.
  int failed = inParallel(nodes, 4, [&](int i) {
    auto r = c.create(builtin::kNodes, nodeObject(i));
    if (!r && !r.error().isAlreadyExists()) return false;
    return static_cast<bool>(
        c.patch(builtin::kNodes, "", nodeName(i), PatchType::Merge, {{"status", nodeObject(i)["status"]}}, {.subresource = "status"}));
  });
  failed += inParallel(nodes * kGpusPerNode, 8, [&](int i) {
    const int node = i / kGpusPerNode, k = i % kGpusPerNode;
    const std::string name = "gpu-bench-" + std::to_string(node) + "-" + std::to_string(k);
    auto r = c.create(kGpus, {{"apiVersion", kGpus.apiVersion()}, {"kind", kGpus.kind},
                              {"metadata", {{"name", name}, {"labels", {{"pods-bench", "1"}}}}}});
    if (!r && !r.error().isAlreadyExists()) return false;
    return static_cast<bool>(
        c.patch(kGpus, "", name, PatchType::Merge, {{"status", gpuStatus(node, k)}}, {.subresource = "status"}));
  });
  if (failed) {
    std::fprintf(stderr, "pods_bench: %d nodes or GPUs could not be made\n", failed);
    return 1;
  }

  Informer pods(makeListerWatcher(c, builtin::kPods, kNs, {}));
  pods.start();
  if (!pods.waitForSync(std::chrono::seconds(60))) {
    std::fprintf(stderr, "pods_bench: the pod informer did not sync\n");
    return 1;
  }
  // Warm-up, one pod each, until ours binds (the controller's ledger has seen the GPUs).
  for (int attempt = 0;; ++attempt) {
    Outcome w = schedule(c, pods, "warmup" + std::to_string(attempt), 1, true, std::chrono::seconds(10));
    if (w.bound == 1) break;
    if (attempt == 5) {
      std::fprintf(stderr, "pods_bench: the tensor-fusion-scheduler binds nothing (is it and the controller up?)\n");
      return 1;
    }
  }
  (void)schedule(c, pods, "warmup-default", 1, false, std::chrono::seconds(30));

  const auto limit = std::chrono::seconds(300);
  Outcome base = schedule(c, pods, "default", count, false, limit);
  Outcome ours = schedule(c, pods, "tf", count, true, limit);
  const bool bookingsOk = checkBookings(pods, "tf");
  pods.stop();
  std::printf("%d pods on %d nodes x %d GPUs, created by 4 writers, first create to last bind:\n", count, nodes,
              kGpusPerNode);
  std::printf("  default-scheduler (baseline)            %6.2f s  %7.1f pods/s  (%d bound)\n", base.seconds,
              base.bound / base.seconds, base.bound);
  std::printf("  tensor-fusion-scheduler + extender      %6.2f s  %7.1f pods/s  (%d bound, gpu-ids checked: %s)\n",
              ours.seconds, ours.bound / ours.seconds, ours.bound, bookingsOk ? "ok" : "WRONG");
  std::printf("  ratio (ours / default)                  %6.2fx\n", (ours.bound / ours.seconds) / (base.bound / base.seconds));
  return base.bound == count && ours.bound == count && bookingsOk ? 0 : 1;
}
