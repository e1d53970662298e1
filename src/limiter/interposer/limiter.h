// The limiter inside an application: the preloaded interposer's state and the helpers its
// hooks share. One instance per process, set up on the first hooked call.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <cuda.h>

#include "cuda/catalog.h"
#include "limiter/quota_region.h"

#define TF_EXPORT extern "C" __attribute__((visibility("default")))

namespace tf::limiter {

// The real driver's function for a catalog symbol (nullptr if the driver lacks it).
void* realFunction(cuda::FnId id);
template <typename F> F real(cuda::FnId id) { return reinterpret_cast<F>(realFunction(id)); }
#define TF_REAL(symbol) ::tf::limiter::real<decltype(&symbol)>(::tf::cuda::FnId::symbol)
#define TF_REAL_ID(symbol, id) ::tf::limiter::real<decltype(&symbol)>(id)

// Our hook for a catalog index, or nullptr when the limiter does not hook it.
void* hookFor(int catalogIndex);
struct HookRegistration {
  HookRegistration(cuda::FnId id, void* fn);
};
#define TF_LIMITER_HOOK(symbol)                                                                   \
  static ::tf::limiter::HookRegistration tf_hook_##symbol(::tf::cuda::FnId::symbol,                \
                                                          reinterpret_cast<void*>(&symbol))

// Per-device state of this process.
struct DeviceTrack {
  int regionDevice = -1;          // index in the quota region, -1: not part of the vGPU
  uint64_t lastBusyNs = 0;        // soft GPU busy time already charged
  uint64_t lastKernels = 0;
  std::atomic<uint64_t> launched{0};
  // CUDA-event timing (drivers without the soft GPU's accounting), under Limiter::pollMu_.
  std::vector<CUevent> freeEvents;
  std::vector<std::pair<CUevent, CUevent>> pendingEvents;
  // Throttled time: wall time during which at least one of this process's launches was held
  // (threads held at once count once), under Limiter::heldMu_.
  int held = 0;
  uint64_t heldSinceNs = 0;
};

struct Allocation {
  int device;
  uint64_t bytes;
  Pool pool;
};

class Limiter {
public:
  static Limiter& get();

  // CUDA_SUCCESS when the vGPU is set up; otherwise the error every hooked call returns (the
  // reason has been printed once).
  CUresult ready();
  // Before the driver's cuInit: shows the process only its vGPU's devices, by setting
  // CUDA_VISIBLE_DEVICES to them (a list the program set itself is read within the vGPU's:
  // "1" is the vGPU's second device). Without it a pod on a node of several GPUs would see, and
  // use without limits, the GPUs of other tenants.
  void restrictVisibleDevices();
  QuotaRegion& region() { return *region_; }
  int slot() const { return slot_; }

  // Region device for the current context's device (-1 if not limited), and its ordinal.
  int currentRegionDevice(CUdevice* ordinal = nullptr);
  int regionDeviceOf(CUdevice ordinal);

  // Memory bookkeeping.
  void track(uint64_t handle, Allocation a);
  bool untrack(uint64_t handle, Allocation* out);

  // Compute: charge new GPU time, then hold the caller back while the vGPU's share is used up
  // or too much work is already queued.
  void beforeLaunch(CUdevice ordinal);
  // Stream captures begun and not ended in this process: a launch into a capturing stream
  // runs nothing (it becomes a graph node), so it is neither throttled nor counted.
  void captureBegun() { captures_.fetch_add(1, std::memory_order_relaxed); }
  void captureEnded() {
    int n = captures_.load();
    while (n > 0 && !captures_.compare_exchange_weak(n, n - 1)) {}
  }
  bool anyCapture() const { return captures_.load(std::memory_order_relaxed) > 0; }
  // `kernels`: the kernels the launch runs, as they will complete in the time source's count
  // (a graph launch with the soft GPU's statistics: its kernel nodes; otherwise 1).
  void afterLaunch(CUdevice ordinal, uint64_t kernels = 1);
  // Graphs: how many kernels an instantiated graph runs (counted at instantiation).
  void graphInstantiated(CUgraphExec exec, CUgraph graph);
  void graphDestroyed(CUgraphExec exec);
  uint64_t kernelsPerLaunch(CUgraphExec exec);
  // With CUDA-event timing, bracket one launch on its stream (perThread: a _ptsz entry point).
  CUevent startTiming(CUdevice ordinal, CUstream stream, bool perThread);
  void endTiming(CUdevice ordinal, CUstream stream, bool perThread, bool launched, CUevent start);
  // With TF_LIMITER_REPORT set, printed at exit: this process's share of each vGPU device.
  void report();

private:
  Limiter() = default;
  void init();
  void pollBusy(CUdevice ordinal);
  void waitForQueue(CUdevice ordinal);
  void holdBegin(DeviceTrack& t);
  void holdEnd(DeviceTrack& t);
  void pollEvents(CUdevice ordinal);
  CUevent takeEvent(DeviceTrack& t);

  std::once_flag once_;
  CUresult status_ = CUDA_ERROR_NOT_INITIALIZED;
  std::unique_ptr<QuotaRegion> region_;
  int slot_ = -1;
  std::mutex mapMu_;
  bool devicesMapped_ = false;
  DeviceTrack devices_[64];
  std::mutex allocMu_;
  std::unordered_map<uint64_t, Allocation> allocations_;
  CUresult (*softGpuStats_)(CUdevice, uint64_t*, uint64_t*) = nullptr;
  bool useEvents_ = false;
  std::atomic<int> captures_{0};
  std::mutex pollMu_;
  std::mutex graphMu_;
  std::mutex heldMu_;
  std::unordered_map<CUgraphExec, uint64_t> graphKernels_;
  uint64_t startNs_ = 0;
};

// The real libcuda and the real dlsym, found without going through our own hooks.
void* realDlsym(void* handle, const char* symbol);
// Our NVML hook for a symbol name, or nullptr.
void* nvmlHookFor(const char* symbol);
void* libcudaHandle();

} // namespace tf::limiter

// The address of libc's dlsym (dlsym_hooks.cpp); safe to call before any sanitizer is ready.
extern "C" __attribute__((visibility("hidden"))) void* tfLimiterRealDlsymAddress();
