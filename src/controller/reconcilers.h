// The reconcilers, one per kind, each level-triggered and idempotent: given a name, read the
// world from the caches, write the difference (../shared/design/STYLE.md, "The operator").
//
//   TensorFusionCluster -> its GPUPools (<cluster>-<pool>), and the sums of their status
//   GPUPool             -> status from the GPUNodes it manages; says when its selector matches no node
//   Node                -> a GPUNode when a pool selects the node, none otherwise
//   GPUNode             -> status from its GPUs and its hypervisor's heartbeat; GPUs go Unknown
//                          when the heartbeat stops; deletion removes its GPUs first
//   TensorFusionWorkload -> status from its pods (label tensor-fusion.ai/workload): phase, worker
//                          counts, and each pod with its phase, node and GPUs
//   TensorFusionConnection -> made for each remote client pod (owned by it); its dedicated
//                          worker pod (owned by the connection); status with the worker's
//                          address once it is ready, Failed (and a new worker) when it ends
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "controller/context.h"
#include "controller/reconcile_loop.h"
#include "controller/worker_pod.h"

namespace tf::controller {

class ClusterReconciler {
public:
  explicit ClusterReconciler(Context& ctx) : ctx_(ctx) {}
  tf::Result<Outcome> reconcile(const std::string& name);

private:
  Context& ctx_;
};

class PoolReconciler {
public:
  explicit PoolReconciler(Context& ctx) : ctx_(ctx) {}
  tf::Result<Outcome> reconcile(const std::string& name);

private:
  Context& ctx_;
};

class NodeReconciler {
public:
  explicit NodeReconciler(Context& ctx) : ctx_(ctx) {}
  tf::Result<Outcome> reconcile(const std::string& name);

private:
  Context& ctx_;
};

class GpuNodeReconciler {
public:
  explicit GpuNodeReconciler(Context& ctx, k8s::Clock& clock = k8s::Clock::real()) : ctx_(ctx), clock_(clock) {}
  tf::Result<Outcome> reconcile(const std::string& name);

private:
  // When did the heartbeat of `node` last change, by our clock (never by comparing the
  // hypervisor's wall clock with ours)?
  k8s::TimePoint heartbeatSeen(const std::string& node, const std::string& heartbeat);

  Context& ctx_;
  k8s::Clock& clock_;
  std::mutex mu_;
  std::map<std::string, std::pair<std::string, k8s::TimePoint>> heartbeats_;
};

class WorkloadReconciler {
public:
  explicit WorkloadReconciler(Context& ctx) : ctx_(ctx) {}
  // `key`: "<namespace>/<name>".
  tf::Result<Outcome> reconcile(const std::string& key);

private:
  Context& ctx_;
};

class ConnectionReconciler {
public:
  ConnectionReconciler(Context& ctx, WorkerPodOptions options) : ctx_(ctx), options_(std::move(options)) {}
  // `key`: "<namespace>/<connection name>".
  tf::Result<Outcome> reconcile(const std::string& key);

private:
  Context& ctx_;
  WorkerPodOptions options_;
};

// The pods index of connections: a client pod under each connection name it carries, a
// dedicated worker under its own name (both "<namespace>/<name>").
std::vector<std::string> connectionIndexKeys(const nlohmann::json& pod);

// The pods index of workloads: "<namespace>/<workload label>" (empty: not a workload's pod).
std::string workloadIndexKey(const nlohmann::json& pod);
// A workload's status from its pods (pure; the reconciler writes what differs).
nlohmann::json workloadStatus(const std::vector<k8s::ObjectPtr>& pods);

}  // namespace tf::controller
