// Remote vGPUs, the pure part (worker_pod.h): a client pod's connection, the worker pod made
// for it, and the connection's status from that worker.
#include "controller/worker_pod.h"

#include <gtest/gtest.h>

#include "controller/reconcilers.h"

namespace tf::controller {
namespace {

using nlohmann::json;

json clientPod() {
  return json::parse(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "app", "namespace": "ns", "uid": "u-1",
      "labels": {"tensor-fusion.ai/component": "client", "tensor-fusion.ai/workload": "wl"},
      "annotations": {"tensor-fusion.ai/vram-limit": "1Gi", "tensor-fusion.ai/vram-request": "1Gi",
                      "tensor-fusion.ai/tflops-limit": "5", "tensor-fusion.ai/gpupool": "pool-a",
                      "tensor-fusion.ai/qos": "high", "tensor-fusion.ai/is-local-gpu": "false",
                      "tensor-fusion.ai/inject-container": "app", "tensor-fusion.ai/gang-min-members": "2",
                      "tensor-fusion.ai/selected-workload": "wl", "example.com/other": "x"}},
    "spec": {"containers": [
      {"name": "app", "env": [{"name": "TENSOR_FUSION_CONNECTION_NAME", "value": "app-tf-vgpu-abcdefghij"}]},
      {"name": "side", "env": [{"name": "TENSOR_FUSION_CONNECTION_NAME", "value": "app-tf-vgpu-abcdefghij"}]}]}
  })");
}

json connection() {
  json c = connectionFor(clientPod(), "app-tf-vgpu-abcdefghij");
  c["metadata"]["uid"] = "c-1";
  return c;
}

TEST(Connection, NamedByTheClientsEnvironmentAndOwnedByIt) {
  EXPECT_EQ(connectionNamesOf(clientPod()), std::vector<std::string>{"app-tf-vgpu-abcdefghij"});
  json c = connectionFor(clientPod(), "app-tf-vgpu-abcdefghij");
  EXPECT_EQ(c["kind"], "TensorFusionConnection");
  EXPECT_EQ(c["metadata"]["namespace"], "ns");
  EXPECT_EQ(c["metadata"]["labels"]["tensor-fusion.ai/workload"], "wl");
  EXPECT_EQ(c["metadata"]["ownerReferences"][0]["uid"], "u-1");
  EXPECT_EQ(c["metadata"]["ownerReferences"][0]["kind"], "Pod");
  EXPECT_EQ(c["spec"], (json{{"workloadName", "wl"}, {"clientPod", "app"}}));
  // A worker pod or an unlabelled pod names no connection.
  json other = clientPod();
  other["metadata"]["labels"]["tensor-fusion.ai/component"] = "worker";
  EXPECT_TRUE(connectionNamesOf(other).empty());
}

TEST(Connection, PodsAreIndexedUnderTheirConnection) {
  EXPECT_EQ(connectionIndexKeys(clientPod()), std::vector<std::string>{"ns/app-tf-vgpu-abcdefghij"});
  json w = workerPodFor(connection(), clientPod(), nullptr, {.defaultImage = "img"});
  EXPECT_EQ(connectionIndexKeys(w), std::vector<std::string>{"ns/app-tf-vgpu-abcdefghij"});
}

TEST(WorkerPod, IsTheClientsVgpuAsALocalPodTheWebhookCompletes) {
  json w = workerPodFor(connection(), clientPod(), nullptr, {.defaultImage = "localhost/tensor-fusion:dev"});
  const json& m = w["metadata"];
  EXPECT_EQ(m["name"], "app-tf-vgpu-abcdefghij");
  EXPECT_EQ(m["namespace"], "ns");
  EXPECT_EQ(m["ownerReferences"][0]["uid"], "c-1");
  EXPECT_EQ(m["ownerReferences"][0]["kind"], "TensorFusionConnection");
  EXPECT_EQ(m["labels"]["tensor-fusion.ai/enabled"], "true");
  EXPECT_EQ(m["labels"]["tensor-fusion.ai/workload"], "wl");
  const json& a = m["annotations"];
  // What the client asked for, made local; nothing of the client's own placement.
  EXPECT_EQ(a["tensor-fusion.ai/vram-limit"], "1Gi");
  EXPECT_EQ(a["tensor-fusion.ai/tflops-limit"], "5");
  EXPECT_EQ(a["tensor-fusion.ai/gpupool"], "pool-a");
  EXPECT_EQ(a["tensor-fusion.ai/qos"], "high");
  EXPECT_EQ(a["tensor-fusion.ai/is-local-gpu"], "true");
  EXPECT_EQ(a["tensor-fusion.ai/inject-container"], "worker");
  EXPECT_EQ(a["tensor-fusion.ai/dedicated-worker"], "true");
  EXPECT_EQ(a["tensor-fusion.ai/workload"], "wl");
  EXPECT_FALSE(a.contains("tensor-fusion.ai/gang-min-members"));
  EXPECT_FALSE(a.contains("tensor-fusion.ai/selected-workload"));
  EXPECT_FALSE(a.contains("example.com/other"));
  const json& c = w["spec"]["containers"][0];
  EXPECT_EQ(c["name"], "worker");
  EXPECT_EQ(c["image"], "localhost/tensor-fusion:dev");
  EXPECT_EQ(c["args"], (json{"worker", "--listen", "tcp://0.0.0.0:8000", "--driver", "libcuda.so.1"}));
  EXPECT_EQ(c["ports"][0]["containerPort"], 8000);
  EXPECT_EQ(w["spec"]["restartPolicy"], "Never");
}

