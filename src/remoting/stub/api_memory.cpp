// Memory: device allocations (tracked locally too, for pointer attributes and for telling
// host from device in unified copies), managed memory and pinned host memory (mirrored on the
// worker when the device uses their addresses: remoting/mirror.h), copies in every direction
// and memsets. Host-to-device data is written once into the transport straight from the
// caller's buffer; device-to-host data is read straight into it.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

#include "remoting/stub/api.h"
#include "remoting/stub/pageable_copy.h"
#include "remoting/stub/shared_managed.h"

using namespace tf::remoting::stub;

namespace {

// Memory the device reaches by this address (device, managed, mirrored or shared pinned).
bool isDevice(CUdeviceptr p) { return client().findDevice(p, nullptr, nullptr); }
// For the direction of a unified copy: device or managed memory (pinned memory is the host's).
bool isDeviceSide(CUdeviceptr p) {
  Client::Allocation a{};
  return client().findDevice(p, nullptr, &a) &&
         (a.kind == Client::Memory::Device || a.kind == Client::Memory::Managed);
}
// Pinned memory the worker maps too (shared memory transport): copies go by reference.
bool isSharedHost(const void* p, size_t n) {
  CUdeviceptr base = 0;
  Client::Allocation a{};
  CUdeviceptr q = reinterpret_cast<CUdeviceptr>(p);
  return client().findDevice(q, &base, &a) && a.kind == Client::Memory::HostShared &&
         n <= a.size - (q - base);
}
constexpr uint64_t kSynchronous = ~uint64_t(0);

// An async copy whose host side (pinned memory) is mirrored on the worker and used there by
// address: the bytes move with the mirror exchanges, not with the call.
CUresult byReference(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
  Client& c = client();
  for (CUdeviceptr p : {dst, src}) {
    if (isDevice(p)) continue;
    CUresult r = c.mirrorHost(h<const void*>(p));
    if (r != CUDA_SUCCESS) return r;
  }
  return c.post(static_cast<uint32_t>(tf::remoting::Op::CopyHostByRef), {dst, src, n, u(s)});
}

// Pinned host memory is placed in a range of addresses processes rarely use, so that the
// worker can map its mirror (or, given a memfd, the same pages) at the same address.
void* mapPinned(size_t bytes, int fd) {
  int flags = fd >= 0 ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS;
  static std::atomic<uint64_t> next = [] {
    std::random_device rd;
    return uint64_t(0x500000000000) + ((uint64_t(rd()) << 20) & 0xFFFFFF00000);
  }();
  for (int attempt = 0; attempt < 64; ++attempt) {
    uint64_t at = next.fetch_add(bytes + (uint64_t(1) << 20));
    void* p = mmap(reinterpret_cast<void*>(at), bytes, PROT_READ | PROT_WRITE,
                   flags | MAP_FIXED_NOREPLACE, fd, 0);
    if (p != MAP_FAILED) return p;
  }
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, flags, fd, 0);
  return p == MAP_FAILED ? nullptr : p;
}
size_t pageRound(size_t n) { return (std::max<size_t>(n, 1) + 4095) & ~size_t(4095); }

CUresult htod(FnId fn, CUdeviceptr dst, const void* src, size_t n) {
  TF_READY();
  fn = plainOf(fn);
  if (!src && n) return CUDA_ERROR_INVALID_VALUE;
  if (isSharedHost(src, n))
    return client().call(static_cast<uint32_t>(tf::remoting::Op::CopyHostByRef), {dst, u(src), n, kSynchronous});
  CUresult direct;
  if (copyThroughMapping(true, dst, const_cast<void*>(src), n, &direct)) return direct;
  iovec v{const_cast<void*>(src), n};
  return client().call(fn, {dst, n}, nullptr, 0, nullptr, 0, &v, 1);
}
CUresult htodAsync(FnId fn, CUdeviceptr dst, const void* src, size_t n, CUstream s) {
  TF_READY();
  if (!src && n) return CUDA_ERROR_INVALID_VALUE;
  if (!client().streamOk(s)) return CUDA_ERROR_INVALID_HANDLE;
  if (!isDevice(dst)) return CUDA_ERROR_INVALID_VALUE;
  perThreadCall(fn, s);
  // Shared pinned memory: the worker reads the very pages when the stream gets there. While
  // a capture is on, any pinned source is read by reference: a graph captured from the
  // stream reads the buffer each time it runs.
  if (isSharedHost(src, n) ||
      (client().capturing() && client().findHost(src, nullptr, nullptr, nullptr)))
    return byReference(dst, u(src), n, s);
  // A host function queued earlier may still write pinned memory: then the bytes are fetched
  // when the stream reaches the copy.
  if (client().hostFunctionsOutstanding() && client().findHost(src, nullptr, nullptr, nullptr))
    return client().hostToDeviceAtStreamTime(dst, src, n, s);
  // Otherwise the bytes go into the transport now, so the caller may reuse its buffer at once;
  // nothing waits for the worker. While a capture is on, the worker may refuse (a pageable
  // source cannot be captured remotely): then the call waits, so the refusal is its result.
  iovec v{const_cast<void*>(src), n};
  if (client().capturing()) return client().call(fn, {dst, n, u(s)}, nullptr, 0, nullptr, 0, &v, 1);
  return client().post(fn, {dst, n, u(s)}, nullptr, 0, &v, 1);
}
CUresult dtoh(FnId fn, void* dst, CUdeviceptr src, size_t n) {
  TF_READY();
  fn = plainOf(fn);
  if (!dst && n) return CUDA_ERROR_INVALID_VALUE;
  if (isSharedHost(dst, n))
    return client().call(static_cast<uint32_t>(tf::remoting::Op::CopyHostByRef), {u(dst), src, n, kSynchronous});
  CUresult direct;
  if (copyThroughMapping(false, src, dst, n, &direct)) return direct;
  ReplySink sink{dst, n, nullptr};
  return client().call(fn, {src, n}, nullptr, 0, nullptr, 0, nullptr, 0, &sink);
}
CUresult dtohAsync(FnId fn, void* dst, CUdeviceptr src, size_t n, CUstream s) {
  TF_READY();
  perThreadCall(fn, s);
  if (!dst && n) return CUDA_ERROR_INVALID_VALUE;
  // Into shared pinned memory the copy is posted: the bytes land in the caller's pages when
  // the stream gets there, as on a GPU.
  if (isSharedHost(dst, n) ||
      (client().capturing() && client().findHost(dst, nullptr, nullptr, nullptr))) {
    if (!client().streamOk(s)) return CUDA_ERROR_INVALID_HANDLE;
    return byReference(u(dst), src, n, s);
  }
  ReplySink sink{dst, n, nullptr};
  return client().call(fn, {src, n, u(s)}, nullptr, 0, nullptr, 0, nullptr, 0, &sink);
}
CUresult dtod(FnId fn, CUdeviceptr dst, CUdeviceptr src, size_t n) {
  TF_READY();
  fn = plainOf(fn);
  return client().call(fn, {dst, src, n});
}
CUresult dtodAsync(FnId fn, CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
  TF_READY();
  if (!client().streamOk(s)) return CUDA_ERROR_INVALID_HANDLE;
  if (!isDevice(dst) || !isDevice(src)) return CUDA_ERROR_INVALID_VALUE;
  perThreadCall(fn, s);
  return client().post(fn, {dst, src, n, u(s)});
}

