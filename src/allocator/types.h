// What the allocator books: GPUs (from GPU objects) and requests (from a pod's normalised
// annotations, reference §3.3). Amounts are integers: TFLOPS in thousandths, VRAM in bytes,
// so sums are exact and comparisons cheap.
//
//   tf::Result<Request> r = requestFromPod(podJson);   // "tensor-fusion.ai/vram-request: ..."
//   tf::Result<Gpu> g = gpuFromObject(gpuJson);
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace tf::allocator {

using Clock = std::chrono::system_clock;
using Duration = std::chrono::nanoseconds;

// A GPU amount: compute and memory.
struct Amount {
  int64_t milliTflops = 0;
  int64_t vramBytes = 0;
  Amount& operator+=(const Amount& o) { milliTflops += o.milliTflops; vramBytes += o.vramBytes; return *this; }
  Amount& operator-=(const Amount& o) { milliTflops -= o.milliTflops; vramBytes -= o.vramBytes; return *this; }
  friend Amount operator+(Amount a, const Amount& b) { return a += b; }
  friend Amount operator-(Amount a, const Amount& b) { return a -= b; }
  bool covers(const Amount& need) const { return milliTflops >= need.milliTflops && vramBytes >= need.vramBytes; }
  bool operator==(const Amount&) const = default;
};
// "10 TFLOPS, 1Gi" for messages.
std::string describe(const Amount& a);

// One slice of a GPU as a pod asks for it: TFLOPS, or a percentage of the GPU's compute.
struct Slice {
  int64_t milliTflops = 0;
  int computePercent = -1;  // 0..100 when given instead of TFLOPS
  int64_t vramBytes = 0;
  // The amount on a GPU of this capacity (a percentage becomes TFLOPS of that GPU).
  Amount on(const Amount& capacity) const;
  bool operator==(const Slice&) const = default;
};

enum class Qos : uint8_t { Low, Medium, High, Critical };
enum class Isolation : uint8_t { Shared, Soft, Hard, Partitioned };
enum class Placement : uint8_t { CompactFirst, LowLoadFirst, NodeCompactGpuLowLoad };
const char* qosName(Qos q);
const char* isolationName(Isolation i);
const char* placementName(Placement p);
Result<Qos> parseQos(std::string_view s);
Result<Isolation> parseIsolation(std::string_view s);
Result<Placement> parsePlacement(std::string_view s);
// Go's time.ParseDuration: "300ms", "1h30m", "-1.5h"; "0" is zero.
Result<Duration> parseGoDuration(std::string_view s);

// A pod's request, from its normalised annotations (the webhook applied the defaults).
struct Request {
  std::string uid, ns, name;
  std::string pool, workload;
  Slice request, limit;  // per GPU
  int count = 1;
  Qos qos = Qos::Medium;
  Isolation isolation = Isolation::Soft;
  std::string model, vendor;
  std::vector<int> indices;
  bool dedicated = false;
  Clock::time_point created{};
  Duration evictionProtection{0};
  std::string gangKey;
  int gangRequired = 0;
  Duration gangTimeout{0};  // zero: wait as long as the caller allows
  std::vector<std::string> gpuIds;  // the recorded allocation, when the pod has one
  bool wholeGpu() const { return dedicated || isolation == Isolation::Shared; }
  bool protectedAt(Clock::time_point now) const {
    return evictionProtection.count() > 0 && now < created + evictionProtection;
  }
};
// Errors name the annotation: "tensor-fusion.ai/gpu-count: \"x\" is not an integer".
Result<Request> requestFromPod(const nlohmann::json& pod);
// true for pods this scheduler books: label component=worker.
bool isWorkerPod(const nlohmann::json& pod);
// Its GPUs are free: Succeeded or Failed, or being deleted with no container left running
// (kubelet may take far longer to remove the object than to stop the containers).
bool isTerminal(const nlohmann::json& pod);

struct Gpu {
  std::string name, node, pool, model, vendor;
  std::string phase, usedBy, isolationMode;
  // From the virtualization-capabilities annotation: the modes its hypervisor also makes.
  std::vector<std::string> isolationModes;
  bool cordoned = false;  // label tensor-fusion.ai/cordoned=true: no new work (what it has stays)
  int index = -1;
  Amount capacity;
  bool operator==(const Gpu&) const = default;
};
Result<Gpu> gpuFromObject(const nlohmann::json& gpu);

// A GPUResourceQuota's spec, in the allocator's units. Unset fields do not limit.
struct Quota {
  std::string ns, name;
  std::optional<Amount> totalRequests, totalLimits;
  std::optional<int64_t> maxWorkers;
  std::optional<Amount> singleMaxRequests, singleMaxLimits;
  std::optional<int64_t> singleMaxGpuCount;
};
Result<Quota> quotaFromObject(const nlohmann::json& quota);

// A pool's VRAM expansion: percent of a node's host memory and data disk lent to its GPUs
// (GPUPool capacityConfig.oversubscription; TensorFusion's defaults). See expansion.h.
struct VramExpansion {
  int toHostMemPercent = 50;
  int toHostDiskPercent = 70;
  bool operator==(const VramExpansion&) const = default;
};

// Per pool: the placement mode and VRAM tiers (its SchedulingConfigTemplate), the TFLOPS
// oversell ratio and the VRAM expansion.
struct PoolConfig {
  Placement placement = Placement::NodeCompactGpuLowLoad;
  int tflopsOversellRatio = 100;  // percent; virtual capacity only, admission uses requests
  VramExpansion vramExpansion;
  // The QoS levels (low..critical) whose vGPUs are tiered (autoFreeze): their hard-isolated
  // pods may book VRAM up to each GPU's memory plus its share of the node's expansion.
  std::array<bool, 4> vramTiers{};
  bool expandsVram() const {
    return (vramExpansion.toHostMemPercent > 0 || vramExpansion.toHostDiskPercent > 0) &&
           (vramTiers[0] || vramTiers[1] || vramTiers[2] || vramTiers[3]);
  }
};

}  // namespace tf::allocator
