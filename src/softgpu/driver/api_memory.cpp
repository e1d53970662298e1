// Device, pinned, managed and registered memory; memory info; pointer attributes.
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <sys/mman.h>

#include "softgpu/driver/module.h"
#include "softgpu/driver/stream.h"

using namespace tf::softgpu;

namespace {

constexpr uint64_t kMaxAllocation = 1ull << 46;

// Advice given for managed ranges (there is only one memory here; the answers are kept so that
// programs reading them back see what they set).
struct ManagedAdvice {
  bool readMostly = false;
  int preferred = CU_DEVICE_INVALID;
  std::set<int> accessedBy;
  int lastPrefetch = CU_DEVICE_INVALID;
};
std::mutex adviceMu;
std::map<uint64_t, ManagedAdvice>& adviceTable() {
  static auto* m = new std::map<uint64_t, ManagedAdvice>();
  return *m;
}

CUresult managedRange(CUdeviceptr ptr, size_t count, uint64_t* base) {
  auto a = addressSpace().find(ptr, count ? count : 1);
  if (!a || a->kind != AllocKind::Managed) return CUDA_ERROR_INVALID_VALUE;
  *base = a->base;
  return CUDA_SUCCESS;
}

} // namespace

namespace tf::softgpu {

CUresult allocDevice(Context* c, size_t bytes, CUdeviceptr* out, uint64_t alignment) {
  if (bytes == 0 || bytes > kMaxAllocation) return bytes ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_ERROR_INVALID_VALUE;
  Device* d = c->device;
  TF_TRY(chargeMemory(d, bytes)); // charged before it exists: the sum never passes the total
  auto p = addressSpace().allocate(d->ordinal, bytes, AllocKind::Device, c, alignment);
  if (!p) {
    creditMemory(d, bytes);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  // Record the charge on the allocation, for cuMemFree and context teardown.
  addressSpace().setCharged(*p, bytes);
  *out = *p;
  return CUDA_SUCCESS;
}

CUresult freeMemory(uint64_t base, std::optional<AllocKind> kind) {
  {
    std::lock_guard<std::mutex> lock(adviceMu);
    adviceTable().erase(base);
  }
  Allocation a;
  tf::Status s = addressSpace().release(base, kind, &a);
  if (!s) return CUDA_ERROR_INVALID_VALUE;
  if (a.charged) {
    if (Device* d = deviceAt(a.device)) creditMemory(d, a.charged);
  }
  return CUDA_SUCCESS;
}

} // namespace tf::softgpu

extern "C" {

CUresult tf_sg_cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytes) {
  if (!dptr) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(requireContext(&c));
  return allocDevice(c, bytes, dptr);
}

CUresult tf_sg_cuMemAllocPitch_v2(CUdeviceptr* dptr, size_t* pitch, size_t width, size_t height,
                                  unsigned int elementSize) {
  if (!dptr || !pitch || width == 0 || height == 0) return CUDA_ERROR_INVALID_VALUE;
  if (elementSize != 4 && elementSize != 8 && elementSize != 16) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(requireContext(&c));
  const size_t p = (width + 511) / 512 * 512; // the texture pitch alignment
  if (height > kMaxAllocation / p) return CUDA_ERROR_OUT_OF_MEMORY;
  TF_TRY(allocDevice(c, p * height, dptr));
  *pitch = p;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemFree_v2(CUdeviceptr dptr) {
  TF_TRY(checkInitialized());
  if (dptr == 0) return CUDA_SUCCESS;
  auto a = addressSpace().findBase(dptr);
  if (!a || (a->kind != AllocKind::Device && a->kind != AllocKind::Managed) || a->imported)
    return CUDA_ERROR_INVALID_VALUE; // IPC memory of another process: cuIpcCloseMemHandle
  // Like the real driver, cuMemFree waits for work that may still use the memory.
  if (Context* c = currentContext()) synchronizeContext(c);
  return freeMemory(dptr, a->kind);
}

CUresult tf_sg_cuMemAllocManaged(CUdeviceptr* dptr, size_t bytes, unsigned int flags) {
  if (!dptr || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  if (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(requireContext(&c));
  if (bytes > kMaxAllocation) return CUDA_ERROR_OUT_OF_MEMORY;
  TF_TRY(chargeMemory(c->device, bytes));
  auto p = addressSpace().allocateHostVisible(c->device->ordinal, bytes, AllocKind::Managed, c, flags);
  if (!p) {
    creditMemory(c->device, bytes);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  addressSpace().setCharged(*p, bytes);
  *dptr = *p;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemHostAlloc(void** pp, size_t bytes, unsigned int flags) {
  if (!pp || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  if (flags & ~(CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_WRITECOMBINED))
    return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(requireContext(&c));
  if (bytes > kMaxAllocation) return CUDA_ERROR_OUT_OF_MEMORY;
  auto p = addressSpace().allocateHostVisible(c->device->ordinal, bytes, AllocKind::HostPinned, c, flags);
  if (!p) return CUDA_ERROR_OUT_OF_MEMORY;
  *pp = reinterpret_cast<void*>(*p);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemAllocHost_v2(void** pp, size_t bytes) { return tf_sg_cuMemHostAlloc(pp, bytes, 0); }

CUresult tf_sg_cuMemFreeHost(void* p) {
  TF_TRY(checkInitialized());
  auto a = addressSpace().findBase(reinterpret_cast<uint64_t>(p));
  if (!a || a->kind != AllocKind::HostPinned) return CUDA_ERROR_INVALID_VALUE;
  if (Context* c = currentContext()) synchronizeContext(c);
  return freeMemory(a->base, AllocKind::HostPinned);
}

CUresult tf_sg_cuMemHostRegister_v2(void* p, size_t bytes, unsigned int flags) {
  if (!p || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(requireContext(&c));
  tf::Status s = addressSpace().registerHost(p, bytes, c, flags);
  if (s.code() == tf::Code::AlreadyExists) return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
  return s.isOk() ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult tf_sg_cuMemHostUnregister(void* p) {
  TF_TRY(checkInitialized());
  auto a = addressSpace().findBase(reinterpret_cast<uint64_t>(p));
  if (!a || a->kind != AllocKind::HostRegistered) return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
  return freeMemory(a->base, AllocKind::HostRegistered);
}

CUresult tf_sg_cuMemHostGetDevicePointer_v2(CUdeviceptr* pdptr, void* p, unsigned int flags) {
  if (!pdptr || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkInitialized());
  auto a = addressSpace().find(reinterpret_cast<uint64_t>(p));
  if (!a || (a->kind != AllocKind::HostPinned && a->kind != AllocKind::HostRegistered))
    return CUDA_ERROR_INVALID_VALUE;
  *pdptr = reinterpret_cast<CUdeviceptr>(p); // unified addressing: the same address
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemHostGetFlags(unsigned int* flags, void* p) {
  if (!flags) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkInitialized());
  auto a = addressSpace().find(reinterpret_cast<uint64_t>(p));
  if (!a || (a->kind != AllocKind::HostPinned && a->kind != AllocKind::HostRegistered))
    return CUDA_ERROR_INVALID_VALUE;
  *flags = a->flags;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemGetInfo_v2(size_t* freeBytes, size_t* total) {
  if (!freeBytes || !total) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(requireContext(&c));
  DeviceState& st = *c->device->state;
  uint64_t t = st.totalMemory(), used = st.usedMemory();
  *total = t;
  *freeBytes = used >= t ? 0 : t - used;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemGetAddressRange_v2(CUdeviceptr* base, size_t* size, CUdeviceptr dptr) {
  TF_TRY(checkInitialized());
  auto a = addressSpace().find(dptr);
  if (!a) return CUDA_ERROR_NOT_FOUND;
  if (base) *base = a->base;
  if (size) *size = a->size;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuPointerGetAttribute(void* data, CUpointer_attribute attr, CUdeviceptr ptr) {
  if (!data) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkInitialized());
  auto a = addressSpace().find(ptr);
  if (!a) return CUDA_ERROR_INVALID_VALUE;
  const bool host = a->kind == AllocKind::HostPinned || a->kind == AllocKind::HostRegistered;
  const bool managed = a->kind == AllocKind::Managed;
  switch (attr) {
  case CU_POINTER_ATTRIBUTE_CONTEXT:
    *static_cast<CUcontext*>(data) = reinterpret_cast<CUcontext>(a->context);
    break;
  case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
    *static_cast<unsigned*>(data) = host ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE;
    break;
  case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: *static_cast<CUdeviceptr*>(data) = ptr; break;
  case CU_POINTER_ATTRIBUTE_HOST_POINTER:
    if (!host && !managed) return CUDA_ERROR_INVALID_VALUE;
    *static_cast<void**>(data) = reinterpret_cast<void*>(ptr);
    break;
  case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS: *static_cast<int*>(data) = 1; break;
  case CU_POINTER_ATTRIBUTE_BUFFER_ID: *static_cast<unsigned long long*>(data) = a->bufferId; break;
  case CU_POINTER_ATTRIBUTE_IS_MANAGED: *static_cast<int*>(data) = managed ? 1 : 0; break;
  case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: *static_cast<int*>(data) = a->device; break;
  case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE: // cuMemAlloc memory (api_ipc.cpp)
    *static_cast<int*>(data) = a->kind == AllocKind::Device && a->poolId < 0 && !a->imported;
    break;
  case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: *static_cast<CUdeviceptr*>(data) = a->base; break;
  case CU_POINTER_ATTRIBUTE_RANGE_SIZE: *static_cast<size_t*>(data) = a->size; break;
  case CU_POINTER_ATTRIBUTE_MAPPED: *static_cast<int*>(data) = 1; break;
  case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
    *static_cast<unsigned long long*>(data) = a->kind == AllocKind::VmmMapped ? CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR : 0;
    break;
  case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE: *static_cast<int*>(data) = 0; break;
  case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS:
    *static_cast<unsigned*>(data) = CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE;
    break;
  case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE: *static_cast<CUmemoryPool*>(data) = nullptr; break;
  case CU_POINTER_ATTRIBUTE_MAPPING_SIZE: *static_cast<size_t*>(data) = a->size; break;
  case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR: *static_cast<void**>(data) = reinterpret_cast<void*>(a->base); break;
  case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID: *static_cast<unsigned long long*>(data) = a->bufferId; break;
  default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuPointerGetAttributes(unsigned int n, CUpointer_attribute* attrs, void** data,
                                      CUdeviceptr ptr) {
  if ((n && (!attrs || !data))) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkInitialized());
  const bool known = addressSpace().find(ptr).has_value();
  for (unsigned i = 0; i < n; ++i) {
    if (!data[i]) continue;
    if (known && tf_sg_cuPointerGetAttribute(data[i], attrs[i], ptr) == CUDA_SUCCESS) continue;
    // Unknown pointers (and attributes that do not apply) read as zero, not as errors.
    switch (attrs[i]) {
    case CU_POINTER_ATTRIBUTE_CONTEXT: *static_cast<void**>(data[i]) = nullptr; break;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE: *static_cast<unsigned*>(data[i]) = 0; break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: *static_cast<int*>(data[i]) = -2; break;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
    case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
    case CU_POINTER_ATTRIBUTE_MAPPING_SIZE:
    case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR:
    case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID:
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE: *static_cast<uint64_t*>(data[i]) = 0; break;
    default: *static_cast<int*>(data[i]) = 0; break;
    }
  }
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuPointerSetAttribute(const void* value, CUpointer_attribute attr, CUdeviceptr ptr) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkInitialized());
  if (!addressSpace().find(ptr)) return CUDA_ERROR_INVALID_VALUE;
  return attr == CU_POINTER_ATTRIBUTE_SYNC_MEMOPS ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult tf_sg_cuMemPrefetchAsync(CUdeviceptr ptr, size_t count, CUdevice dst, CUstream stream) {
  Context* c;
  TF_TRY(requireContext(&c));
  auto a = addressSpace().find(ptr, count);
  if (!a || a->kind != AllocKind::Managed) return CUDA_ERROR_INVALID_VALUE;
  if (dst != CU_DEVICE_CPU && !deviceAt(dst)) return CUDA_ERROR_INVALID_DEVICE;
  Stream* s;
  TF_TRY(resolveStream(stream, c, &s));
  {
    std::lock_guard<std::mutex> lock(adviceMu);
    adviceTable()[a->base].lastPrefetch = dst;
  }
  return submit(s, OpKind::Memcpy, [] { return CUDA_SUCCESS; }); // memory is already everywhere
}

CUresult tf_sg_cuMemPrefetchAsync_v2(CUdeviceptr ptr, size_t count, CUmemLocation loc, unsigned int,
                                     CUstream stream) {
  return tf_sg_cuMemPrefetchAsync(ptr, count, loc.type == CU_MEM_LOCATION_TYPE_DEVICE ? loc.id : CU_DEVICE_CPU, stream);
}

CUresult tf_sg_cuMemAdvise(CUdeviceptr ptr, size_t count, CUmem_advise advice, CUdevice dev) {
  TF_TRY(checkInitialized());
  auto a = addressSpace().find(ptr, count);
  if (!a || a->kind != AllocKind::Managed) return CUDA_ERROR_INVALID_VALUE;
  if (advice < CU_MEM_ADVISE_SET_READ_MOSTLY || advice > CU_MEM_ADVISE_UNSET_ACCESSED_BY)
    return CUDA_ERROR_INVALID_VALUE;
  if (dev != CU_DEVICE_CPU && !deviceAt(dev)) return CUDA_ERROR_INVALID_DEVICE;
  std::lock_guard<std::mutex> lock(adviceMu);
  ManagedAdvice& m = adviceTable()[a->base];
  switch (advice) {
  case CU_MEM_ADVISE_SET_READ_MOSTLY: m.readMostly = true; break;
  case CU_MEM_ADVISE_UNSET_READ_MOSTLY: m.readMostly = false; break;
  case CU_MEM_ADVISE_SET_PREFERRED_LOCATION: m.preferred = dev; break;
  case CU_MEM_ADVISE_UNSET_PREFERRED_LOCATION: m.preferred = CU_DEVICE_INVALID; break;
  case CU_MEM_ADVISE_SET_ACCESSED_BY: m.accessedBy.insert(dev); break;
  case CU_MEM_ADVISE_UNSET_ACCESSED_BY: m.accessedBy.erase(dev); break;
  }
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemAdvise_v2(CUdeviceptr ptr, size_t count, CUmem_advise advice, CUmemLocation loc) {
  return tf_sg_cuMemAdvise(ptr, count, advice, loc.type == CU_MEM_LOCATION_TYPE_DEVICE ? loc.id : CU_DEVICE_CPU);
}

CUresult tf_sg_cuMemRangeGetAttribute(void* data, size_t dataSize, CUmem_range_attribute attr,
                                      CUdeviceptr ptr, size_t count) {
  if (!data || dataSize < 4 || dataSize % 4) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkInitialized());
  uint64_t base;
  TF_TRY(managedRange(ptr, count, &base));
  std::lock_guard<std::mutex> lock(adviceMu);
  ManagedAdvice m = adviceTable()[base];
  int* out = static_cast<int*>(data);
  auto locType = [](int dev) {
    return dev == CU_DEVICE_CPU ? CU_MEM_LOCATION_TYPE_HOST
           : dev == CU_DEVICE_INVALID ? CU_MEM_LOCATION_TYPE_INVALID : CU_MEM_LOCATION_TYPE_DEVICE;
  };
  auto one = [&](int v) {
    if (dataSize != 4) return CUDA_ERROR_INVALID_VALUE;
    *out = v;
    return CUDA_SUCCESS;
  };
  switch (attr) {
  case CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY: return one(m.readMostly ? 1 : 0);
  case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION: return one(m.preferred);
  case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION: return one(m.lastPrefetch);
  case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_TYPE: return one(locType(m.preferred));
  case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_ID: return one(m.preferred < 0 ? 0 : m.preferred);
  case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_TYPE: return one(locType(m.lastPrefetch));
  case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_ID: return one(m.lastPrefetch < 0 ? 0 : m.lastPrefetch);
  case CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY: {
    size_t n = dataSize / 4, i = 0;
    for (int d : m.accessedBy)
      if (i < n) out[i++] = d;
    for (; i < n; ++i) out[i] = CU_DEVICE_INVALID;
    return CUDA_SUCCESS;
  }
  }
  return CUDA_ERROR_INVALID_VALUE;
}

CUresult tf_sg_cuMemRangeGetAttributes(void** data, size_t* sizes, CUmem_range_attribute* attrs,
                                       size_t n, CUdeviceptr ptr, size_t count) {
  if (n && (!data || !sizes || !attrs)) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 0; i < n; ++i)
    TF_TRY(tf_sg_cuMemRangeGetAttribute(data[i], sizes[i], attrs[i], ptr, count));
  return CUDA_SUCCESS;
}

} // extern "C"
