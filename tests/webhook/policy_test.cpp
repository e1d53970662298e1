// decide(): the merge of defaults and one test per deny rule (each message names the
// annotation it is about).
#include "webhook/policy.h"

#include <gtest/gtest.h>

namespace tf::webhook {
namespace {

using nlohmann::json;

json podWith(json annotations, json containers = json::array({{{"name", "app"}, {"image", "busybox"}}})) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", "p"}, {"namespace", "ns"}, {"labels", {{"tensor-fusion.ai/enabled", "true"}}}, {"annotations", annotations}}},
          {"spec", {{"containers", containers}}}};
}

v1::GpuPool pool(const std::string& name, bool isDefault = false, json spec = json::object()) {
  json j = {{"apiVersion", "tensor-fusion.ai/v1"}, {"kind", "GPUPool"}, {"metadata", {{"name", name}}}, {"spec", spec}};
  if (!j["spec"].contains("nodeManagerConfig")) j["spec"]["nodeManagerConfig"] = json::object();
  if (isDefault) j["metadata"]["annotations"] = {{"tensor-fusion.ai/is-default-pool", "true"}};
  return j.get<v1::GpuPool>();
}

v1::Gpu gpu(const std::string& name, const std::string& node, const std::string& poolName, const std::string& model,
            const std::string& tflops = "100", const std::string& vram = "16Gi") {
  json j = {{"apiVersion", "tensor-fusion.ai/v1"},
            {"kind", "GPU"},
            {"metadata", {{"name", name}, {"labels", {{"tensor-fusion.ai/managed-by", node}, {"tensor-fusion.ai/gpupool", poolName}}}}},
            {"status",
             {{"phase", "Running"}, {"vendor", "NVIDIA"}, {"uuid", name}, {"gpuModel", model}, {"message", ""},
              {"nodeSelector", {{"kubernetes.io/hostname", node}}},
              {"capacity", {{"tflops", tflops}, {"vram", vram}}},
              {"available", {{"tflops", tflops}, {"vram", vram}}}}}};
  return j.get<v1::Gpu>();
}

TEST(PoolGpusTest, SummarizesOnlyThePoolsGpus) {
  const std::vector<v1::Gpu> gpus = {gpu("a", "n1", "p", "A100"), gpu("b", "n1", "p", "A100"), gpu("c", "n2", "p", "T4", "65", "15Gi"),
                                     gpu("d", "n9", "q", "H100"), gpu("e", "n9", "q", "H100"), gpu("f", "n9", "q", "H100")};
  PoolGpus p = summarizePoolGpus(gpus, "p");
  EXPECT_EQ(p.mostOnOneNode, 2);  // n1; n9's three are another pool's
  ASSERT_EQ(p.capacityByModel.size(), 2u);
  EXPECT_EQ(p.capacityByModel.at("T4").vram.toString(), "15Gi");
  EXPECT_EQ(p.capacityByModel.count("H100"), 0u);
  EXPECT_EQ(summarizePoolGpus(gpus, "q").mostOnOneNode, 3);
  PoolGpus none = summarizePoolGpus(gpus, "nothing");
  EXPECT_EQ(none.mostOnOneNode, 0);
  EXPECT_TRUE(none.capacityByModel.empty());
}

class Decide : public testing::Test {
protected:
  ClusterView view;
  void SetUp() override {
    view.pools = {pool("main", true), pool("other")};
    view.poolGpus = summarizePoolGpus({gpu("g1", "n1", "main", "A100"), gpu("g2", "n1", "main", "A100"),
                                       gpu("g3", "n2", "main", "T4", "65", "15Gi"), gpu("g4", "n3", "other", "H100"),
                                       gpu("g5", "n3", "other", "H100"), gpu("g6", "n3", "other", "H100")},
                                      "main");
  }
  Result<Decision> run(json annotations, json containers = json::array({{{"name", "app"}}})) {
    return decide(podWith(std::move(annotations), std::move(containers)), "wl", view);
  }
  std::string deny(json annotations, json containers = json::array({{{"name", "app"}}})) {
    auto d = run(std::move(annotations), std::move(containers));
    return d ? std::string("allowed") : d.status().message();
  }
  static std::map<std::string, std::string> text(const Decision& d) { return formatAnnotations(d.values); }
};

