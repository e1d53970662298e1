#include <cstdlib>
#include <string>

#include "cuda/visible_devices.h"
#include "common/env.h"
#include "common/log.h"
#include "softgpu/driver/driver.h"

#ifdef TF_HAVE_PTX
#include "ptx/executor.h"
#endif

namespace tf::softgpu {
namespace {

std::mutex initMu;

// Used when no kernel executor is built in: modules load with no kernels, so programs that
// only move memory work, and looking up or launching a kernel fails with a clear error.
class KernelFreeModule final : public cuda::LoadedModule {
public:
  const std::vector<cuda::KernelInfo>& kernels() const override { return none_; }
  const std::vector<cuda::GlobalVariable>& globals() const override { return noGlobals_; }
  int findKernel(const std::string& name) const override {
    TF_LOG(Error, "kernel %s: this soft GPU was built without a kernel executor (src/ptx)",
           name.c_str());
    return -1;
  }
  Status bindGlobal(const std::string& name, uint64_t) override { return notFound(name); }
  CUresult launch(int, const cuda::LaunchConfig&, const cuda::DeviceMemory&,
                  std::string* message) override {
    *message = "no kernel executor";
    return CUDA_ERROR_NOT_SUPPORTED;
  }

private:
  std::vector<cuda::KernelInfo> none_;
  std::vector<cuda::GlobalVariable> noGlobals_;
};

class NoExecutor final : public cuda::KernelExecutor {
public:
  Result<std::unique_ptr<cuda::LoadedModule>> load(const cuda::ModuleSource&) override {
    return std::unique_ptr<cuda::LoadedModule>(new KernelFreeModule());
  }
  const char* name() const override { return "none"; }
};

} // namespace

Driver& driver() {
  static auto* d = new Driver(); // never destroyed: worker threads outlive static destructors
  return *d;
}

Device* deviceAt(CUdevice ordinal) {
  Driver& d = driver();
  if (ordinal < 0 || ordinal >= static_cast<int>(d.devices.size())) return nullptr;
  return d.devices[ordinal].get();
}

CUresult checkInitialized() {
  Driver& d = driver();
  if (!d.initialized.load(std::memory_order_acquire)) return CUDA_ERROR_NOT_INITIALIZED;
  return d.initResult;
}

CUresult initializeDriver(unsigned flags) {
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  Driver& d = driver();
  if (d.initialized.load(std::memory_order_acquire)) return d.initResult;
  std::lock_guard<std::mutex> lock(initMu);
  if (d.initialized.load()) return d.initResult;
  auto fail = [&](CUresult r, const std::string& why) {
    d.initResult = r;
    d.initError = why;
    TF_LOG(Error, "soft GPU: %s", why.c_str());
    d.initialized.store(true, std::memory_order_release);
    return r;
  };
  auto config = loadConfig();
  if (!config) return fail(CUDA_ERROR_INVALID_VALUE, config.status().toString());
  d.config = *config;
  if (d.config.devices.empty()) return fail(CUDA_ERROR_NO_DEVICE, "no soft GPU configured");
  // As NVIDIA's driver: CUDA_VISIBLE_DEVICES picks (and orders) the devices this process sees.
  // NVML is not affected (it shows the whole board, as NVIDIA's does).
  if (const char* visible = getenv("CUDA_VISIBLE_DEVICES")) {
    std::vector<std::string> uuids;
    for (const auto& dc : d.config.devices) uuids.push_back(dc.uuidString);
    std::vector<DeviceConfig> seen;
    for (int i : cuda::selectVisibleDevices(visible, uuids)) seen.push_back(d.config.devices[i]);
    if (seen.empty())
      return fail(CUDA_ERROR_NO_DEVICE, std::string("CUDA_VISIBLE_DEVICES='") + visible + "' shows none of the " +
                                            std::to_string(uuids.size()) + " soft GPU device(s)");
    d.config.devices = std::move(seen);
  }
  uint64_t largest = 0;
  for (auto& dc : d.config.devices) largest = std::max(largest, dc.memoryBytes);
  // Twice the device memory at least (VMM reservations and fragmentation need room beyond
  // it); each window is a whole kWindowStride or more, at the same place in every process.
  if (auto s = addressSpace().init(static_cast<int>(d.config.devices.size()), largest * 2); !s)
    return fail(CUDA_ERROR_OUT_OF_MEMORY, s.toString());
  for (size_t i = 0; i < d.config.devices.size(); ++i) {
    auto dev = std::make_unique<Device>();
    dev->ordinal = static_cast<int>(i);
    dev->config = d.config.devices[i];
    auto state = DeviceState::open(dev->config);
    if (!state)
      return fail(CUDA_ERROR_OPERATING_SYSTEM,
                  "device state for " + dev->config.uuidString + ": " + state.status().toString());
    dev->state = std::move(*state);
    auto slot = dev->state->attach();
    if (!slot) return fail(CUDA_ERROR_OUT_OF_MEMORY, slot.status().toString());
    dev->slot = *slot;
    d.devices.push_back(std::move(dev));
  }
  auto launchNs = env::getInt("TF_SOFTGPU_KERNEL_TIME_NS", 0);
  auto threadNs = env::getInt("TF_SOFTGPU_THREAD_TIME_NS", 0);
  if (!launchNs || !threadNs || *launchNs < 0 || *threadNs < 0)
    return fail(CUDA_ERROR_INVALID_VALUE, "TF_SOFTGPU_KERNEL_TIME_NS / TF_SOFTGPU_THREAD_TIME_NS "
                                          "must be non-negative integers");
  d.modelLaunchNs = *launchNs;
  d.modelThreadNs = *threadNs;
  d.modelTiming = d.modelLaunchNs > 0 || d.modelThreadNs > 0;
#ifdef TF_HAVE_PTX
  d.executor = ptx::makeExecutor();
#else
  d.executor = std::make_unique<NoExecutor>();
#endif
  d.initResult = CUDA_SUCCESS;
  d.initialized.store(true, std::memory_order_release);
  TF_LOG(Info, "soft GPU: %zu device(s), executor %s", d.devices.size(), d.executor->name());
  return CUDA_SUCCESS;
}

namespace {
// At exit, give this process's device slots back (a crash is reclaimed by the others).
__attribute__((destructor)) void detachAtExit() {
  Driver& d = driver();
  if (!d.initialized.load() || d.initResult != CUDA_SUCCESS) return;
  for (auto& dev : d.devices)
    if (dev->state && dev->slot >= 0) dev->state->detach(dev->slot);
}
} // namespace

} // namespace tf::softgpu
