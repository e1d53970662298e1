// CUDA arrays: opaque 1D, 2D and 3D (and layered) arrays of 1, 2 or 4 channels of 8, 16 or 32
// bits. Here an array is device memory laid out row after row (pitch = width x element size),
// slice after slice, charged like any allocation; copies reach it through the 2D/3D copy paths
// (api_memcpy.cpp, arrayEndpoint), which check the copied box against the array's extent.
#include "softgpu/driver/array.h"

#include <algorithm>
#include <memory>

#include "softgpu/driver/handles.h"
#include "softgpu/driver/module.h"
#include "softgpu/driver/stream.h"

using namespace tf::softgpu;

namespace {

// NVIDIA's limits for 3D arrays and the widths of 1D/2D ones (compute capability 9.0).
constexpr size_t kMaxWidth = 131072, kMaxHeight = 65536, kMax3D = 16384, kMaxLayers = 2048;
constexpr unsigned kKnownFlags = CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_SURFACE_LDST |
                                 CUDA_ARRAY3D_TEXTURE_GATHER;

CUresult createArray(const CUDA_ARRAY3D_DESCRIPTOR& d, CUarray* out) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  unsigned bytes = tf::cuda::arrayFormatBytes(d.Format);
  if (!bytes || (d.NumChannels != 1 && d.NumChannels != 2 && d.NumChannels != 4))
    return CUDA_ERROR_INVALID_VALUE;
  if (d.Flags & ~kKnownFlags) return CUDA_ERROR_NOT_SUPPORTED; // cubemaps, sparse, ...
  const bool layered = d.Flags & CUDA_ARRAY3D_LAYERED;
  if (d.Width == 0 || (d.Height == 0 && d.Depth != 0 && !layered)) return CUDA_ERROR_INVALID_VALUE;
  if (layered && d.Depth == 0) return CUDA_ERROR_INVALID_VALUE;
  const bool is3D = d.Depth != 0 && !layered;
  if (d.Width > (is3D ? kMax3D : kMaxWidth) || d.Height > (is3D ? kMax3D : kMaxHeight) ||
      d.Depth > (layered ? kMaxLayers : kMax3D))
    return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(requireContext(&c));
  auto a = std::make_unique<Array>();
  a->desc = d;
  a->elementBytes = bytes * d.NumChannels;
  a->pitch = d.Width * a->elementBytes;
  a->rows = d.Height ? d.Height : 1;
  a->slices = d.Depth ? d.Depth : 1;
  TF_TRY(allocDevice(c, a->pitch * a->rows * a->slices, &a->base));
  registryOf<Array>().add(a.get());
  *out = reinterpret_cast<CUarray>(a.release());
  return CUDA_SUCCESS;
}

// A live array, or INVALID_HANDLE.
CUresult liveArray(CUarray handle, Array** out) {
  TF_TRY(checkInitialized());
  *out = arrayOf(handle);
  return *out ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

// Frees the arrays of a mipmapped array's levels.
CUresult releaseLevels(const std::vector<Array*>& levels) {
  CUresult result = CUDA_SUCCESS;
  for (Array* a : levels) {
    registryOf<Array>().remove(a);
    if (CUresult r = freeMemory(a->base, AllocKind::Device); r != CUDA_SUCCESS) result = r;
    delete a;
  }
  return result;
}

} // namespace

namespace tf::softgpu {

Array* arrayOf(CUarray handle) { return registryOf<Array>().find(handle); }
MipmappedArray* mipmappedArrayOf(CUmipmappedArray handle) {
  return registryOf<MipmappedArray>().find(handle);
}

} // namespace tf::softgpu

