// k8s_bench: list and watch N GPU objects (tensor-fusion.ai/v1, with a full status as the
// hypervisor writes it) through tf_k8s, beside `kubectl get --raw` doing the same list, in one
// run against the cluster KUBECONFIG names; the GPU CRD comes from deploy/crds. Each measured
// list runs in a child process, so its peak RSS (ru_maxrss) is its own.
//
//   KUBECONFIG=... k8s_bench [count=10000] [kubectl=/usr/bin/kubectl]
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <cstdlib>

#include "k8s/api/v1/types.h"
#include "k8s/client.h"
#include "k8s/informer.h"

namespace {

using namespace tf::k8s;
using nlohmann::json;
using Steady = std::chrono::steady_clock;
const char* kNs = "";  // GPUs are cluster-scoped
const ResourceRef& kGpus = tf::k8s::api::v1::Gpu::kResource;

// A GPU object's status as the hypervisor writes it (src/hypervisor/cluster).
json gpuStatus(int i) {
  char uuid[64];
  std::snprintf(uuid, sizeof uuid, "GPU-bench000-0000-0000-0000-%012d", i);
  json cap = {{"tflops", "989400m"}, {"vram", "80Gi"}};
  return {{"phase", "Running"}, {"vendor", "NVIDIA"}, {"model", "NVIDIA H100 80GB HBM3"}, {"gpuModel", "H100"},
          {"capacity", cap}, {"available", cap}, {"uuid", uuid}, {"index", i % 8}, {"numaNode", (i % 8) / 4},
          {"nodeSelector", {{"kubernetes.io/hostname", "bench-node-" + std::to_string(i / 8)}}},
          {"isolationMode", "soft"}, {"usedBy", "tensor-fusion"}, {"message", "managed by the benchmark"}};
}

struct Run {
  double seconds = 0;
  long peakKiB = 0;
  int status = -1;
};

// Runs `body` in a child; returns its wall time and peak RSS. Exit code 0 = success.
template <typename Fn> Run inChild(Fn body) {
  auto t0 = Steady::now();
  pid_t pid = fork();
  if (pid == 0) _exit(body());
  int status = 0;
  rusage ru{};
  wait4(pid, &status, 0, &ru);
  return {std::chrono::duration<double>(Steady::now() - t0).count(), ru.ru_maxrss,
          WIFEXITED(status) ? WEXITSTATUS(status) : 128};
}

void print(const char* what, const Run& r, const Run& baseline) {
  std::printf("%-44s %8.2f s  %8.1f MiB  (time x%.2f, memory x%.2f of kubectl)%s\n", what, r.seconds,
              r.peakKiB / 1024.0, r.seconds / baseline.seconds, double(r.peakKiB) / baseline.peakKiB,
              r.status == 0 ? "" : "  FAILED");
}

}  // namespace

