// Memory pools on the worker: the client's own, and the device's default (shared by the
// worker's clients: they may use it, never destroy it).
#include <cstring>

#include "remoting/worker/calls.h"

namespace tf::remoting {

// ---- memory pools: the client's own, and the device's default (shared by the worker) -----
TF_CALL(cuDeviceGetDefaultMemPool, cuDeviceGetMemPool) {
  NEED(1);
  DRV(cuDeviceGetDefaultMemPool);
  CUmemoryPool p = nullptr;
  CUresult r = f(&p, static_cast<CUdevice>(A(0)));
  if (r == CUDA_SUCCESS && s.ownsDriver(K::Pool, H(uint64_t)(p))) // the client made it the device's
    out.put(known(s, K::Pool, p));
  else
    putNew(s, out, r, K::SharedPool, p);
  return r;
}
TF_CALL(cuMemPoolGetAttribute, cuMemPoolSetAttribute) {
  NEED(3);
  if (!s.resolveIn(A(0), K::Pool, K::SharedPool)) return CUDA_ERROR_INVALID_HANDLE;
  auto attr = static_cast<CUmemPool_attribute>(A(1));
  bool isInt = attr == CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES ||
               attr == CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC ||
               attr == CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES;
  uint64_t v64 = A(2);
  int v32 = static_cast<int>(A(2));
  void* value = isInt ? static_cast<void*>(&v32) : static_cast<void*>(&v64);
  CUresult r;
  if (static_cast<FnId>(in.fn) == FnId::cuMemPoolSetAttribute) {
    DRV(cuMemPoolSetAttribute);
    r = f(H(CUmemoryPool)(A(0)), attr, value);
  } else {
    DRV(cuMemPoolGetAttribute);
    r = f(H(CUmemoryPool)(A(0)), attr, value);
  }
  out.put(isInt ? static_cast<uint64_t>(v32) : v64);
  return r;
}
TF_CALL(cuMemAllocFromPoolAsync, cuMemAllocFromPoolAsync_ptsz) {
  NEED(3);
  if (!s.resolveIn(A(1), K::Pool, K::SharedPool)) return CUDA_ERROR_INVALID_HANDLE;
  OWN_STREAM(A(2));
  DRV(cuMemAllocFromPoolAsync);
  CUdeviceptr p = 0;
  CUresult r = f(&p, A(0), H(CUmemoryPool)(A(1)), H(CUstream)(A(2)));
  if (r == CUDA_SUCCESS) s.addAllocation(p, A(0), true);
  out.put(p);
  return r;
}

} // namespace tf::remoting
