// Labels, annotations and finalizers of the tensor-fusion.ai API, named once (TensorFusion's
// keys, ../shared/reference/tensorfusion-operator.md §2): the controller, the hypervisor and
// the tests all read them from here.
#pragma once

#include <string>
#include <string_view>

namespace tf::k8s::api {

inline constexpr std::string_view kDomain = "tensor-fusion.ai";

// GPUPool: the TensorFusionCluster that made it; GPUNode: its pool; GPU: its GPUNode.
inline constexpr const char* kLabelManagedBy = "tensor-fusion.ai/managed-by";
// GPU and TensorFusionWorkload: the pool.
inline constexpr const char* kLabelGpuPool = "tensor-fusion.ai/gpupool";
// GPUNode: "pool-<pool>" = "true".
inline std::string poolMemberLabel(std::string_view pool) {
  return std::string("tensor-fusion.ai/pool-") + std::string(pool);
}
inline constexpr const char* kAnnotationIsDefaultPool = "tensor-fusion.ai/is-default-pool";
inline constexpr const char* kAnnotationLastSync = "tensor-fusion.ai/last-sync";
inline constexpr const char* kAnnotationGpuMissingSince = "tensor-fusion.ai/gpu-missing-since";
inline constexpr const char* kFinalizer = "tensor-fusion.ai/finalizer";
// GPU: "true" while an operator (the portal's cordonGpu command) keeps new work off it.
inline constexpr const char* kLabelCordoned = "tensor-fusion.ai/cordoned";

// Node labels the discovery Job writes: the facts of the node's GPUs.
inline constexpr const char* kNodeLabelGpuCount = "tensor-fusion.ai/gpu-count";
inline constexpr const char* kNodeLabelGpuModel = "tensor-fusion.ai/gpu-model";
inline constexpr const char* kNodeLabelGpuVram = "tensor-fusion.ai/gpu-vram";
inline constexpr const char* kNodeLabelHardwareVendor = "tensor-fusion.ai/hardware-vendor";
// The label NVIDIA's GPU feature discovery sets, TensorFusion's default node selector.
inline constexpr const char* kNodeLabelGpuPresent = "nvidia.com/gpu.present";

// Hypervisor states in GPUNode.status.hypervisorStatus.hypervisorState.
inline constexpr const char* kHypervisorRunning = "Running";
inline constexpr const char* kHypervisorStopped = "Stopped";

// Pods: the user opts in with this label; the webhook adds the others.
inline constexpr const char* kLabelEnabled = "tensor-fusion.ai/enabled";
inline constexpr const char* kLabelComponent = "tensor-fusion.ai/component";  // worker | client
inline constexpr const char* kLabelWorkload = "tensor-fusion.ai/workload";
inline constexpr const char* kComponentWorker = "worker";  // a local-GPU pod
inline constexpr const char* kComponentClient = "client";  // a remote-vGPU pod
inline constexpr const char* kComponentHypervisor = "hypervisor";  // a node's hypervisor pod
// The hypervisor pod's HTTP API (docs/hypervisor-api.md): its container port of this name, else
// this number.
inline constexpr const char* kHypervisorPortName = "api";
inline constexpr int kHypervisorPort = 8000;
// The name of the vGPU a node's hypervisor makes for a pod: "pod-" and the pod's UID without
// its dashes (what the hypervisor's API lists, and the cluster agent maps back to the pod).
inline std::string podVgpuName(std::string_view podUid) {
  std::string out = "pod-";
  for (char c : podUid)
    if (c != '-') out += c;
  return out;
}
inline bool isPodVgpuName(std::string_view name) { return name.rfind("pod-", 0) == 0; }
// The kube-scheduler profile that places local-GPU pods.
inline constexpr const char* kSchedulerName = "tensor-fusion-scheduler";

// Pod annotations (reference §2.1/§3.3): what the user asks for, normalised by the webhook;
// the allocator reads exactly these. The webhook's table (src/webhook/annotations.h) gives
// each one its kind and rules.
inline constexpr const char* kAnnotationGpuPool = "tensor-fusion.ai/gpupool";
inline constexpr const char* kAnnotationTflopsRequest = "tensor-fusion.ai/tflops-request";
inline constexpr const char* kAnnotationTflopsLimit = "tensor-fusion.ai/tflops-limit";
inline constexpr const char* kAnnotationVramRequest = "tensor-fusion.ai/vram-request";
inline constexpr const char* kAnnotationVramLimit = "tensor-fusion.ai/vram-limit";
inline constexpr const char* kAnnotationComputeRequest = "tensor-fusion.ai/compute-percent-request";
inline constexpr const char* kAnnotationComputeLimit = "tensor-fusion.ai/compute-percent-limit";
inline constexpr const char* kAnnotationQos = "tensor-fusion.ai/qos";
inline constexpr const char* kAnnotationIsLocalGpu = "tensor-fusion.ai/is-local-gpu";
inline constexpr const char* kAnnotationIsolation = "tensor-fusion.ai/isolation";
inline constexpr const char* kAnnotationGpuCount = "tensor-fusion.ai/gpu-count";
inline constexpr const char* kAnnotationGpuIndices = "tensor-fusion.ai/gpu-indices";
inline constexpr const char* kAnnotationGpuModel = "tensor-fusion.ai/gpu-model";
inline constexpr const char* kAnnotationVendor = "tensor-fusion.ai/vendor";
inline constexpr const char* kAnnotationDedicatedGpu = "tensor-fusion.ai/dedicated-gpu";
inline constexpr const char* kAnnotationWorkload = "tensor-fusion.ai/workload";
inline constexpr const char* kAnnotationWorkloadProfile = "tensor-fusion.ai/workload-profile";
inline constexpr const char* kAnnotationEvictionProtection = "tensor-fusion.ai/eviction-protection";
inline constexpr const char* kAnnotationGangEnabled = "tensor-fusion.ai/gang-enabled";
inline constexpr const char* kAnnotationGangMinMembers = "tensor-fusion.ai/gang-min-members";
inline constexpr const char* kAnnotationGangTimeout = "tensor-fusion.ai/gang-timeout";
inline constexpr const char* kAnnotationGangGroupKey = "tensor-fusion.ai/gang-group-key";  // <ns>/<workload>
inline constexpr const char* kAnnotationGangRequiredMembers = "tensor-fusion.ai/gang-required-members";
inline constexpr const char* kAnnotationInjectContainer = "tensor-fusion.ai/inject-container";
inline constexpr const char* kAnnotationSidecarWorker = "tensor-fusion.ai/sidecar-worker";
// Written by the scheduler at bind: the GPU objects the pod got (the allocation's record).
// The hypervisor of the pod's node makes its vGPU from it.
inline constexpr const char* kAnnotationGpuIds = "tensor-fusion.ai/gpu-ids";

// Local soft isolation: the node directory of pods' vGPU regions,
// <dir>/<namespace>/<pod UID>/region (the hypervisor makes them, the webhook mounts a pod's own
// directory at kPodVgpuMountPath with subPathExpr), and the limiter's wait for it.
inline constexpr const char* kPodVgpuHostDir = "/run/tensor-fusion/pods";
inline constexpr const char* kPodVgpuMountPath = "/run/tensor-fusion/vgpu";
inline constexpr const char* kPodVgpuRegionWaitMs = "60000";
// Local hard isolation: the pod's own worker, which the hypervisor starts listening on a socket
// file in the same directory, with the token its clients present beside it. The webhook points
// the pod's client stub there (TF_REMOTE_WORKER=shm://<mount>/worker.sock), and the stub waits
// for it as the limiter waits for its region.
inline constexpr const char* kPodWorkerSocket = "worker.sock";
inline constexpr const char* kPodWorkerTokenFile = "worker.token";
inline constexpr const char* kEnvRemoteWorker = "TF_REMOTE_WORKER";
inline constexpr const char* kEnvRemoteTokenFile = "TF_REMOTE_TOKEN_FILE";
inline constexpr const char* kEnvRemoteWaitMs = "TF_REMOTE_WAIT_MS";

// On a GPU object: what its hypervisor can make (JSON, {"isolationModes": ["shared","soft","hard"]}).
// Ours makes soft and hard vGPUs side by side on one GPU (a hard vGPU's worker is limited by
// the same region and quota controller as a soft one), so a GPU in status.isolationMode soft
// also takes hard pods; the allocator reads this beside status.isolationMode.
inline constexpr const char* kAnnotationVirtualizationCapabilities = "tensor-fusion.ai/virtualization-capabilities";
inline constexpr const char* kHypervisorCapabilities = R"({"isolationModes":["shared","soft","hard"]})";

// Written by the scheduler at bind for hard isolation with a TFLOPS limit (reference §2.2).
inline constexpr const char* kAnnotationEffectiveHardSmPercent = "tensor-fusion.ai/effective-hard-sm-percent";
inline constexpr const char* kHostnameLabel = "kubernetes.io/hostname";

// Remote vGPUs (reference §3.5). The webhook gives each injected container of a remote client
// pod the name of its TensorFusionConnection and the operator URL that answers it; the
// controller makes the connection (owned by the pod) and a dedicated worker pod named like the
// connection (owned by it), and writes the worker's address into the connection's status.
inline constexpr const char* kEnvConnectionName = "TENSOR_FUSION_CONNECTION_NAME";
inline constexpr const char* kEnvConnectionNamespace = "TENSOR_FUSION_CONNECTION_NAMESPACE";
inline constexpr const char* kEnvGetConnectionUrl = "TENSOR_FUSION_OPERATOR_GET_CONNECTION_URL";
inline constexpr const char* kAnnotationSelectedWorkload = "tensor-fusion.ai/selected-workload";
inline constexpr const char* kAnnotationDedicatedWorker = "tensor-fusion.ai/dedicated-worker";
inline constexpr const char* kLabelWorkerName = "tensor-fusion.ai/worker-name";
// The operator's HTTP API path the stub long-polls, and the port workers listen on.
inline constexpr const char* kConnectionApiPath = "/api/connection";
inline constexpr int kWorkerPort = 8000;
// "native+<pod IP>+<port>+<worker>-<resourceVersion>", TensorFusion's connection URL.
inline std::string connectionUrl(std::string_view ip, int port, std::string_view worker, std::string_view rv) {
  return "native+" + std::string(ip) + "+" + std::to_string(port) + "+" + std::string(worker) + "-" + std::string(rv);
}

}  // namespace tf::k8s::api
