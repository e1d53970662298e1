// Virtual memory management: physical allocations (memfd-backed, so two mappings of one handle
// really alias), address reservations, mappings and access.
#include <cerrno>
#include <sys/mman.h>
#include <unistd.h>

#include "softgpu/driver/module.h"
#include "softgpu/driver/stream.h"

using namespace tf::softgpu;

namespace {

constexpr size_t kGranularity = 2u << 20; // what current GPUs report

struct PhysicalAllocation {
  int fd = -1;
  size_t size = 0;
  Device* device = nullptr;
  CUmemAllocationProp prop{};
  int refs = 1;           // the handle itself, plus one per mapping
  uint64_t bufferId = 0;
};

std::mutex vmmMu;
std::map<uint64_t, PhysicalAllocation*>& mappingOwners() { // mapping base -> allocation
  static auto* m = new std::map<uint64_t, PhysicalAllocation*>();
  return *m;
}
std::atomic<uint64_t> nextBufferId{1u << 30};

void unref(PhysicalAllocation* p) {
  if (--p->refs > 0) return;
  registryOf<PhysicalAllocation>().remove(p);
  close(p->fd);
  creditMemory(p->device, p->size);
  delete p;
}

CUresult handleOf(CUmemGenericAllocationHandle h, PhysicalAllocation** out) {
  TF_TRY(checkInitialized());
  auto* p = registryOf<PhysicalAllocation>().find(reinterpret_cast<void*>(h));
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  *out = p;
  return CUDA_SUCCESS;
}

CUresult checkProp(const CUmemAllocationProp* prop, Device** dev) {
  if (!prop || prop->type != CU_MEM_ALLOCATION_TYPE_PINNED) return CUDA_ERROR_INVALID_VALUE;
  if (prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkInitialized());
  *dev = deviceAt(prop->location.id);
  return *dev ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

} // namespace

extern "C" {

CUresult tf_sg_cuMemGetAllocationGranularity(size_t* g, const CUmemAllocationProp* prop,
                                             CUmemAllocationGranularity_flags option) {
  if (!g) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  TF_TRY(checkProp(prop, &d));
  if (option != CU_MEM_ALLOC_GRANULARITY_MINIMUM && option != CU_MEM_ALLOC_GRANULARITY_RECOMMENDED)
    return CUDA_ERROR_INVALID_VALUE;
  *g = kGranularity;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size,
                           const CUmemAllocationProp* prop, unsigned long long flags) {
  if (!handle || flags || size == 0 || size % kGranularity) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  TF_TRY(checkProp(prop, &d));
  TF_TRY(chargeMemory(d, size)); // charged before it exists
  int fd = memfd_create("tf-softgpu-vmm", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, static_cast<off_t>(size)) != 0) {
    if (fd >= 0) close(fd);
    creditMemory(d, size);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  auto* p = new PhysicalAllocation();
  p->fd = fd;
  p->size = size;
  p->device = d;
  p->prop = *prop;
  p->bufferId = nextBufferId++;
  registryOf<PhysicalAllocation>().add(p);
  *handle = reinterpret_cast<CUmemGenericAllocationHandle>(p);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemRelease(CUmemGenericAllocationHandle h) {
  std::lock_guard<std::mutex> lock(vmmMu);
  PhysicalAllocation* p;
  TF_TRY(handleOf(h, &p));
  unref(p); // memory goes when the last mapping goes too
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemAddressReserve(CUdeviceptr* ptr, size_t size, size_t alignment,
                                   CUdeviceptr addr, unsigned long long flags) {
  if (!ptr || size == 0 || size % kGranularity || flags) return CUDA_ERROR_INVALID_VALUE;
  if (alignment && (alignment & (alignment - 1))) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkInitialized());
  Context* c = currentContext();
  int device = c ? c->device->ordinal : 0;
  auto r = addressSpace().reserveRange(device, size, std::max(alignment, kGranularity), addr);
  if (!r) return CUDA_ERROR_OUT_OF_MEMORY;
  *ptr = *r;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemAddressFree(CUdeviceptr ptr, size_t size) {
  TF_TRY(checkInitialized());
  auto a = addressSpace().findBase(ptr);
  if (!a || a->kind != AllocKind::VmmReserved || a->size != size) return CUDA_ERROR_INVALID_VALUE;
  tf::Status s = addressSpace().release(ptr, AllocKind::VmmReserved, nullptr);
  return s.isOk() ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult tf_sg_cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                        CUmemGenericAllocationHandle h, unsigned long long flags) {
  if (flags || size == 0 || size % kGranularity || offset % kGranularity) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(vmmMu);
  PhysicalAllocation* p;
  TF_TRY(handleOf(h, &p));
  if (offset + size > p->size) return CUDA_ERROR_INVALID_VALUE;
  tf::Status s = addressSpace().mapShared(ptr, size, p->fd, offset, p->device->ordinal, p->bufferId);
  if (!s) return CUDA_ERROR_INVALID_VALUE;
  ++p->refs;
  mappingOwners()[ptr] = p;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemUnmap(CUdeviceptr ptr, size_t size) {
  std::lock_guard<std::mutex> lock(vmmMu);
  TF_TRY(checkInitialized());
  if (Context* c = currentContext()) synchronizeContext(c); // work may still use the range
  tf::Status s = addressSpace().unmap(ptr, size);
  if (!s) return CUDA_ERROR_INVALID_VALUE;
  auto& owners = mappingOwners();
  for (auto it = owners.lower_bound(ptr); it != owners.end() && it->first < ptr + size;) {
    unref(it->second);
    it = owners.erase(it);
  }
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc* desc, size_t count) {
  if (!desc || count == 0) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkInitialized());
  bool rw = false;
  for (size_t i = 0; i < count; ++i) {
    if (desc[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE || !deviceAt(desc[i].location.id))
      return CUDA_ERROR_INVALID_DEVICE;
    if (desc[i].flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE || desc[i].flags == CU_MEM_ACCESS_FLAGS_PROT_READ)
      rw = true;
    else if (desc[i].flags != CU_MEM_ACCESS_FLAGS_PROT_NONE)
      return CUDA_ERROR_INVALID_VALUE;
  }
  tf::Status s = addressSpace().setAccess(ptr, size, rw);
  return s.isOk() ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult tf_sg_cuMemGetAccess(unsigned long long* flags, const CUmemLocation* loc, CUdeviceptr ptr) {
  if (!flags || !loc) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkInitialized());
  auto a = addressSpace().find(ptr);
  if (!a || a->kind != AllocKind::VmmMapped) return CUDA_ERROR_INVALID_VALUE;
  *flags = a->flags ? CU_MEM_ACCESS_FLAGS_PROT_READWRITE : CU_MEM_ACCESS_FLAGS_PROT_NONE;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp* prop,
                                                      CUmemGenericAllocationHandle h) {
  if (!prop) return CUDA_ERROR_INVALID_VALUE;
  PhysicalAllocation* p;
  TF_TRY(handleOf(h, &p));
  *prop = p->prop;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemRetainAllocationHandle(CUmemGenericAllocationHandle* h, void* addr) {
  if (!h) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(vmmMu);
  TF_TRY(checkInitialized());
  auto a = addressSpace().find(reinterpret_cast<uint64_t>(addr));
  if (!a || a->kind != AllocKind::VmmMapped) return CUDA_ERROR_INVALID_VALUE;
  auto it = mappingOwners().find(a->base);
  if (it == mappingOwners().end()) return CUDA_ERROR_INVALID_VALUE;
  ++it->second->refs;
  *h = reinterpret_cast<CUmemGenericAllocationHandle>(it->second);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemExportToShareableHandle(void* out, CUmemGenericAllocationHandle h,
                                            CUmemAllocationHandleType type, unsigned long long flags) {
  if (!out || flags) return CUDA_ERROR_INVALID_VALUE;
  if (type != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) return CUDA_ERROR_NOT_SUPPORTED;
  PhysicalAllocation* p;
  TF_TRY(handleOf(h, &p));
  int fd = dup(p->fd);
  if (fd < 0) return CUDA_ERROR_OPERATING_SYSTEM;
  *static_cast<int*>(out) = fd;
  return CUDA_SUCCESS;
}

} // extern "C"