int main(int argc, char** argv) {
  int count = argc > 1 ? std::atoi(argv[1]) : 10000;
  std::string kubectl = argc > 2 ? argv[2] : "/usr/bin/kubectl";
  auto cfg = loadDefaultConfig();
  if (!cfg) {
    std::fprintf(stderr, "k8s_bench: %s\n", cfg.status().toString().c_str());
    return 2;
  }
  auto client = Client::create(*cfg, ClientOptions{.qps = 0});
  if (!client) return 2;
  Client& c = **client;
  // The GPU CRD as deploy/ installs it, established before the objects are made.
  const std::string apply = kubectl + " apply -f " + TF_GPU_CRD + " >/dev/null";
  if (std::system(apply.c_str()) != 0) {
    std::fprintf(stderr, "k8s_bench: %s failed\n", apply.c_str());
    return 2;
  }
  bool established = false;
  for (int i = 0; i < 300 && !established; ++i) {
    established = static_cast<bool>(c.list(kGpus, kNs, {.limit = 1}));
    if (!established) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!established) {
    std::fprintf(stderr, "k8s_bench: the GPU CRD is not served\n");
    return 2;
  }

  // Fill: `count` GPUs, each created then given its status, 8 writers (not measured against
  // anything; printed for scale).
  auto existing = c.listAll(kGpus, kNs, {.labelSelector = "bench=1", .limit = 500});
  size_t have = existing ? existing->items.size() : 0;
  auto f0 = Steady::now();
  std::atomic<int> next{static_cast<int>(have)}, failed{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 8; ++t)
    writers.emplace_back([&] {
      for (int i; (i = next++) < count;) {
        const std::string name = "bench-gpu-" + std::to_string(i);
        json g = {{"apiVersion", kGpus.apiVersion()}, {"kind", kGpus.kind},
                  {"metadata", {{"name", name}, {"labels", {{"bench", "1"}, {"tensor-fusion.ai/managed-by", "bench-node-" + std::to_string(i / 8)}}}}}};
        auto r = c.create(kGpus, g);
        if (!r && !r.error().isAlreadyExists()) {
          failed++;
          continue;
        }
        auto st = c.patch(kGpus, kNs, name, PatchType::Merge, {{"status", gpuStatus(i)}}, {.subresource = "status"});
        if (!st) failed++;
      }
    });
  for (auto& t : writers) t.join();
  std::printf("k8s_bench: %d GPUs in place (%zu existed), created with status in %.1f s, %d failures\n", count, have,
              std::chrono::duration<double>(Steady::now() - f0).count(), failed.load());
  std::fflush(stdout);  // before the forks below, or each child prints it again

  std::string path = kGpus.collectionPath(kNs);
  Run kubectlRun = inChild([&] {
    // Output to /dev/null: we measure the fetch and decode, not a terminal.
    freopen("/dev/null", "w", stdout);
    execl(kubectl.c_str(), "kubectl", "get", "--raw", path.c_str(), static_cast<char*>(nullptr));
    return 127;
  });
  Run one = inChild([&] {
    auto l = c.list(kGpus, kNs);
    return l && static_cast<int>(l->items.size()) >= count ? 0 : 1;
  });
  Run paged = inChild([&] {
    auto l = c.listAll(kGpus, kNs, {.limit = 500});
    return l && static_cast<int>(l->items.size()) >= count ? 0 : 1;
  });
  // Watch from resourceVersion 0: the apiserver replays every object as ADDED.
  Run watch = inChild([&] {
    std::atomic<int> seen{0};
    StopSignal stop;
    auto st = c.watch(kGpus, kNs, {.resourceVersion = "0", .timeoutSeconds = 120},
                      [&](const WatchEvent& ev) {
                        if (ev.type == WatchEventType::Added && ++seen >= count) return false;
                        return true;
                      }, &stop);
    return st && seen >= count ? 0 : 1;
  });
  Run informer = inChild([&] {
    Informer inf(makeListerWatcher(c, kGpus, kNs, {.pageSize = 500}));
    inf.start();
    bool ok = inf.waitForSync(std::chrono::seconds(300)) && static_cast<int>(inf.store().size()) >= count;
    inf.stop();
    return ok ? 0 : 1;
  });
  std::printf("\n%d objects of %s (each in its own process: wall time, peak RSS)\n", count, path.c_str());
  std::printf("%-44s %8.2f s  %8.1f MiB%s\n", "kubectl get --raw (baseline)", kubectlRun.seconds,
              kubectlRun.peakKiB / 1024.0, kubectlRun.status == 0 ? "" : "  FAILED");
  print("tf_k8s list, one request", one, kubectlRun);
  print("tf_k8s list, pages of 500", paged, kubectlRun);
  print("tf_k8s watch from RV 0 (10k ADDED events)", watch, kubectlRun);
  print("tf_k8s informer sync (paged list + store)", informer, kubectlRun);
  bool ok = kubectlRun.status == 0 && one.status == 0 && paged.status == 0 && watch.status == 0 && informer.status == 0;
  if (argc > 3 && std::string(argv[3]) == "--cleanup") {
    auto r = c.removeCollection(kGpus, kNs, {.labelSelector = "bench=1"});
    if (!r) std::fprintf(stderr, "k8s_bench: cleanup: %s\n", r.error().toString().c_str());
  }
  return ok ? 0 : 1;
}
