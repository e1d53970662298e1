// Soft-GPU-only entry points, outside the CUDA ABI, for components that know they may run on
// the soft GPU (the limiter finds them with dlsym and times work with CUDA events otherwise).
#include "softgpu/driver/driver.h"

using namespace tf::softgpu;

// GPU time this process's kernels have used on `device` (ns, monotonic) and how many kernels
// have finished there.
extern "C" __attribute__((visibility("default"))) CUresult
tfSoftGpuProcessStats(CUdevice device, uint64_t* busyNs, uint64_t* kernelsDone) {
  if (!busyNs || !kernelsDone) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = checkInitialized(); r != CUDA_SUCCESS) return r;
  Device* d = deviceAt(device);
  if (!d) return CUDA_ERROR_INVALID_DEVICE;
  *kernelsDone = d->localKernels.load(std::memory_order_acquire);
  *busyNs = d->localBusyNs.load(std::memory_order_acquire);
  return CUDA_SUCCESS;
}
