// Stream-ordered allocation and memory pools. A pool keeps freed blocks for reuse until its
// release threshold says otherwise; its reserved memory counts as used device memory, as on a
// real GPU. cuMemFreeAsync returns the block when the stream reaches the free.
#include <map>

#include "softgpu/driver/module.h"
#include "softgpu/driver/stream.h"

namespace tf::softgpu {

struct MemPool {
  Device* device = nullptr;
  bool isDefault = false;
  std::mutex mu;
  std::multimap<uint64_t, uint64_t> idle;   // size -> base of freed blocks kept for reuse
  std::map<uint64_t, uint64_t> live;        // base -> size of blocks handed out
  uint64_t reserved = 0, used = 0, reservedHigh = 0, usedHigh = 0;
  uint64_t releaseThreshold = 0;
  bool reuseFollowEventDeps = true, reuseAllowOpportunistic = true, reuseAllowInternalDeps = true;

  // Gives idle blocks back to the device until at most `keep` bytes are reserved.
  void trim(uint64_t keep) {
    for (auto it = idle.begin(); it != idle.end() && reserved > keep;) {
      Allocation a;
      if (addressSpace().release(it->second, AllocKind::Device, &a).isOk()) {
        creditMemory(device, it->first);
        reserved -= it->first;
      }
      it = idle.erase(it);
    }
  }
};

} // namespace tf::softgpu

using namespace tf::softgpu;

