// Virtual memory management: physical allocations (memfd-backed, so two mappings of one handle
// really alias), address reservations, mappings and access; copies out of mappings and zero
// memsets over them through the memfd (vmm.h).
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "softgpu/driver/module.h"
#include "softgpu/driver/stream.h"
#include "softgpu/driver/vmm.h"

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

struct Mapping {
  PhysicalAllocation* owner = nullptr;
  uint64_t offset = 0; // of the mapping's first byte in the owner's memfd
};

std::mutex vmmMu;
std::map<uint64_t, Mapping>& mappingOwners() { // mapping base -> allocation
  static auto* m = new std::map<uint64_t, Mapping>();
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

// The memfd behind [addr, addr + n) when that lies inside one accessible mapping, its
// allocation held (a reference) until dropBacking: a copy or memset running on a stream uses it.
struct Backing {
  PhysicalAllocation* owner = nullptr;
  off_t offset = 0;       // of addr in the memfd
  uint8_t* host = nullptr; // addr in this process
};

std::optional<Backing> holdBacking(uint64_t addr, uint64_t n) {
  auto a = addressSpace().find(addr, n);
  if (!a || a->kind != AllocKind::VmmMapped) return std::nullopt; // most copies: no lock taken
  std::lock_guard<std::mutex> lock(vmmMu);
  a = addressSpace().find(addr, n);
  if (!a || a->kind != AllocKind::VmmMapped || !a->flags) return std::nullopt;
  auto it = mappingOwners().find(a->base);
  if (it == mappingOwners().end()) return std::nullopt;
  ++it->second.owner->refs;
  return Backing{it->second.owner, static_cast<off_t>(it->second.offset + (addr - a->base)),
                 a->host + (addr - a->base)};
}

void dropBacking(const Backing& b) {
  std::lock_guard<std::mutex> lock(vmmMu);
  unref(b.owner);
}

} // namespace

std::optional<CUresult> tf::softgpu::copyFromVmm(uint8_t* dst, uint64_t src, uint64_t n) {
  auto b = holdBacking(src, n);
  if (!b) return std::nullopt;
  if (dst < b->host + n && b->host < dst + n) { // overlapping: memmove's job
    dropBacking(*b);
    return std::nullopt;
  }
  // Holes are zeros written to dst (SEEK_DATA skips a stretch of them at once). From the data
  // on, window by window, pages in the page cache are copied through the mapping (as fast as
  // memcpy; pread is three times slower), the others read with pread: a hole comes as zeros
  // without being committed, a swapped-out page as its data. (SEEK_HOLE would find the end of
  // the data, but walks all of it, however little is copied: quadratic over a big copy.)
  constexpr off_t kPage = 4096, kWindow = 2 << 20;
  const int fd = b->owner->fd;
  const off_t first = b->offset, end = first + static_cast<off_t>(n);
  auto at = [&](off_t offset) { return offset - first; }; // offset in the memfd -> index in dst
  auto preadAll = [&](off_t from, off_t to) {
    while (from < to) {
      ssize_t got = pread(fd, dst + at(from), static_cast<size_t>(to - from), from);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return false;
      from += got;
    }
    return true;
  };
  CUresult result = CUDA_SUCCESS;
  unsigned char resident[kWindow / kPage];
  for (off_t pos = first; pos < end && result == CUDA_SUCCESS;) {
    off_t data = lseek(fd, pos, SEEK_DATA);
    if (data < 0 && errno != ENXIO) data = pos; // cannot tell: read on
    data = data < 0 ? end : std::min(data, end);
    std::memset(dst + at(pos), 0, static_cast<size_t>(data - pos));
    if (data == end) break;
    const off_t page = data / kPage * kPage, stop = std::min(end, page + kWindow);
    if (mincore(b->host + at(page), static_cast<size_t>(stop - page), resident) != 0) {
      if (!preadAll(data, stop)) result = CUDA_ERROR_INVALID_VALUE; // EFAULT: dst unwritable
    } else {
      for (off_t from = data; from < stop;) { // runs of pages in or out of the page cache
        const bool in = resident[(from - page) / kPage] & 1;
        off_t to = (from / kPage + 1) * kPage;
        while (to < stop && (resident[(to - page) / kPage] & 1) == in) to += kPage;
        to = std::min(to, stop);
        if (in) std::memcpy(dst + at(from), b->host + at(from), static_cast<size_t>(to - from));
        else if (!preadAll(from, to)) result = CUDA_ERROR_INVALID_VALUE;
        from = to;
      }
    }
    pos = stop;
  }
  dropBacking(*b);
  return result;
}

std::optional<CUresult> tf::softgpu::zeroVmm(uint64_t dst, uint64_t n) {
  constexpr off_t kPage = 4096;
  auto b = holdBacking(dst, n);
  if (!b) return std::nullopt;
  const off_t first = b->offset, end = first + static_cast<off_t>(n);
  const off_t lo = std::min(end, (first + kPage - 1) / kPage * kPage), hi = std::max(lo, end / kPage * kPage);
  if (lo < hi && fallocate(b->owner->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, lo, hi - lo) == 0) {
    std::memset(b->host, 0, static_cast<size_t>(lo - first));          // the partial pages
    std::memset(b->host + (hi - first), 0, static_cast<size_t>(end - hi));
  } else {
    std::memset(b->host, 0, n); // no whole page, or a file system without holes
  }
  dropBacking(*b);
  return CUDA_SUCCESS;
}

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
  mappingOwners()[ptr] = {p, offset};
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMemUnmap(CUdeviceptr ptr, size_t size) {
  TF_TRY(checkInitialized());
  // Work may still use the range; waited for outside the lock, which that work may take
  // (copyFromVmm, zeroVmm).
  if (Context* c = currentContext()) synchronizeContext(c);
  std::lock_guard<std::mutex> lock(vmmMu);
  tf::Status s = addressSpace().unmap(ptr, size);
  if (!s) return CUDA_ERROR_INVALID_VALUE;
  auto& owners = mappingOwners();
  for (auto it = owners.lower_bound(ptr); it != owners.end() && it->first < ptr + size;) {
    unref(it->second.owner);
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
  ++it->second.owner->refs;
  *h = reinterpret_cast<CUmemGenericAllocationHandle>(it->second.owner);
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
