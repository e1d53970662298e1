// The pod patch: each JSONPatch is applied to the pod here, as the apiserver will, and the
// result checked.
#include "webhook/patch.h"

#include <gtest/gtest.h>

namespace tf::webhook {
namespace {

using nlohmann::json;

json basePod() {
  return json::parse(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "p", "namespace": "ns", "labels": {"tensor-fusion.ai/enabled": "true"},
                 "annotations": {"tensor-fusion.ai/vram-limit": "1024Mi", "tensor-fusion.ai/gang-group-key": "forged"}},
    "spec": {"containers": [
      {"name": "app", "image": "cuda-app", "env": [{"name": "LD_PRELOAD", "value": "/usr/lib/mine.so"}]},
      {"name": "side", "image": "nginx"}],
      "priority": 0}
  })");
}

Decision decision(bool local, const std::string& isolation, const std::string& qos = "medium") {
  Decision d;
  d.pool = "main";
  d.workload = "wl";
  d.isLocal = local;
  d.isolation = isolation;
  d.qos = qos;
  d.containers = {"app"};
  d.values.set(Field::VramLimit, *k8s::api::Quantity::parse("1Gi"));
  d.values.set(Field::Qos, qos);
  d.values.set(Field::IsLocalGpu, local);
  return d;
}

const PatchOptions kOptions{.defaultClientImage = "localhost/tensor-fusion:dev"};

json applied(const json& pod, const Decision& d) {
  json patch = podPatch(pod, d, kOptions);
  EXPECT_TRUE(patch.is_array());
  json out = pod.patch(patch);  // throws if the patch does not apply
  EXPECT_EQ(out, mutatePod(pod, d, kOptions));
  return out;
}

json envOf(const json& container, const std::string& name) {
  for (const auto& e : container.value("env", json::array()))
    if (e["name"] == name) return e;
  return nullptr;
}

int envIndex(const json& container, const std::string& name) {
  const auto& env = container["env"];
  for (size_t i = 0; i < env.size(); ++i)
    if (env[i]["name"] == name) return static_cast<int>(i);
  return -1;
}

