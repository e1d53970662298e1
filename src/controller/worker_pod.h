// Remote vGPUs (reference §3.5), the pure part: the TensorFusionConnection a remote client pod
// asks for, the dedicated worker pod that serves it, and the connection's status from that
// worker. The ConnectionReconciler (reconcilers.h) writes what these say.
//
//   client pod (component=client, env TENSOR_FUSION_CONNECTION_NAME=c)
//     └─ TensorFusionConnection c          owner: the client pod
//          └─ worker pod c                 owner: the connection; labelled tensor-fusion.ai/enabled,
//                                          so the webhook makes it a local soft pod like any other
//                                          (limiter, our scheduler, a vGPU from the hypervisor)
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tf::controller {

// The connection names a client pod's injected containers carry (usually one).
std::vector<std::string> connectionNamesOf(const nlohmann::json& clientPod);
bool isClientPod(const nlohmann::json& pod);
bool isDedicatedWorker(const nlohmann::json& pod);

nlohmann::json connectionFor(const nlohmann::json& clientPod, const std::string& name);

struct WorkerPodOptions {
  std::string defaultImage;  // when the pool names no worker image
  int port = 8000;
};
// `pool`: the client's GPUPool as JSON (null when gone); its componentConfig.worker gives the
// image and a pod template (what a node's GPU driver needs: env, mounts).
nlohmann::json workerPodFor(const nlohmann::json& connection, const nlohmann::json& clientPod,
                            const nlohmann::json& pool, const WorkerPodOptions& options);

// Running with the worker's address once it is Running and ready; Failed when it ended;
// Pending until then. A merge patch: connectionURL null (removed) unless Running.
nlohmann::json connectionStatus(const nlohmann::json* worker, int port);

}  // namespace tf::controller
