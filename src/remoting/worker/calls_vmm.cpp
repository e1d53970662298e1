// Virtual memory management on the worker: physical handles (with their references; handles of
// kind MemHandle, named by client value), reservations and mappings are the client's; a mapping
// only inside its own reservations.
#include <cstring>
#include <vector>

#include "remoting/worker/calls.h"

namespace tf::remoting {

// ---- virtual memory management ------------------------------------------------------------
TF_CALL(cuMemGetAllocationGranularity) {
  NEED(1);
  if (in.a.blob.size() != sizeof(CUmemAllocationProp)) return CUDA_ERROR_INVALID_VALUE;
  CUmemAllocationProp prop;
  std::memcpy(&prop, in.a.blob.data(), sizeof(prop));
  prop.win32HandleMetaData = nullptr;
  DRV(cuMemGetAllocationGranularity);
  size_t g = 0;
  CUresult r = f(&g, &prop, static_cast<CUmemAllocationGranularity_flags>(A(0)));
  out.put(g);
  return r;
}
TF_CALL(cuMemCreate) {
  NEED(2);
  if (in.a.blob.size() != sizeof(CUmemAllocationProp)) return CUDA_ERROR_INVALID_VALUE;
  CUmemAllocationProp prop;
  std::memcpy(&prop, in.a.blob.data(), sizeof(prop));
  prop.win32HandleMetaData = nullptr;
  DRV(cuMemCreate);
  CUmemGenericAllocationHandle h = 0;
  CUresult r = f(&h, A(0), &prop, A(1));
  if (r == CUDA_SUCCESS) {
    s.memHandles()[h] = {A(0), 1};
    s.accountBytes(static_cast<int64_t>(A(0)));
  }
  putNew(s, out, r, K::MemHandle, h);
  return r;
}
TF_CALL(cuMemRelease) {
  NEED(1);
  if (!s.resolveIn(A(0), K::MemHandle)) return CUDA_ERROR_INVALID_VALUE;
  auto it = s.memHandles().find(A(0));
  if (it == s.memHandles().end()) return CUDA_ERROR_INVALID_VALUE;
  DRV(cuMemRelease);
  CUresult r = f(A(0));
  if (r == CUDA_SUCCESS && --it->second.second == 0) {
    s.accountBytes(-static_cast<int64_t>(it->second.first));
    s.memHandles().erase(it);
    s.forget(K::MemHandle, A(0));
  }
  return r;
}
TF_CALL(cuMemGetAllocationPropertiesFromHandle) {
  NEED(1);
  if (!s.resolveIn(A(0), K::MemHandle) || !s.memHandles().count(A(0))) return CUDA_ERROR_INVALID_VALUE;
  DRV(cuMemGetAllocationPropertiesFromHandle);
  CUmemAllocationProp prop{};
  CUresult r = f(&prop, A(0));
  prop.win32HandleMetaData = nullptr;
  out.blob.assign(reinterpret_cast<const char*>(&prop), sizeof(prop));
  return r;
}
TF_CALL(cuMemAddressReserve) {
  NEED(4);
  DRV(cuMemAddressReserve);
  CUdeviceptr va = 0;
  CUresult r = f(&va, A(0), A(1), A(2), A(3));
  if (r == CUDA_SUCCESS) s.reservations()[va] = A(0);
  out.put(va);
  return r;
}
TF_CALL(cuMemAddressFree) {
  NEED(2);
  auto it = s.reservations().find(A(0));
  if (it == s.reservations().end() || it->second != A(1)) return CUDA_ERROR_INVALID_VALUE;
  DRV(cuMemAddressFree);
  CUresult r = f(A(0), A(1));
  if (r == CUDA_SUCCESS) s.reservations().erase(it);
  return r;
}
TF_CALL(cuMemMap) {
  NEED(5);
  uint64_t va = A(0), size = A(1);
  if (!s.resolveIn(A(3), K::MemHandle) || !s.memHandles().count(A(3))) return CUDA_ERROR_INVALID_VALUE;
  bool inside = false; // only inside the client's own reservations
  for (auto& [base, len] : s.reservations())
    if (va >= base && size <= len && va - base <= len - size) inside = true;
  if (!inside) return CUDA_ERROR_INVALID_VALUE;
  DRV(cuMemMap);
  CUresult r = f(va, size, A(2), A(3), A(4));
  if (r == CUDA_SUCCESS) s.addMapping(va, size);
  return r;
}
TF_CALL(cuMemUnmap) {
  NEED(2);
  auto it = s.mappings().find(A(0));
  if (it == s.mappings().end() || it->second != A(1)) return CUDA_ERROR_INVALID_VALUE;
  DRV(cuMemUnmap);
  CUresult r = f(A(0), A(1));
  if (r == CUDA_SUCCESS) s.removeMapping(A(0));
  return r;
}
TF_CALL(cuMemSetAccess) {
  NEED(2);
  DPTR(A(0), A(1));
  if (in.a.blob.empty() || in.a.blob.size() % sizeof(CUmemAccessDesc)) return CUDA_ERROR_INVALID_VALUE;
  std::vector<CUmemAccessDesc> desc(in.a.blob.size() / sizeof(CUmemAccessDesc));
  std::memcpy(desc.data(), in.a.blob.data(), in.a.blob.size());
  DRV(cuMemSetAccess);
  return f(A(0), A(1), desc.data(), desc.size());
}
TF_CALL(cuMemRetainAllocationHandle) {
  NEED(1);
  DPTR(A(0), 1);
  DRV(cuMemRetainAllocationHandle);
  CUmemGenericAllocationHandle h = 0;
  CUresult r = f(&h, H(void*)(A(0)));
  if (r != CUDA_SUCCESS) return r;
  auto it = s.memHandles().find(h);
  if (it == s.memHandles().end()) { // a mapping of ours backed by a handle we released:
    s.memHandles()[h] = {0, 1};      // the new reference is ours to release
  } else {
    ++it->second.second;
  }
  out.put(s.expose(K::MemHandle, h));
  return CUDA_SUCCESS;
}

} // namespace tf::remoting
