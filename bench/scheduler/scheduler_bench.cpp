// scheduler_bench: what our extender adds to one scheduling decision. For N GPUs (8 per node,
// half of them carrying three bookings) it times, per decision, what the HTTP routes do for
// kube-scheduler's filter and prioritize calls (nodeCacheCapable: every node's name in the
// request; prioritize gets the nodes that passed): read the arguments, decide over the ledger,
// write the answers. Two baselines in the same run: the same two requests read and answered
// "every node fits" / "score 0" by our wire code without the ledger (the ledger's share), and
// the same round trip through nlohmann documents (parse, build, dump), how a JSON API is
// usually written. Each figure is wall time and this thread's CPU time per decision, p50/p99:
// on a busy machine wall time includes waiting for a core, CPU time is the work.
//
//   scheduler_bench [iterations=300]
#include <time.h>

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
  Result<nlohmann::json> readPod(const std::string&, const std::string&) override { return notFound("bench"); }
  Status bindPod(const std::string&, const std::string&, const std::string&, const std::string&,
                 const std::map<std::string, std::string>&) override {
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

double threadCpuUs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

// Wall and CPU time of each call of `fn`, after `warmup` calls.
struct Timings {
  std::vector<double> wall, cpu;
  template <typename Fn> void add(Fn&& fn) {
    const double c0 = threadCpuUs();
    const auto t0 = Steady::now();
    fn();
    wall.push_back(std::chrono::duration<double, std::micro>(Steady::now() - t0).count());
    cpu.push_back(threadCpuUs() - c0);
  }
};

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
  Timings ours, wire, dom;
  size_t sink = 0;
  for (int i = 0; i < iterations + 20; ++i) {
    const bool warm = i >= 20;
    Timings scratch;
    (warm ? ours : scratch).add([&] {
      scheduler::Reply f = ext.filter(body);
      scheduler::Reply p = ext.prioritize(body);
      sink += f.body.size() + p.body.size();
    });
    // Baseline 1: our wire code alone, the same requests answered without the ledger.
    (warm ? wire : scratch).add([&] {
      for (int verb = 0; verb < 2; ++verb) {
        auto args = scheduler::parseExtenderArgs(body);
        if (verb == 0) {
          scheduler::FilterResult r;
          r.nodeNames = args->nodeNames;
          sink += scheduler::encodeFilterResult(r, *args).size();
        } else {
          std::vector<scheduler::HostPriority> list;
          for (const auto& n : args->nodeNames) list.push_back({n, 0});
          sink += scheduler::encodeHostPriorities(list).size();
        }
      }
    });
    // Baseline 2: the same round trip through nlohmann documents.
    (warm ? dom : scratch).add([&] {
      for (int verb = 0; verb < 2; ++verb) {
        nlohmann::json args = nlohmann::json::parse(body);
        std::vector<std::string> names = args["NodeNames"].get<std::vector<std::string>>();
        nlohmann::json out;
        if (verb == 0) {
          out = {{"Nodes", nullptr}, {"NodeNames", names}, {"FailedNodes", nlohmann::json::object()}, {"Error", ""}};
        } else {
          out = nlohmann::json::array();
          for (const auto& n : names) out.push_back({{"Host", n}, {"Score", 0}});
        }
        sink += out.dump().size();
      }
    });
  }
  // Sanity: the decision is real (every node fits, none is refused by mistake).
  auto f = ext.filter(body).json();
  if (f["NodeNames"].size() != nodes.size() || !f["FailedNodes"].empty()) {
    std::fprintf(stderr, "scheduler_bench: unexpected filter result: %zu of %zu nodes fit\n", f["NodeNames"].size(),
                 nodes.size());
    std::exit(1);
  }
  const auto line = [&](const char* what, const Timings& t) {
    Stats w = stats(t.wall), c = stats(t.cpu);
    std::printf("  %-44s wall p50 %7.1f us p99 %7.1f us | cpu p50 %7.1f us p99 %7.1f us\n", what, w.p50, w.p99,
                c.p50, c.p99);
  };
  std::printf("%6d GPUs on %5zu nodes, filter + prioritize per decision:\n", gpus, nodes.size());
  line("extender (read, decide over the ledger, write)", ours);
  line("baseline: our wire code only, no ledger", wire);
  line("baseline: nlohmann documents, no ledger", dom);
  std::printf("  ratio cpu p50: extender / wire %.2fx, extender / documents %.2fx  (%zu)\n",
              stats(ours.cpu).p50 / stats(wire.cpu).p50, stats(ours.cpu).p50 / stats(dom.cpu).p50, sink % 10);
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 300;
  for (int gpus : {1000, 10000}) run(gpus, iterations);
  return 0;
}