TEST(PodPatch, LocalSoftGetsLimiterSchedulerAndRegion) {
  json out = applied(basePod(), decision(true, "soft"));
  const json& meta = out["metadata"];
  EXPECT_EQ(meta["labels"]["tensor-fusion.ai/component"], "worker");
  EXPECT_EQ(meta["labels"]["tensor-fusion.ai/workload"], "wl");
  EXPECT_EQ(meta["labels"]["tensor-fusion.ai/gpupool"], "main");
  EXPECT_EQ(meta["labels"]["tensor-fusion.ai/enabled"], "true");
  EXPECT_EQ(meta["annotations"]["tensor-fusion.ai/vram-limit"], "1Gi");  // normalised
  EXPECT_FALSE(meta["annotations"].contains("tensor-fusion.ai/gang-group-key"));  // not the user's to write
  EXPECT_EQ(out["spec"]["schedulerName"], "tensor-fusion-scheduler");
  EXPECT_FALSE(out["spec"].contains("priorityClassName"));  // medium

  const json& init = out["spec"]["initContainers"][0];
  EXPECT_EQ(init["name"], kInitContainerName);
  EXPECT_EQ(init["image"], "localhost/tensor-fusion:dev");
  EXPECT_EQ(init["command"][2], "cp /opt/tensor-fusion/lib/libtensor-fusion-limiter.so /tensor-fusion/");
  EXPECT_EQ(init["volumeMounts"][0]["name"], kLibVolumeName);

  const json& app = out["spec"]["containers"][0];
  EXPECT_EQ(envOf(app, "LD_PRELOAD")["value"], "/tensor-fusion/libtensor-fusion-limiter.so:/usr/lib/mine.so");
  EXPECT_EQ(envOf(app, "TF_VGPU_REGION")["value"], "/run/tensor-fusion/vgpu/region");
  EXPECT_EQ(envOf(app, "POD_NAME")["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name");
  EXPECT_EQ(envOf(app, "POD_NAMESPACE")["valueFrom"]["fieldRef"]["fieldPath"], "metadata.namespace");
  // subPathExpr expands $(POD_NAME): those must exist in the container's env.
  json region;
  for (const auto& m : app["volumeMounts"])
    if (m["name"] == kRunVolumeName) region = m;
  EXPECT_EQ(region["subPathExpr"], "$(POD_NAMESPACE)/$(POD_UID)");
  EXPECT_EQ(envOf(app, "POD_UID")["valueFrom"]["fieldRef"]["fieldPath"], "metadata.uid");
  EXPECT_EQ(envOf(app, "TF_VGPU_REGION_WAIT_MS")["value"], "60000");
  EXPECT_EQ(region["mountPath"], "/run/tensor-fusion/vgpu");
  EXPECT_EQ(region["mountPropagation"], "HostToContainer");
  bool hostPath = false;
  for (const auto& v : out["spec"]["volumes"])
    if (v["name"] == kRunVolumeName) hostPath = v["hostPath"]["path"] == "/run/tensor-fusion/pods";
  EXPECT_TRUE(hostPath);

  // The container not named in inject-container is left alone.
  EXPECT_EQ(out["spec"]["containers"][1], basePod()["spec"]["containers"][1]);
}

TEST(PodPatch, RemoteGetsTheStubAndKeepsItsScheduler) {
  json out = applied(basePod(), decision(false, "soft"));
  EXPECT_EQ(out["metadata"]["labels"]["tensor-fusion.ai/component"], "client");
  EXPECT_FALSE(out["spec"].contains("schedulerName"));
  const json& app = out["spec"]["containers"][0];
  EXPECT_EQ(envOf(app, "LD_LIBRARY_PATH")["value"], "/tensor-fusion/remote");
  EXPECT_EQ(envOf(app, "LD_PRELOAD")["value"], "/usr/lib/mine.so");  // untouched
  EXPECT_TRUE(envOf(app, "TF_VGPU_REGION").is_null());
  EXPECT_NE(out["spec"]["initContainers"][0]["command"][2].get<std::string>().find("/opt/tensor-fusion/lib/remote/libcuda.so.1"),
            std::string::npos);
  for (const auto& v : out["spec"]["volumes"]) EXPECT_NE(v["name"], kRunVolumeName);
}

TEST(PodPatch, RemoteContainersAreToldWhereToAskForTheirWorker) {
  Decision d = decision(false, "soft");
  d.ns = "ns";
  d.connectionName = "p-tf-vgpu-abcdefghij";
  json out = applied(basePod(), d);
  const json& app = out["spec"]["containers"][0];
  EXPECT_EQ(envOf(app, "TENSOR_FUSION_CONNECTION_NAME")["value"], "p-tf-vgpu-abcdefghij");
  EXPECT_EQ(envOf(app, "TENSOR_FUSION_CONNECTION_NAMESPACE")["value"], "ns");
  EXPECT_EQ(envOf(app, "TENSOR_FUSION_OPERATOR_GET_CONNECTION_URL")["value"],
            "http://tensor-fusion-controller.tensor-fusion-sys.svc:8080/api/connection?name=p-tf-vgpu-abcdefghij&namespace=ns");
  EXPECT_EQ(out["metadata"]["annotations"]["tensor-fusion.ai/selected-workload"], "wl");
  // The container not injected gets none of it.
  EXPECT_TRUE(envOf(out["spec"]["containers"][1], "TENSOR_FUSION_CONNECTION_NAME").is_null());
  // The pool's endpoint wins over the controller's; a trailing slash is not doubled.
  d.operatorEndpoint = "http://10.0.0.7:8080/";
  out = applied(basePod(), d);
  EXPECT_EQ(envOf(out["spec"]["containers"][0], "TENSOR_FUSION_OPERATOR_GET_CONNECTION_URL")["value"],
            "http://10.0.0.7:8080/api/connection?name=p-tf-vgpu-abcdefghij&namespace=ns");
  // Local pods have no connection.
  Decision local = decision(true, "soft");
  local.connectionName = "ignored";
  EXPECT_TRUE(envOf(applied(basePod(), local)["spec"]["containers"][0], "TENSOR_FUSION_CONNECTION_NAME").is_null());
}

TEST(PodPatch, ConnectionNamesFollowTensorFusion) {
  const std::string a = newConnectionName(basePod());
  ASSERT_EQ(a.size(), std::string("p-tf-vgpu-").size() + 10);
  EXPECT_EQ(a.rfind("p-tf-vgpu-", 0), 0u);
  EXPECT_NE(a, newConnectionName(basePod()));  // random: a re-created pod gets a new one
  json generated = basePod();
  generated["metadata"].erase("name");
  generated["metadata"]["generateName"] = "job-";
  EXPECT_EQ(newConnectionName(generated).rfind("job-tf-vgpu-", 0), 0u);
}

// Local hard isolation: the stub, pointed at the worker the node's hypervisor starts in the
// pod's own directory (its socket and token there), waiting for it as the limiter waits for
// its region; no limiter in the pod.
TEST(PodPatch, LocalHardUsesTheStubAndThePodsWorker) {
  json out = applied(basePod(), decision(true, "hard"));
  EXPECT_EQ(out["spec"]["schedulerName"], "tensor-fusion-scheduler");
  const json& app = out["spec"]["containers"][0];
  EXPECT_EQ(envOf(app, "LD_LIBRARY_PATH")["value"], "/tensor-fusion/remote");
  EXPECT_EQ(envOf(app, "TF_REMOTE_WORKER")["value"], "shm:///run/tensor-fusion/vgpu/worker.sock");
  EXPECT_EQ(envOf(app, "TF_REMOTE_TOKEN_FILE")["value"], "/run/tensor-fusion/vgpu/worker.token");
  EXPECT_EQ(envOf(app, "TF_REMOTE_WAIT_MS")["value"], "60000");
  EXPECT_EQ(envOf(app, "LD_PRELOAD")["value"], "/usr/lib/mine.so");  // the user's, untouched
  EXPECT_TRUE(envOf(app, "TF_VGPU_REGION").is_null());
  json mount;
  for (const auto& m : app["volumeMounts"])
    if (m["mountPath"] == "/run/tensor-fusion/vgpu") mount = m;
  ASSERT_FALSE(mount.is_null()) << app.dump();
  EXPECT_EQ(mount["subPathExpr"], "$(POD_NAMESPACE)/$(POD_UID)");
  bool hostDir = false;
  for (const auto& v : out["spec"]["volumes"])
    hostDir = hostDir || v.value("/hostPath/path"_json_pointer, std::string()) == "/run/tensor-fusion/pods";
  EXPECT_TRUE(hostDir) << out["spec"]["volumes"].dump();
  // The sidecar the user did not name gets nothing.
  EXPECT_TRUE(envOf(out["spec"]["containers"][1], "TF_REMOTE_WORKER").is_null());
  // A remote pod is given its worker by the operator, not a socket on its node.
  json remote = applied(basePod(), decision(false, "hard"));
  EXPECT_TRUE(envOf(remote["spec"]["containers"][0], "TF_REMOTE_WORKER").is_null());
}

TEST(PodPatch, LocalSharedGetsNoLibrary) {
  json out = applied(basePod(), decision(true, "shared"));
  EXPECT_EQ(out["spec"]["schedulerName"], "tensor-fusion-scheduler");
  EXPECT_FALSE(out["spec"].contains("initContainers"));
  EXPECT_EQ(out["spec"]["containers"], basePod()["spec"]["containers"]);
}

TEST(PodPatch, HighQosGetsItsPriorityClassUnlessOneIsSet) {
  json out = applied(basePod(), decision(true, "soft", "critical"));
  EXPECT_EQ(out["spec"]["priorityClassName"], "tensor-fusion-critical");
  EXPECT_FALSE(out["spec"].contains("priority"));
  json mine = basePod();
  mine["spec"]["priorityClassName"] = "their-own";
  out = applied(mine, decision(true, "soft", "high"));
  EXPECT_EQ(out["spec"]["priorityClassName"], "their-own");
  EXPECT_EQ(out["spec"]["priority"], 0);
}

TEST(PodPatch, PoolImageWinsAndUserInitContainersRunAfterOurs) {
  json pod = basePod();
  pod["spec"]["initContainers"] = json::array({{{"name", "user-init"}, {"image", "x"}}});
  Decision d = decision(true, "soft");
  d.clientImage = "pool/client:1";
  json out = applied(pod, d);
  EXPECT_EQ(out["spec"]["initContainers"][0]["image"], "pool/client:1");
  EXPECT_EQ(out["spec"]["initContainers"][1]["name"], "user-init");
}

TEST(PodPatch, PodWithoutAnnotationsOrLabelsMapsStillPatches) {
  json pod = {{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", {{"name", "p"}}},
              {"spec", {{"containers", {{{"name", "app"}}}}}}};
  json out = applied(pod, decision(true, "soft"));
  EXPECT_EQ(out["metadata"]["annotations"]["tensor-fusion.ai/vram-limit"], "1Gi");
  EXPECT_EQ(envIndex(out["spec"]["containers"][0], "POD_NAME"), 0);  // before what expands it
}

TEST(PodPatch, PatchedPodIsRecognisedAndNotPatchedTwice) {
  json once = applied(basePod(), decision(true, "soft"));
  EXPECT_FALSE(alreadyInjected(basePod()));
  EXPECT_TRUE(alreadyInjected(once));
}

}  // namespace
}  // namespace tf::webhook