extern "C" {

CUresult tf_sg_cuArrayCreate_v2(CUarray* out, const CUDA_ARRAY_DESCRIPTOR* d) {
  if (!d) return CUDA_ERROR_INVALID_VALUE;
  CUDA_ARRAY3D_DESCRIPTOR d3{};
  d3.Width = d->Width;
  d3.Height = d->Height;
  d3.Format = d->Format;
  d3.NumChannels = d->NumChannels;
  return createArray(d3, out);
}

CUresult tf_sg_cuArray3DCreate_v2(CUarray* out, const CUDA_ARRAY3D_DESCRIPTOR* d) {
  if (!d) return CUDA_ERROR_INVALID_VALUE;
  return createArray(*d, out);
}

CUresult tf_sg_cuMipmappedArrayCreate(CUmipmappedArray* out, const CUDA_ARRAY3D_DESCRIPTOR* d,
                                      unsigned numLevels) {
  if (!out || !d) return CUDA_ERROR_INVALID_VALUE;
  const bool layered = d->Flags & CUDA_ARRAY3D_LAYERED;
  const size_t depth = layered ? 0 : d->Depth;
  const size_t largest = std::max({d->Width, d->Height, depth});
  unsigned most = 1;
  while (most < tf::cuda::TextureView::kMaxLevels && (largest >> most) != 0) ++most;
  if (numLevels == 0 || numLevels > most) return CUDA_ERROR_INVALID_VALUE;
  auto m = std::make_unique<MipmappedArray>();
  m->desc = *d;
  for (unsigned l = 0; l < numLevels; ++l) {
    CUDA_ARRAY3D_DESCRIPTOR ld = *d;
    auto half = [l](size_t n) { return n ? std::max<size_t>(n >> l, 1) : 0; };
    ld.Width = half(d->Width);
    ld.Height = half(d->Height);
    if (!layered) ld.Depth = half(d->Depth);
    CUarray a = nullptr;
    if (CUresult r = createArray(ld, &a); r != CUDA_SUCCESS) {
      (void)releaseLevels(m->levels);
      return r;
    }
    m->levels.push_back(arrayOf(a));
    m->levels.back()->mipmapLevel = true;
  }
  registryOf<MipmappedArray>().add(m.get());
  *out = reinterpret_cast<CUmipmappedArray>(m.release());
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMipmappedArrayGetLevel(CUarray* out, CUmipmappedArray handle, unsigned level) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkInitialized());
  MipmappedArray* m = mipmappedArrayOf(handle);
  if (!m) return CUDA_ERROR_INVALID_HANDLE;
  if (level >= m->levels.size()) return CUDA_ERROR_INVALID_VALUE;
  *out = reinterpret_cast<CUarray>(m->levels[level]);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuMipmappedArrayDestroy(CUmipmappedArray handle) {
  TF_TRY(checkInitialized());
  MipmappedArray* m = mipmappedArrayOf(handle);
  if (!m) return CUDA_ERROR_INVALID_HANDLE;
  if (Context* c = currentContext()) synchronizeContext(c);
  registryOf<MipmappedArray>().remove(m);
  CUresult result = releaseLevels(m->levels);
  delete m;
  return result;
}

CUresult tf_sg_cuArrayDestroy(CUarray handle) {
  Array* a;
  TF_TRY(liveArray(handle, &a));
  if (a->mipmapLevel) return CUDA_ERROR_INVALID_VALUE; // goes with its mipmapped array
  // Like cuMemFree: work that may still use the array finishes first.
  if (Context* c = currentContext()) synchronizeContext(c);
  registryOf<Array>().remove(a);
  CUresult r = freeMemory(a->base, AllocKind::Device);
  delete a;
  return r;
}

CUresult tf_sg_cuArray3DGetDescriptor_v2(CUDA_ARRAY3D_DESCRIPTOR* out, CUarray handle) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  Array* a;
  TF_TRY(liveArray(handle, &a));
  *out = a->desc;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuArrayGetDescriptor_v2(CUDA_ARRAY_DESCRIPTOR* out, CUarray handle) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  Array* a;
  TF_TRY(liveArray(handle, &a));
  if (a->desc.Depth != 0) return CUDA_ERROR_INVALID_VALUE; // a 3D array: the 3D query
  out->Width = a->desc.Width;
  out->Height = a->desc.Height;
  out->Format = a->desc.Format;
  out->NumChannels = a->desc.NumChannels;
  return CUDA_SUCCESS;
}

} // extern "C"