namespace {

std::mutex defaultPoolsMu;

CUresult poolOf(CUmemoryPool h, MemPool** out) {
  TF_TRY(checkInitialized());
  MemPool* p = registryOf<MemPool>().find(h);
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  *out = p;
  return CUDA_SUCCESS;
}

MemPool* defaultPool(Device* d) {
  std::lock_guard<std::mutex> lock(defaultPoolsMu);
  if (!d->defaultPool) {
    auto* p = new MemPool();
    p->device = d;
    p->isDefault = true;
    registryOf<MemPool>().add(p);
    d->defaultPool = reinterpret_cast<CUmemoryPool>(p);
  }
  if (!d->currentPool) d->currentPool = d->defaultPool;
  return reinterpret_cast<MemPool*>(d->defaultPool);
}

MemPool* currentPool(Device* d) {
  defaultPool(d);
  std::lock_guard<std::mutex> lock(defaultPoolsMu);
  return reinterpret_cast<MemPool*>(d->currentPool);
}

CUresult allocFromPool(MemPool* p, size_t bytes, CUstream hs, CUdeviceptr* out) {
  if (!out || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(requireContext(&c));
  Stream* s;
  TF_TRY(resolveStream(hs, c, &s));
  const uint64_t size = (bytes + 511) / 512 * 512;
  std::lock_guard<std::mutex> lock(p->mu);
  uint64_t base = 0;
  auto it = p->idle.lower_bound(size);
  if (it != p->idle.end() && it->first == size) { // reuse a freed block of the same size
    base = it->second;
    p->idle.erase(it);
  } else {
    if (chargeMemory(p->device, size) != CUDA_SUCCESS) {
      p->trim(0); // give idle blocks back and try once more
      TF_TRY(chargeMemory(p->device, size));
    }
    auto a = addressSpace().allocate(p->device->ordinal, size, AllocKind::Device, nullptr);
    if (!a) {
      creditMemory(p->device, size);
      return CUDA_ERROR_OUT_OF_MEMORY;
    }
    base = *a;
    p->reserved += size;
    p->reservedHigh = std::max(p->reservedHigh, p->reserved);
  }
  p->live[base] = size;
  p->used += size;
  p->usedHigh = std::max(p->usedHigh, p->used);
  *out = base;
  return CUDA_SUCCESS;
}

} // namespace

extern "C" {

CUresult tf_sg_cuDeviceGetDefaultMemPool(CUmemoryPool* out, CUdevice dev) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkInitialized());
  Device* d = deviceAt(dev);
  if (!d) return CUDA_ERROR_INVALID_DEVICE;
  *out = reinterpret_cast<CUmemoryPool>(defaultPool(d));
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuDeviceGetMemPool(CUmemoryPool* out, CUdevice dev) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkInitialized());
  Device* d = deviceAt(dev);
  if (!d) return CUDA_ERROR_INVALID_DEVICE;
  *out = reinterpret_cast<CUmemoryPool>(currentPool(d));
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuDeviceSetMemPool(CUdevice dev, CUmemoryPool h) {
  TF_TRY(checkInitialized());
  Device* d = deviceAt(dev);
  if (!d) return CUDA_ERROR_INVALID_DEVICE;
  MemPool* p;
  TF_TRY(poolOf(h, &p));
  if (p->device != d) return CUDA_ERROR_INVALID_DEVICE;
  defaultPool(d);
  std::lock_guard<std::mutex> lock(defaultPoolsMu);
  d->currentPool = h;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemPoolCreate(CUmemoryPool* out, const CUmemPoolProps* props) {
  if (!out || !props) return CUDA_ERROR_INVALID_VALUE;
  if (props->allocType != CU_MEM_ALLOCATION_TYPE_PINNED ||
      props->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
    return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkInitialized());
  Device* d = deviceAt(props->location.id);
  if (!d) return CUDA_ERROR_INVALID_DEVICE;
  auto* p = new MemPool();
  p->device = d;
  registryOf<MemPool>().add(p);
  *out = reinterpret_cast<CUmemoryPool>(p);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemPoolDestroy(CUmemoryPool h) {
  MemPool* p;
  TF_TRY(poolOf(h, &p));
  if (p->isDefault) return CUDA_ERROR_INVALID_VALUE;
  {
    std::lock_guard<std::mutex> lock(defaultPoolsMu);
    if (p->device->currentPool == h) p->device->currentPool = p->device->defaultPool;
  }
  registryOf<MemPool>().remove(p);
  std::lock_guard<std::mutex> lock(p->mu);
  p->trim(0);
  // Blocks still allocated from it stay valid until freed (their memory is credited then).
  if (p->live.empty()) {
    delete p;
  }
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemPoolTrimTo(CUmemoryPool h, size_t keep) {
  MemPool* p;
  TF_TRY(poolOf(h, &p));
  std::lock_guard<std::mutex> lock(p->mu);
  p->trim(std::max<uint64_t>(keep, p->used));
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemPoolSetAttribute(CUmemoryPool h, CUmemPool_attribute attr, void* value) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  MemPool* p;
  TF_TRY(poolOf(h, &p));
  std::lock_guard<std::mutex> lock(p->mu);
  switch (attr) {
  case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: p->releaseThreshold = *static_cast<cuuint64_t*>(value); break;
  case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES: p->reuseFollowEventDeps = *static_cast<int*>(value); break;
  case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC: p->reuseAllowOpportunistic = *static_cast<int*>(value); break;
  case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES: p->reuseAllowInternalDeps = *static_cast<int*>(value); break;
  case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
    if (*static_cast<cuuint64_t*>(value) != 0) return CUDA_ERROR_INVALID_VALUE;
    p->reservedHigh = p->reserved;
    break;
  case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
    if (*static_cast<cuuint64_t*>(value) != 0) return CUDA_ERROR_INVALID_VALUE;
    p->usedHigh = p->used;
    break;
  default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemPoolGetAttribute(CUmemoryPool h, CUmemPool_attribute attr, void* value) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  MemPool* p;
  TF_TRY(poolOf(h, &p));
  std::lock_guard<std::mutex> lock(p->mu);
  switch (attr) {
  case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: *static_cast<cuuint64_t*>(value) = p->releaseThreshold; break;
  case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES: *static_cast<int*>(value) = p->reuseFollowEventDeps; break;
  case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC: *static_cast<int*>(value) = p->reuseAllowOpportunistic; break;
  case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES: *static_cast<int*>(value) = p->reuseAllowInternalDeps; break;
  case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT: *static_cast<cuuint64_t*>(value) = p->reserved; break;
  case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH: *static_cast<cuuint64_t*>(value) = p->reservedHigh; break;
  case CU_MEMPOOL_ATTR_USED_MEM_CURRENT: *static_cast<cuuint64_t*>(value) = p->used; break;
  case CU_MEMPOOL_ATTR_USED_MEM_HIGH: *static_cast<cuuint64_t*>(value) = p->usedHigh; break;
  default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemPoolSetAccess(CUmemoryPool h, const CUmemAccessDesc* map, size_t count) {
  if (count && !map) return CUDA_ERROR_INVALID_VALUE;
  MemPool* p;
  TF_TRY(poolOf(h, &p));
  for (size_t i = 0; i < count; ++i)
    if (map[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE || !deviceAt(map[i].location.id))
      return CUDA_ERROR_INVALID_DEVICE;
  return CUDA_SUCCESS; // every soft device can reach every pool
}

CUresult tf_sg_cuMemPoolGetAccess(CUmemAccess_flags* flags, CUmemoryPool h, CUmemLocation* loc) {
  if (!flags || !loc) return CUDA_ERROR_INVALID_VALUE;
  MemPool* p;
  TF_TRY(poolOf(h, &p));
  *flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemAllocFromPoolAsync(CUdeviceptr* out, size_t bytes, CUmemoryPool h, CUstream s) {
  MemPool* p;
  TF_TRY(poolOf(h, &p));
  return allocFromPool(p, bytes, s, out);
}

CUresult tf_sg_cuMemAllocAsync(CUdeviceptr* out, size_t bytes, CUstream s) {
  Context* c;
  TF_TRY(requireContext(&c));
  return allocFromPool(currentPool(c->device), bytes, s, out);
}

CUresult tf_sg_cuMemFreeAsync(CUdeviceptr ptr, CUstream hs) {
  Context* c;
  TF_TRY(requireContext(&c));
  Stream* s;
  TF_TRY(resolveStream(hs, c, &s));
  // Find the pool that handed the block out.
  MemPool* owner = nullptr;
  registryOf<MemPool>().forEach([&](MemPool* p) {
    std::lock_guard<std::mutex> lock(p->mu);
    if (p->live.count(ptr)) owner = p;
  });
  if (!owner) return CUDA_ERROR_INVALID_VALUE;
  {
    std::lock_guard<std::mutex> lock(owner->mu);
    if (!owner->live.count(ptr)) return CUDA_ERROR_INVALID_VALUE;
  }
  return submit(s, OpKind::Free, [owner, ptr] {
    std::lock_guard<std::mutex> lock(owner->mu);
    auto it = owner->live.find(ptr);
    if (it == owner->live.end()) return CUDA_SUCCESS;
    owner->used -= it->second;
    owner->idle.emplace(it->second, ptr);
    owner->live.erase(it);
    if (owner->reserved > owner->releaseThreshold) owner->trim(owner->releaseThreshold);
    return CUDA_SUCCESS;
  });
}

} // extern "C"