bool startsWith(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

const json kVram = {{"tensor-fusion.ai/vram-limit", "1Gi"}, {"tensor-fusion.ai/tflops-limit", "10"}};

// ---------------------------------------------------------------- defaults

TEST_F(Decide, RequestDefaultsToLimitAndQosHighWhenEqual) {
  auto d = run(kVram);
  ASSERT_TRUE(d) << d.status().message();
  auto t = text(*d);
  EXPECT_EQ(t.at("tensor-fusion.ai/vram-request"), "1Gi");
  EXPECT_EQ(t.at("tensor-fusion.ai/tflops-request"), "10");
  EXPECT_EQ(t.at("tensor-fusion.ai/qos"), "high");
  EXPECT_EQ(t.at("tensor-fusion.ai/gpupool"), "main");  // the default pool
  EXPECT_EQ(t.at("tensor-fusion.ai/is-local-gpu"), "true");
  EXPECT_EQ(t.at("tensor-fusion.ai/isolation"), "soft");
  EXPECT_EQ(t.at("tensor-fusion.ai/gpu-count"), "1");
  EXPECT_EQ(t.at("tensor-fusion.ai/inject-container"), "app");
  EXPECT_EQ(t.at("tensor-fusion.ai/workload"), "wl");
  EXPECT_EQ(t.count("tensor-fusion.ai/compute-percent-request"), 0u);
  EXPECT_EQ(d->workload, "wl");
  EXPECT_TRUE(d->isLocal);
}

TEST_F(Decide, LimitDefaultsToRequest) {
  auto d = run({{"tensor-fusion.ai/vram-request", "2Gi"}, {"tensor-fusion.ai/compute-percent-request", "20"}});
  ASSERT_TRUE(d) << d.status().message();
  EXPECT_EQ(text(*d).at("tensor-fusion.ai/vram-limit"), "2Gi");
  EXPECT_EQ(text(*d).at("tensor-fusion.ai/compute-percent-limit"), "20");
  EXPECT_EQ(text(*d).count("tensor-fusion.ai/tflops-request"), 0u);
}

TEST_F(Decide, QosMediumWhenRequestBelowLimitAndPoolDefaultWhenItHasOne) {
  json a = {{"tensor-fusion.ai/vram-request", "1Gi"}, {"tensor-fusion.ai/vram-limit", "2Gi"}, {"tensor-fusion.ai/tflops-limit", "10"}};
  auto d = run(a);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->qos, "medium");
  view.pools = {pool("main", true, {{"qosConfig", {{"defaultQoS", "low"}}}})};
  d = run(a);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->qos, "low");
  a["tensor-fusion.ai/qos"] = "critical";  // given wins
  EXPECT_EQ(run(a)->qos, "critical");
}

TEST_F(Decide, PoolDefaultsForLocalAndIsolation) {
  view.pools = {pool("main", true, {{"defaultUsingLocalGPU", false}, {"nodeManagerConfig", {{"defaultIsolationMode", "hard"}}}})};
  auto d = run(kVram);
  ASSERT_TRUE(d) << d.status().message();
  EXPECT_FALSE(d->isLocal);
  EXPECT_EQ(d->isolation, "hard");
  json a = kVram;
  a["tensor-fusion.ai/is-local-gpu"] = "true";
  a["tensor-fusion.ai/isolation"] = "shared";
  d = run(a);
  EXPECT_TRUE(d->isLocal);
  EXPECT_EQ(d->isolation, "shared");
}

