// CUDA arrays, mipmapped arrays, texture and surface objects: created and queried on the
// worker, their descriptors sent as the call's blob and returned in the reply's blob. Copies to
// and from arrays go through cuMemcpy2D/3D (api_memory.cpp), whose array sides name the
// worker's handles.
#include <cstring>
#include <string>

#include "remoting/stub/api.h"

using namespace tf::remoting::stub;

namespace {

// A handle the worker returns in out[0].
template <typename Handle, typename Desc>
CUresult create(FnId fn, Handle* out, const Desc* desc, std::initializer_list<uint64_t> args = {}) {
  if (!out || !desc) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  uint64_t v = 0;
  CUresult r = client().call(fn, args, &v, 1, desc, sizeof(Desc));
  *out = reinterpret_cast<Handle>(v);
  return r;
}

CUresult destroy(FnId fn, uint64_t handle) {
  TF_READY();
  return client().call(fn, {handle});
}

} // namespace

extern "C" {

CUresult tf_rs_cuArrayCreate_v2(CUarray* a, const CUDA_ARRAY_DESCRIPTOR* d) {
  return create(FnId::cuArrayCreate_v2, a, d);
}
CUresult tf_rs_cuArray3DCreate_v2(CUarray* a, const CUDA_ARRAY3D_DESCRIPTOR* d) {
  return create(FnId::cuArray3DCreate_v2, a, d);
}
CUresult tf_rs_cuArrayDestroy(CUarray a) { return destroy(FnId::cuArrayDestroy, u(a)); }

CUresult tf_rs_cuMipmappedArrayCreate(CUmipmappedArray* m, const CUDA_ARRAY3D_DESCRIPTOR* d, unsigned levels) {
  return create(FnId::cuMipmappedArrayCreate, m, d, {levels});
}

// The blob: the resource descriptor, the texture descriptor and, when given, the view.
CUresult tf_rs_cuTexObjectCreate(CUtexObject* t, const CUDA_RESOURCE_DESC* res, const CUDA_TEXTURE_DESC* tex,
                                 const CUDA_RESOURCE_VIEW_DESC* view) {
  if (!t || !res || !tex) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  std::string blob(reinterpret_cast<const char*>(res), sizeof *res);
  blob.append(reinterpret_cast<const char*>(tex), sizeof *tex);
  if (view) blob.append(reinterpret_cast<const char*>(view), sizeof *view);
  uint64_t v = 0;
  CUresult r = client().call(FnId::cuTexObjectCreate, {}, &v, 1, blob.data(), blob.size());
  *t = static_cast<CUtexObject>(v);
  return r;
}

CUresult tf_rs_cuSurfObjectCreate(CUsurfObject* s, const CUDA_RESOURCE_DESC* res) {
  if (!s || !res) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  uint64_t v = 0;
  CUresult r = client().call(FnId::cuSurfObjectCreate, {}, &v, 1, res, sizeof *res);
  *s = static_cast<CUsurfObject>(v);
  return r;
}

} // extern "C"