// cuMemcpy / cuMemcpyAsync: the direction comes from what the stub knows about each pointer.
CUresult unified(bool pt, bool async, CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
  TF_READY();
  bool dd = isDeviceSide(dst), sd = isDeviceSide(src);
  void* dh = h<void*>(dst);
  const void* sh = h<const void*>(src);
  if (dd && sd)
    return async ? dtodAsync(pt ? FnId::cuMemcpyDtoDAsync_v2_ptsz : FnId::cuMemcpyDtoDAsync_v2, dst, src, n, s)
                 : dtod(pt ? FnId::cuMemcpyDtoD_v2_ptds : FnId::cuMemcpyDtoD_v2, dst, src, n);
  if (dd)
    return async ? htodAsync(pt ? FnId::cuMemcpyHtoDAsync_v2_ptsz : FnId::cuMemcpyHtoDAsync_v2, dst, sh, n, s)
                 : htod(pt ? FnId::cuMemcpyHtoD_v2_ptds : FnId::cuMemcpyHtoD_v2, dst, sh, n);
  if (sd)
    return async ? dtohAsync(pt ? FnId::cuMemcpyDtoHAsync_v2_ptsz : FnId::cuMemcpyDtoHAsync_v2, dh, src, n, s)
                 : dtoh(pt ? FnId::cuMemcpyDtoH_v2_ptds : FnId::cuMemcpyDtoH_v2, dh, src, n);
  if (!dh || !sh) return CUDA_ERROR_INVALID_VALUE;
  std::memmove(dh, sh, n); // host to host
  return CUDA_SUCCESS;
}

// 3D copies (2D ones become 3D with depth 1): host sides travel packed.
CUmemorytype resolveType(CUmemorytype t, CUdeviceptr dev) {
  if (t == CU_MEMORYTYPE_UNIFIED) return isDevice(dev) ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST;
  return t;
}

CUresult copy3D(FnId fn, bool async, CUDA_MEMCPY3D c, CUstream s) {
  TF_READY();
  if (async) perThreadCall(fn, s);
  else fn = plainOf(fn);
  if (c.srcMemoryType == CU_MEMORYTYPE_UNIFIED) c.srcHost = h<const void*>(c.srcDevice);
  if (c.dstMemoryType == CU_MEMORYTYPE_UNIFIED) c.dstHost = h<void*>(c.dstDevice);
  c.srcMemoryType = resolveType(c.srcMemoryType, c.srcDevice);
  c.dstMemoryType = resolveType(c.dstMemoryType, c.dstDevice);
  if (c.srcMemoryType == CU_MEMORYTYPE_HOST && c.dstMemoryType == CU_MEMORYTYPE_HOST) {
    for (size_t z = 0; z < c.Depth; ++z)
      for (size_t y = 0; y < c.Height; ++y)
        std::memmove(static_cast<char*>(c.dstHost) + c.dstXInBytes +
                         ((c.dstZ + z) * c.dstHeight + c.dstY + y) * c.dstPitch,
                     static_cast<const char*>(c.srcHost) + c.srcXInBytes +
                         ((c.srcZ + z) * c.srcHeight + c.srcY + y) * c.srcPitch,
                     c.WidthInBytes);
    return CUDA_SUCCESS;
  }
  size_t rows = c.Height * c.Depth, w = c.WidthInBytes;
  std::vector<uint8_t> packed;
  iovec v{};
  int nBulk = 0;
  if (c.srcMemoryType == CU_MEMORYTYPE_HOST) {
    if (!c.srcHost) return CUDA_ERROR_INVALID_VALUE;
    packed.resize(rows * w);
    for (size_t z = 0; z < c.Depth; ++z)
      for (size_t y = 0; y < c.Height; ++y)
        std::memcpy(packed.data() + (z * c.Height + y) * w,
                    static_cast<const char*>(c.srcHost) + c.srcXInBytes +
                        ((c.srcZ + z) * c.srcHeight + c.srcY + y) * c.srcPitch,
                    w);
    v = {packed.data(), packed.size()};
    nBulk = 1;
    c.srcHost = nullptr;
  }
  void* dstHost = nullptr;
  if (c.dstMemoryType == CU_MEMORYTYPE_HOST) {
    if (!c.dstHost) return CUDA_ERROR_INVALID_VALUE;
    dstHost = c.dstHost;
    c.dstHost = nullptr;
  }
  std::vector<uint8_t> back;
  ReplySink sink{nullptr, 0, &back};
  CUresult r = client().call(fn, {u(s)}, nullptr, 0, &c, sizeof(c), &v, nBulk, &sink);
  (void)async;
  if (r != CUDA_SUCCESS || !dstHost) return r;
  if (back.size() != rows * w) return CUDA_ERROR_UNKNOWN;
  for (size_t z = 0; z < c.Depth; ++z)
    for (size_t y = 0; y < c.Height; ++y)
      std::memcpy(static_cast<char*>(dstHost) + c.dstXInBytes +
                      ((c.dstZ + z) * c.dstHeight + c.dstY + y) * c.dstPitch,
                  back.data() + (z * c.Height + y) * w, w);
  return CUDA_SUCCESS;
}

