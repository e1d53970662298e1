// Copies and memsets on the worker: each side must lie in the client's own memory. Host bytes
// of async host-to-device copies are staged until the context synchronises (flow control:
// capped), so cuCtxSynchronize is here too. Device-to-host replies stream from the device.
#include <algorithm>
#include <cstring>
#include <memory>

#include "remoting/worker/calls.h"

namespace tf::remoting {

namespace {

// Async host-to-device staging kept until the context synchronises (flow control: capped).
constexpr uint64_t kMaxPendingStaging = uint64_t(256) << 20;
struct Pending {
  std::vector<std::shared_ptr<void>> buffers;
  uint64_t bytes = 0;
};
thread_local Pending pending; // one session per thread

// Sizes from the wire multiply and add without wrapping; a result that would wrap is "too
// big", which no allocation contains.
constexpr uint64_t kTooBig = ~uint64_t(0);
uint64_t mul(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_mul_overflow(a, b, &r) ? kTooBig : r;
}
uint64_t add(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_add_overflow(a, b, &r) ? kTooBig : r;
}

bool perThread(uint32_t fn) { return cuda::catalogEntry(static_cast<int>(fn)).perThread; }

CUresult syncStream(Session& s, uint64_t stream, bool pt) {
  auto f = pt ? s.d().fn<decltype(&::cuStreamSynchronize)>(FnId::cuStreamSynchronize_ptsz)
              : s.d().fn<decltype(&::cuStreamSynchronize)>(FnId::cuStreamSynchronize);
  return f ? f(H(CUstream)(stream)) : CUDA_ERROR_NOT_SUPPORTED;
}

// Whether a stream is being captured into a graph. Copies the worker stages in its own buffers
// must not be captured: a graph would read them after they are gone.
bool capturing(Session& s, uint64_t stream, bool pt) {
  auto f = pt ? s.d().fn<decltype(&::cuStreamIsCapturing)>(FnId::cuStreamIsCapturing_ptsz)
              : s.d().fn<decltype(&::cuStreamIsCapturing)>(FnId::cuStreamIsCapturing);
  CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
  return f && f(H(CUstream)(stream), &st) == CUDA_SUCCESS && st != CU_STREAM_CAPTURE_STATUS_NONE;
}

void dropStaging(Session& s) {
  if (pending.buffers.empty()) return;
  auto sync = s.d().fn<decltype(&::cuCtxSynchronize)>(FnId::cuCtxSynchronize);
  if (sync) sync();
  pending.buffers.clear();
  pending.bytes = 0;
}

// Device-to-host replies: the first chunk is copied here, so the call's own result (a sticky
// error from an earlier kernel, say) is what the reply carries; the rest streams afterwards.
CUresult dtohReply(Session& s, CUdeviceptr src, uint64_t n, CallOut& out) {
  DRV_AT(copy, cuMemcpyDtoH_v2, cuMemcpyDtoH_v2);
  size_t first = static_cast<size_t>(std::min<uint64_t>(n, kChunk));
  out.bulk.resize(first);
  CUresult r = copy(out.bulk.data(), src, first);
  if (r != CUDA_SUCCESS) return r;
  out.dtohSrc = src + first;
  out.dtohLen = n - first;
  return CUDA_SUCCESS;
}

// cuMemcpy3D(_Async): host sides travel packed (pitch = width, height = height).
CUresult memcpy3D(Session& s, CallIn& in, CallOut& out, bool async) {
  if (in.a.blob.size() != sizeof(CUDA_MEMCPY3D)) return CUDA_ERROR_INVALID_VALUE;
  CUDA_MEMCPY3D c;
  std::memcpy(&c, in.a.blob.data(), sizeof(c));
  for (CUmemorytype t : {c.srcMemoryType, c.dstMemoryType})
    if (t != CU_MEMORYTYPE_HOST && t != CU_MEMORYTYPE_DEVICE && t != CU_MEMORYTYPE_ARRAY) return CUDA_ERROR_NOT_SUPPORTED;
  if (c.srcMemoryType == CU_MEMORYTYPE_ARRAY) OWN_ARRAY(c.srcArray);
  if (c.dstMemoryType == CU_MEMORYTYPE_ARRAY) OWN_ARRAY(c.dstArray);
  if (c.srcMemoryType == CU_MEMORYTYPE_HOST && c.dstMemoryType == CU_MEMORYTYPE_HOST)
    return CUDA_ERROR_INVALID_VALUE;
  uint64_t packed = uint64_t(c.WidthInBytes) * c.Height * c.Depth;
  if (c.WidthInBytes > (1ull << 32) || c.Height > (1u << 24) || c.Depth > (1u << 24) ||
      packed > kMaxImage)
    return CUDA_ERROR_INVALID_VALUE;
  if (checkSpan(s, c.srcMemoryType, c.srcDevice, c.srcXInBytes, c.srcY, c.srcZ, c.srcPitch,
                c.srcHeight, c.WidthInBytes, c.Height, c.Depth) ||
      checkSpan(s, c.dstMemoryType, c.dstDevice, c.dstXInBytes, c.dstY, c.dstZ, c.dstPitch,
                c.dstHeight, c.WidthInBytes, c.Height, c.Depth))
    return CUDA_ERROR_INVALID_VALUE;
  std::vector<uint8_t> buf;
  if (c.srcMemoryType == CU_MEMORYTYPE_HOST) {
    if (in.bulkLen != packed) return CUDA_ERROR_INVALID_VALUE;
    buf.resize(packed);
    if (!s.readBulk(buf.data(), packed).isOk()) return CUDA_ERROR_INVALID_VALUE;
    c.srcHost = buf.data();
    c.srcXInBytes = c.srcY = c.srcZ = 0;
    c.srcPitch = c.WidthInBytes;
    c.srcHeight = c.Height;
  }
  if (c.dstMemoryType == CU_MEMORYTYPE_HOST) {
    buf.resize(packed);
    c.dstHost = buf.data();
    c.dstXInBytes = c.dstY = c.dstZ = 0;
    c.dstPitch = c.WidthInBytes;
    c.dstHeight = c.Height;
  }
  if (async) {
    uint64_t stream = in.a.count ? A(0) : 0;
    OWN_STREAM(stream);
    CUresult r = syncStream(s, stream, perThread(in.fn));
    if (r != CUDA_SUCCESS) return r;
  }
  DRV_AT(copy, cuMemcpy3D_v2, cuMemcpy3D_v2);
  CUresult r = copy(&c);
  if (r == CUDA_SUCCESS && c.dstMemoryType == CU_MEMORYTYPE_HOST) out.bulk = std::move(buf);
  return r;
}

} // namespace

CUresult checkSpan(Session& s, CUmemorytype type, CUdeviceptr addr, size_t x, size_t y, size_t z,
                   size_t pitch, size_t height, size_t w, size_t h, size_t d, bool hostByAddress) {
  if (type != CU_MEMORYTYPE_DEVICE && !(type == CU_MEMORYTYPE_HOST && hostByAddress))
    return CUDA_SUCCESS;
  if (!w || !h || !d) return CUDA_SUCCESS;
  if (pitch < w && (h > 1 || d > 1)) return CUDA_ERROR_INVALID_VALUE;
  uint64_t start = add(add(addr, x), mul(add(y, mul(z, height)), pitch));
  uint64_t span = add(mul(add(mul(d - 1, height), h - 1), pitch), w);
  if (start == kTooBig || span == kTooBig) return CUDA_ERROR_INVALID_VALUE;
  bool ok = type == CU_MEMORYTYPE_DEVICE ? s.allocationFor(start, span) != nullptr
                                         : s.hostRangeFor(start, span);
  return ok ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

// An async host-to-device copy from pinned memory that a host function earlier on the stream
// may still write: a host function on the stream fetches the bytes into staging when the
// stream gets there, then the copy runs from staging.
CUresult hostToDeviceAtStreamTime(Session& s, CallIn& in) {
  NEED(4);
  uint64_t dst = A(0), n = A(1), stream = A(2), token = A(3);
  DPTR(dst, n);
  OWN_STREAM(stream);
  if (n > kMaxImage) return CUDA_ERROR_INVALID_VALUE;
  if (capturing(s, stream, false)) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; // see above
  DRV_AT(hostFn, cuLaunchHostFunc, cuLaunchHostFunc);
  DRV_AT(copy, cuMemcpyHtoDAsync_v2, cuMemcpyHtoDAsync_v2);
  if (pending.bytes + n > kMaxPendingStaging) dropStaging(s);
  // Pinned staging: a driver may read pageable sources when the copy is queued, and these
  // bytes only arrive when the stream reaches the host function.
  DRV_AT(hostAlloc, cuMemAllocHost_v2, cuMemAllocHost_v2);
  DRV_AT(hostFree, cuMemFreeHost, cuMemFreeHost);
  void* raw = nullptr;
  CUresult ar = hostAlloc(&raw, std::max<uint64_t>(n, 1));
  if (ar != CUDA_SUCCESS) return ar;
  std::shared_ptr<void> buf(raw, [hostFree](void* p) { hostFree(p); });
  s.expectHostBytes(token, buf.get(), n);
  void* arg = s.hostFunctionArg(token);
  CUresult r = hostFn(H(CUstream)(stream), &Session::hostFunctionEntry, arg);
  if (r != CUDA_SUCCESS) {
    Session::dropHostFunctionArg(arg);
    return r;
  }
  r = copy(dst, buf.get(), n, H(CUstream)(stream));
  pending.bytes += n;
  pending.buffers.push_back(std::move(buf));
  return r;
}

// A context synchronisation also releases the staging of async copies.
TF_CALL(cuCtxSynchronize, cuCtxSynchronize_v2) {
  DRV_AT(sync, cuCtxSynchronize, cuCtxSynchronize);
  CUresult r = sync();
  pending.buffers.clear();
  pending.bytes = 0;
  return r;
}

// ---- copies ----------------------------------------------------------------------------
TF_CALL(cuMemcpyHtoD_v2, cuMemcpyHtoD_v2_ptds) {
  NEED(2);
  DPTR(A(0), A(1));
  if (in.bulkLen != A(1)) return CUDA_ERROR_INVALID_VALUE;
  DRV(cuMemcpyHtoD_v2);
  CUresult failed = CUDA_SUCCESS;
  auto inPlace = s.consumeBulkInPlace(A(1), [&](uint64_t off, const uint8_t* p, size_t k) {
    CUresult r = f(A(0) + off, p, k);
    if (r != CUDA_SUCCESS && failed == CUDA_SUCCESS) failed = r;
    return CUDA_SUCCESS; // keep consuming: the stream stays in step
  });
  if (!inPlace.isOk()) return CUDA_ERROR_INVALID_VALUE;
  if (*inPlace) return failed;
  std::vector<uint8_t> chunk(std::min<uint64_t>(A(1), kChunk));
  for (uint64_t off = 0; off < A(1); off += kChunk) {
    size_t k = static_cast<size_t>(std::min<uint64_t>(kChunk, A(1) - off));
    if (!s.readBulk(chunk.data(), k).isOk()) return CUDA_ERROR_INVALID_VALUE;
    CUresult r = f(A(0) + off, chunk.data(), k);
    if (r != CUDA_SUCCESS) return r;
  }
  return CUDA_SUCCESS;
}
TF_CALL(cuMemcpyHtoDAsync_v2, cuMemcpyHtoDAsync_v2_ptsz) {
  NEED(3);
  DPTR(A(0), A(1));
  OWN_STREAM(A(2));
  if (in.bulkLen != A(1)) return CUDA_ERROR_INVALID_VALUE;
  // Captured, the copy would read staging that is freed long before the graph runs (the
  // stub sends pinned sources by reference while capturing).
  if (capturing(s, A(2), perThread(in.fn))) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  DRV(cuMemcpyHtoDAsync_v2);
  for (uint64_t off = 0; off < A(1); off += kChunk) {
    size_t k = static_cast<size_t>(std::min<uint64_t>(kChunk, A(1) - off));
    if (pending.bytes + k > kMaxPendingStaging) dropStaging(s);
    auto buf = std::make_shared<std::vector<uint8_t>>(k);
    if (!s.readBulk(buf->data(), k).isOk()) return CUDA_ERROR_INVALID_VALUE;
    CUresult r = f(A(0) + off, buf->data(), k, H(CUstream)(A(2)));
    pending.bytes += k;
    pending.buffers.push_back(buf);
    if (r != CUDA_SUCCESS) return r;
  }
  return CUDA_SUCCESS;
}
TF_CALL(cuMemcpyDtoH_v2, cuMemcpyDtoH_v2_ptds) {
  NEED(2);
  DPTR(A(0), A(1));
  return dtohReply(s, A(0), A(1), out);
}
TF_CALL(cuMemcpyDtoHAsync_v2, cuMemcpyDtoHAsync_v2_ptsz) {
  NEED(3);
  DPTR(A(0), A(1));
  OWN_STREAM(A(2));
  CUresult r = syncStream(s, A(2), perThread(in.fn));
  if (r != CUDA_SUCCESS) return r;
  return dtohReply(s, A(0), A(1), out);
}
TF_CALL(cuMemcpyDtoD_v2, cuMemcpyDtoD_v2_ptds) {
  NEED(3);
  DPTR(A(0), A(2));
  DPTR(A(1), A(2));
  DRV(cuMemcpyDtoD_v2);
  return f(A(0), A(1), A(2));
}
TF_CALL(cuMemcpyDtoDAsync_v2, cuMemcpyDtoDAsync_v2_ptsz) {
  NEED(4);
  DPTR(A(0), A(2));
  DPTR(A(1), A(2));
  OWN_STREAM(A(3));
  DRV(cuMemcpyDtoDAsync_v2);
  return f(A(0), A(1), A(2), H(CUstream)(A(3)));
}
TF_CALL(cuMemcpy3D_v2, cuMemcpy3D_v2_ptds) {
  return memcpy3D(s, in, out, false);
}
TF_CALL(cuMemcpy3DAsync_v2, cuMemcpy3DAsync_v2_ptsz) {
  return memcpy3D(s, in, out, true);
}
// ---- memsets: (dst, value, count[, stream]) and 2D (dst, pitch, value, w, h[, stream]) ----
#define TF_CALL_MEMSET(sym, symPt, T, elem)                                                       \
TF_CALL(sym, symPt) {                                                                             \
  NEED(3);                                                                                        \
  DPTR(A(0), mul(A(2), (elem)));                                                                  \
  DRV(sym);                                                                                       \
  return f(A(0), static_cast<T>(A(1)), A(2));                                                     \
}
#define TF_CALL_MEMSET_ASYNC(sym, symPt, T, elem)                                                 \
TF_CALL(sym, symPt) {                                                                             \
  NEED(4);                                                                                        \
  DPTR(A(0), mul(A(2), (elem)));                                                                  \
  OWN_STREAM(A(3));                                                                               \
  DRV(sym);                                                                                       \
  return f(A(0), static_cast<T>(A(1)), A(2), H(CUstream)(A(3)));                                  \
}
#define TF_CALL_MEMSET2D(sym, symPt, T, elem)                                                     \
TF_CALL(sym, symPt) {                                                                             \
  NEED(5);                                                                                        \
  if (A(4)) DPTR(A(0), add(mul(A(1), A(4) - 1), mul(A(3), (elem))));                              \
  DRV(sym);                                                                                       \
  return f(A(0), A(1), static_cast<T>(A(2)), A(3), A(4));                                         \
}
#define TF_CALL_MEMSET2D_ASYNC(sym, symPt, T, elem)                                               \
TF_CALL(sym, symPt) {                                                                             \
  NEED(6);                                                                                        \
  if (A(4)) DPTR(A(0), add(mul(A(1), A(4) - 1), mul(A(3), (elem))));                              \
  OWN_STREAM(A(5));                                                                               \
  DRV(sym);                                                                                       \
  return f(A(0), A(1), static_cast<T>(A(2)), A(3), A(4), H(CUstream)(A(5)));                      \
}
TF_CALL_MEMSET(cuMemsetD8_v2, cuMemsetD8_v2_ptds, unsigned char, 1)
TF_CALL_MEMSET(cuMemsetD16_v2, cuMemsetD16_v2_ptds, unsigned short, 2)
TF_CALL_MEMSET(cuMemsetD32_v2, cuMemsetD32_v2_ptds, unsigned int, 4)
TF_CALL_MEMSET_ASYNC(cuMemsetD8Async, cuMemsetD8Async_ptsz, unsigned char, 1)
TF_CALL_MEMSET_ASYNC(cuMemsetD16Async, cuMemsetD16Async_ptsz, unsigned short, 2)
TF_CALL_MEMSET_ASYNC(cuMemsetD32Async, cuMemsetD32Async_ptsz, unsigned int, 4)
TF_CALL_MEMSET2D(cuMemsetD2D8_v2, cuMemsetD2D8_v2_ptds, unsigned char, 1)
TF_CALL_MEMSET2D(cuMemsetD2D16_v2, cuMemsetD2D16_v2_ptds, unsigned short, 2)
TF_CALL_MEMSET2D(cuMemsetD2D32_v2, cuMemsetD2D32_v2_ptds, unsigned int, 4)
TF_CALL_MEMSET2D_ASYNC(cuMemsetD2D8Async, cuMemsetD2D8Async_ptsz, unsigned char, 1)
TF_CALL_MEMSET2D_ASYNC(cuMemsetD2D16Async, cuMemsetD2D16Async_ptsz, unsigned short, 2)
TF_CALL_MEMSET2D_ASYNC(cuMemsetD2D32Async, cuMemsetD2D32Async_ptsz, unsigned int, 4)

} // namespace tf::remoting
