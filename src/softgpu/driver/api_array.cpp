// CUDA arrays: opaque 1D, 2D and 3D (and layered) arrays of 1, 2 or 4 channels of 8, 16 or 32
// bits. Here an array is device memory laid out row after row (pitch = width x element size),
// slice after slice, charged like any allocation; copies reach it through the 2D/3D copy paths
// (api_memcpy.cpp, arrayEndpoint), which check the copied box against the array's extent.
#include "softgpu/driver/array.h"

#include "common/log.h"
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

} // namespace

namespace tf::softgpu {

Array* arrayOf(CUarray handle) { return registryOf<Array>().find(handle); }

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

// Mipmapped arrays are not supported (textures sample one level): refused by name, so that
// cudaMallocMipmappedArray fails with cudaErrorNotSupported rather than asking for a newer
// driver, and nothing is allocated.
CUresult tf_sg_cuMipmappedArrayCreate(CUmipmappedArray* out, const CUDA_ARRAY3D_DESCRIPTOR* d, unsigned) {
  if (!out || !d) return CUDA_ERROR_INVALID_VALUE;
  *out = nullptr;
  TF_LOG(Error, "mipmapped arrays are not supported by the soft GPU");
  return CUDA_ERROR_NOT_SUPPORTED;
}

CUresult tf_sg_cuArrayDestroy(CUarray handle) {
  Array* a;
  TF_TRY(liveArray(handle, &a));
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