CUDA_MEMCPY3D from2D(const CUDA_MEMCPY2D* p) {
  CUDA_MEMCPY3D c{};
  c.srcXInBytes = p->srcXInBytes;
  c.srcY = p->srcY;
  c.srcMemoryType = p->srcMemoryType;
  c.srcHost = p->srcHost;
  c.srcDevice = p->srcDevice;
  c.srcArray = p->srcArray;
  c.srcPitch = p->srcPitch;
  c.srcHeight = p->Height;
  c.dstXInBytes = p->dstXInBytes;
  c.dstY = p->dstY;
  c.dstMemoryType = p->dstMemoryType;
  c.dstHost = p->dstHost;
  c.dstDevice = p->dstDevice;
  c.dstArray = p->dstArray;
  c.dstPitch = p->dstPitch;
  c.dstHeight = p->Height;
  c.WidthInBytes = p->WidthInBytes;
  c.Height = p->Height;
  c.Depth = 1;
  return c;
}

CUresult pointerAttribute(void* data, CUpointer_attribute attr, CUdeviceptr ptr) {
  Client& c = client();
  CUdeviceptr base = 0;
  Client::Allocation a{};
  void* hostBase = nullptr;
  uint64_t hostSize = 0;
  unsigned hostFlags = 0;
  bool found = c.findDevice(ptr, &base, &a);
  bool host = c.findHost(h<void*>(ptr), &hostBase, &hostSize, &hostFlags);
  if (!found && !host) return CUDA_ERROR_INVALID_VALUE;
  bool dev = found && (a.kind == Client::Memory::Device || a.kind == Client::Memory::Managed);
  bool managed = found && a.kind == Client::Memory::Managed;
  CUdevice ordinal = 0;
  if (dev) c.contextDevice(a.ctx, &ordinal);
  switch (attr) {
  case CU_POINTER_ATTRIBUTE_CONTEXT: *static_cast<CUcontext*>(data) = dev ? a.ctx : currentContext(); return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_MEMORY_TYPE: *static_cast<unsigned*>(data) = dev ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST; return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
    // Pinned memory: the same address on the device once the worker mirrors it.
    if (!dev && c.mirrorHost(h<void*>(ptr)) != CUDA_SUCCESS) return CUDA_ERROR_INVALID_VALUE;
    *static_cast<CUdeviceptr*>(data) = ptr;
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_HOST_POINTER:
    if (dev && !managed) return CUDA_ERROR_INVALID_VALUE;
    *static_cast<void**>(data) = h<void*>(ptr);
    return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_IS_MANAGED: *static_cast<unsigned*>(data) = managed ? 1 : 0; return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: *static_cast<int*>(data) = ordinal; return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_BUFFER_ID: *static_cast<unsigned long long*>(data) = dev ? base : u(hostBase); return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: *static_cast<CUdeviceptr*>(data) = dev ? base : u(hostBase); return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_RANGE_SIZE: *static_cast<size_t*>(data) = dev ? a.size : hostSize; return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_MAPPED: *static_cast<unsigned*>(data) = 1; return CUDA_SUCCESS;
  case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS: *static_cast<unsigned*>(data) = 1; return CUDA_SUCCESS;
  default: return CUDA_ERROR_NOT_SUPPORTED;
  }
}

size_t attrSize(CUpointer_attribute attr) {
  switch (attr) {
  case CU_POINTER_ATTRIBUTE_CONTEXT:
  case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
  case CU_POINTER_ATTRIBUTE_HOST_POINTER:
  case CU_POINTER_ATTRIBUTE_BUFFER_ID:
  case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
  case CU_POINTER_ATTRIBUTE_RANGE_SIZE: return 8;
  default: return 4;
  }
}

} // namespace

extern "C" {

CUresult tf_rs_cuMemAlloc_v2(CUdeviceptr* p, size_t size) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  uint64_t out = 0;
  CUresult r = client().call(FnId::cuMemAlloc_v2, {size}, &out, 1);
  if (r == CUDA_SUCCESS) client().addDeviceAllocation(out, size, currentContext());
  *p = out;
  return r;
}

