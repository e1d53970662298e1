// The pod the webhook wants, from a Decision (pure): normalised labels and annotations, the
// scheduler, the init container that places our client library, the environment that
// attaches the process to its vGPU, the priority class. The JSONPatch sent back is the diff
// between the pod as it came and this one.
//
//   nlohmann::json patch = podPatch(pod, decision, options);   // RFC 6902 operations
//   pod.patch(patch) == mutatePod(pod, decision, options);      // what the apiserver will do
//
// Per mode (reference §3.3-§3.5, with our own libraries):
//   local + soft: LD_PRELOAD=/tensor-fusion/libtensor-fusion-limiter.so, TF_VGPU_REGION at
//     /run/tensor-fusion/vgpu/region, where the hostPath /run/tensor-fusion/pods is mounted with
//     subPathExpr <namespace>/<pod UID>: the hypervisor makes the pod's quota region at
//     /run/tensor-fusion/pods/<namespace>/<pod UID>/region on the node, and a pod sees only its own.
//   local + hard, and every remote pod: LD_LIBRARY_PATH=/tensor-fusion/remote (our stub
//     libcuda.so.1 and libnvidia-ml.so.1). A remote pod's containers also get
//     TENSOR_FUSION_CONNECTION_NAME/_NAMESPACE and TENSOR_FUSION_OPERATOR_GET_CONNECTION_URL
//     (<operator endpoint>/api/connection?name=...&namespace=...), where the stub asks for its
//     worker's address, and the pod the annotation selected-workload.
//   local + shared: no library (the allocation alone).
// Local pods get schedulerName tensor-fusion-scheduler and label component=worker; remote
// pods keep their scheduler and get component=client.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "webhook/policy.h"

namespace tf::webhook {

inline constexpr const char* kInitContainerName = "tensor-fusion-inject";
inline constexpr const char* kLibVolumeName = "tensor-fusion-libs";
inline constexpr const char* kLibMountPath = "/tensor-fusion";
inline constexpr const char* kRunVolumeName = "tensor-fusion-run";
inline constexpr const char* kLimiterLibrary = "libtensor-fusion-limiter.so";

struct PatchOptions {
  std::string defaultClientImage;                // when the pool names none
  std::string imageLibDir = "/opt/tensor-fusion/lib";  // our libraries in that image (images/tensor-fusion.sh)
  // Where remote clients reach the operator's connection API when the pool names no
  // client.operatorEndpoint (the controller sets its Service's address).
  std::string operatorEndpoint = "http://tensor-fusion-controller.tensor-fusion-sys.svc:8080";
};

// TensorFusion's connection name for a remote pod: "<name>-tf-vgpu-<10 random characters>", or
// "<generateName>tf-vgpu-<...>" for a pod whose name the apiserver has yet to generate.
std::string newConnectionName(const nlohmann::json& pod);
// <endpoint>/api/connection?name=<connection>&namespace=<ns>
std::string connectionQueryUrl(const std::string& endpoint, const std::string& name, const std::string& ns);

// True when the pod already carries our init container: it is not patched twice.
bool alreadyInjected(const nlohmann::json& pod);

nlohmann::json mutatePod(const nlohmann::json& pod, const Decision& decision, const PatchOptions& options);
nlohmann::json podPatch(const nlohmann::json& pod, const Decision& decision, const PatchOptions& options);

}  // namespace tf::webhook
