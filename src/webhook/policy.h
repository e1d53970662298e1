// What the webhook decides for one pod, as pure functions of the pod and what the cluster
// holds (no I/O): the merge of defaults (reference §3.1 step 2, as far as our API has it),
// validation, and the normalised result the patch writes.
//
//   ClusterView view{.pools = ..., .profile = ..., .quotas = ..., .gpus = ...};
//   Result<Decision> d = decide(pod, "my-deployment", view);
//   if (!d) deny(d.status().message());   // names the annotation: "tensor-fusion.ai/gpu-count: ..."
//
// Merge order, each later layer over the earlier ones: WorkloadProfile (annotation
// `workload-profile`) → the pool (annotation `gpupool`, the profile's poolName, else the pool
// annotated `is-default-pool: "true"`) for local/isolation/QoS defaults → the first
// GPUResourceQuota of the namespace (by name) `single.defaultRequests/defaultLimits` for
// resources not yet set → the pod's annotations → `gpu-model` + `dedicated-gpu` (a whole GPU of
// that model) → gang. Within a layer tflops and compute-percent are alternatives: a layer that
// sets one drops the other's earlier value.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "k8s/api/v1/types.h"
#include "webhook/annotations.h"

namespace tf::webhook {

namespace v1 = k8s::api::v1;

// What decide() reads from the cluster.
// What decide() needs of the chosen pool's GPUs, not the GPUs themselves (a pool may hold
// thousands): how many its best-equipped node has (gpu-count is held to it), and per model the
// capacity of one GPU with a status (what dedicated-gpu takes whole).
struct PoolGpus {
  int64_t mostOnOneNode = 0;
  std::map<std::string, v1::Resource> capacityByModel;
};
// The summary of `pool`'s GPUs among `gpus` (GPUs of other pools are ignored).
PoolGpus summarizePoolGpus(const std::vector<v1::Gpu>& gpus, const std::string& pool);
// The model a GPU reports ("" without a status).
std::string gpuModelOf(const v1::Gpu& gpu);

struct ClusterView {
  std::vector<v1::GpuPool> pools;
  std::optional<v1::WorkloadProfile> profile;  // the one the pod names, when it exists
  std::vector<v1::GpuResourceQuota> quotas;    // of the pod's namespace
  PoolGpus poolGpus;                           // of the pool choosePool() picks
};

struct Decision {
  Values values;  // the normalised annotations (formatAnnotations gives their text)
  std::string pool;
  std::string workload;
  bool isLocal = true;
  std::string isolation;  // shared | soft | hard
  std::string qos;
  std::vector<std::string> containers;  // the containers to inject
  std::string clientImage;              // the pool's client image; empty: the controller's default
  std::string operatorEndpoint;         // the pool's client.operatorEndpoint; empty: the controller's
  // Remote pods: the TensorFusionConnection the stub asks the operator for (review.cpp names it).
  std::string connectionName;
  std::string ns;
};

// The pool the pod asks for (annotation, then the profile's poolName), or the default pool.
// Errors name the `gpupool` annotation.
Result<std::string> choosePool(const Values& annotations, const std::optional<v1::WorkloadProfile>& profile,
                               const std::vector<v1::GpuPool>& pools);

// `workload`: the name of the pod's top owner (or the pod's own name); the `workload`
// annotation overrides it. Every error is a denial whose message names an annotation.
Result<Decision> decide(const nlohmann::json& pod, const std::string& workload, const ClusterView& view);

}  // namespace tf::webhook
