// A TensorFusionWorkload's status from its pods: phase, worker counts, and where each runs.
#include <gtest/gtest.h>

#include "controller/reconcilers.h"

namespace tf::controller {
namespace {

using nlohmann::json;

k8s::ObjectPtr pod(const std::string& name, const std::string& phase, bool ready, const std::string& node = "",
                   const std::string& gpuIds = "") {
  json p = {{"metadata", {{"name", name}, {"namespace", "team"}, {"labels", {{"tensor-fusion.ai/workload", "train"}}}}},
            {"status", {{"phase", phase}, {"conditions", {{{"type", "Ready"}, {"status", ready ? "True" : "False"}}}}}}};
  if (!node.empty()) p["spec"]["nodeName"] = node;
  if (!gpuIds.empty()) p["metadata"]["annotations"]["tensor-fusion.ai/gpu-ids"] = gpuIds;
  return std::make_shared<const json>(std::move(p));
}

TEST(WorkloadStatusTest, EachPodWithItsNodeAndGpusSortedByName) {
  json s = workloadStatus({pod("b", "Running", true, "tf-gpu-1", "gpu-x"), pod("a", "Running", true, "tf-gpu-0", "gpu-y,gpu-z")});
  EXPECT_EQ(s["phase"], "Running");
  EXPECT_EQ(s["workerCount"], 2);
  EXPECT_EQ(s["readyWorkers"], 2);
  ASSERT_EQ(s["workers"].size(), 2u);
  EXPECT_EQ(s["workers"][0], json({{"name", "a"}, {"phase", "Running"}, {"ready", true}, {"node", "tf-gpu-0"},
                                   {"gpuIds", {"gpu-y", "gpu-z"}}}));
  EXPECT_EQ(s["workers"][1]["node"], "tf-gpu-1");
}

TEST(WorkloadStatusTest, PendingUntilEveryLivePodIsReady) {
  EXPECT_EQ(workloadStatus({})["phase"], "Pending");
  json s = workloadStatus({pod("a", "Running", true, "n"), pod("b", "Pending", false)});
  EXPECT_EQ(s["phase"], "Pending");
  EXPECT_EQ(s["readyWorkers"], 1);
  EXPECT_FALSE(s["workers"][1].contains("node"));  // not scheduled yet
  EXPECT_FALSE(s["workers"][1].contains("gpuIds"));
}

TEST(WorkloadStatusTest, AFailedPodFailsItAndFinishedPodsAreNotWorkers) {
  EXPECT_EQ(workloadStatus({pod("a", "Running", true, "n"), pod("b", "Failed", false, "n")})["phase"], "Failed");
  json s = workloadStatus({pod("a", "Running", true, "n"), pod("b", "Succeeded", false, "n")});
  EXPECT_EQ(s["phase"], "Running");
  EXPECT_EQ(s["workerCount"], 1);
  EXPECT_EQ(s["workers"].size(), 2u);  // still listed, with its phase
}

TEST(WorkloadStatusTest, PodsAreIndexedByNamespaceAndWorkload) {
  EXPECT_EQ(workloadIndexKey(*pod("a", "Running", true)), "team/train");
  EXPECT_EQ(workloadIndexKey(json{{"metadata", {{"name", "x"}, {"namespace", "team"}}}}), "");
}

}  // namespace
}  // namespace tf::controller