CUresult tf_rs_cuMemAllocPitch_v2(CUdeviceptr* p, size_t* pitch, size_t w, size_t hgt, unsigned elem) {
  if (!p || !pitch) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  uint64_t out[2] = {};
  CUresult r = client().call(FnId::cuMemAllocPitch_v2, {w, hgt, elem}, out, 2);
  if (r == CUDA_SUCCESS) client().addDeviceAllocation(out[0], out[1] * hgt, currentContext());
  *p = out[0];
  *pitch = out[1];
  return r;
}

CUresult tf_rs_cuMemFree_v2(CUdeviceptr p) {
  TF_READY();
  CUdeviceptr base = 0;
  Client::Allocation a{};
  bool managed = client().findDevice(p, &base, &a) && base == p && a.kind == Client::Memory::Managed;
  if (client().findDevice(p, &base, &a) && a.kind == Client::Memory::HostMirror)
    return CUDA_ERROR_INVALID_VALUE; // pinned memory is freed with cuMemFreeHost
  CUresult r = client().call(FnId::cuMemFree_v2, {p});
  if (r == CUDA_SUCCESS) {
    forgetMapping(p);
    client().removeDeviceAllocation(p);
    if (managed) {
      client().mirrors().remove(p);
      munmap(h<void*>(p), pageRound(a.size));
    }
  }
  return r;
}

// Managed memory: the worker allocates it (its address is the driver's); the stub maps host
// memory at the same address: the worker's own pages where it can share them
// (shared_managed.h), else its own, and the two are kept coherent as mirrors.
CUresult tf_rs_cuMemAllocManaged(CUdeviceptr* p, size_t size, unsigned flags) {
  if (!p || !size) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  Client& c = client();
  std::vector<CUdeviceptr> taken; // addresses this process already uses: tried again
  CUresult r = CUDA_ERROR_OUT_OF_MEMORY;
  CUdeviceptr got = 0;
  for (int attempt = 0; attempt < 8; ++attempt) {
    uint64_t out = 0;
    r = c.call(FnId::cuMemAllocManaged, {size, flags}, &out, 1);
    if (r != CUDA_SUCCESS) break;
    void* m = mmap(h<void*>(out), pageRound(size), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    ManagedSharing sharing = m == h<void*>(out) ? shareManaged(out, size) : ManagedSharing::Mirror;
    if (m == h<void*>(out) && (sharing == ManagedSharing::Shared ||
                               (sharing == ManagedSharing::Mirror && c.mirrors().add(out, size)))) {
      got = out;
      break;
    }
    if (m != MAP_FAILED) munmap(m, pageRound(size));
    taken.push_back(out);
    r = CUDA_ERROR_OUT_OF_MEMORY;
    if (sharing == ManagedSharing::Failed) break; // out of mappings: another try fails the same way
  }
  for (CUdeviceptr t : taken) c.call(FnId::cuMemFree_v2, {t});
  if (r != CUDA_SUCCESS) return r;
  c.addDeviceAllocation(got, size, currentContext(), Client::Memory::Managed);
  *p = got;
  return CUDA_SUCCESS;
}

} // extern "C"

namespace {
CUresult allocAsync(FnId fn, CUdeviceptr* p, size_t size, CUstream s) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  perThreadCall(fn, s);
  uint64_t out = 0;
  CUresult r = client().call(fn, {size, u(s)}, &out, 1);
  if (r == CUDA_SUCCESS) client().addDeviceAllocation(out, size, currentContext());
  *p = out;
  return r;
}
} // namespace

extern "C" {
CUresult tf_rs_cuMemAllocAsync(CUdeviceptr* p, size_t n, CUstream s) { return allocAsync(FnId::cuMemAllocAsync, p, n, s); }
CUresult tf_rs_cuMemAllocAsync_ptsz(CUdeviceptr* p, size_t n, CUstream s) { return allocAsync(FnId::cuMemAllocAsync_ptsz, p, n, s); }

} // extern "C"

namespace {
CUresult freeAsync(FnId fn, CUdeviceptr p, CUstream s) {
  TF_READY();
  if (!isDevice(p)) return CUDA_ERROR_INVALID_VALUE;
  perThreadCall(fn, s);
  forgetMapping(p);
  client().removeDeviceAllocation(p);
  return client().post(fn, {p, u(s)});
}
} // namespace

extern "C" {
CUresult tf_rs_cuMemFreeAsync(CUdeviceptr p, CUstream s) { return freeAsync(FnId::cuMemFreeAsync, p, s); }
CUresult tf_rs_cuMemFreeAsync_ptsz(CUdeviceptr p, CUstream s) { return freeAsync(FnId::cuMemFreeAsync_ptsz, p, s); }

CUresult tf_rs_cuMemGetAddressRange_v2(CUdeviceptr* base, size_t* size, CUdeviceptr p) {
  TF_READY();
  CUdeviceptr b = 0;
  Client::Allocation a{};
  if (!client().findDevice(p, &b, &a)) return CUDA_ERROR_NOT_FOUND;
  if (base) *base = b;
  if (size) *size = a.size;
  return CUDA_SUCCESS;
}

// ---- memory pools ----------------------------------------------------------------------------
CUresult tf_rs_cuDeviceGetDefaultMemPool(CUmemoryPool* pool, CUdevice dev) {
  if (!pool) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  uint64_t out = 0;
  CUresult r = client().call(FnId::cuDeviceGetDefaultMemPool, {static_cast<uint64_t>(dev)}, &out, 1);
  *pool = h<CUmemoryPool>(out);
  return r;
}
CUresult tf_rs_cuDeviceGetMemPool(CUmemoryPool* pool, CUdevice dev) {
  return tf_rs_cuDeviceGetDefaultMemPool(pool, dev); // the stub never changes the device's pool
}
} // extern "C"

