// The state one soft GPU shares among all processes that use it, in a shared-memory file
// (/dev/shm/tf-softgpu-<uuid>, or under TF_SOFTGPU_STATE_DIR): memory in use per process and
// device-wide, per-process busy time, the execution lock that time-slices kernels of different
// processes, and recent utilization. libcuda (the soft GPU) writes it; libnvidia-ml reads it.
//
//   auto state = DeviceState::open(cfg);          // creates or attaches; versioned layout
//   int slot = (*state)->attach();                // this process's slot
//   if (auto s = (*state)->reserveMemory(slot, bytes); !s) return CUDA_ERROR_OUT_OF_MEMORY;
//   ...
//   (*state)->releaseMemory(slot, bytes);
//   { auto lock = (*state)->lockExecution(slot); run kernel; }   // busy time is recorded
//
// A process killed with SIGKILL at any point loses nothing for the others: its slot (memory,
// busy slot, a held execution lock) is reclaimed by the next process that looks.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "softgpu/device_model.h"

namespace tf::softgpu {

struct ProcessUsage {
  int32_t pid = 0;
  uint64_t memoryBytes = 0;
  uint64_t busyNs = 0;           // total GPU time used by the process's kernels
  uint64_t lastSeenNs = 0;       // CLOCK_MONOTONIC of its last kernel end
  bool holdsContext = false;     // has a CUDA context on the device (what NVML lists)
};

class DeviceState {
public:
  static constexpr uint32_t kVersion = 1;
  static constexpr int kMaxProcesses = 256;

  virtual ~DeviceState() = default;

  static Result<std::unique_ptr<DeviceState>> open(const DeviceConfig& device);

  // Claims (or returns the already-claimed) slot for this process. ResourceExhausted when all
  // slots are taken by live processes.
  virtual Result<int> attach() = 0;
  // Gives the slot back with all it holds (called at process exit; a crash is reclaimed too).
  virtual void detach(int slot) = 0;
  // Whether the process holds a context on the device: NVIDIA's driver lists a process among a
  // device's compute processes from its first context on, not from cuInit (HAMi-core finds its
  // own process by that difference).
  virtual void setHoldsContext(int slot, bool holds) = 0;

  // Atomically across processes: succeeds only if device-wide use + bytes <= total memory.
  virtual Status reserveMemory(int slot, uint64_t bytes) = 0;
  virtual void releaseMemory(int slot, uint64_t bytes) = 0;
  virtual uint64_t totalMemory() const = 0;
  virtual uint64_t usedMemory() = 0;   // live processes only (reaps the dead first)

  class ExecutionLock {
  public:
    virtual ~ExecutionLock() = default; // releases; adds the held time to the slot's busy time
  };
  // Blocks until this process may run a kernel on the device.
  virtual std::unique_ptr<ExecutionLock> lockExecution(int slot) = 0;
  // Adds modelled busy time without running anything (the timing mode).
  virtual void addBusyTime(int slot, uint64_t ns) = 0;

  virtual std::vector<ProcessUsage> processes() = 0;  // live processes with a slot (with a context or not)
  // Percent of the last `windowMs` milliseconds during which a kernel ran (0-100).
  virtual unsigned utilizationPercent(unsigned windowMs = 1000) = 0;
  // Busy time per live process over the last windowMs: for nvmlDeviceGetProcessUtilization.
  // busyNs is the time within the window; lastSeenNs as in processes().
  virtual std::vector<ProcessUsage> recentProcessUsage(unsigned windowMs = 1000) = 0;
  // Frees the slots (memory, busy time) of processes that have exited.
  virtual void reapDeadProcesses() = 0;
  // Where the state lives (the shared-memory file).
  virtual const std::string& path() const = 0;
};

} // namespace tf::softgpu
