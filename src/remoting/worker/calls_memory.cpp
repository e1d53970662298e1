// Device memory on the worker: allocations are recorded in the session, so every later call
// naming a pointer can be checked against the client's own memory; memory an IPC importer
// holds is freed when the last importer closes it.
#include "remoting/worker/calls.h"

namespace tf::remoting {

// ---- memory ----------------------------------------------------------------------------
TF_CALL(cuMemAlloc_v2) {
  NEED(1);
  if (s.tiersOn()) {  // memory that can leave the device while the client idles
    if (A(0) == 0) return CUDA_ERROR_INVALID_VALUE;
    auto p = s.tierAllocate(A(0));
    if (!p) return p.status().code() == Code::ResourceExhausted ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_ERROR_NOT_SUPPORTED;
    out.put(*p);
    return CUDA_SUCCESS;
  }
  DRV(cuMemAlloc_v2);
  CUdeviceptr p = 0;
  CUresult r = f(&p, A(0));
  if (r == CUDA_SUCCESS) s.addAllocation(p, A(0), true);
  out.put(p);
  return r;
}
TF_CALL(cuMemAllocPitch_v2) {
  NEED(3);
  DRV(cuMemAllocPitch_v2);
  CUdeviceptr p = 0;
  size_t pitch = 0;
  CUresult r = f(&p, &pitch, A(0), A(1), static_cast<unsigned>(A(2)));
  if (r == CUDA_SUCCESS) s.addAllocation(p, uint64_t(pitch) * A(1), true);
  out.put(p);
  out.put(pitch);
  return r;
}
TF_CALL(cuMemAllocAsync, cuMemAllocAsync_ptsz) {
  NEED(2);
  OWN_STREAM(A(1));
  DRV(cuMemAllocAsync);
  CUdeviceptr p = 0;
  CUresult r = f(&p, A(0), H(CUstream)(A(1)));
  if (r == CUDA_SUCCESS) s.addAllocation(p, A(0), true);
  out.put(p);
  return r;
}
TF_CALL(cuMemFree_v2) {
  NEED(1);
  DRV(cuMemFree_v2);
  if (A(0) == 0) return f(0);
  if (auto r = s.tierFree(A(0))) return *r;
  if (!s.removeAllocation(A(0))) return CUDA_ERROR_INVALID_VALUE;
  // Memory importers hold is freed when the last of them closes it.
  if (!s.shared().ipc.ownerReleases(IpcKind::Memory, &s, A(0))) return CUDA_SUCCESS;
  CUresult r = f(A(0));
  s.mirrors().remove(A(0)); // managed memory
  return r;
}
TF_CALL(cuMemFreeAsync, cuMemFreeAsync_ptsz) {
  NEED(2);
  OWN_STREAM(A(1));
  DRV(cuMemFreeAsync);
  if (!s.removeAllocation(A(0))) return CUDA_ERROR_INVALID_VALUE;
  if (!s.shared().ipc.ownerReleases(IpcKind::Memory, &s, A(0))) return CUDA_SUCCESS;
  return f(A(0), H(CUstream)(A(1)));
}

} // namespace tf::remoting