namespace {
bool intPoolAttr(CUmemPool_attribute a) {
  return a == CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES ||
         a == CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC ||
         a == CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES;
}
} // namespace

extern "C" {
CUresult tf_rs_cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void* value) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  uint64_t out = 0;
  CUresult r = client().call(FnId::cuMemPoolGetAttribute, {u(pool), static_cast<uint64_t>(attr), 0}, &out, 1);
  if (r != CUDA_SUCCESS) return r;
  if (intPoolAttr(attr)) *static_cast<int*>(value) = static_cast<int>(out);
  else *static_cast<cuuint64_t*>(value) = out;
  return CUDA_SUCCESS;
}
CUresult tf_rs_cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void* value) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  uint64_t v = intPoolAttr(attr) ? static_cast<uint64_t>(*static_cast<int*>(value))
                                 : *static_cast<cuuint64_t*>(value);
  return client().call(FnId::cuMemPoolSetAttribute, {u(pool), static_cast<uint64_t>(attr), v});
}
} // extern "C"

namespace {
CUresult allocFromPool(FnId fn, CUdeviceptr* p, size_t size, CUmemoryPool pool, CUstream s) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  perThreadCall(fn, s);
  uint64_t out = 0;
  CUresult r = client().call(fn, {size, u(pool), u(s)}, &out, 1);
  if (r == CUDA_SUCCESS) client().addDeviceAllocation(out, size, currentContext());
  *p = out;
  return r;
}
} // namespace

extern "C" {
CUresult tf_rs_cuMemAllocFromPoolAsync(CUdeviceptr* p, size_t n, CUmemoryPool pool, CUstream s) {
  return allocFromPool(FnId::cuMemAllocFromPoolAsync, p, n, pool, s);
}
CUresult tf_rs_cuMemAllocFromPoolAsync_ptsz(CUdeviceptr* p, size_t n, CUmemoryPool pool, CUstream s) {
  return allocFromPool(FnId::cuMemAllocFromPoolAsync_ptsz, p, n, pool, s);
}

// ---- virtual memory management -------------------------------------------------------------
CUresult tf_rs_cuMemGetAllocationGranularity(size_t* g, const CUmemAllocationProp* prop,
                                             CUmemAllocationGranularity_flags option) {
  if (!g || !prop) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  uint64_t out = 0;
  CUresult r = client().call(FnId::cuMemGetAllocationGranularity, {static_cast<uint64_t>(option)},
                             &out, 1, prop, sizeof(*prop));
  *g = out;
  return r;
}
CUresult tf_rs_cuMemCreate(CUmemGenericAllocationHandle* hdl, size_t size,
                           const CUmemAllocationProp* prop, unsigned long long flags) {
  if (!hdl || !prop) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  uint64_t out = 0;
  CUresult r = client().call(FnId::cuMemCreate, {size, flags}, &out, 1, prop, sizeof(*prop));
  *hdl = out;
  return r;
}
CUresult tf_rs_cuMemRelease(CUmemGenericAllocationHandle hdl) {
  TF_READY();
  return client().call(FnId::cuMemRelease, {hdl});
}
CUresult tf_rs_cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp* prop,
                                                      CUmemGenericAllocationHandle hdl) {
  if (!prop) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  std::string blob;
  CUresult r = client().call(static_cast<uint32_t>(FnId::cuMemGetAllocationPropertiesFromHandle),
                             {hdl}, nullptr, 0, nullptr, 0, nullptr, 0, nullptr, &blob);
  if (r == CUDA_SUCCESS && blob.size() == sizeof(*prop)) std::memcpy(prop, blob.data(), sizeof(*prop));
  return r;
}
CUresult tf_rs_cuMemAddressReserve(CUdeviceptr* va, size_t size, size_t align, CUdeviceptr addr,
                                   unsigned long long flags) {
  if (!va) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  uint64_t out = 0;
  CUresult r = client().call(FnId::cuMemAddressReserve, {size, align, addr, flags}, &out, 1);
  *va = out;
  return r;
}
CUresult tf_rs_cuMemAddressFree(CUdeviceptr va, size_t size) {
  TF_READY();
  return client().call(FnId::cuMemAddressFree, {va, size});
}
CUresult tf_rs_cuMemMap(CUdeviceptr va, size_t size, size_t offset, CUmemGenericAllocationHandle hdl,
                        unsigned long long flags) {
  TF_READY();
  CUresult r = client().call(FnId::cuMemMap, {va, size, offset, hdl, flags});
  if (r == CUDA_SUCCESS) client().addDeviceAllocation(va, size, currentContext());
  return r;
}
CUresult tf_rs_cuMemUnmap(CUdeviceptr va, size_t size) {
  TF_READY();
  CUresult r = client().call(FnId::cuMemUnmap, {va, size});
  if (r == CUDA_SUCCESS) client().removeDeviceAllocation(va);
  return r;
}
CUresult tf_rs_cuMemSetAccess(CUdeviceptr va, size_t size, const CUmemAccessDesc* desc, size_t count) {
  if (!desc || !count || count > 64) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  return client().call(FnId::cuMemSetAccess, {va, size}, nullptr, 0, desc, count * sizeof(*desc));
}
CUresult tf_rs_cuMemRetainAllocationHandle(CUmemGenericAllocationHandle* hdl, void* addr) {
  if (!hdl) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  uint64_t out = 0;
  CUresult r = client().call(FnId::cuMemRetainAllocationHandle, {u(addr)}, &out, 1);
  *hdl = out;
  return r;
}

