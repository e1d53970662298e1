// Cluster mode: the vGPUs of the pods the scheduler placed on this node. A pod labelled
// `tensor-fusion.ai/component=worker`, bound here, with the scheduler's `gpu-ids` annotation
// naming GPUs of this node, gets a vGPU on that device with the limits of its annotations
// (vram-limit, tflops-limit or compute-percent-limit, qos). Local soft isolation: the vGPU's
// quota region is made at `<podRoot>/<namespace>/<pod UID>/region`, the host directory the webhook
// mounts into the pod at /run/tensor-fusion/vgpu (TF_VGPU_REGION); the preloaded limiter waits
// for it (TF_VGPU_REGION_WAIT_MS). The pod's deletion, or its end (Succeeded/Failed), returns
// the vGPU and its directory. A hypervisor that restarts finds its vGPUs in its state and
// removes those whose pod is gone.
//
// vGPUs made here are named "pod-<uid without dashes>", which ties them to one pod instance
// (a pod re-created under the same name is a new vGPU).
//
//   PodVgpuSync sync(client, hypervisor, {.nodeName = "node-a"});
//   sync.start();  ...  sync.stop();
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "hypervisor/device_inventory.h"
#include "hypervisor/vgpu.h"
#include "k8s/api/well_known.h"
#include "k8s/client.h"

namespace tf::k8s {
class Informer;
class EventRecorder;
}  // namespace tf::k8s

namespace tf::hypervisor {

class Hypervisor;

struct PodVgpuOptions {
  std::string nodeName;
  std::string podRoot = k8s::api::kPodVgpuHostDir;
  std::chrono::milliseconds resync{5000};  // full pass even without a change
};

// The vGPU name of a pod ("pod-" + its UID without dashes).
std::string podVgpuName(const nlohmann::json& pod);

// What the pod needs from this node: nullopt when it needs nothing here (not ours, not yet
// allocated, finished, or its GPUs are on another node); an error (with the annotation named)
// when its annotations cannot be honoured.
Result<std::optional<VgpuRequest>> vgpuRequestForPod(const nlohmann::json& pod,
                                                     const std::vector<GpuDevice>& devices,
                                                     const std::string& podRoot);

// A pod's vGPU moved to other GPUs of this node (Hypervisor::migrateVgpu): the merge patch
// that makes its `gpu-ids` (the scheduler's record, from which the GPUs' status follows) name
// them, and what the Event on the pod says.
nlohmann::json podMovedPatch(const Vgpu& moved);
std::string podMovedMessage(const Vgpu& moved, const std::string& from, int clients, int movedClients,
                            uint64_t bytes, uint64_t maxPauseNs);

class PodVgpuSync {
public:
  PodVgpuSync(k8s::Client& client, Hypervisor& hypervisor, PodVgpuOptions options);
  ~PodVgpuSync();

  void start();
  void stop();

  // One level-triggered pass over the informer's pods and this hypervisor's pod vGPUs (the
  // loop runs it on every change and every resync period). Public for tests.
  void syncOnce();
  bool synced() const;

private:
  void loop();
  void warnOnce(const nlohmann::json& pod, const std::string& reason, const std::string& message);
  // Hard vGPUs: the VRAM tiers of the pod's pool's SchedulingConfigTemplate for its QoS
  // (autoFreeze), none, with a warning Event, when they cannot be read; and, when tiered, each
  // device's share of the node's VRAM expansion (the pool's percent of the host memory and disk
  // its GPUNode shows), none with a warning Event when the pool's values or the node's facts are
  // missing or wrong. Unset allowance: the pod names no pool (the hypervisor's own expansion).
  struct PoolVram {
    VgpuTiers tiers;
    std::optional<std::map<std::string, uint64_t>> vramAllowance;
  };
  PoolVram poolVram(const nlohmann::json& pod, Qos qos, const std::vector<GpuDevice>& devices);
  // After a move (Hypervisor::onMoved): the pod's gpu-ids patched, an Event on it.
  void podMoved(const Vgpu& moved, const std::string& from, const std::string& message);

  k8s::Client& client_;
  Hypervisor& hypervisor_;
  PodVgpuOptions options_;
  std::unique_ptr<k8s::Informer> pods_;
  std::unique_ptr<k8s::EventRecorder> events_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool dirty_ = true;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::map<std::string, std::string> warned_;  // vGPU name -> last warning, said once
};

}  // namespace tf::hypervisor
