// Cluster mode: the hypervisor registers its node's GPUs with Kubernetes. Every heartbeat it
//   - creates or updates one GPU object per device (name = the lower-cased UUID; model,
//     capacity in TFLOPS and VRAM, index, NUMA node, phase), owned by the node's GPUNode;
//   - marks a GPU whose device is gone Unknown (annotation gpu-missing-since), and removes it
//     once it has been gone for the grace period and no app uses it;
//   - writes its GPUNode's status: hypervisor state, version and heartbeat, device list, node
//     memory and disk (the base of the pool's VRAM oversubscription).
// The controller creates the GPUNode (when a pool selects the node) and judges the heartbeat;
// until the GPUNode exists the registrar waits. Stopping writes the "Stopped" state, so the
// controller need not wait for the heartbeat to go stale.
//
//   NodeRegistrar r(client, {.nodeName = "node-a"}, [&] { return hv.devices(); });
//   r.start();  ...  r.stop();
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "hypervisor/device_inventory.h"
#include "k8s/client.h"
#include "k8s/stop_signal.h"

namespace tf::hypervisor {

struct RegistrarOptions {
  std::string nodeName;
  std::chrono::milliseconds heartbeat{5000};
  std::chrono::milliseconds missingGrace{10000};  // a missing idle GPU is removed after this
  std::string fieldManager = "tensor-fusion-hypervisor";
  std::string version;
  std::string diskPath = "/";  // its size is the node's dataDiskSize
};

class NodeRegistrar {
public:
  using DeviceSource = std::function<std::vector<GpuDevice>()>;
  NodeRegistrar(k8s::Client& client, RegistrarOptions options, DeviceSource devices);
  ~NodeRegistrar();

  void start();
  // Ends the loop; with `markStopped` the GPUNode says the hypervisor stopped.
  void stop(bool markStopped = true);

  // One pass (the loop calls it every heartbeat). Not an error when the GPUNode does not exist
  // yet: `registered()` tells.
  Status syncOnce();
  bool registered() const { return registered_; }

private:
  Status syncGpu(const GpuDevice& d, const nlohmann::json& gpuNode, const nlohmann::json* existing);
  Status markMissing(const nlohmann::json& gpu);
  Status writeNodeStatus(const nlohmann::json& gpuNode, const std::vector<GpuDevice>& present, const char* state);

  k8s::Client& client_;
  RegistrarOptions options_;
  DeviceSource devices_;
  k8s::StopSignal stop_;
  std::thread thread_;
  bool registered_ = false;
  bool warnedWaiting_ = false;
};

// The GPU object's name for a device UUID ("GPU-AB.." -> "gpu-ab..").
std::string gpuObjectName(const std::string& uuid);

}  // namespace tf::hypervisor
