// The vGPU quota region: one shared-memory file per vGPU, created by whoever grants the vGPU
// (`tensor-fusion vgpu create`, later the hypervisor) and mapped by every process of it.
//
//   auto region = QuotaRegion::create("/dev/shm/tf-vgpu-a", spec);   // the granter
//   auto region = QuotaRegion::open(getenv("TF_VGPU_REGION"));        // each process
//   int slot = *(*region)->attach();
//   if (!(*region)->reserve(slot, dev, bytes, Pool::Device)) -> CUDA_ERROR_OUT_OF_MEMORY
//   (*region)->charge(dev, busyNs, kernels);  if ((*region)->throttleNs(dev)) sleep...
//
// VRAM: each process counts its own use in its slot (it is the only writer). A reservation
// adds to the slot first, then sums every slot; if the sum passes the limit it takes the
// amount back and fails. With sequentially consistent atomics two racing reservations cannot
// both miss each other, so the sum of what succeeded never passes the limit — and there is
// no lock: a process killed at any instant leaves only its own slot behind, which the next
// process that looks reclaims whole.
//
// Compute: a token bucket per device in GPU-nanoseconds, refilled at limit × wall time and
// capped at limit × (window + the longest kernel seen); every process charges the GPU time its
// kernels used, and launches wait while the bucket is empty. Debt is paid back in full.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace tf::limiter {

constexpr int kMaxDevices = 8;
constexpr int kMaxProcesses = 256;
constexpr uint32_t kRegionVersion = 1;

enum class Pool : uint8_t { Device = 0, Host = 1 }; // VRAM, or host memory (oversubscription)

struct DeviceLimits {
  std::array<uint8_t, 16> uuid{};   // the physical device (all zero: the device at this index)
  uint64_t vramLimit = 0;           // bytes of device memory
  uint64_t hostAllowance = 0;       // bytes that may spill to host memory past vramLimit
  uint32_t computeBasisPoints = 10000; // share of the device's time, 10000 = 100% (unlimited)
  double fp16Tflops = 0;            // the device's rating, to convert TFLOPS limits
};

struct VgpuSpec {
  std::string name;
  std::vector<DeviceLimits> devices;
  uint64_t windowNs = 50'000'000;   // compute accounting window (the burst a vGPU may take)
};

struct SlotUsage {
  int32_t pid = 0;
  uint64_t vram[kMaxDevices] = {};
  uint64_t host[kMaxDevices] = {};
};

struct DeviceUsage {
  uint64_t vramUsed = 0, hostUsed = 0;
  uint64_t busyNs = 0;       // GPU time charged so far
  uint64_t throttledNs = 0;  // wall time launches were held by the bucket, per process, summed
  uint64_t launches = 0;
};

class QuotaRegion {
public:
  virtual ~QuotaRegion() = default;

  // Creates the region file; fails if it exists. Limits must be sane (non-zero VRAM,
  // basis points in 1..10000, at most kMaxDevices devices).
  static Result<std::unique_ptr<QuotaRegion>> create(const std::string& path, const VgpuSpec& spec);
  // Maps an existing region; a missing file, a wrong magic, version or size is an error that
  // says which.
  static Result<std::unique_ptr<QuotaRegion>> open(const std::string& path);
  static Status remove(const std::string& path);

  virtual const std::string& path() const = 0;
  virtual std::string name() const = 0;
  virtual int deviceCount() const = 0;
  virtual DeviceLimits limits(int device) const = 0;
  // The two limits hot paths read, without copying the rest.
  virtual uint64_t vramLimit(int device) const = 0;
  virtual uint32_t computeBasisPoints(int device) const = 0;
  virtual uint64_t windowNs() const = 0;
  // Changes limits in place (the hypervisor's quota controller); processes see it at once.
  virtual Status setComputeBasisPoints(int device, uint32_t bp) = 0;

  // Claims this process's slot (reaping dead processes' slots when full).
  virtual Result<int> attach() = 0;
  // Claims a slot as if process `pid`, started at `startTime` (processStartTime's clock), had
  // attached: lets a test stand for a process whose pid has since been reused.
  virtual Result<int> attachForTest(int32_t pid, uint64_t startTime) = 0;
  virtual void detach(int slot) = 0;

  // VRAM and host-spill accounting.
  virtual Status reserve(int slot, int device, uint64_t bytes, Pool pool) = 0;
  virtual void release(int slot, int device, uint64_t bytes, Pool pool) = 0;
  virtual uint64_t used(int device, Pool pool) = 0;

  // Compute accounting: `busyNs` of GPU time used by `kernels` finished kernels (0 if unknown).
  virtual void charge(int device, uint64_t busyNs, uint64_t kernels) = 0;
  // 0 when a launch may go now, else how long to wait (ns) before asking again.
  virtual uint64_t throttleNs(int device) = 0;
  virtual void noteThrottled(int device, uint64_t ns) = 0;
  virtual void noteLaunch(int device) = 0;

  virtual DeviceUsage usage(int device) = 0;
  virtual std::vector<SlotUsage> processes() = 0;
  // Frees slots of processes that no longer exist; returns how many.
  virtual int reapDead() = 0;
};

// Parses a compute limit: "30%" or "30" (percent), "100tflops" (converted with the device's
// FP16 rating). Returns basis points.
Result<uint32_t> parseComputeLimit(const std::string& text, double fp16Tflops);

} // namespace tf::limiter
