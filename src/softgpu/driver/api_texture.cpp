// Texture objects (cuTexObjectCreate): a resource (a CUDA array, pitched 2D device memory or
// linear device memory) and how to sample it. Kernels reach them by handle through
// DeviceMemory::texture (lookupTexture), and the PTX engine's tex instructions sample them
// (src/ptx/ops_tex.cpp), mipmapped arrays with all their levels. Resource views are not
// supported.
#include <cstring>
#include <map>
#include <mutex>

#include "softgpu/driver/array.h"
#include "softgpu/driver/memory.h"

using namespace tf::softgpu;

namespace {

// A texture object, or a surface object (a CUDA array, no sampling: `tex` stays zero).
struct TextureObject {
  CUDA_RESOURCE_DESC res{};
  CUDA_TEXTURE_DESC tex{};
  bool surface = false;
};

std::mutex textureMu;
uint64_t nextTexture = 1; // 0 is no texture
std::map<uint64_t, TextureObject>& textureTable() {
  static auto* m = new std::map<uint64_t, TextureObject>();
  return *m;
}

bool validChannels(unsigned n) { return n == 1 || n == 2 || n == 4; }

// Whether the resource names memory the device holds, with a shape the sampler can read.
CUresult checkResource(const CUDA_RESOURCE_DESC& r) {
  switch (r.resType) {
  case CU_RESOURCE_TYPE_ARRAY:
    return arrayOf(r.res.array.hArray) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
  case CU_RESOURCE_TYPE_PITCH2D: {
    const auto& p = r.res.pitch2D;
    unsigned bytes = tf::cuda::arrayFormatBytes(p.format);
    if (!bytes || !validChannels(p.numChannels) || p.width == 0 || p.height == 0 ||
        p.pitchInBytes < p.width * bytes * p.numChannels)
      return CUDA_ERROR_INVALID_VALUE;
    return addressSpace().hostOf(p.devPtr, p.pitchInBytes * p.height) ? CUDA_SUCCESS
                                                                       : CUDA_ERROR_INVALID_VALUE;
  }
  case CU_RESOURCE_TYPE_LINEAR: {
    const auto& l = r.res.linear;
    unsigned bytes = tf::cuda::arrayFormatBytes(l.format);
    if (!bytes || !validChannels(l.numChannels) || l.sizeInBytes < bytes * l.numChannels)
      return CUDA_ERROR_INVALID_VALUE;
    return addressSpace().hostOf(l.devPtr, l.sizeInBytes) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
  }
  case CU_RESOURCE_TYPE_MIPMAPPED_ARRAY:
    return mipmappedArrayOf(r.res.mipmap.hMipmappedArray) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
  default: return CUDA_ERROR_INVALID_VALUE;
  }
}

// A copy of a live texture object, or INVALID_VALUE (what the driver answers for a bad one).
CUresult findTexture(uint64_t handle, TextureObject* out) {
  TF_TRY(checkInitialized());
  std::lock_guard<std::mutex> lock(textureMu);
  auto it = textureTable().find(handle);
  if (it == textureTable().end()) return CUDA_ERROR_INVALID_VALUE;
  *out = it->second;
  return CUDA_SUCCESS;
}

CUresult destroyObject(uint64_t handle, bool surface) {
  TF_TRY(checkInitialized());
  std::lock_guard<std::mutex> lock(textureMu);
  auto it = textureTable().find(handle);
  if (it == textureTable().end() || it->second.surface != surface) return CUDA_ERROR_INVALID_VALUE;
  textureTable().erase(it);
  return CUDA_SUCCESS;
}

} // namespace

