// Copies in every direction (1D, 2D, 3D, peer; synchronous and asynchronous) and memsets; 1D
// copies out of VMM-mapped memory and zero memsets over it go through its memfd (vmm.h).
// Every device-side range is checked to lie inside one allocation before anything is queued:
// a copy that leaves its allocation fails with CUDA_ERROR_INVALID_VALUE, as the real driver's.
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "softgpu/driver/array.h"
#include "softgpu/driver/graph.h"
#include "softgpu/driver/stream.h"
#include "softgpu/driver/vmm.h"

using namespace tf::softgpu;

namespace {

// Where one side of a copy is. Pageable host memory (unknown to the driver) is `pageable`.
struct Side {
  uint8_t* host = nullptr;
  bool pageable = false;
};

// A range the driver knows (device, pinned, managed, registered), or pageable host memory when
// allowed. Device addresses outside every allocation are always an error.
CUresult resolve(uint64_t addr, uint64_t len, bool allowPageable, Side* out) {
  if (addr == 0) return CUDA_ERROR_INVALID_VALUE;
  if (len == 0) len = 1;
  if (uint8_t* h = addressSpace().hostOf(addr, len)) {
    out->host = h;
    out->pageable = false;
    return CUDA_SUCCESS;
  }
  if (addressSpace().isDeviceWindow(addr) || addressSpace().find(addr)) return CUDA_ERROR_INVALID_VALUE;
  if (!allowPageable) return CUDA_ERROR_INVALID_VALUE;
  out->host = reinterpret_cast<uint8_t*>(addr);
  out->pageable = true;
  return CUDA_SUCCESS;
}

struct Endpoint3D {
  CUmemorytype type;
  uint64_t address; // host pointer or device pointer, per type
  size_t x, y, z, pitch, height;
  CUarray array = nullptr; // CU_MEMORYTYPE_ARRAY
};

// An array side becomes the device memory behind the array, once the copied box (x in bytes)
// is checked to lie inside it.
CUresult arrayToDevice(Endpoint3D* e, size_t width, size_t height, size_t depth) {
  if (e->type != CU_MEMORYTYPE_ARRAY) return CUDA_SUCCESS;
  Array* a = arrayOf(e->array);
  if (!a) return CUDA_ERROR_INVALID_VALUE;
  if (e->x > a->pitch || width > a->pitch - e->x || e->y > a->rows || height > a->rows - e->y ||
      e->z > a->slices || depth > a->slices - e->z || e->x % a->elementBytes != 0)
    return CUDA_ERROR_INVALID_VALUE;
  e->type = CU_MEMORYTYPE_DEVICE;
  e->address = a->base;
  e->pitch = a->pitch;
  e->height = a->rows;
  e->array = nullptr;
  return CUDA_SUCCESS;
}

// A captured copy's node parameters.
DescribeNode describeCopy(const Endpoint3D& d, const Endpoint3D& s, size_t width, size_t height,
                          size_t depth) {
  return [=](NodeParams* p) {
    CUDA_MEMCPY3D& m = p->memcpy;
    m = {};
    m.srcMemoryType = s.type;
    m.srcXInBytes = s.x, m.srcY = s.y, m.srcZ = s.z, m.srcPitch = s.pitch, m.srcHeight = s.height;
    if (s.type == CU_MEMORYTYPE_HOST) m.srcHost = reinterpret_cast<const void*>(s.address);
    else m.srcDevice = s.address;
    m.dstMemoryType = d.type;
    m.dstXInBytes = d.x, m.dstY = d.y, m.dstZ = d.z, m.dstPitch = d.pitch, m.dstHeight = d.height;
    if (d.type == CU_MEMORYTYPE_HOST) m.dstHost = reinterpret_cast<void*>(d.address);
    else m.dstDevice = d.address;
    m.WidthInBytes = width, m.Height = height, m.Depth = depth;
  };
}

// Queues a copy; synchronous calls and copies to pageable memory wait for it. A copy out of
// VMM-mapped memory (`from`, the source's device address) reads it through its memfd (vmm.h).
CUresult copy(Context* c, CUstream stream, Side dst, Side src, uint64_t from, size_t n, bool async,
              const DescribeNode* describe) {
  Stream* s;
  TF_TRY(resolveStream(stream, c, &s));
  if (n == 0) return CUDA_SUCCESS;
  if (async && src.pageable) {
    // The caller may reuse a pageable source as soon as we return: take a copy now.
    auto staged = std::make_shared<std::vector<uint8_t>>(src.host, src.host + n);
    return submit(s, OpKind::Memcpy, [dst, staged, n] {
      memcpy(dst.host, staged->data(), n);
      return CUDA_SUCCESS;
    }, nullptr, {}, describe);
  }
  auto work = [dst, src, from, n] {
    if (auto r = copyFromVmm(dst.host, from, n)) return *r;
    memmove(dst.host, src.host, n);
    return CUDA_SUCCESS;
  };
  if (async && !dst.pageable) return submit(s, OpKind::Memcpy, work, nullptr, {}, describe);
  return submitAndWait(s, OpKind::Memcpy, work);
}

CUresult copy1D(uint64_t dst, uint64_t src, size_t n, CUstream stream, bool async,
                bool dstMayBePageable, bool srcMayBePageable) {
  Context* c;
  TF_TRY(requireContext(&c));
  Side d, s;
  TF_TRY(resolve(dst, n, dstMayBePageable, &d));
  TF_TRY(resolve(src, n, srcMayBePageable, &s));
  const DescribeNode describe = describeCopy({CU_MEMORYTYPE_UNIFIED, dst, 0, 0, 0, 0, 0},
                                             {CU_MEMORYTYPE_UNIFIED, src, 0, 0, 0, 0, 0}, n, 1, 1);
  return copy(c, stream, d, s, s.pageable ? 0 : src, n, async, &describe);
}

// ---- 2D / 3D ------------------------------------------------------------------------------


CUresult resolve3D(const Endpoint3D& e, size_t width, size_t height, size_t depth, Side* out,
                   uint64_t* firstByte) {
  if (e.pitch && width > e.pitch) return CUDA_ERROR_INVALID_VALUE;
  const size_t pitch = e.pitch ? e.pitch : width;
  const size_t sliceRows = e.height ? e.height : height;
  if (depth > 1 && sliceRows < e.y + height) return CUDA_ERROR_INVALID_VALUE;
  const uint64_t first = e.address + (e.z * sliceRows + e.y) * pitch + e.x;
  const uint64_t span = ((depth - 1) * sliceRows + (height - 1)) * pitch + width;
  bool pageableOk = false;
  switch (e.type) {
  case CU_MEMORYTYPE_HOST: pageableOk = true; break;
  case CU_MEMORYTYPE_DEVICE: break;
  case CU_MEMORYTYPE_UNIFIED: pageableOk = true; break;
  case CU_MEMORYTYPE_ARRAY: return CUDA_ERROR_INVALID_VALUE; // arrayToDevice comes first
  default: return CUDA_ERROR_INVALID_VALUE;
  }
  TF_TRY(resolve(first, span, pageableOk, out));
  *firstByte = first;
  return CUDA_SUCCESS;
}

// The work of a 3D copy, its sides resolved now; `pageable`: one side is pageable host memory.
CUresult copy3DWork(Endpoint3D dstE, Endpoint3D srcE, size_t width, size_t height,
                    size_t depth, std::function<CUresult()>* work, bool* pageable) {
  TF_TRY(arrayToDevice(&dstE, width, height, depth));
  TF_TRY(arrayToDevice(&srcE, width, height, depth));
  Side d, s;
  uint64_t d0, s0;
  TF_TRY(resolve3D(dstE, width, height, depth, &d, &d0));
  TF_TRY(resolve3D(srcE, width, height, depth, &s, &s0));
  const size_t dp = dstE.pitch ? dstE.pitch : width, sp = srcE.pitch ? srcE.pitch : width;
  const size_t dh = dstE.height ? dstE.height : height, sh = srcE.height ? srcE.height : height;
  const uint64_t dSpan = ((depth - 1) * dh + (height - 1)) * dp + width;
  const uint64_t sSpan = ((depth - 1) * sh + (height - 1)) * sp + width;
  *work = [=] {
    // Memory the driver knows is looked up again when the copy runs (a graph's node runs long
    // after it was made): freed since, it is an illegal address, as on a GPU, not a fault in
    // this process.
    uint8_t* dh0 = d.pageable ? d.host : addressSpace().hostOf(d0, dSpan);
    uint8_t* sh0 = s.pageable ? s.host : addressSpace().hostOf(s0, sSpan);
    if (!dh0 || !sh0) return CUDA_ERROR_ILLEGAL_ADDRESS;
    for (size_t z = 0; z < depth; ++z)
      for (size_t y = 0; y < height; ++y)
        memmove(dh0 + (z * dh + y) * dp, sh0 + (z * sh + y) * sp, width);
    return CUDA_SUCCESS;
  };
  *pageable = s.pageable || d.pageable;
  return CUDA_SUCCESS;
}

CUresult copy3D(Endpoint3D dstE, Endpoint3D srcE, size_t width, size_t height,
                size_t depth, CUstream stream, bool async) {
  Context* c;
  TF_TRY(requireContext(&c));
  if (width == 0 || height == 0 || depth == 0) return CUDA_SUCCESS;
  // Captured, an array copy is the device copy it amounts to.
  TF_TRY(arrayToDevice(&dstE, width, height, depth));
  TF_TRY(arrayToDevice(&srcE, width, height, depth));
  std::function<CUresult()> work;
  bool pageable = false;
  TF_TRY(copy3DWork(dstE, srcE, width, height, depth, &work, &pageable));
  Stream* st;
  TF_TRY(resolveStream(stream, c, &st));
  const DescribeNode describe = describeCopy(dstE, srcE, width, height, depth);
  if (async && !pageable) return submit(st, OpKind::Memcpy, work, nullptr, {}, &describe);
  return submitAndWait(st, OpKind::Memcpy, work);
}

Endpoint3D srcOf(const CUDA_MEMCPY3D& p) {
  return {p.srcMemoryType,
          p.srcMemoryType == CU_MEMORYTYPE_HOST ? reinterpret_cast<uint64_t>(p.srcHost) : p.srcDevice,
          p.srcXInBytes, p.srcY, p.srcZ, p.srcPitch, p.srcHeight, p.srcArray};
}
Endpoint3D dstOf(const CUDA_MEMCPY3D& p) {
  return {p.dstMemoryType,
          p.dstMemoryType == CU_MEMORYTYPE_HOST ? reinterpret_cast<uint64_t>(p.dstHost) : p.dstDevice,
          p.dstXInBytes, p.dstY, p.dstZ, p.dstPitch, p.dstHeight, p.dstArray};
}

CUresult copy2D(const CUDA_MEMCPY2D* p, CUstream stream, bool async) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  Endpoint3D s{p->srcMemoryType,
               p->srcMemoryType == CU_MEMORYTYPE_HOST ? reinterpret_cast<uint64_t>(p->srcHost) : p->srcDevice,
               p->srcXInBytes, p->srcY, 0, p->srcPitch, 0, p->srcArray};
  Endpoint3D d{p->dstMemoryType,
               p->dstMemoryType == CU_MEMORYTYPE_HOST ? reinterpret_cast<uint64_t>(p->dstHost) : p->dstDevice,
               p->dstXInBytes, p->dstY, 0, p->dstPitch, 0, p->dstArray};
  return copy3D(d, s, p->WidthInBytes, p->Height, 1, stream, async);
}

