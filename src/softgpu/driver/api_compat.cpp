// Entry points cudart and common libraries resolve that have nothing to do on a CPU device but
// must succeed (or answer) as the driver's do: profiler control, configuration hints without
// effect here, and the oldest names of calls whose signature never changed.
#include "softgpu/driver/api.h"

using namespace tf::softgpu;

extern "C" {

// ---- Profiler control: there is no profiler to start; with a context, the driver succeeds ----

CUresult tf_sg_cuProfilerStart(void) {
  Context* c;
  return requireContext(&c);
}

CUresult tf_sg_cuProfilerStop(void) {
  Context* c;
  return requireContext(&c);
}

CUresult tf_sg_cuProfilerInitialize(const char*, const char*, CUoutput_mode mode) {
  if (mode != CU_OUT_KEY_VALUE_PAIR && mode != CU_OUT_CSV) return CUDA_ERROR_INVALID_VALUE;
  return checkInitialized();
}

// ---- Hints with no effect on a CPU device (checked, then accepted) ------------------------

CUresult tf_sg_cuCtxSetSharedMemConfig(CUsharedconfig config) {
  if (config < CU_SHARED_MEM_CONFIG_DEFAULT_BANK_SIZE || config > CU_SHARED_MEM_CONFIG_EIGHT_BYTE_BANK_SIZE)
    return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  return contextOrCurrent(nullptr, &c);
}

CUresult tf_sg_cuFuncSetSharedMemConfig(CUfunction f, CUsharedconfig config) {
  if (config < CU_SHARED_MEM_CONFIG_DEFAULT_BANK_SIZE || config > CU_SHARED_MEM_CONFIG_EIGHT_BYTE_BANK_SIZE)
    return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkInitialized());
  return registryOf<Function>().find(f) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult tf_sg_cuFlushGPUDirectRDMAWrites(CUflushGPUDirectRDMAWritesTarget target,
                                          CUflushGPUDirectRDMAWritesScope scope) {
  if (target != CU_FLUSH_GPU_DIRECT_RDMA_WRITES_TARGET_CURRENT_CTX) return CUDA_ERROR_INVALID_VALUE;
  if (scope != CU_FLUSH_GPU_DIRECT_RDMA_WRITES_TO_OWNER && scope != CU_FLUSH_GPU_DIRECT_RDMA_WRITES_TO_ALL_DEVICES)
    return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  return requireContext(&c); // host and device share one memory: nothing is in flight
}

// The context may use every SM of its device.
CUresult tf_sg_cuCtxGetExecAffinity(CUexecAffinityParam* p, CUexecAffinityType type) {
  if (!p || type != CU_EXEC_AFFINITY_TYPE_SM_COUNT) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(contextOrCurrent(nullptr, &c));
  p->type = type;
  p->param.smCount.val = static_cast<unsigned>(c->device->config.model->smCount);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuOccupancyMaxPotentialBlockSizeWithFlags(int* minGrid, int* blockSize, CUfunction f,
                                                         CUoccupancyB2DSize toSmem, size_t smem,
                                                         int limit, unsigned int flags) {
  // The one flag (CU_OCCUPANCY_DISABLE_CACHING_OVERRIDE) concerns L1 caching, absent here.
  if (flags & ~CU_OCCUPANCY_DISABLE_CACHING_OVERRIDE) return CUDA_ERROR_INVALID_VALUE;
  return tf_sg_cuOccupancyMaxPotentialBlockSize(minGrid, blockSize, f, toSmem, smem, limit);
}

// ---- Graph memory: allocation nodes are not built here, so graphs hold no memory ----------

CUresult tf_sg_cuDeviceGetGraphMemAttribute(CUdevice dev, CUgraphMem_attribute attr, void* value) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  TF_TRY(deviceFor(dev, &d));
  switch (attr) {
  case CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT: case CU_GRAPH_MEM_ATTR_USED_MEM_HIGH:
  case CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT: case CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH:
    *static_cast<cuuint64_t*>(value) = 0;
    return CUDA_SUCCESS;
  default: return CUDA_ERROR_INVALID_VALUE;
  }
}

CUresult tf_sg_cuDeviceSetGraphMemAttribute(CUdevice dev, CUgraphMem_attribute attr, void* value) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  TF_TRY(deviceFor(dev, &d));
  // Only the high watermarks can be set, and only back to zero.
  if (attr != CU_GRAPH_MEM_ATTR_USED_MEM_HIGH && attr != CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH)
    return CUDA_ERROR_INVALID_VALUE;
  return *static_cast<cuuint64_t*>(value) == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult tf_sg_cuDeviceGraphMemTrim(CUdevice dev) {
  Device* d;
  return deviceFor(dev, &d);
}

// ---- Memory pools by location (CUDA 13): the device's pools ------------------------------

namespace {
CUresult devicePoolLocation(const CUmemLocation* location, CUmemAllocationType type) {
  if (!location || type != CU_MEM_ALLOCATION_TYPE_PINNED) return CUDA_ERROR_INVALID_VALUE;
  // Host (and host NUMA) pools would need pinned host pools, which the soft GPU does not model.
  return location->type == CU_MEM_LOCATION_TYPE_DEVICE ? CUDA_SUCCESS : CUDA_ERROR_NOT_SUPPORTED;
}
} // namespace

CUresult tf_sg_cuMemGetDefaultMemPool(CUmemoryPool* out, CUmemLocation* location, CUmemAllocationType type) {
  TF_TRY(devicePoolLocation(location, type));
  return tf_sg_cuDeviceGetDefaultMemPool(out, location->id);
}

CUresult tf_sg_cuMemGetMemPool(CUmemoryPool* out, CUmemLocation* location, CUmemAllocationType type) {
  TF_TRY(devicePoolLocation(location, type));
  return tf_sg_cuDeviceGetMemPool(out, location->id);
}

CUresult tf_sg_cuMemSetMemPool(CUmemLocation* location, CUmemAllocationType type, CUmemoryPool pool) {
  TF_TRY(devicePoolLocation(location, type));
  return tf_sg_cuDeviceSetMemPool(location->id, pool);
}

// ---- The oldest names of calls whose signature never changed -----------------------------
// cuda.h maps these names to their _v2 successors; programs and libraries that resolve the
// plain names with dlsym (or cuGetProcAddress at an old version) get the same call.

CUresult tf_sg_cuCtxCreate(CUcontext* pctx, unsigned int flags, CUdevice dev) {
  return tf_sg_cuCtxCreate_v2(pctx, flags, dev);
}
CUresult tf_sg_cuCtxDestroy(CUcontext ctx) { return tf_sg_cuCtxDestroy_v2(ctx); }
CUresult tf_sg_cuCtxPushCurrent(CUcontext ctx) { return tf_sg_cuCtxPushCurrent_v2(ctx); }
CUresult tf_sg_cuCtxPopCurrent(CUcontext* pctx) { return tf_sg_cuCtxPopCurrent_v2(pctx); }
CUresult tf_sg_cuEventDestroy(CUevent e) { return tf_sg_cuEventDestroy_v2(e); }
CUresult tf_sg_cuStreamDestroy(CUstream s) { return tf_sg_cuStreamDestroy_v2(s); }
CUresult tf_sg_cuDevicePrimaryCtxRelease(CUdevice dev) { return tf_sg_cuDevicePrimaryCtxRelease_v2(dev); }
CUresult tf_sg_cuDevicePrimaryCtxReset(CUdevice dev) { return tf_sg_cuDevicePrimaryCtxReset_v2(dev); }
CUresult tf_sg_cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags) {
  return tf_sg_cuDevicePrimaryCtxSetFlags_v2(dev, flags);
}
CUresult tf_sg_cuGraphInstantiate(CUgraphExec* out, CUgraph g, CUgraphNode* errNode, char* log, size_t logSize) {
  return tf_sg_cuGraphInstantiate_v2(out, g, errNode, log, logSize);
}

} // extern "C"