TEST_F(Decide, ProfileThenQuotaThenAnnotations) {
  view.profile = json({{"apiVersion", "tensor-fusion.ai/v1"}, {"kind", "WorkloadProfile"},
                       {"metadata", {{"name", "prof"}, {"namespace", "ns"}}},
                       {"spec", {{"poolName", "other"}, {"qos", "low"}, {"gpuCount", 2},
                                 {"resources", {{"requests", {{"tflops", "5"}, {"vram", "1Gi"}}},
                                                {"limits", {{"tflops", "8"}, {"vram", "2Gi"}}}}}}}})
                     .get<v1::WorkloadProfile>();
  view.quotas = {json({{"apiVersion", "tensor-fusion.ai/v1"}, {"kind", "GPUResourceQuota"},
                       {"metadata", {{"name", "q"}, {"namespace", "ns"}}},
                       {"spec", {{"single", {{"defaultRequests", {{"tflops", "1"}, {"vram", "256Mi"}}},
                                             {"defaultLimits", {{"tflops", "2"}, {"vram", "512Mi"}}}}}}}})
                     .get<v1::GpuResourceQuota>()};
  auto d = run({{"tensor-fusion.ai/workload-profile", "prof"}, {"tensor-fusion.ai/vram-limit", "3Gi"}});
  ASSERT_TRUE(d) << d.status().message();
  auto t = text(*d);
  EXPECT_EQ(d->pool, "other");                          // the profile's pool
  EXPECT_EQ(t.at("tensor-fusion.ai/qos"), "low");        // the profile's QoS
  EXPECT_EQ(t.at("tensor-fusion.ai/gpu-count"), "2");
  EXPECT_EQ(t.at("tensor-fusion.ai/tflops-request"), "5");  // the profile's, not the quota's
  EXPECT_EQ(t.at("tensor-fusion.ai/vram-limit"), "3Gi");    // the annotation's
  EXPECT_EQ(t.at("tensor-fusion.ai/vram-request"), "1Gi");

  // Without the profile the quota's defaults apply.
  d = run(json::object());
  ASSERT_TRUE(d) << d.status().message();
  t = text(*d);
  EXPECT_EQ(t.at("tensor-fusion.ai/tflops-request"), "1");
  EXPECT_EQ(t.at("tensor-fusion.ai/vram-limit"), "512Mi");
  EXPECT_EQ(d->qos, "medium");
}

TEST_F(Decide, ComputeAnnotationReplacesProfileTflops) {
  view.profile = json({{"apiVersion", "tensor-fusion.ai/v1"}, {"kind", "WorkloadProfile"},
                       {"metadata", {{"name", "prof"}, {"namespace", "ns"}}},
                       {"spec", {{"resources", {{"requests", {{"tflops", "5"}, {"vram", "1Gi"}}},
                                                {"limits", {{"tflops", "8"}, {"vram", "2Gi"}}}}}}}})
                     .get<v1::WorkloadProfile>();
  auto d = run({{"tensor-fusion.ai/workload-profile", "prof"}, {"tensor-fusion.ai/compute-percent-limit", "30"}});
  ASSERT_TRUE(d) << d.status().message();
  auto t = text(*d);
  EXPECT_EQ(t.at("tensor-fusion.ai/compute-percent-limit"), "30");
  EXPECT_EQ(t.at("tensor-fusion.ai/compute-percent-request"), "30");
  EXPECT_EQ(t.count("tensor-fusion.ai/tflops-limit"), 0u);
  EXPECT_EQ(t.count("tensor-fusion.ai/tflops-request"), 0u);
}

TEST_F(Decide, GpuIndicesSetTheCount) {
  json a = kVram;
  a["tensor-fusion.ai/gpu-indices"] = "0,1";
  auto d = run(a);
  ASSERT_TRUE(d) << d.status().message();
  EXPECT_EQ(text(*d).at("tensor-fusion.ai/gpu-count"), "2");
}

TEST_F(Decide, DedicatedGpuTakesTheWholeModel) {
  auto d = run({{"tensor-fusion.ai/dedicated-gpu", "true"}, {"tensor-fusion.ai/gpu-model", "T4"}});
  ASSERT_TRUE(d) << d.status().message();
  auto t = text(*d);
  EXPECT_EQ(t.at("tensor-fusion.ai/tflops-request"), "65");
  EXPECT_EQ(t.at("tensor-fusion.ai/tflops-limit"), "65");
  EXPECT_EQ(t.at("tensor-fusion.ai/vram-limit"), "15Gi");
  EXPECT_EQ(t.at("tensor-fusion.ai/qos"), "high");
}

TEST_F(Decide, GangStampsGroupKeyAndMembers) {
  json a = kVram;
  a["tensor-fusion.ai/gang-min-members"] = "3";
  a["tensor-fusion.ai/gang-timeout"] = "30s";
  auto d = run(a);
  ASSERT_TRUE(d) << d.status().message();
  auto t = text(*d);
  EXPECT_EQ(t.at("tensor-fusion.ai/gang-group-key"), "ns/wl");
  EXPECT_EQ(t.at("tensor-fusion.ai/gang-required-members"), "3");
  EXPECT_EQ(t.at("tensor-fusion.ai/gang-timeout"), "30s");
  a["tensor-fusion.ai/gang-enabled"] = "false";
  t = text(*run(a));
  EXPECT_EQ(t.count("tensor-fusion.ai/gang-group-key"), 0u);
  EXPECT_EQ(t.count("tensor-fusion.ai/gang-timeout"), 0u);
}