CUresult copy3DPeer(const CUDA_MEMCPY3D_PEER* p, CUstream stream, bool async) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  Endpoint3D s{p->srcMemoryType,
               p->srcMemoryType == CU_MEMORYTYPE_HOST ? reinterpret_cast<uint64_t>(p->srcHost) : p->srcDevice,
               p->srcXInBytes, p->srcY, p->srcZ, p->srcPitch, p->srcHeight, p->srcArray};
  Endpoint3D d{p->dstMemoryType,
               p->dstMemoryType == CU_MEMORYTYPE_HOST ? reinterpret_cast<uint64_t>(p->dstHost) : p->dstDevice,
               p->dstXInBytes, p->dstY, p->dstZ, p->dstPitch, p->dstHeight, p->dstArray};
  return copy3D(d, s, p->WidthInBytes, p->Height, p->Depth, stream, async);
}

// ---- memset -------------------------------------------------------------------------------

template <typename T>
CUresult memset2D(uint64_t dst, size_t pitchBytes, T value, size_t width, size_t height,
                  CUstream stream, bool async) {
  Context* c;
  TF_TRY(requireContext(&c));
  if (width == 0 || height == 0) return CUDA_SUCCESS;
  if (dst % sizeof(T)) return CUDA_ERROR_INVALID_VALUE;
  const size_t rowBytes = width * sizeof(T);
  const size_t pitch = pitchBytes ? pitchBytes : rowBytes;
  if (pitch < rowBytes) return CUDA_ERROR_INVALID_VALUE;
  Side d;
  TF_TRY(resolve(dst, (height - 1) * pitch + rowBytes, false, &d));
  Stream* s;
  TF_TRY(resolveStream(stream, c, &s));
  const bool clears = value == 0 && (height == 1 || pitch == rowBytes); // one contiguous range
  auto work = [d, dst, clears, pitch, value, width, height] {
    if (clears)
      if (auto r = zeroVmm(dst, height * width * sizeof(T))) return *r;
    for (size_t y = 0; y < height; ++y) {
      T* row = reinterpret_cast<T*>(d.host + y * pitch);
      if constexpr (sizeof(T) == 1) memset(row, value, width);
      else std::fill(row, row + width, value);
    }
    return CUDA_SUCCESS;
  };
  const DescribeNode describe = [&](NodeParams* p) {
    p->memset = {dst, pitch, static_cast<unsigned>(value), sizeof(T), width, height};
  };
  return async ? submit(s, OpKind::Memset, work, nullptr, {}, &describe)
               : submitAndWait(s, OpKind::Memset, work);
}

} // namespace