namespace tf::softgpu {

bool lookupTexture(uint64_t handle, cuda::TextureView* out) {
  TextureObject t;
  {
    std::lock_guard<std::mutex> lock(textureMu);
    auto it = textureTable().find(handle);
    if (it == textureTable().end()) return false;
    t = it->second;
  }
  cuda::TextureView v;
  // An array's texels and extent (false when the array was destroyed under the texture).
  auto arrayLevel = [](Array* a, cuda::TextureLevel* l) {
    if (!a) return false;
    l->width = static_cast<uint32_t>(a->desc.Width);
    l->height = static_cast<uint32_t>(a->rows);
    l->depth = static_cast<uint32_t>(a->slices);
    l->pitch = a->pitch;
    l->slicePitch = a->pitch * a->rows;
    l->data = addressSpace().hostOf(a->base, l->slicePitch * a->slices);
    return l->data != nullptr;
  };
  // Level 0 of an array resource, and what its array says of every level.
  auto fromArray = [&v](const Array* a, const cuda::TextureLevel& l) {
    v.setLevel0(l);
    v.channels = a->desc.NumChannels;
    v.format = a->desc.Format;
    if (a->desc.Flags & CUDA_ARRAY3D_LAYERED) v.layers = v.depth;
  };
  cuda::TextureLevel level0;
  switch (t.res.resType) {
  case CU_RESOURCE_TYPE_ARRAY: {
    Array* a = arrayOf(t.res.res.array.hArray);
    if (!arrayLevel(a, &level0)) return false;
    fromArray(a, level0);
    break;
  }
  case CU_RESOURCE_TYPE_MIPMAPPED_ARRAY: {
    MipmappedArray* m = mipmappedArrayOf(t.res.res.mipmap.hMipmappedArray);
    if (!m || m->levels.size() > cuda::TextureView::kMaxLevels) return false;
    if (!arrayLevel(m->levels[0], &level0)) return false;
    fromArray(m->levels[0], level0);
    for (size_t k = 1; k < m->levels.size(); ++k)
      if (!arrayLevel(m->levels[k], &v.level[k - 1])) return false;
    v.levels = static_cast<uint32_t>(m->levels.size());
    v.mipmapFilter = t.tex.mipmapFilterMode;
    v.lodBias = t.tex.mipmapLevelBias;
    v.minLod = t.tex.minMipmapLevelClamp;
    v.maxLod = t.tex.maxMipmapLevelClamp;
    break;
  }
  case CU_RESOURCE_TYPE_PITCH2D: {
    const auto& p = t.res.res.pitch2D;
    v.width = static_cast<uint32_t>(p.width);
    v.height = static_cast<uint32_t>(p.height);
    v.channels = p.numChannels;
    v.format = p.format;
    v.pitch = v.slicePitch = p.pitchInBytes;
    v.data = addressSpace().hostOf(p.devPtr, p.pitchInBytes * p.height);
    break;
  }
  case CU_RESOURCE_TYPE_LINEAR: {
    const auto& l = t.res.res.linear;
    v.channels = l.numChannels;
    v.format = l.format;
    v.width = static_cast<uint32_t>(l.sizeInBytes / (tf::cuda::arrayFormatBytes(l.format) * l.numChannels));
    v.pitch = v.slicePitch = l.sizeInBytes;
    v.data = addressSpace().hostOf(l.devPtr, l.sizeInBytes);
    break;
  }
  default: return false;
  }
  if (!v.data) return false; // the memory was freed under the texture
  for (int k = 0; k < 3; ++k) v.address[k] = t.tex.addressMode[k];
  v.filter = t.tex.filterMode;
  v.normalizedCoords = t.tex.flags & CU_TRSF_NORMALIZED_COORDINATES;
  v.readAsInteger = t.tex.flags & CU_TRSF_READ_AS_INTEGER;
  for (int k = 0; k < 4; ++k) v.border[k] = t.tex.borderColor[k];
  *out = v;
  return true;
}

} // namespace tf::softgpu

extern "C" {

CUresult tf_sg_cuTexObjectCreate(CUtexObject* out, const CUDA_RESOURCE_DESC* res,
                                 const CUDA_TEXTURE_DESC* tex, const CUDA_RESOURCE_VIEW_DESC* view) {
  if (!out || !res || !tex) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(requireContext(&c));
  if (view) {
    static const CUDA_RESOURCE_VIEW_DESC none{};
    if (std::memcmp(view, &none, sizeof none) != 0) return CUDA_ERROR_NOT_SUPPORTED;
  }
  for (int k = 0; k < 3; ++k)
    if (tex->addressMode[k] < CU_TR_ADDRESS_MODE_WRAP || tex->addressMode[k] > CU_TR_ADDRESS_MODE_BORDER)
      return CUDA_ERROR_INVALID_VALUE;
  if (tex->filterMode != CU_TR_FILTER_MODE_POINT && tex->filterMode != CU_TR_FILTER_MODE_LINEAR)
    return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkResource(*res));
  std::lock_guard<std::mutex> lock(textureMu);
  uint64_t handle = nextTexture++;
  textureTable()[handle] = TextureObject{*res, *tex};
  *out = handle;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuTexObjectDestroy(CUtexObject handle) { return destroyObject(handle, false); }

// Surface objects: a CUDA array made with CUDA_ARRAY3D_SURFACE_LDST, read and written by
// kernels' suld/sust (src/ptx/ops_tex.cpp).
CUresult tf_sg_cuSurfObjectCreate(CUsurfObject* out, const CUDA_RESOURCE_DESC* res) {
  if (!out || !res) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(requireContext(&c));
  if (res->resType != CU_RESOURCE_TYPE_ARRAY) return CUDA_ERROR_INVALID_VALUE;
  Array* a = arrayOf(res->res.array.hArray);
  if (!a) return CUDA_ERROR_INVALID_HANDLE;
  if (!(a->desc.Flags & CUDA_ARRAY3D_SURFACE_LDST)) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(textureMu);
  uint64_t handle = nextTexture++;
  TextureObject t;
  t.res = *res;
  t.surface = true;
  textureTable()[handle] = t;
  *out = handle;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuSurfObjectDestroy(CUsurfObject handle) { return destroyObject(handle, true); }

CUresult tf_sg_cuSurfObjectGetResourceDesc(CUDA_RESOURCE_DESC* out, CUsurfObject handle) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  TextureObject t;
  TF_TRY(findTexture(handle, &t));
  if (!t.surface) return CUDA_ERROR_INVALID_VALUE;
  *out = t.res;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuTexObjectGetResourceDesc(CUDA_RESOURCE_DESC* out, CUtexObject handle) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  TextureObject t;
  TF_TRY(findTexture(handle, &t));
  if (t.surface) return CUDA_ERROR_INVALID_VALUE;
  *out = t.res;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuTexObjectGetTextureDesc(CUDA_TEXTURE_DESC* out, CUtexObject handle) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  TextureObject t;
  TF_TRY(findTexture(handle, &t));
  if (t.surface) return CUDA_ERROR_INVALID_VALUE;
  *out = t.tex;
  return CUDA_SUCCESS;
}

} // extern "C"