TEST_F(Decide, WorkloadAnnotationNamesTheWorkload) {
  json a = kVram;
  a["tensor-fusion.ai/workload"] = "mine";
  EXPECT_EQ(run(a)->workload, "mine");
}

TEST_F(Decide, SharedIsolationNeedsNoResources) {
  auto d = run({{"tensor-fusion.ai/isolation", "shared"}});
  ASSERT_TRUE(d) << d.status().message();
  EXPECT_EQ(d->isolation, "shared");
}

TEST_F(Decide, ClientImageFromThePool) {
  view.pools = {pool("main", true, {{"componentConfig", {{"client", {{"embeddedModeImage", "e:1"}, {"remoteModeImage", "r:1"}}}}}})};
  EXPECT_EQ(run(kVram)->clientImage, "e:1");
  json a = kVram;
  a["tensor-fusion.ai/is-local-gpu"] = "false";
  EXPECT_EQ(run(a)->clientImage, "r:1");
}

TEST_F(Decide, OperatorEndpointFromThePool) {
  EXPECT_EQ(run(kVram)->operatorEndpoint, "");  // the controller's own then
  view.pools = {pool("main", true, {{"componentConfig", {{"client", {{"operatorEndpoint", "http://op:8080"}}}}}})};
  EXPECT_EQ(run(kVram)->operatorEndpoint, "http://op:8080");
}

// ---------------------------------------------------------------- deny rules

TEST_F(Decide, DenyUnparsableValue) {
  EXPECT_PRED2(startsWith, deny({{"tensor-fusion.ai/vram-limit", "lots"}}), "tensor-fusion.ai/vram-limit: \"lots\" is not a quantity");
}

TEST_F(Decide, DenyRequestAboveLimit) {
  EXPECT_EQ(deny({{"tensor-fusion.ai/vram-request", "2Gi"}, {"tensor-fusion.ai/vram-limit", "1Gi"}}),
            "tensor-fusion.ai/vram-request: 2Gi is above tensor-fusion.ai/vram-limit 1Gi");
  EXPECT_EQ(deny({{"tensor-fusion.ai/tflops-request", "20"}, {"tensor-fusion.ai/tflops-limit", "10"}, {"tensor-fusion.ai/vram-limit", "1Gi"}}),
            "tensor-fusion.ai/tflops-request: 20 is above tensor-fusion.ai/tflops-limit 10");
  EXPECT_EQ(deny({{"tensor-fusion.ai/compute-percent-request", "50"}, {"tensor-fusion.ai/compute-percent-limit", "30"}}),
            "tensor-fusion.ai/compute-percent-request: 50 is above tensor-fusion.ai/compute-percent-limit 30");
}

TEST_F(Decide, DenyTflopsAndComputeTogether) {
  EXPECT_PRED2(startsWith, deny({{"tensor-fusion.ai/tflops-limit", "10"}, {"tensor-fusion.ai/compute-percent-limit", "30"}}), "tensor-fusion.ai/compute-percent-limit: given together with tensor-fusion.ai/tflops-limit");
}

TEST_F(Decide, DenyUnknownPool) {
  json a = kVram;
  a["tensor-fusion.ai/gpupool"] = "nope";
  EXPECT_EQ(deny(a), "tensor-fusion.ai/gpupool: GPUPool \"nope\" not found");
  view.pools = {pool("other")};
  EXPECT_PRED2(startsWith, deny(kVram), "tensor-fusion.ai/gpupool: not set, and no GPUPool is annotated tensor-fusion.ai/is-default-pool");
}

TEST_F(Decide, DenyUnknownProfile) {
  json a = kVram;
  a["tensor-fusion.ai/workload-profile"] = "gone";
  EXPECT_EQ(deny(a), "tensor-fusion.ai/workload-profile: WorkloadProfile \"gone\" not found in namespace \"ns\"");
}

TEST_F(Decide, DenyGpuCountOutOfRange) {
  json a = kVram;
  a["tensor-fusion.ai/gpu-count"] = "200";
  EXPECT_EQ(deny(a), "tensor-fusion.ai/gpu-count: \"200\" is not in 1..128");
}

