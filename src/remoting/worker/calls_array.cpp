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

// A texture's or surface's resource: the client's array, mipmapped array (resolved in place)
// or device memory.
CUresult checkResource(Session& s, CUDA_RESOURCE_DESC& r) {
  switch (r.resType) {
  case CU_RESOURCE_TYPE_ARRAY: OWN_ARRAY(r.res.array.hArray); return CUDA_SUCCESS;
  case CU_RESOURCE_TYPE_MIPMAPPED_ARRAY:
    OWN(MipmappedArray, r.res.mipmap.hMipmappedArray);
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
template <typename Fn, typename Handle> CUresult destroy(Session& s, CallIn& in, K kind, bool anyArray = false) {
  NEED(1);
  bool owned = anyArray ? s.resolveIn(A(0), kind, K::ArrayLevel) : s.resolveIn(A(0), kind);
  if (!owned) return CUDA_ERROR_INVALID_HANDLE;
  auto f = s.d().fn<Fn>(in.fn);
  if (!f) return CUDA_ERROR_NOT_SUPPORTED;
  CUresult r = f((Handle)(A(0)));
  if (r == CUDA_SUCCESS) s.forget(anyArray && s.ownsDriver(K::ArrayLevel, A(0)) ? K::ArrayLevel : kind, A(0));
  return r;
}

} // namespace

void structOut(Session& s, CUDA_RESOURCE_DESC& r) {
  if (r.resType == CU_RESOURCE_TYPE_ARRAY) {
    uint64_t a = H(uint64_t)(r.res.array.hArray);
    auto c = s.clientValue(K::Array, a);
    r.res.array.hArray = H(CUarray)(c ? *c : known(s, K::ArrayLevel, a));
  } else if (r.resType == CU_RESOURCE_TYPE_MIPMAPPED_ARRAY) {
    r.res.mipmap.hMipmappedArray = H(CUmipmappedArray)(known(s, K::MipmappedArray, r.res.mipmap.hMipmappedArray));
  }
}

TF_CALL(cuArrayCreate_v2) {
  CUDA_ARRAY_DESCRIPTOR d;
  if (!readBlob(in, 0, &d)) return CUDA_ERROR_INVALID_VALUE;
  DRV(cuArrayCreate_v2);
  CUarray a = nullptr;
  CUresult r = f(&a, &d);
  putNew(s, out, r, K::Array, a);
  return r;
}
TF_CALL(cuArray3DCreate_v2) {
  CUDA_ARRAY3D_DESCRIPTOR d;
  if (!readBlob(in, 0, &d)) return CUDA_ERROR_INVALID_VALUE;
  DRV(cuArray3DCreate_v2);
  CUarray a = nullptr;
  CUresult r = f(&a, &d);
  putNew(s, out, r, K::Array, a);
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
  putNew(s, out, r, K::MipmappedArray, m);
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
  putNew(s, out, r, K::TexObject, t);
  return r;
}

TF_CALL(cuSurfObjectCreate) {
  CUDA_RESOURCE_DESC res;
  if (!readBlob(in, 0, &res)) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = checkResource(s, res); r != CUDA_SUCCESS) return r;
  DRV(cuSurfObjectCreate);
  CUsurfObject o = 0;
  CUresult r = f(&o, &res);
  putNew(s, out, r, K::SurfObject, o);
  return r;
}

} // namespace tf::remoting
