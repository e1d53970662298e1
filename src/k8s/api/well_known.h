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

// Pods (TensorFusion's normalised set, reference §2 and §3.3): the webhook writes these on
// every pod it owns; the allocator reads exactly these and writes only kAnnotationGpuIds (and
// kAnnotationEffectiveHardSmPercent) at bind.
inline constexpr const char* kLabelEnabled = "tensor-fusion.ai/enabled";
inline constexpr const char* kLabelComponent = "tensor-fusion.ai/component";
inline constexpr const char* kComponentWorker = "worker";
inline constexpr const char* kComponentClient = "client";
inline constexpr const char* kLabelWorkload = "tensor-fusion.ai/workload";
inline constexpr const char* kSchedulerName = "tensor-fusion-scheduler";
inline constexpr const char* kAnnotationGpuPool = "tensor-fusion.ai/gpupool";
inline constexpr const char* kAnnotationTflopsRequest = "tensor-fusion.ai/tflops-request";
inline constexpr const char* kAnnotationTflopsLimit = "tensor-fusion.ai/tflops-limit";
inline constexpr const char* kAnnotationVramRequest = "tensor-fusion.ai/vram-request";
inline constexpr const char* kAnnotationVramLimit = "tensor-fusion.ai/vram-limit";
inline constexpr const char* kAnnotationComputePercentRequest = "tensor-fusion.ai/compute-percent-request";
inline constexpr const char* kAnnotationComputePercentLimit = "tensor-fusion.ai/compute-percent-limit";
inline constexpr const char* kAnnotationGpuCount = "tensor-fusion.ai/gpu-count";
inline constexpr const char* kAnnotationQos = "tensor-fusion.ai/qos";
inline constexpr const char* kAnnotationIsLocalGpu = "tensor-fusion.ai/is-local-gpu";
inline constexpr const char* kAnnotationIsolation = "tensor-fusion.ai/isolation";
inline constexpr const char* kAnnotationGpuModel = "tensor-fusion.ai/gpu-model";
inline constexpr const char* kAnnotationVendor = "tensor-fusion.ai/vendor";
inline constexpr const char* kAnnotationGpuIndices = "tensor-fusion.ai/gpu-indices";
inline constexpr const char* kAnnotationDedicatedGpu = "tensor-fusion.ai/dedicated-gpu";
inline constexpr const char* kAnnotationEvictionProtection = "tensor-fusion.ai/eviction-protection";
inline constexpr const char* kAnnotationGangGroupKey = "tensor-fusion.ai/gang-group-key";
inline constexpr const char* kAnnotationGangRequiredMembers = "tensor-fusion.ai/gang-required-members";
inline constexpr const char* kAnnotationGangTimeout = "tensor-fusion.ai/gang-timeout";
// Written by the scheduler at bind: the allocation's record (comma list of GPU object names).
inline constexpr const char* kAnnotationGpuIds = "tensor-fusion.ai/gpu-ids";
inline constexpr const char* kAnnotationEffectiveHardSmPercent = "tensor-fusion.ai/effective-hard-sm-percent";
// The GPU's node, in GPU.status.nodeSelector.
inline constexpr const char* kHostnameLabel = "kubernetes.io/hostname";

}  // namespace tf::k8s::api
