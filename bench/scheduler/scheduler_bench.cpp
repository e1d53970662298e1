// scheduler_bench: what our extender adds to one scheduling decision. For N GPUs (8 per node,
// half of them carrying three bookings) it times, per decision, what the HTTP routes do for
// kube-scheduler's filter and prioritize calls (nodeCacheCapable: every node's name in the
// request): parse, decide over the ledger, serialise. The baseline in the same run is the bare
// JSON round trip of the same two requests (parse, answer "every node fits" / "score 0",
// serialise), so the ratio is the ledger's share. Prints p50/p99 per decision.
//
//   scheduler_bench [iterations=300]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "allocator/allocator.h"
#include "scheduler/extender.h"
#include "scheduler/extender_api.h"

namespace {
using namespace tf;
using Steady = std::chrono::steady_clock;

class NoOps : public scheduler::ClusterOps {
public:
  Result<nlohmann::json> getPod(const std::string&, const std::string&) override { return notFound("bench"); }
  Status annotatePod(const std::string&, const std::string&, const std::map<std::string, std::string>&) override {
    return Status::ok();
  }
  Status bindPod(const std::string&, const std::string&, const std::string&, const std::string&) override {
    return Status::ok();
  }
  Status deletePod(const std::string&, const std::string&, const std::string&) override { return Status::ok(); }
  void podEvent(const nlohmann::json&, bool, const std::string&, const std::string&) override {}
};

// A worker pod as kube-scheduler sends it (metadata, spec, status: about 2 KB).
nlohmann::json benchPod() {
  nlohmann::json ann = {{"tensor-fusion.ai/gpupool", "pool"},     {"tensor-fusion.ai/tflops-request", "10"},
                        {"tensor-fusion.ai/tflops-limit", "20"},  {"tensor-fusion.ai/vram-request", "1Gi"},
                        {"tensor-fusion.ai/vram-limit", "2Gi"},   {"tensor-fusion.ai/gpu-count", "1"},
                        {"tensor-fusion.ai/qos", "medium"},       {"tensor-fusion.ai/isolation", "soft"},
                        {"tensor-fusion.ai/is-local-gpu", "true"}, {"tensor-fusion.ai/gpu-model", "H100"}};
  return {{"metadata",
           {{"name", "bench-pod"}, {"namespace", "default"}, {"uid", "6f1c0d3e-0000-4000-8000-000000000001"},
            {"creationTimestamp", "2026-01-01T00:00:00Z"}, {"annotations", ann},
            {"labels", {{"tensor-fusion.ai/component", "worker"}, {"tensor-fusion.ai/workload", "bench"}}}}},
          {"spec",
           {{"schedulerName", "tensor-fusion-scheduler"},
            {"containers", {{{"name", "app"}, {"image", "localhost/app:dev"},
                             {"resources", {{"requests", {{"cpu", "100m"}, {"memory", "128Mi"}}}}},
                             {"env", {{{"name", "A"}, {"value", "1"}}, {{"name", "B"}, {"value", "2"}}}}}}}}},
          {"status", {{"phase", "Pending"}}}};
}

struct Stats {
  double p50, p99;
};
Stats stats(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[std::min(us.size() - 1, us.size() * 99 / 100)]};
}

void run(int gpus, int iterations) {
  allocator::Allocator ledger;
  NoOps ops;
  scheduler::Extender ext(ledger, ops);
  std::vector<std::string> nodes;
  for (int i = 0; i < gpus; ++i) {
    allocator::Gpu g;
    g.name = "gpu-" + std::to_string(i);
    g.node = "node-" + std::to_string(i / 8);
    g.pool = "pool";
    g.model = "H100";
    g.vendor = "NVIDIA";
    g.phase = "Running";
    g.isolationMode = "soft";
    g.capacity = {989400, 80LL << 30};
    ledger.upsertGpu(g);
    if (i % 8 == 0) nodes.push_back(g.node);
    if (i % 2 == 0)
      for (int b = 0; b < 3; ++b) {
        allocator::Request r;
        r.uid = g.name + "-" + std::to_string(b);
        r.ns = "default";
        r.name = r.uid;
        r.request = {100000, -1, 8LL << 30};
        r.gpuIds = {g.name};
        ledger.observe(r, g.node);
      }
  }
  ext.setReady(true);
  const std::string body = nlohmann::json{{"Pod", benchPod()}, {"Nodes", nullptr}, {"NodeNames", nodes}}.dump();
  std::vector<double> ours, bare;
  size_t sink = 0;
  for (int i = 0; i < iterations + 20; ++i) {
    auto t0 = Steady::now();
    scheduler::Reply f = ext.filter(body);
    scheduler::Reply p = ext.prioritize(body);
    sink += f.body.dump().size() + p.body.dump().size();
    auto t1 = Steady::now();
    // Baseline: the same requests parsed and answered without the ledger.
    for (int verb = 0; verb < 2; ++verb) {
      auto args = scheduler::parseExtenderArgs(body);
      if (verb == 0) {
        scheduler::FilterResult r;
        r.nodeNames = args->nodeNames;
        sink += scheduler::encodeFilterResult(r, *args).dump().size();
      } else {
        std::vector<scheduler::HostPriority> list;
        for (const auto& n : args->nodeNames) list.push_back({n, 0});
        sink += scheduler::encodeHostPriorities(list).dump().size();
      }
    }
    auto t2 = Steady::now();
    if (i < 20) continue;  // warm-up
    ours.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    bare.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
  }
  // Sanity: the decision is real (most nodes fit, none is refused by mistake).
  auto f = ext.filter(body).body;
  if (f["NodeNames"].size() != nodes.size() || !f["FailedNodes"].empty()) {
    std::fprintf(stderr, "scheduler_bench: unexpected filter result: %zu of %zu nodes fit\n", f["NodeNames"].size(),
                 nodes.size());
    std::exit(1);
  }
  Stats o = stats(ours), b = stats(bare);
  std::printf("%6d GPUs %5zu nodes: extender filter+prioritize p50 %8.1f us  p99 %8.1f us | "
              "JSON round trip only p50 %8.1f us  p99 %8.1f us | ratio p50 %.2fx p99 %.2fx  (%zu)\n",
              gpus, nodes.size(), o.p50, o.p99, b.p50, b.p99, o.p50 / b.p50, o.p99 / b.p99, sink % 10);
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 300;
  for (int gpus : {1000, 10000}) run(gpus, iterations);
  return 0;
}
