// CUDA arrays, mipmapped arrays, texture and surface objects for a client: descriptors come as
// the call's blob; a resource must be the client's own (its array, its mipmapped array, or a
// range of its device memory); queries answer in the reply's blob. What the client leaves is
// destroyed with its session.
#include <cstring>

#include "remoting/worker/calls.h"

namespace tf::remoting {

namespace {

template <typename T> bool readBlob(const CallIn& in, size_t offset, T* out) {
  if (in.a.blob.size() < offset + sizeof(T)) return false;
  std::memcpy(out, in.a.blob.data() + offset, sizeof(T));
  return true;
}

// A texture's or surface's resource: the client's array, mipmapped array or device memory.
CUresult checkResource(Session& s, const CUDA_RESOURCE_DESC& r) {
  switch (r.resType) {
  case CU_RESOURCE_TYPE_ARRAY: OWN_ARRAY(H(uint64_t)(r.res.array.hArray)); return CUDA_SUCCESS;
  case CU_RESOURCE_TYPE_MIPMAPPED_ARRAY:
    OWN(MipmappedArray, H(uint64_t)(r.res.mipmap.hMipmappedArray));
    return CUDA_SUCCESS;
  case CU_RESOURCE_TYPE_LINEAR:
    DPTR(r.res.linear.devPtr, r.res.linear.sizeInBytes);
    return CUDA_SUCCESS;
  case CU_RESOURCE_TYPE_PITCH2D:
    return checkSpan(s, CU_MEMORYTYPE_DEVICE, r.res.pitch2D.devPtr, 0, 0, 0, r.res.pitch2D.pitchInBytes,
                     r.res.pitch2D.height, r.res.pitch2D.pitchInBytes, r.res.pitch2D.height, 1);
  default: return CUDA_ERROR_INVALID_VALUE;
  }
}

// A destroy: the client's handle of `kind`, forgotten once the driver has destroyed it.
template <typename Fn, typename Handle> CUresult destroy(Session& s, const CallIn& in, K kind, bool anyArray = false) {
  NEED(1);
  bool owned = s.owns(kind, A(0)) || (anyArray && s.owns(K::ArrayLevel, A(0)));
  if (!owned) return CUDA_ERROR_INVALID_HANDLE;
  auto f = s.d().fn<Fn>(in.fn);
  if (!f) return CUDA_ERROR_NOT_SUPPORTED;
  CUresult r = f((Handle)(A(0)));
  if (r == CUDA_SUCCESS) s.remove(kind, A(0));
  return r;
}

} // namespace

TF_CALL(cuArrayCreate_v2) {
  CUDA_ARRAY_DESCRIPTOR d;
  if (!readBlob(in, 0, &d)) return CUDA_ERROR_INVALID_VALUE;
  DRV(cuArrayCreate_v2);
  CUarray a = nullptr;
  CUresult r = f(&a, &d);
  if (r == CUDA_SUCCESS) s.add(K::Array, H(uint64_t)(a));
  out.put(H(uint64_t)(a));
  return r;
}
TF_CALL(cuArray3DCreate_v2) {
  CUDA_ARRAY3D_DESCRIPTOR d;
  if (!readBlob(in, 0, &d)) return CUDA_ERROR_INVALID_VALUE;
  DRV(cuArray3DCreate_v2);
  CUarray a = nullptr;
  CUresult r = f(&a, &d);
  if (r == CUDA_SUCCESS) s.add(K::Array, H(uint64_t)(a));
  out.put(H(uint64_t)(a));
  return r;
}

TF_CALL(cuArrayDestroy) { // a mipmap level too: the driver itself refuses to free it alone
  return destroy<decltype(&::cuArrayDestroy), CUarray>(s, in, K::Array, true);
}

TF_CALL(cuMipmappedArrayCreate) {
  NEED(1);
  CUDA_ARRAY3D_DESCRIPTOR d;
  if (!readBlob(in, 0, &d)) return CUDA_ERROR_INVALID_VALUE;
  DRV(cuMipmappedArrayCreate);
  CUmipmappedArray m = nullptr;
  CUresult r = f(&m, &d, static_cast<unsigned>(A(0)));
  if (r == CUDA_SUCCESS) s.add(K::MipmappedArray, H(uint64_t)(m));
  out.put(H(uint64_t)(m));
  return r;
}

TF_CALL(cuTexObjectCreate) {
  CUDA_RESOURCE_DESC res;
  CUDA_TEXTURE_DESC tex;
  CUDA_RESOURCE_VIEW_DESC view;
  if (!readBlob(in, 0, &res) || !readBlob(in, sizeof res, &tex)) return CUDA_ERROR_INVALID_VALUE;
  bool hasView = readBlob(in, sizeof res + sizeof tex, &view);
  if (CUresult r = checkResource(s, res); r != CUDA_SUCCESS) return r;
  DRV(cuTexObjectCreate);
  CUtexObject t = 0;
  CUresult r = f(&t, &res, &tex, hasView ? &view : nullptr);
  if (r == CUDA_SUCCESS) s.add(K::TexObject, t);
  out.put(t);
  return r;
}

TF_CALL(cuSurfObjectCreate) {
  CUDA_RESOURCE_DESC res;
  if (!readBlob(in, 0, &res)) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = checkResource(s, res); r != CUDA_SUCCESS) return r;
  DRV(cuSurfObjectCreate);
  CUsurfObject o = 0;
  CUresult r = f(&o, &res);
  if (r == CUDA_SUCCESS) s.add(K::SurfObject, o);
  out.put(o);
  return r;
}

} // namespace tf::remoting