CUresult tf::softgpu::memcpy3DWork(const CUDA_MEMCPY3D& p, std::function<CUresult()>* work) {
  if (p.WidthInBytes == 0 || p.Height == 0 || p.Depth == 0) return CUDA_ERROR_INVALID_VALUE;
  bool pageable = false;
  return copy3DWork(dstOf(p), srcOf(p), p.WidthInBytes, p.Height, p.Depth, work, &pageable);
}

extern "C" {

CUresult tf_sg_cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t n) {
  return copy1D(dst, src, n, nullptr, false, true, true);
}
CUresult tf_sg_cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
  return copy1D(dst, src, n, s, true, true, true);
}
CUresult tf_sg_cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t n) {
  return copy1D(dst, reinterpret_cast<uint64_t>(src), n, nullptr, false, false, true);
}
CUresult tf_sg_cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t n) {
  return copy1D(reinterpret_cast<uint64_t>(dst), src, n, nullptr, false, true, false);
}
CUresult tf_sg_cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) {
  return copy1D(dst, src, n, nullptr, false, false, false);
}
CUresult tf_sg_cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t n, CUstream s) {
  return copy1D(dst, reinterpret_cast<uint64_t>(src), n, s, true, false, true);
}
CUresult tf_sg_cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t n, CUstream s) {
  return copy1D(reinterpret_cast<uint64_t>(dst), src, n, s, true, true, false);
}
CUresult tf_sg_cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
  return copy1D(dst, src, n, s, true, false, false);
}
CUresult tf_sg_cuMemcpyPeer(CUdeviceptr dst, CUcontext dctx, CUdeviceptr src, CUcontext sctx, size_t n) {
  TF_TRY(checkInitialized());
  if (!registryOf<Context>().find(dctx) || !registryOf<Context>().find(sctx))
    return CUDA_ERROR_INVALID_CONTEXT;
  return copy1D(dst, src, n, nullptr, false, false, false);
}
CUresult tf_sg_cuMemcpyPeerAsync(CUdeviceptr dst, CUcontext dctx, CUdeviceptr src, CUcontext sctx,
                                 size_t n, CUstream s) {
  TF_TRY(checkInitialized());
  if (!registryOf<Context>().find(dctx) || !registryOf<Context>().find(sctx))
    return CUDA_ERROR_INVALID_CONTEXT;
  return copy1D(dst, src, n, s, true, false, false);
}
CUresult tf_sg_cuMemcpy2D_v2(const CUDA_MEMCPY2D* p) { return copy2D(p, nullptr, false); }
CUresult tf_sg_cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D* p) { return copy2D(p, nullptr, false); }
CUresult tf_sg_cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D* p, CUstream s) { return copy2D(p, s, true); }
CUresult tf_sg_cuMemcpy3D_v2(const CUDA_MEMCPY3D* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  return copy3D(dstOf(*p), srcOf(*p), p->WidthInBytes, p->Height, p->Depth, nullptr, false);
}
CUresult tf_sg_cuMemcpy3DAsync_v2(const CUDA_MEMCPY3D* p, CUstream s) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  return copy3D(dstOf(*p), srcOf(*p), p->WidthInBytes, p->Height, p->Depth, s, true);
}
CUresult tf_sg_cuMemcpy3DPeer(const CUDA_MEMCPY3D_PEER* p) { return copy3DPeer(p, nullptr, false); }
CUresult tf_sg_cuMemcpy3DPeerAsync(const CUDA_MEMCPY3D_PEER* p, CUstream s) { return copy3DPeer(p, s, true); }

