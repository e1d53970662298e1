// Soft-GPU-only entry points, outside the CUDA ABI, for components that know they may run on
// the soft GPU (the limiter finds them with dlsym and times work with CUDA events otherwise;
// remoting's worker lets its client map device memory through them).
#include <fcntl.h>

#include "common/log.h"
#include "cuda/softgpu_extensions.h"
#include "softgpu/driver/driver.h"
#include "softgpu/driver/memory.h"
#include "softgpu/driver/module.h"
#include "softgpu/driver/stream.h"

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

namespace {
// Work queued on the memory finishes before its pages move into the memfd (as an IPC export
// does): a kernel still writing the private pages would lose what it writes after the copy.
CUresult shareMemory(CUdeviceptr base, int* fd, size_t* bytes, AllocKind kind) {
  if (!fd || !bytes) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = checkInitialized(); r != CUDA_SUCCESS) return r;
  auto a = addressSpace().find(base);
  if (!a || a->base != base || a->kind != kind || a->poolId >= 0 || a->imported)
    return CUDA_ERROR_INVALID_VALUE;
  Context* c = nullptr;
  if (CUresult r = requireContext(&c); r != CUDA_SUCCESS) return r;
  synchronizeContext(c);
  auto shared = kind == AllocKind::Managed ? addressSpace().shareManaged(base) : addressSpace().shareDevice(base);
  if (!shared) return CUDA_ERROR_OUT_OF_MEMORY;
  int copy = fcntl(*shared, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return CUDA_ERROR_OPERATING_SYSTEM;
  *fd = copy;
  *bytes = kind == AllocKind::Managed ? a->span : a->size;
  return CUDA_SUCCESS;
}
} // namespace

// cuda/softgpu_extensions.h: device memory another process maps (remoting's worker hands it to
// its client, whose synchronous copies from pageable memory then take one CPU copy).
extern "C" __attribute__((visibility("default"))) CUresult
tfSoftGpuShareDeviceMemory(CUdeviceptr base, int* fd, size_t* bytes) {
  return shareMemory(base, fd, bytes, AllocKind::Device);
}

// cuda/softgpu_extensions.h: managed memory another process maps at the same address
// (remoting's client over shared memory, which then has nothing to mirror).
extern "C" __attribute__((visibility("default"))) CUresult
tfSoftGpuShareManagedMemory(CUdeviceptr base, int* fd, size_t* bytes) {
  return shareMemory(base, fd, bytes, AllocKind::Managed);
}

// cuda/softgpu_extensions.h: where device `device`'s addresses are in this process.
extern "C" __attribute__((visibility("default"))) CUresult
tfSoftGpuDeviceWindow(CUdevice device, CUdeviceptr* base, size_t* bytes, int* fixed) {
  if (!base || !bytes || !fixed) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = checkInitialized(); r != CUDA_SUCCESS) return r;
  uint64_t b = 0, n = 0;
  bool f = false;
  if (!addressSpace().window(device, &b, &n, &f)) return CUDA_ERROR_INVALID_DEVICE;
  *base = b;
  *bytes = n;
  *fixed = f ? 1 : 0;
  return CUDA_SUCCESS;
}

namespace {
CUresult loadPlaced(void** out, const void* image, const tf::cuda::GlobalPlacement* placements,
                    unsigned count, bool library) {
  if (!out || !image || (count && !placements)) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = checkInitialized(); r != CUDA_SUCCESS) return r;
  Context* c = nullptr;
  if (CUresult r = requireContext(&c); r != CUDA_SUCCESS) return r;
  GlobalPlacements placed;
  for (unsigned i = 0; i < count; ++i) {
    if (!placements[i].name) {
      TF_LOG(Error, "module load: placement %u has no global name", i);
      return CUDA_ERROR_INVALID_VALUE;
    }
    if (!placed.emplace(placements[i].name, placements[i].address).second) {
      TF_LOG(Error, "module load: global %s is placed twice", placements[i].name);
      return CUDA_ERROR_INVALID_VALUE;
    }
  }
  Module* m = nullptr;
  if (CUresult r = loadModule(image, 0, library, &m, &placed); r != CUDA_SUCCESS) return r;
  *out = m;
  return CUDA_SUCCESS;
}
} // namespace

// cuda/softgpu_extensions.h: a module (or library) whose named globals are at given addresses
// (a migrated program's, where its cudart cached them).
extern "C" __attribute__((visibility("default"))) CUresult
tfSoftGpuModuleLoadPlaced(CUmodule* out, const void* image,
                          const tf::cuda::GlobalPlacement* placements, unsigned count) {
  return loadPlaced(reinterpret_cast<void**>(out), image, placements, count, false);
}

extern "C" __attribute__((visibility("default"))) CUresult
tfSoftGpuLibraryLoadPlaced(CUlibrary* out, const void* image,
                           const tf::cuda::GlobalPlacement* placements, unsigned count) {
  return loadPlaced(reinterpret_cast<void**>(out), image, placements, count, true);
}
