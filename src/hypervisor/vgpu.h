// vGPUs as the hypervisor grants them: the request a user makes (compute as TFLOPS or percent,
// VRAM, QoS, isolation, how many devices) and the record of a grant (devices, quota region,
// compute shares). A vGPU of several devices gets the request's limits on each of them (as
// TensorFusion's per-GPU annotations with gpu-count), all in one quota region.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "limiter/quota_region.h"

namespace tf::hypervisor {

// At most this many devices per vGPU: the quota region's device slots.
constexpr int kMaxVgpuDevices = limiter::kMaxDevices;

enum class Qos { Low, Medium, High, Critical };
enum class Isolation { Soft, Hard, Remote };

const char* qosName(Qos q);
const char* isolationName(Isolation i);
Result<Qos> parseQos(const std::string& s);
Result<Isolation> parseIsolation(const std::string& s);
int qosWeight(Qos q); // share of idle compute a busy vGPU may borrow: low 1 ... critical 8

// A vGPU's own VRAM tier policy (cluster mode: its pod's pool's SchedulingConfigTemplate
// autoFreeze for its QoS), over the hypervisor's.
struct VgpuTiers {
  bool enabled = false;
  uint64_t freezeToMemMs = 0, freezeToDiskMs = 0;  // 0: never by idling
};

struct VgpuRequest {
  std::string name;             // optional; the id is derived from it
  double tflopsRequest = 0, tflopsLimit = 0;   // exclusive with percent
  double percentRequest = 0, percentLimit = 0; // of one device
  uint64_t vramRequest = 0, vramLimit = 0;
  Qos qos = Qos::Medium;
  Isolation isolation = Isolation::Soft;
  // Devices to pin to, by UUID (optional); else `count` devices the allocator picks.
  std::vector<std::string> devices;
  int count = 1;
  // In-process callers only (cluster mode places a pod's region where the pod mounts it);
  // not part of the HTTP API. Empty: the hypervisor's region directory.
  std::string regionPath;
  // In-process callers only: where a hard-isolated vGPU's worker listens (a cluster pod's
  // socket file, shm:///<pod dir>/worker.sock) and the file its token is written to for the
  // pod's stub. Empty: shm://tf-<id>, and the token is only in the API's answer.
  std::string workerListen, workerTokenFile;
  // In-process callers only: the cluster's scheduler placed it (its ledger, with the pool's
  // oversubscription, is the state of record), so only the device's own bounds are checked.
  bool scheduled = false;
  // In-process callers only (kept in the record): tiers asked for by the vGPU's pool.
  VgpuTiers tiers;
  // In-process callers only, not kept: VRAM each device (by UUID; absent: 0) may give this vGPU
  // past its memory, its share of its pool's expansion (src/allocator/expansion.h). Set, it
  // replaces the hypervisor's own --vram-expand for this vGPU.
  std::optional<std::map<std::string, uint64_t>> vramAllowance;
  // In-process callers only, not kept: a vGPU moving here from another node keeps its clients'
  // token, and its worker takes that node's Adopt with `migrationToken`.
  std::string workerToken, migrationToken;
};

// Parses and validates a request: sizes as "4GiB" or bytes, compute as numbers; a missing
// request defaults to the limit (as TensorFusion's annotations do). Errors name the field.
Result<VgpuRequest> parseVgpuRequest(const nlohmann::json& body);
nlohmann::json toJson(const VgpuRequest& r);

// One device of a grant: which, and the vGPU's compute share of it.
struct DeviceGrant {
  int deviceIndex = -1;
  std::string deviceUuid;
  uint32_t requestBp = 0, limitBp = 0; // basis points of the device
};

struct Vgpu {
  std::string id;
  VgpuRequest request;
  std::vector<DeviceGrant> devices;    // in the quota region's order; never empty once granted
  std::string regionPath;
  int64_t createdAt = 0;               // unix seconds
  // Hard and remote isolation: the worker the vGPU's clients connect to.
  std::string workerAddress, workerToken;
  int workerPid = 0;
  int workerRestarts = 0;
};

// A grant's devices as their UUIDs, comma-separated, in order.
std::string deviceUuids(const std::vector<DeviceGrant>& devices);

// A Vgpu's JSON keeps the one-device fields of its first device (device, deviceIndex,
// computeRequestPercent, computeLimitPercent) beside "devices", so older readers and state
// files still work; vgpuFromJson reads either.
nlohmann::json toJson(const Vgpu& v);
Result<Vgpu> vgpuFromJson(const nlohmann::json& j);

} // namespace tf::hypervisor
