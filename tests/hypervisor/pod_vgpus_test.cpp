// What vGPU the hypervisor makes for a pod the scheduler placed on its node (cluster mode):
// limits from the pod's annotations, the device from `gpu-ids`, the region where the pod
// mounts it, and a clear refusal naming the annotation when it cannot.
#include <gtest/gtest.h>

#include "hypervisor/cluster/node_registrar.h"
#include "hypervisor/cluster/pod_vgpus.h"

namespace tf::hypervisor {
namespace {

std::vector<GpuDevice> twoDevices() {
  GpuDevice a, b;
  a.uuid = "GPU-AAAA";
  a.index = 0;
  b.uuid = "GPU-BBBB";
  b.index = 1;
  return {a, b};
}

nlohmann::json pod(nlohmann::json annotations, const char* component = "worker", const char* phase = "Running") {
  annotations["tensor-fusion.ai/gpu-ids"] = annotations.value("tensor-fusion.ai/gpu-ids", "gpu-bbbb");
  return {{"metadata",
           {{"name", "app"},
            {"namespace", "team-a"},
            {"uid", "0f1e2d3c-0000-1111-2222-333344445555"},
            {"labels", {{"tensor-fusion.ai/component", component}}},
            {"annotations", annotations}}},
          {"status", {{"phase", phase}}}};
}

VgpuRequest expectRequest(const nlohmann::json& p) {
  auto r = vgpuRequestForPod(p, twoDevices(), "/run/tf/pods");
  EXPECT_TRUE(r.isOk()) << r.status().toString();
  if (!r.isOk() || !r->has_value()) {
    ADD_FAILURE() << "no vGPU for the pod";
    return {};
  }
  return **r;
}

TEST(PodVgpusTest, LimitsComeFromTheAnnotationsAndTheDeviceFromGpuIds) {
  VgpuRequest r = expectRequest(pod({{"tensor-fusion.ai/vram-limit", "1Gi"},
                                     {"tensor-fusion.ai/compute-percent-limit", "30"},
                                     {"tensor-fusion.ai/qos", "high"}}));
  EXPECT_EQ(r.devices, std::vector<std::string>{"GPU-BBBB"});
  EXPECT_EQ(r.vramLimit, 1ull << 30);
  EXPECT_EQ(r.vramRequest, 1ull << 30);  // a request defaults to the limit
  EXPECT_EQ(r.percentLimit, 30);
  EXPECT_EQ(r.percentRequest, 30);
  EXPECT_EQ(r.tflopsLimit, 0);
  EXPECT_EQ(r.qos, Qos::High);
  EXPECT_EQ(r.isolation, Isolation::Soft);
  EXPECT_EQ(r.regionPath, "/run/tf/pods/team-a/0f1e2d3c-0000-1111-2222-333344445555/region");
  EXPECT_EQ(r.name, "pod-0f1e2d3c000011112222333344445555");
  EXPECT_LE(r.name.size(), 40u);  // the hypervisor's name limit
}

TEST(PodVgpusTest, TflopsRequestAndLimitAreKeptApart) {
  VgpuRequest r = expectRequest(pod({{"tensor-fusion.ai/vram-request", "512Mi"},
                                     {"tensor-fusion.ai/vram-limit", "2Gi"},
                                     {"tensor-fusion.ai/tflops-request", "500m"},
                                     {"tensor-fusion.ai/tflops-limit", "20"}}));
  EXPECT_DOUBLE_EQ(r.tflopsRequest, 0.5);
  EXPECT_DOUBLE_EQ(r.tflopsLimit, 20);
  EXPECT_EQ(r.vramRequest, 512ull << 20);
  EXPECT_EQ(r.vramLimit, 2ull << 30);
  EXPECT_EQ(r.percentLimit, 0);
  EXPECT_TRUE(r.scheduled);  // the scheduler's ledger decided; the hypervisor does not re-judge
}

TEST(PodVgpusTest, NoComputeAnnotationPromisesNothingAndCapsAtTheDevice) {
  VgpuRequest r = expectRequest(pod({{"tensor-fusion.ai/vram-limit", "1Gi"}}));
  EXPECT_EQ(r.percentRequest, 0);
  EXPECT_EQ(r.percentLimit, 100);
}

TEST(PodVgpusTest, NothingForPodsThatAreNotOursNotAllocatedFinishedOrElsewhere) {
  auto none = [](const nlohmann::json& p) {
    auto r = vgpuRequestForPod(p, twoDevices(), "/run/tf/pods");
    ASSERT_TRUE(r.isOk()) << r.status().toString();
    EXPECT_FALSE(r->has_value()) << p.dump();
  };
  nlohmann::json a = {{"tensor-fusion.ai/vram-limit", "1Gi"}};
  none(pod(a, "client"));
  none(pod(a, "worker", "Succeeded"));
  none(pod(a, "worker", "Failed"));
  nlohmann::json elsewhere = a;
  elsewhere["tensor-fusion.ai/gpu-ids"] = "gpu-cccc";
  none(pod(elsewhere));
  nlohmann::json unallocated = pod(a);
  unallocated["metadata"]["annotations"].erase("tensor-fusion.ai/gpu-ids");
  none(unallocated);
}

TEST(PodVgpusTest, BadAnnotationsAreRefusedWithTheAnnotationNamed) {
  auto refused = [](nlohmann::json annotations, const std::string& named) {
    auto r = vgpuRequestForPod(pod(std::move(annotations)), twoDevices(), "/run/tf/pods");
    ASSERT_FALSE(r.isOk());
    EXPECT_NE(r.status().message().find(named), std::string::npos) << r.status().message();
  };
  refused({{"tensor-fusion.ai/vram-limit", "lots"}}, "tensor-fusion.ai/vram-limit");
  refused({{"tensor-fusion.ai/vram-limit", "-1Gi"}}, "tensor-fusion.ai/vram-limit");
  refused({{"tensor-fusion.ai/vram-limit", "1Gi"}, {"tensor-fusion.ai/compute-percent-limit", "130"}},
          "tensor-fusion.ai/compute-percent-limit");
  refused({{"tensor-fusion.ai/vram-limit", "1Gi"}, {"tensor-fusion.ai/tflops-limit", "x"}},
          "tensor-fusion.ai/tflops-limit");
  refused({{"tensor-fusion.ai/compute-percent-limit", "30"}}, "tensor-fusion.ai/vram-limit");
  refused({{"tensor-fusion.ai/vram-limit", "1Gi"}, {"tensor-fusion.ai/qos", "urgent"}}, "tensor-fusion.ai/qos");
  refused({{"tensor-fusion.ai/vram-limit", "1Gi"}, {"tensor-fusion.ai/isolation", "partitioned"}},
          "tensor-fusion.ai/isolation");
}

// gpu-count > 1: one vGPU over the named GPUs of this node, in gpu-ids' order, limits on each;
// GPUs of other nodes in the list are not this hypervisor's.
TEST(PodVgpusTest, SeveralGpusOfThisNodeMakeOneVgpuOverThem) {
  VgpuRequest r = expectRequest(pod({{"tensor-fusion.ai/vram-limit", "1Gi"},
                                     {"tensor-fusion.ai/gpu-ids", "gpu-bbbb,gpu-cccc,gpu-aaaa"}}));
  EXPECT_EQ(r.devices, (std::vector<std::string>{"GPU-BBBB", "GPU-AAAA"}));
  EXPECT_EQ(r.count, 2);
  EXPECT_EQ(r.vramLimit, 1ull << 30);
}

// Hard isolation: the pod's own worker, on a socket file in the directory the pod mounts, its
// token written beside it; soft pods get neither.
TEST(PodVgpusTest, HardIsolationGetsAWorkerInThePodsDirectory) {
  VgpuRequest r = expectRequest(pod({{"tensor-fusion.ai/vram-limit", "1Gi"},
                                     {"tensor-fusion.ai/compute-percent-limit", "30"},
                                     {"tensor-fusion.ai/isolation", "hard"}}));
  EXPECT_EQ(r.isolation, Isolation::Hard);
  EXPECT_EQ(r.workerListen, "shm:///run/tf/pods/team-a/0f1e2d3c-0000-1111-2222-333344445555/worker.sock");
  EXPECT_EQ(r.workerTokenFile, "/run/tf/pods/team-a/0f1e2d3c-0000-1111-2222-333344445555/worker.token");
  EXPECT_EQ(r.regionPath, "/run/tf/pods/team-a/0f1e2d3c-0000-1111-2222-333344445555/region");
  EXPECT_EQ(r.percentLimit, 30);
  VgpuRequest soft = expectRequest(pod({{"tensor-fusion.ai/vram-limit", "1Gi"}, {"tensor-fusion.ai/isolation", "soft"}}));
  EXPECT_EQ(soft.isolation, Isolation::Soft);
  EXPECT_TRUE(soft.workerListen.empty());
  EXPECT_TRUE(soft.workerTokenFile.empty());
}

// A pod's vGPU moved on its node: its gpu-ids (the scheduler's record) name the new GPUs, in
// the vGPU's order, and the Event says where from, where to, who moved and the pause.
TEST(PodVgpusTest, AMovedVgpuRewritesTheRecordAndIsToldToThePod) {
  Vgpu v;
  v.id = "pod-0f1e";
  v.devices = {{1, "GPU-BBBB", 1000, 3000}, {0, "GPU-AAAA", 1000, 3000}};
  EXPECT_EQ(podMovedPatch(v), nlohmann::json::parse(R"({"metadata":{"annotations":{"tensor-fusion.ai/gpu-ids":"gpu-bbbb,gpu-aaaa"}}})"));
  EXPECT_EQ(podMovedMessage(v, "GPU-CCCC,GPU-DDDD", 2, 2, 96ull << 20, 234500000),
            "vGPU pod-0f1e moved from GPU-CCCC,GPU-DDDD to GPU-BBBB,GPU-AAAA: 2 of 2 process(es), 96 MiB, paused at "
            "most 234.5 ms");
  EXPECT_NE(podMovedMessage(v, "GPU-CCCC,GPU-DDDD", 2, 1, 0, 0).find("the others stay on the old worker"),
            std::string::npos);
}

TEST(PodVgpusTest, GpuObjectNamesMatchTheRegistrars) {
  EXPECT_EQ(gpuObjectName("GPU-BBBB"), "gpu-bbbb");
  nlohmann::json a = {{"tensor-fusion.ai/vram-limit", "1Gi"}, {"tensor-fusion.ai/gpu-ids", " gpu-aaaa "}};
  EXPECT_EQ(expectRequest(pod(a)).devices, std::vector<std::string>{"GPU-AAAA"});
}

}  // namespace
}  // namespace tf::hypervisor
