// Managed memory and mirrored host memory on the worker (remoting/mirror.h): allocations
// whose pages the client holds too, at the same addresses; the exchange of what changed on
// each side; async copies whose host side is such memory, executed by reference so that a
// stream capture records the address rather than a staging buffer.
#include <cstring>
#include <vector>

#include "remoting/worker/calls.h"

namespace tf::remoting {

namespace {

CUresult allocManaged(Session& s, CallIn& in, CallOut& out) {
  NEED(2);
  DRV(cuMemAllocManaged);
  CUdeviceptr p = 0;
  CUresult r = f(&p, A(0), static_cast<unsigned>(A(1)));
  out.put(p);
  if (r != CUDA_SUCCESS) return r;
  // Both sides start from all-zero agreed contents.
  std::memset(reinterpret_cast<void*>(p), 0, A(0));
  if (!s.mirrors().add(p, A(0))) {
    DRV_AT(memFree, cuMemFree_v2, cuMemFree_v2);
    memFree(p);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  s.addAllocation(p, A(0), true);
  return CUDA_SUCCESS;
}

// MirrorPush: runs in the blob, their bytes in the bulk.
CUresult push(Session& s, CallIn& in) {
  std::vector<MirrorRun> runs;
  if (!decodeMirrorRuns(in.a.blob, in.bulkLen, &runs).isOk()) return CUDA_ERROR_INVALID_VALUE;
  if (!s.mirrors().check(runs).isOk()) return CUDA_ERROR_INVALID_VALUE;
  std::vector<uint8_t> buf;
  for (const MirrorRun& run : runs) {
    buf.resize(run.len);
    if (!s.readBulk(buf.data(), buf.size()).isOk()) return CUDA_ERROR_INVALID_VALUE;
    s.mirrors().apply(run, buf.data());
  }
  return CUDA_SUCCESS;
}

// CopyHostByRef (dst, src, n, stream): one side is host memory of this client that the
// device reaches by address (a mirror or shared pinned memory), the other its device memory
// or another such range; the driver reads or writes the host side when the stream gets there
// (or every time a graph captured from it runs). Stream ~0: a synchronous copy.
CUresult copyByRef(Session& s, CallIn& in) {
  NEED(4);
  if (!s.hostRangeFor(A(0), A(2)) && !s.hostRangeFor(A(1), A(2))) return CUDA_ERROR_INVALID_VALUE;
  DPTR(A(0), A(2));
  DPTR(A(1), A(2));
  if (A(3) == ~uint64_t(0)) {
    DRV_AT(copy, cuMemcpy, cuMemcpy);
    return copy(A(0), A(1), A(2));
  }
  OWN_STREAM(A(3));
  DRV_AT(copy, cuMemcpyAsync, cuMemcpyAsync);
  return copy(A(0), A(1), A(2), H(CUstream)(A(3)));
}

CUmemLocation location(uint64_t type, uint64_t id) {
  CUmemLocation l{};
  l.type = static_cast<CUmemLocationType>(type);
  l.id = static_cast<int>(id);
  return l;
}

// Managed ranges: prefetch (posted), advice, attributes.
CUresult managedRange(Session& s, CallIn& in, CallOut& out) {
  switch (static_cast<FnId>(in.fn)) {
  CASE2(cuMemPrefetchAsync_v2, cuMemPrefetchAsync_v2_ptsz) {
    NEED(6);
    OWN_STREAM(A(5));
    DPTR(A(0), A(1));
    DRV(cuMemPrefetchAsync_v2);
    return f(A(0), A(1), location(A(2), A(3)), static_cast<unsigned>(A(4)), H(CUstream)(A(5)));
  }
  case FnId::cuMemAdvise_v2: {
    NEED(5);
    DPTR(A(0), A(1));
    DRV(cuMemAdvise_v2);
    return f(A(0), A(1), static_cast<CUmem_advise>(A(2)), location(A(3), A(4)));
  }
  case FnId::cuMemRangeGetAttribute: {
    NEED(4);
    if (A(0) == 0 || A(0) > 4096) return CUDA_ERROR_INVALID_VALUE;
    DPTR(A(2), A(3));
    DRV(cuMemRangeGetAttribute);
    std::string data(A(0), '\0');
    CUresult r = f(data.data(), A(0), static_cast<CUmem_range_attribute>(A(1)), A(2), A(3));
    if (r == CUDA_SUCCESS) out.blob = std::move(data);
    return r;
  }
  default: return CUDA_ERROR_NOT_SUPPORTED;
  }
}

} // namespace

TF_CALL(cuMemAllocManaged) { return allocManaged(s, in, out); }
TF_CALL(cuMemPrefetchAsync_v2, cuMemPrefetchAsync_v2_ptsz, cuMemAdvise_v2, cuMemRangeGetAttribute) {
  return managedRange(s, in, out);
}

CUresult dispatchMirror(Session& s, CallIn& in, CallOut& out) {
  switch (static_cast<Op>(in.fn)) {
  case Op::MirrorHost: NEED(2); return s.mapHostMirror(A(0), A(1));
  case Op::ShareHost: NEED(2); return s.mapSharedHost(A(0), A(1));
  case Op::MirrorRelease: NEED(1); return s.releaseHostMirror(A(0));
  case Op::MirrorPush: return push(s, in);
  case Op::MirrorPull: s.collectMirrors(out); return CUDA_SUCCESS;
  case Op::CopyHostByRef: return copyByRef(s, in);
  default: return CUDA_ERROR_NOT_SUPPORTED;
  }
}

} // namespace tf::remoting