// ---- pinned host memory: host memory here, mirrored on the worker once the device uses it --
CUresult tf_rs_cuMemHostAlloc(void** p, size_t size, unsigned flags) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  Client& c = client();
  size_t bytes = pageRound(size);
  // Over shared memory the pages come from a memfd the worker maps at the same address.
  int fd = -1;
  if (c.sharesMemory()) {
    fd = memfd_create("tf-pinned", MFD_CLOEXEC);
    if (fd >= 0 && ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
      close(fd);
      fd = -1;
    }
  }
  void* mem = mapPinned(bytes, fd);
  if (!mem) {
    if (fd >= 0) close(fd);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  c.addHost(mem, size, flags);
  if (fd >= 0) {
    // If the worker cannot map it (address taken there), it stays ordinary pinned memory.
    if (c.shareHost(mem, bytes, fd) == CUDA_SUCCESS)
      c.addDeviceAllocation(u(mem), size, currentContext(), Client::Memory::HostShared);
    close(fd);
  }
  *p = mem;
  return c.dead() ? CUDA_ERROR_DEVICE_UNAVAILABLE : CUDA_SUCCESS;
}
CUresult tf_rs_cuMemAllocHost_v2(void** p, size_t size) { return tf_rs_cuMemHostAlloc(p, size, 0); }
CUresult tf_rs_cuMemFreeHost(void* p) {
  TF_READY();
  void* base = nullptr;
  uint64_t size = 0;
  unsigned flags = 0;
  if (!client().findHost(p, &base, &size, &flags) || base != p || (flags & 0x80000000u))
    return CUDA_ERROR_INVALID_VALUE;
  CUresult r = client().releaseHostMirror(p, false);
  client().removeHost(p);
  munmap(p, pageRound(size));
  return r;
}
CUresult tf_rs_cuMemHostRegister_v2(void* p, size_t size, unsigned flags) {
  if (!p || !size) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  if (client().findHost(p, nullptr, nullptr, nullptr)) return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
  client().addHost(p, size, flags | 0x80000000u); // high bit: registered, not ours to free
  return CUDA_SUCCESS;
}
CUresult tf_rs_cuMemHostUnregister(void* p) {
  TF_READY();
  void* base = nullptr;
  unsigned flags = 0;
  if (!client().findHost(p, &base, nullptr, &flags) || base != p || !(flags & 0x80000000u))
    return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
  CUresult r = client().releaseHostMirror(p, true); // the memory stays the caller's
  client().removeHost(p);
  return r;
}
CUresult tf_rs_cuMemHostGetDevicePointer_v2(CUdeviceptr* dp, void* p, unsigned flags) {
  if (!dp || flags) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  if (!client().findHost(p, nullptr, nullptr, nullptr)) return CUDA_ERROR_INVALID_VALUE;
  CUresult r = client().mirrorHost(p);
  if (r != CUDA_SUCCESS) return r;
  *dp = u(p); // unified addressing: the worker's mirror sits at the same address
  return CUDA_SUCCESS;
}

// ---- managed ranges ---------------------------------------------------------------------------
} // extern "C"

namespace {
bool isManaged(CUdeviceptr p, size_t n) {
  CUdeviceptr base = 0;
  Client::Allocation a{};
  return client().findDevice(p, &base, &a) && a.kind == Client::Memory::Managed &&
         n <= a.size - (p - base);
}
CUresult prefetch(FnId fn, CUdeviceptr p, size_t n, CUmemLocation loc, unsigned flags, CUstream s) {
  TF_READY();
  if (!client().streamOk(s)) return CUDA_ERROR_INVALID_HANDLE;
  if (!isManaged(p, n)) return CUDA_ERROR_INVALID_VALUE;
  perThreadCall(fn, s);
  return client().post(fn, {p, n, static_cast<uint64_t>(loc.type), static_cast<uint64_t>(loc.id), flags, u(s)});
}
} // namespace