CUresult tf_sg_cuMemsetD8_v2(CUdeviceptr d, unsigned char v, size_t n) {
  return memset2D<uint8_t>(d, 0, v, n, 1, nullptr, false);
}
CUresult tf_sg_cuMemsetD16_v2(CUdeviceptr d, unsigned short v, size_t n) {
  return memset2D<uint16_t>(d, 0, v, n, 1, nullptr, false);
}
CUresult tf_sg_cuMemsetD32_v2(CUdeviceptr d, unsigned int v, size_t n) {
  return memset2D<uint32_t>(d, 0, v, n, 1, nullptr, false);
}
CUresult tf_sg_cuMemsetD2D8_v2(CUdeviceptr d, size_t p, unsigned char v, size_t w, size_t h) {
  return memset2D<uint8_t>(d, p, v, w, h, nullptr, false);
}
CUresult tf_sg_cuMemsetD2D16_v2(CUdeviceptr d, size_t p, unsigned short v, size_t w, size_t h) {
  return memset2D<uint16_t>(d, p, v, w, h, nullptr, false);
}
CUresult tf_sg_cuMemsetD2D32_v2(CUdeviceptr d, size_t p, unsigned int v, size_t w, size_t h) {
  return memset2D<uint32_t>(d, p, v, w, h, nullptr, false);
}
CUresult tf_sg_cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, CUstream s) {
  return memset2D<uint8_t>(d, 0, v, n, 1, s, true);
}
CUresult tf_sg_cuMemsetD16Async(CUdeviceptr d, unsigned short v, size_t n, CUstream s) {
  return memset2D<uint16_t>(d, 0, v, n, 1, s, true);
}
CUresult tf_sg_cuMemsetD32Async(CUdeviceptr d, unsigned int v, size_t n, CUstream s) {
  return memset2D<uint32_t>(d, 0, v, n, 1, s, true);
}
CUresult tf_sg_cuMemsetD2D8Async(CUdeviceptr d, size_t p, unsigned char v, size_t w, size_t h, CUstream s) {
  return memset2D<uint8_t>(d, p, v, w, h, s, true);
}
CUresult tf_sg_cuMemsetD2D16Async(CUdeviceptr d, size_t p, unsigned short v, size_t w, size_t h, CUstream s) {
  return memset2D<uint16_t>(d, p, v, w, h, s, true);
}
CUresult tf_sg_cuMemsetD2D32Async(CUdeviceptr d, size_t p, unsigned int v, size_t w, size_t h, CUstream s) {
  return memset2D<uint32_t>(d, p, v, w, h, s, true);
}

} // extern "C"
