#include <gtest/gtest.h>

#include "allocator/types.h"
#include "fixtures.h"

namespace tf::allocator {
namespace {
using testing::pod;

TEST(RequestFromPod, ReadsTheNormalisedAnnotations) {
  auto r = requestFromPod(pod("p", {{"gpupool", "pool-a"},
                                    {"tflops-request", "10"},
                                    {"tflops-limit", "20"},
                                    {"vram-request", "1Gi"},
                                    {"vram-limit", "2Gi"},
                                    {"gpu-count", "2"},
                                    {"qos", "high"},
                                    {"isolation", "hard"},
                                    {"gpu-model", "H100"},
                                    {"vendor", "NVIDIA"},
                                    {"gpu-indices", "0,3"},
                                    {"eviction-protection", "1h30m"},
                                    {"gang-group-key", "default/w"},
                                    {"gang-required-members", "3"},
                                    {"gang-timeout", "30s"},
                                    {"gpu-ids", "g1,g2"}}));
  ASSERT_TRUE(r) << r.status().toString();
  EXPECT_EQ(r->uid, "uid-p");
  EXPECT_EQ(r->pool, "pool-a");
  EXPECT_EQ(r->workload, "p");
  EXPECT_EQ(r->request, (Slice{10000, -1, 1LL << 30}));
  EXPECT_EQ(r->limit, (Slice{20000, -1, 2LL << 30}));
  EXPECT_EQ(r->count, 2);
  EXPECT_EQ(r->qos, Qos::High);
  EXPECT_EQ(r->isolation, Isolation::Hard);
  EXPECT_EQ(r->model, "H100");
  EXPECT_EQ(r->indices, (std::vector<int>{0, 3}));
  EXPECT_EQ(r->evictionProtection, std::chrono::minutes(90));
  EXPECT_EQ(r->gangKey, "default/w");
  EXPECT_EQ(r->gangRequired, 3);
  EXPECT_EQ(r->gangTimeout, std::chrono::seconds(30));
  EXPECT_EQ(r->gpuIds, (std::vector<std::string>{"g1", "g2"}));
  EXPECT_EQ(Clock::to_time_t(r->created), 1767225600);
}

TEST(RequestFromPod, DefaultsAreTheAllocatorsOnlyWhenAbsent) {
  auto r = requestFromPod(pod("p", {{"vram-request", "500Mi"}, {"compute-percent-request", "30"}}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->count, 1);
  EXPECT_EQ(r->qos, Qos::Medium);
  EXPECT_EQ(r->isolation, Isolation::Soft);
  EXPECT_EQ(r->request.computePercent, 30);
  EXPECT_EQ(r->request.milliTflops, 0);
}

TEST(RequestFromPod, PercentIgnoredWhenTflopsGiven) {
  auto r = requestFromPod(pod("p", {{"tflops-request", "5"}, {"compute-percent-request", "30"}}));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->request.computePercent, -1);
  EXPECT_EQ(r->request.milliTflops, 5000);
}

TEST(RequestFromPod, BadAnnotationsAreNamed) {
  const std::pair<const char*, const char*> cases[] = {
      {"tflops-request", "ten"}, {"vram-limit", "1Gx"},       {"vram-request", "-1Gi"},
      {"gpu-count", "0"},        {"gpu-count", "x"},          {"gpu-count", "129"},
      {"qos", "urgent"},         {"isolation", "firm"},       {"compute-percent-limit", "101"},
      {"gpu-indices", "1,,2"},   {"dedicated-gpu", "yes"},    {"eviction-protection", "1 hour"},
      {"gang-timeout", "5x"},    {"gang-required-members", "-2"}, {"gpu-ids", "a,,b"}};
  for (auto [key, value] : cases) {
    auto r = requestFromPod(pod("p", {{key, value}}));
    ASSERT_FALSE(r) << key << "=" << value;
    EXPECT_EQ(r.status().code(), Code::InvalidArgument);
    EXPECT_NE(r.status().message().find(std::string("tensor-fusion.ai/") + key), std::string::npos)
        << r.status().message();
  }
}

TEST(RequestFromPod, PodWithoutNameOrWithBadTimestampIsRefused) {
  EXPECT_FALSE(requestFromPod(nlohmann::json::object()));
  EXPECT_FALSE(requestFromPod(nlohmann::json::array()));
  auto p = pod("p", {});
  p["metadata"]["creationTimestamp"] = "yesterday";
  EXPECT_FALSE(requestFromPod(p));
}

TEST(RequestFromPod, WorkerAndTerminal) {
  auto p = pod("p", {});
  EXPECT_TRUE(isWorkerPod(p));
  p["metadata"]["labels"]["tensor-fusion.ai/component"] = "client";
  EXPECT_FALSE(isWorkerPod(p));
  EXPECT_FALSE(isTerminal(p));
  p["status"]["phase"] = "Succeeded";
  EXPECT_TRUE(isTerminal(p));
  p["status"]["phase"] = "Failed";
  EXPECT_TRUE(isTerminal(p));
  // Being deleted: free once no container runs (or it never reached a node).
  p["status"]["phase"] = "Running";
  p["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z";
  EXPECT_TRUE(isTerminal(p));  // unbound
  p["spec"]["nodeName"] = "n1";
  EXPECT_FALSE(isTerminal(p));  // bound, no container status yet
  p["status"]["containerStatuses"] = nlohmann::json::parse(
      R"([{"name": "a", "state": {"running": {}}}, {"name": "b", "state": {"terminated": {"exitCode": 0}}}])");
  EXPECT_FALSE(isTerminal(p));
  p["status"]["containerStatuses"][0]["state"] = nlohmann::json::parse(R"({"terminated": {"exitCode": 143}})");
  EXPECT_TRUE(isTerminal(p));
  p["metadata"].erase("deletionTimestamp");
  EXPECT_FALSE(isTerminal(p));  // stopped but not deleted: a restart may follow
}

TEST(GoDuration, Grammar) {
  EXPECT_EQ(*parseGoDuration("0"), Duration(0));
  EXPECT_EQ(*parseGoDuration("300ms"), std::chrono::milliseconds(300));
  EXPECT_EQ(*parseGoDuration("1h30m"), std::chrono::minutes(90));
  EXPECT_EQ(*parseGoDuration("1.5s"), std::chrono::milliseconds(1500));
  EXPECT_EQ(*parseGoDuration("-2m"), -std::chrono::minutes(2));
  EXPECT_EQ(*parseGoDuration("10us"), std::chrono::microseconds(10));
  for (const char* bad : {"", "s", "5", "1d", "1h x", ".s", "1..5s"}) EXPECT_FALSE(parseGoDuration(bad)) << bad;
}

TEST(GpuFromObject, ReadsTheStatus) {
  nlohmann::json o = {{"apiVersion", "tensor-fusion.ai/v1"},
                      {"kind", "GPU"},
                      {"metadata", {{"name", "gpu-1"}, {"labels", {{"tensor-fusion.ai/gpupool", "pool-a"}}}}},
                      {"status",
                       {{"phase", "Running"},
                        {"vendor", "NVIDIA"},
                        {"capacity", {{"tflops", "312"}, {"vram", "80Gi"}}},
                        {"available", {{"tflops", "1"}, {"vram", "1Gi"}}},
                        {"uuid", "GPU-1"},
                        {"nodeSelector", {{"kubernetes.io/hostname", "n1"}}},
                        {"gpuModel", "A100"},
                        {"message", "ok"},
                        {"index", 2}}}};
  auto g = gpuFromObject(o);
  ASSERT_TRUE(g) << g.status().toString();
  EXPECT_EQ(g->node, "n1");
  EXPECT_EQ(g->pool, "pool-a");
  EXPECT_EQ(g->model, "A100");
  EXPECT_EQ(g->index, 2);
  EXPECT_EQ(g->capacity, (Amount{312000, 80LL << 30}));
  EXPECT_TRUE(g->isolationModes.empty());
  // What its hypervisor makes besides status.isolationMode; garbage there grants nothing.
  o["metadata"]["annotations"] = {{"tensor-fusion.ai/virtualization-capabilities", R"({"isolationModes":["soft","hard"]})"}};
  EXPECT_EQ(gpuFromObject(o)->isolationModes, (std::vector<std::string>{"soft", "hard"}));
  for (const char* bad : {"not json", R"({"isolationModes":"hard"})", "[]"}) {
    o["metadata"]["annotations"]["tensor-fusion.ai/virtualization-capabilities"] = bad;
    auto b = gpuFromObject(o);
    ASSERT_TRUE(b) << bad;
    EXPECT_TRUE(b->isolationModes.empty()) << bad;
  }
  EXPECT_FALSE(g->cordoned);
  o["metadata"]["labels"]["tensor-fusion.ai/cordoned"] = "true";
  EXPECT_TRUE(gpuFromObject(o)->cordoned);
  o["status"]["capacity"]["tflops"] = "lots";
  EXPECT_FALSE(gpuFromObject(o));
  o.erase("status");
  EXPECT_FALSE(gpuFromObject(o));
}

TEST(QuotaFromObject, ReadsSpec) {
  nlohmann::json o = {{"apiVersion", "tensor-fusion.ai/v1"},
                      {"kind", "GPUResourceQuota"},
                      {"metadata", {{"name", "q"}, {"namespace", "ns"}}},
                      {"spec",
                       {{"total", {{"requests", {{"tflops", "100"}, {"vram", "10Gi"}}}, {"maxWorkers", 2}}},
                        {"single", {{"maxGPUCount", 1}}}}}};
  auto q = quotaFromObject(o);
  ASSERT_TRUE(q) << q.status().toString();
  EXPECT_EQ(q->ns, "ns");
  EXPECT_EQ(*q->maxWorkers, 2);
  EXPECT_EQ(*q->totalRequests, (Amount{100000, 10LL << 30}));
  EXPECT_EQ(*q->singleMaxGpuCount, 1);
  EXPECT_FALSE(q->totalLimits);
}

}  // namespace
}  // namespace tf::allocator

namespace tf::allocator {
namespace {
TEST(EnumNames, RoundTrip) {
  for (Qos q : {Qos::Low, Qos::Medium, Qos::High, Qos::Critical}) EXPECT_EQ(*parseQos(qosName(q)), q);
  for (Isolation i : {Isolation::Shared, Isolation::Soft, Isolation::Hard, Isolation::Partitioned})
    EXPECT_EQ(*parseIsolation(isolationName(i)), i);
  EXPECT_EQ(*parsePlacement("NodeCompactGPULowLoad"), Placement::NodeCompactGpuLowLoad);
  EXPECT_EQ(parsePlacement("Random").status().message(),
            "unknown placement mode \"Random\" (CompactFirst, LowLoadFirst, NodeCompactGPULowLoad)");
}
}  // namespace
}  // namespace tf::allocator