extern "C" {
CUresult tf_rs_cuMemPrefetchAsync_v2(CUdeviceptr p, size_t n, CUmemLocation loc, unsigned flags, CUstream s) {
  return prefetch(FnId::cuMemPrefetchAsync_v2, p, n, loc, flags, s);
}
CUresult tf_rs_cuMemPrefetchAsync_v2_ptsz(CUdeviceptr p, size_t n, CUmemLocation loc, unsigned flags, CUstream s) {
  return prefetch(FnId::cuMemPrefetchAsync_v2_ptsz, p, n, loc, flags, s);
}
CUresult tf_rs_cuMemAdvise_v2(CUdeviceptr p, size_t n, CUmem_advise advice, CUmemLocation loc) {
  TF_READY();
  if (!isManaged(p, n)) return CUDA_ERROR_INVALID_VALUE;
  return client().call(FnId::cuMemAdvise_v2, {p, n, static_cast<uint64_t>(advice),
                                              static_cast<uint64_t>(loc.type), static_cast<uint64_t>(loc.id)});
}
CUresult tf_rs_cuMemRangeGetAttribute(void* data, size_t size, CUmem_range_attribute attr, CUdeviceptr p, size_t n) {
  if (!data || !size || size > 4096) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  if (!isManaged(p, n)) return CUDA_ERROR_INVALID_VALUE;
  std::string blob;
  CUresult r = client().call(static_cast<uint32_t>(FnId::cuMemRangeGetAttribute),
                             {size, static_cast<uint64_t>(attr), p, n}, nullptr, 0, nullptr, 0,
                             nullptr, 0, nullptr, &blob);
  if (r == CUDA_SUCCESS && blob.size() == size) std::memcpy(data, blob.data(), size);
  return r;
}
CUresult tf_rs_cuMemHostGetFlags(unsigned* flags, void* p) {
  if (!flags) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  unsigned f = 0;
  if (!client().findHost(p, nullptr, nullptr, &f)) return CUDA_ERROR_INVALID_VALUE;
  *flags = f & 0x7fffffffu;
  return CUDA_SUCCESS;
}

CUresult tf_rs_cuPointerGetAttribute(void* data, CUpointer_attribute attr, CUdeviceptr ptr) {
  if (!data) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  return pointerAttribute(data, attr, ptr);
}

CUresult tf_rs_cuPointerGetAttributes(unsigned n, CUpointer_attribute* attrs, void** data, CUdeviceptr ptr) {
  if (!attrs || !data) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  bool knownPtr = isDevice(ptr) || client().findHost(h<void*>(ptr), nullptr, nullptr, nullptr);
  for (unsigned i = 0; i < n; ++i) {
    if (!data[i]) continue;
    if (!knownPtr || pointerAttribute(data[i], attrs[i], ptr) != CUDA_SUCCESS)
      std::memset(data[i], 0, attrSize(attrs[i])); // unknown memory: zeros, as the driver does
  }
  return CUDA_SUCCESS;
}

// ---- copies -------------------------------------------------------------------------------
CUresult tf_rs_cuMemcpyHtoD_v2(CUdeviceptr d, const void* s, size_t n) { return htod(FnId::cuMemcpyHtoD_v2, d, s, n); }
CUresult tf_rs_cuMemcpyHtoD_v2_ptds(CUdeviceptr d, const void* s, size_t n) { return htod(FnId::cuMemcpyHtoD_v2_ptds, d, s, n); }
CUresult tf_rs_cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void* s, size_t n, CUstream st) { return htodAsync(FnId::cuMemcpyHtoDAsync_v2, d, s, n, st); }
CUresult tf_rs_cuMemcpyHtoDAsync_v2_ptsz(CUdeviceptr d, const void* s, size_t n, CUstream st) { return htodAsync(FnId::cuMemcpyHtoDAsync_v2_ptsz, d, s, n, st); }
CUresult tf_rs_cuMemcpyDtoH_v2(void* d, CUdeviceptr s, size_t n) { return dtoh(FnId::cuMemcpyDtoH_v2, d, s, n); }
CUresult tf_rs_cuMemcpyDtoH_v2_ptds(void* d, CUdeviceptr s, size_t n) { return dtoh(FnId::cuMemcpyDtoH_v2_ptds, d, s, n); }
CUresult tf_rs_cuMemcpyDtoHAsync_v2(void* d, CUdeviceptr s, size_t n, CUstream st) { return dtohAsync(FnId::cuMemcpyDtoHAsync_v2, d, s, n, st); }
CUresult tf_rs_cuMemcpyDtoHAsync_v2_ptsz(void* d, CUdeviceptr s, size_t n, CUstream st) { return dtohAsync(FnId::cuMemcpyDtoHAsync_v2_ptsz, d, s, n, st); }
CUresult tf_rs_cuMemcpyDtoD_v2(CUdeviceptr d, CUdeviceptr s, size_t n) { return dtod(FnId::cuMemcpyDtoD_v2, d, s, n); }
CUresult tf_rs_cuMemcpyDtoD_v2_ptds(CUdeviceptr d, CUdeviceptr s, size_t n) { return dtod(FnId::cuMemcpyDtoD_v2_ptds, d, s, n); }
CUresult tf_rs_cuMemcpyDtoDAsync_v2(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st) { return dtodAsync(FnId::cuMemcpyDtoDAsync_v2, d, s, n, st); }
CUresult tf_rs_cuMemcpyDtoDAsync_v2_ptsz(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st) { return dtodAsync(FnId::cuMemcpyDtoDAsync_v2_ptsz, d, s, n, st); }
CUresult tf_rs_cuMemcpy(CUdeviceptr d, CUdeviceptr s, size_t n) { return unified(false, false, d, s, n, nullptr); }
CUresult tf_rs_cuMemcpy_ptds(CUdeviceptr d, CUdeviceptr s, size_t n) { return unified(true, false, d, s, n, nullptr); }
CUresult tf_rs_cuMemcpyAsync(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st) { return unified(false, true, d, s, n, st); }
CUresult tf_rs_cuMemcpyAsync_ptsz(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st) { return unified(true, true, d, s, n, st); }