TEST_F(Decide, DenyMoreGpusThanAnyNodeOfThePoolHolds) {
  json a = kVram;
  a["tensor-fusion.ai/gpu-count"] = "3";
  EXPECT_EQ(deny(a), "tensor-fusion.ai/gpu-count: 3 GPUs, but no node of GPUPool \"main\" has more than 2");
  a["tensor-fusion.ai/gpu-count"] = "2";
  EXPECT_EQ(deny(a), "allowed");
}

TEST_F(Decide, DenyGpuCountDisagreeingWithIndices) {
  json a = kVram;
  a["tensor-fusion.ai/gpu-count"] = "1";
  a["tensor-fusion.ai/gpu-indices"] = "0,1";
  EXPECT_EQ(deny(a), "tensor-fusion.ai/gpu-count: 1 does not match tensor-fusion.ai/gpu-indices (2 GPUs)");
}

TEST_F(Decide, DenyDedicatedWithoutModel) {
  EXPECT_PRED2(startsWith, deny({{"tensor-fusion.ai/dedicated-gpu", "true"}}), "tensor-fusion.ai/dedicated-gpu: \"true\" needs tensor-fusion.ai/gpu-model");
}

TEST_F(Decide, DenyDedicatedModelThePoolLacks) {
  EXPECT_PRED2(startsWith, deny({{"tensor-fusion.ai/dedicated-gpu", "true"}, {"tensor-fusion.ai/gpu-model", "H100"}}), "tensor-fusion.ai/gpu-model: no GPU of model \"H100\" in GPUPool \"main\"");
}

TEST_F(Decide, DenyGangOfOne) {
  json a = kVram;
  a["tensor-fusion.ai/gang-min-members"] = "1";
  EXPECT_EQ(deny(a), "tensor-fusion.ai/gang-min-members: 1 is not a gang: give 0 (no gang) or at least 2");
  a.erase("tensor-fusion.ai/gang-min-members");
  a["tensor-fusion.ai/gang-enabled"] = "true";
  EXPECT_EQ(deny(a), "tensor-fusion.ai/gang-min-members: required, at least 2, when tensor-fusion.ai/gang-enabled is \"true\"");
}

TEST_F(Decide, DenyNoResourceRequest) {
  EXPECT_PRED2(startsWith, deny(json::object()), "tensor-fusion.ai/tflops-request: no GPU resources requested");
  EXPECT_PRED2(startsWith, deny({{"tensor-fusion.ai/vram-limit", "0"}}), "tensor-fusion.ai/tflops-request: no GPU resources requested");
}

TEST_F(Decide, DenyTwoContainersWithoutInjectContainer) {
  json two = json::array({{{"name", "app"}}, {{"name", "side"}}});
  EXPECT_EQ(deny(kVram, two), "tensor-fusion.ai/inject-container: required when the pod has more than one container (app, side)");
  json a = kVram;
  a["tensor-fusion.ai/inject-container"] = "nothere";
  EXPECT_EQ(deny(a, two), "tensor-fusion.ai/inject-container: the pod has no container \"nothere\"");
  a["tensor-fusion.ai/inject-container"] = "side";
  auto d = run(a, two);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->containers, std::vector<std::string>{"side"});
}

TEST_F(Decide, DenyIsolationThisBuildCannotGive) {
  json a = kVram;
  a["tensor-fusion.ai/isolation"] = "partitioned";
  EXPECT_PRED2(startsWith, deny(a), "tensor-fusion.ai/isolation: \"partitioned\" is not supported");
  a["tensor-fusion.ai/isolation"] = "hard";
  a["tensor-fusion.ai/vendor"] = "Ascend";
  EXPECT_PRED2(startsWith, deny(a), "tensor-fusion.ai/isolation: \"hard\" needs our CUDA limiter or stub, which vendor \"Ascend\" cannot use");
  a["tensor-fusion.ai/isolation"] = "shared";
  EXPECT_EQ(deny(a), "allowed");
}

TEST_F(Decide, DenySidecarWorker) {
  json a = kVram;
  a["tensor-fusion.ai/sidecar-worker"] = "true";
  EXPECT_PRED2(startsWith, deny(a), "tensor-fusion.ai/sidecar-worker: \"true\" is not supported yet");
}

}  // namespace
}  // namespace tf::webhook