TEST(WorkerPod, ThePoolsTemplateAndImageComeFirst) {
  json pool = json::parse(R"({"metadata": {"name": "pool-a"}, "spec": {"componentConfig": {"worker": {
    "image": "registry/worker:2",
    "podTemplate": {"metadata": {"labels": {"team": "ml"}},
      "spec": {"terminationGracePeriodSeconds": 9, "tolerations": [{"key": "gpu", "operator": "Exists"}],
        "containers": [{"name": "x", "command": ["./tensor-fusion-worker", "-p", "8000"], "env": [{"name": "LD_LIBRARY_PATH", "value": "/usr/local/nvidia/lib64"}],
                        "volumeMounts": [{"name": "drv", "mountPath": "/drv"}]}],
        "volumes": [{"name": "drv", "hostPath": {"path": "/drv"}}]}}}}}})");
  json w = workerPodFor(connection(), clientPod(), pool, {.defaultImage = "default:1"});
  EXPECT_EQ(w["metadata"]["labels"]["team"], "ml");
  EXPECT_EQ(w["metadata"]["labels"]["tensor-fusion.ai/enabled"], "true");
  EXPECT_EQ(w["spec"]["terminationGracePeriodSeconds"], 9);
  EXPECT_EQ(w["spec"]["tolerations"][0]["key"], "gpu");
  EXPECT_EQ(w["spec"]["volumes"][0]["name"], "drv");
  const json& c = w["spec"]["containers"][0];
  EXPECT_EQ(c["name"], "worker");
  EXPECT_EQ(c["image"], "registry/worker:2");
  EXPECT_FALSE(c.contains("command"));  // our entrypoint, our arguments
  EXPECT_EQ(c["env"][0]["value"], "/usr/local/nvidia/lib64");
  EXPECT_EQ(c["volumeMounts"][0]["mountPath"], "/drv");
}

TEST(ConnectionStatus, FollowsTheWorker) {
  EXPECT_EQ(connectionStatus(nullptr, 8000)["phase"], "Pending");
  json w = workerPodFor(connection(), clientPod(), nullptr, {.defaultImage = "img"});
  w["metadata"]["resourceVersion"] = "77";
  w["status"] = {{"phase", "Pending"}};
  EXPECT_EQ(connectionStatus(&w, 8000)["phase"], "Pending");
  w["status"] = json::parse(R"({"phase": "Running", "podIP": "10.22.0.5",
                                "conditions": [{"type": "Ready", "status": "False"}]})");
  EXPECT_EQ(connectionStatus(&w, 8000)["phase"], "Pending");  // not listening yet
  w["status"]["conditions"][0]["status"] = "True";
  json s = connectionStatus(&w, 8000);
  EXPECT_EQ(s["phase"], "Running");
  EXPECT_EQ(s["connectionURL"], "native+10.22.0.5+8000+app-tf-vgpu-abcdefghij-77");
  EXPECT_EQ(s["workerName"], "app-tf-vgpu-abcdefghij");
  w["status"]["phase"] = "Failed";
  s = connectionStatus(&w, 8000);
  EXPECT_EQ(s["phase"], "Failed");
  EXPECT_TRUE(s["connectionURL"].is_null());  // removed by the merge patch
}

}  // namespace
}  // namespace tf::controller