CUresult tf_rs_cuMemcpy3D_v2(const CUDA_MEMCPY3D* c) { return c ? copy3D(FnId::cuMemcpy3D_v2, false, *c, nullptr) : CUDA_ERROR_INVALID_VALUE; }
CUresult tf_rs_cuMemcpy3D_v2_ptds(const CUDA_MEMCPY3D* c) { return c ? copy3D(FnId::cuMemcpy3D_v2_ptds, false, *c, nullptr) : CUDA_ERROR_INVALID_VALUE; }
CUresult tf_rs_cuMemcpy3DAsync_v2(const CUDA_MEMCPY3D* c, CUstream s) { return c ? copy3D(FnId::cuMemcpy3DAsync_v2, true, *c, s) : CUDA_ERROR_INVALID_VALUE; }
CUresult tf_rs_cuMemcpy3DAsync_v2_ptsz(const CUDA_MEMCPY3D* c, CUstream s) { return c ? copy3D(FnId::cuMemcpy3DAsync_v2_ptsz, true, *c, s) : CUDA_ERROR_INVALID_VALUE; }
CUresult tf_rs_cuMemcpy2D_v2(const CUDA_MEMCPY2D* c) { return c ? copy3D(FnId::cuMemcpy3D_v2, false, from2D(c), nullptr) : CUDA_ERROR_INVALID_VALUE; }
CUresult tf_rs_cuMemcpy2D_v2_ptds(const CUDA_MEMCPY2D* c) { return c ? copy3D(FnId::cuMemcpy3D_v2_ptds, false, from2D(c), nullptr) : CUDA_ERROR_INVALID_VALUE; }
CUresult tf_rs_cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D* c) { return tf_rs_cuMemcpy2D_v2(c); }
CUresult tf_rs_cuMemcpy2DUnaligned_v2_ptds(const CUDA_MEMCPY2D* c) { return tf_rs_cuMemcpy2D_v2_ptds(c); }
CUresult tf_rs_cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D* c, CUstream s) { return c ? copy3D(FnId::cuMemcpy3DAsync_v2, true, from2D(c), s) : CUDA_ERROR_INVALID_VALUE; }
CUresult tf_rs_cuMemcpy2DAsync_v2_ptsz(const CUDA_MEMCPY2D* c, CUstream s) { return c ? copy3D(FnId::cuMemcpy3DAsync_v2_ptsz, true, from2D(c), s) : CUDA_ERROR_INVALID_VALUE; }

// ---- memsets: synchronous ones wait (they report bad pointers), async ones are posted -------
#define TF_MEMSET(sym, T)                                                                         \
  CUresult tf_rs_##sym(CUdeviceptr d, T v, size_t n) {                                            \
    TF_READY();                                                                                   \
    return client().call(plainOf(FnId::sym), {d, v, n});                                          \
  }
#define TF_MEMSET_ASYNC(sym, T)                                                                   \
  CUresult tf_rs_##sym(CUdeviceptr d, T v, size_t n, CUstream s) {                                \
    TF_READY();                                                                                   \
    if (!client().streamOk(s)) return CUDA_ERROR_INVALID_HANDLE;                                  \
    if (!isDevice(d)) return CUDA_ERROR_INVALID_VALUE;                                            \
    FnId fn = FnId::sym;                                                                          \
    perThreadCall(fn, s);                                                                         \
    return client().post(fn, {d, v, n, u(s)});                                                    \
  }
#define TF_MEMSET2D(sym, T)                                                                       \
  CUresult tf_rs_##sym(CUdeviceptr d, size_t pitch, T v, size_t w, size_t hgt) {                  \
    TF_READY();                                                                                   \
    return client().call(plainOf(FnId::sym), {d, pitch, v, w, hgt});                              \
  }
#define TF_MEMSET2D_ASYNC(sym, T)                                                                 \
  CUresult tf_rs_##sym(CUdeviceptr d, size_t pitch, T v, size_t w, size_t hgt, CUstream s) {      \
    TF_READY();                                                                                   \
    if (!client().streamOk(s)) return CUDA_ERROR_INVALID_HANDLE;                                  \
    if (!isDevice(d)) return CUDA_ERROR_INVALID_VALUE;                                            \
    FnId fn = FnId::sym;                                                                          \
    perThreadCall(fn, s);                                                                         \
    return client().post(fn, {d, pitch, v, w, hgt, u(s)});                                        \
  }
TF_MEMSET(cuMemsetD8_v2, unsigned char)
TF_MEMSET(cuMemsetD8_v2_ptds, unsigned char)
TF_MEMSET(cuMemsetD16_v2, unsigned short)
TF_MEMSET(cuMemsetD16_v2_ptds, unsigned short)
TF_MEMSET(cuMemsetD32_v2, unsigned int)
TF_MEMSET(cuMemsetD32_v2_ptds, unsigned int)
TF_MEMSET_ASYNC(cuMemsetD8Async, unsigned char)
TF_MEMSET_ASYNC(cuMemsetD8Async_ptsz, unsigned char)
TF_MEMSET_ASYNC(cuMemsetD16Async, unsigned short)
TF_MEMSET_ASYNC(cuMemsetD16Async_ptsz, unsigned short)
TF_MEMSET_ASYNC(cuMemsetD32Async, unsigned int)
TF_MEMSET_ASYNC(cuMemsetD32Async_ptsz, unsigned int)
TF_MEMSET2D(cuMemsetD2D8_v2, unsigned char)
TF_MEMSET2D(cuMemsetD2D8_v2_ptds, unsigned char)
TF_MEMSET2D(cuMemsetD2D16_v2, unsigned short)
TF_MEMSET2D(cuMemsetD2D16_v2_ptds, unsigned short)
TF_MEMSET2D(cuMemsetD2D32_v2, unsigned int)
TF_MEMSET2D(cuMemsetD2D32_v2_ptds, unsigned int)
TF_MEMSET2D_ASYNC(cuMemsetD2D8Async, unsigned char)
TF_MEMSET2D_ASYNC(cuMemsetD2D8Async_ptsz, unsigned char)
TF_MEMSET2D_ASYNC(cuMemsetD2D16Async, unsigned short)
TF_MEMSET2D_ASYNC(cuMemsetD2D16Async_ptsz, unsigned short)
TF_MEMSET2D_ASYNC(cuMemsetD2D32Async, unsigned int)
TF_MEMSET2D_ASYNC(cuMemsetD2D32Async_ptsz, unsigned int)

} // extern "C"
