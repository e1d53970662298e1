// tex: texture fetches through texture objects (unified mode: the texture is a .u64 handle in
// a register), 1D/2D/3D, four results, float or integer coordinates. The texture comes from
// DeviceMemory::texture (the soft GPU's cuTexObjectCreate). Sampling follows the hardware:
// point filtering takes the texel the coordinate falls in; linear filtering blends the nearest
// 2^dims texels with weights in 8-bit fixed point (what NVIDIA's texture units use, so results
// match them bit for bit only up to that quantisation); clamp, wrap, mirror and border
// addressing (wrap and mirror need normalised coordinates, otherwise they clamp, as on the
// GPU). Integer texels read as [0, 1] / [-1, 1] floats unless the texture reads them as
// integers. Missing channels read 0, alpha 1. Layered textures (tex.a1d/.a2d) sample one layer,
// the index clamped to the layers there are; tld4 gathers one channel of the four texels linear
// filtering would blend; txq answers queries about the object. Mipmapped textures: tex.level and
// tex.grad pick levels from the level of detail (pickLevels), tex uses level of detail 0, and
// tld4 gathers from level 0.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "ptx/function_decoder.h"
#include "ptx/half.h"
#include "ptx/ops_common.h"

namespace tf::ptx {

namespace {

enum TexOut : uint32_t { kOutF32 = 0, kOutS32 = 1, kOutU32 = 2 };
constexpr uint32_t kIntCoords = 4;
constexpr uint32_t kLayered = 8;  // the layer index is in a[3]
constexpr uint32_t kGather = 16;  // tld4; the channel is in bits 8..9
constexpr uint32_t kLevel = 32;   // tex.level: the level of detail's slot at operands[imm]
constexpr uint32_t kGrad = 64;    // tex.grad: six gradient slots (x, y, z of each) at operands[imm]

// One texel's channels, as floats (normalised or converted) and as raw integers.
struct Texel {
  float f[4] = {0, 0, 0, 1};
  uint32_t n[4] = {0, 0, 0, 1};
};

// Channel k of integer texels: the integer (sign-extended), and as a float either the same
// number or normalised to [0, 1] / [-1, 1] (8 and 16 bits only, as on the GPU).
template <class T> void intChannel(const uint8_t* p, uint32_t k, bool asInteger, Texel& x) {
  T v;
  std::memcpy(&v, p + sizeof(T) * k, sizeof(T));
  using Wide = std::conditional_t<std::is_signed_v<T>, int32_t, uint32_t>;
  x.n[k] = static_cast<uint32_t>(static_cast<Wide>(v));
  constexpr float kMax = float(std::numeric_limits<T>::max());
  x.f[k] = asInteger ? float(v) : std::fmax(float(v) / kMax, -1.0f);
}

Texel readTexel(const cuda::TextureView& t, const uint8_t* p) {
  Texel x;
  for (uint32_t k = 0; k < t.channels; ++k) {
    switch (t.format) {
    case CU_AD_FORMAT_FLOAT: {
      float v;
      std::memcpy(&v, p + 4 * k, 4);
      x.f[k] = v;
      x.n[k] = std::bit_cast<uint32_t>(v);
      break;
    }
    case CU_AD_FORMAT_HALF: {
      uint16_t v;
      std::memcpy(&v, p + 2 * k, 2);
      x.f[k] = halfToFloat(v);
      x.n[k] = std::bit_cast<uint32_t>(x.f[k]);
      break;
    }
    case CU_AD_FORMAT_UNSIGNED_INT8: intChannel<uint8_t>(p, k, t.readAsInteger, x); break;
    case CU_AD_FORMAT_SIGNED_INT8: intChannel<int8_t>(p, k, t.readAsInteger, x); break;
    case CU_AD_FORMAT_UNSIGNED_INT16: intChannel<uint16_t>(p, k, t.readAsInteger, x); break;
    case CU_AD_FORMAT_SIGNED_INT16: intChannel<int16_t>(p, k, t.readAsInteger, x); break;
    case CU_AD_FORMAT_UNSIGNED_INT32: intChannel<uint32_t>(p, k, true, x); break;
    case CU_AD_FORMAT_SIGNED_INT32: intChannel<int32_t>(p, k, true, x); break;
    default: break;
    }
  }
  return x;
}

// A texel index along one dimension after the addressing mode, or -1 for the border.
int64_t address(int64_t i, uint32_t n, CUaddress_mode mode, bool normalized) {
  const int64_t size = n;
  if (!normalized && (mode == CU_TR_ADDRESS_MODE_WRAP || mode == CU_TR_ADDRESS_MODE_MIRROR))
    mode = CU_TR_ADDRESS_MODE_CLAMP;
  switch (mode) {
  case CU_TR_ADDRESS_MODE_WRAP: return ((i % size) + size) % size;
  case CU_TR_ADDRESS_MODE_MIRROR: {
    int64_t j = ((i % (2 * size)) + 2 * size) % (2 * size);
    return j < size ? j : 2 * size - 1 - j;
  }
  case CU_TR_ADDRESS_MODE_BORDER: return i < 0 || i >= size ? -1 : i;
  default: return i < 0 ? 0 : i >= size ? size - 1 : i;
  }
}

// The sampler's settings come from t, the texels from img (one level, or one layer of it).
Texel fetch(const cuda::TextureView& t, const cuda::TextureLevel& img, const int64_t idx[3], int dims) {
  const uint32_t extent[3] = {img.width, img.height, img.depth};
  int64_t at[3] = {0, 0, 0};
  for (int k = 0; k < dims; ++k) {
    at[k] = address(idx[k], extent[k], t.address[k], t.normalizedCoords);
    if (at[k] < 0) {
      Texel b;
      for (int c = 0; c < 4; ++c) {
        b.f[c] = t.border[c];
        b.n[c] = std::bit_cast<uint32_t>(t.border[c]);
      }
      return b;
    }
  }
  const uint64_t elem = uint64_t(cuda::arrayFormatBytes(t.format)) * t.channels;
  return readTexel(t, img.data + uint64_t(at[2]) * img.slicePitch + uint64_t(at[1]) * img.pitch +
                          uint64_t(at[0]) * elem);
}

Texel sample(const cuda::TextureView& t, const cuda::TextureLevel& img, const float c[3], int dims,
             bool intCoords) {
  const uint32_t extent[3] = {img.width, img.height, img.depth};
  float x[3] = {0, 0, 0};
  for (int k = 0; k < dims; ++k) x[k] = t.normalizedCoords && !intCoords ? c[k] * extent[k] : c[k];
  if (intCoords || t.filter == CU_TR_FILTER_MODE_POINT) {
    int64_t idx[3] = {0, 0, 0};
    for (int k = 0; k < dims; ++k) idx[k] = static_cast<int64_t>(std::floor(x[k]));
    return fetch(t, img, idx, dims);
  }
  // Linear: texel centres at i + 0.5; weights in 8-bit fixed point.
  int64_t base[3] = {0, 0, 0};
  float frac[3] = {0, 0, 0};
  for (int k = 0; k < dims; ++k) {
    float s = x[k] - 0.5f;
    float fl = std::floor(s);
    base[k] = static_cast<int64_t>(fl);
    frac[k] = std::round((s - fl) * 256.0f) / 256.0f;
  }
  Texel out;
  for (int c = 0; c < 4; ++c) out.f[c] = 0;
  for (int corner = 0; corner < (1 << dims); ++corner) {
    int64_t idx[3] = {0, 0, 0};
    float weight = 1;
    for (int k = 0; k < dims; ++k) {
      bool high = corner >> k & 1;
      idx[k] = base[k] + high;
      weight *= high ? frac[k] : 1 - frac[k];
    }
    Texel v = fetch(t, img, idx, dims);
    for (int c = 0; c < 4; ++c) out.f[c] += weight * v.f[c];
  }
  for (int c = 0; c < 4; ++c) out.n[c] = std::bit_cast<uint32_t>(out.f[c]);
  return out;
}

// tld4: channel `comp` of the four texels linear filtering blends at c, counter-clockwise from
// the lower left: (i0, j1), (i1, j1), (i1, j0), (i0, j0), with i0 = floor(x - 0.5), i1 = i0 + 1.
// Each goes through the addressing mode (the border colour's channel outside a border texture).
void gather(const cuda::TextureView& t, const cuda::TextureLevel& img, const float c[2], Texel out[4]) {
  int64_t i0[2];
  for (int k = 0; k < 2; ++k) {
    const float x = t.normalizedCoords ? c[k] * (k == 0 ? img.width : img.height) : c[k];
    i0[k] = static_cast<int64_t>(std::floor(x - 0.5f));
  }
  const int64_t corner[4][2] = {{0, 1}, {1, 1}, {1, 0}, {0, 0}};
  for (int q = 0; q < 4; ++q) {
    const int64_t idx[3] = {i0[0] + corner[q][0], i0[1] + corner[q][1], 0};
    out[q] = fetch(t, img, idx, 2);
  }
}

// The levels a level of detail selects: the first, and the weight of the next (0: one level).
// The bias is added, then the texture's clamps and its level range apply; point mipmap
// filtering takes the nearest level, linear blends two with an 8-bit fixed-point weight.
void pickLevels(const cuda::TextureView& t, float lod, uint32_t* first, float* weight) {
  *first = 0;
  *weight = 0;
  if (t.levels <= 1) return;
  float x = lod + t.lodBias;
  if (!(x >= t.minLod)) x = t.minLod; // also NaN
  if (x > t.maxLod) x = t.maxLod;
  x = std::clamp(x, 0.0f, float(t.levels - 1));
  if (t.mipmapFilter == CU_TR_FILTER_MODE_POINT) {
    *first = static_cast<uint32_t>(std::floor(x + 0.5f));
    return;
  }
  *first = static_cast<uint32_t>(std::floor(x));
  *weight = std::round((x - float(*first)) * 256.0f) / 256.0f;
  if (*first + 1 >= t.levels) *weight = 0;
}

// The one layer a layered instruction reads (its index clamped to the layers there are) of
// level l, or level l itself. A layered instruction on a texture that is not layered, or the
// other way round, is a fault rather than a read of the wrong texels.
bool pickImage(Warp& w, const Inst& in, const cuda::TextureView& t, bool layered, uint32_t layer,
               uint32_t l, cuda::TextureLevel* out) {
  if (layered != (t.layers != 0)) {
    faultAt(w, in, CUDA_ERROR_ILLEGAL_ADDRESS,
            layered ? "layered texture fetch from a texture that is not layered"
                    : "texture fetch without a layer from a layered texture");
    return false;
  }
  *out = t.levelAt(l);
  if (layered) {
    out->data += uint64_t(std::min(layer, t.layers - 1)) * out->slicePitch;
    out->depth = 1;
  }
  return true;
}

// The object a lane's handle names, looked up once per distinct handle in a warp; a handle
// that names none is a fault.
struct ViewCache {
  cuda::TextureView view;
  uint64_t of = 0;
  bool have = false;
  bool get(Warp& w, const Inst& in, uint64_t handle, const char* what) {
    if (have && handle == of) return true;
    of = handle;
    have = w.launch->mem->texture(handle, &view);
    if (!have)
      faultAt(w, in, CUDA_ERROR_ILLEGAL_ADDRESS,
              std::string("no ") + what + " object " + std::to_string(handle));
    return have;
  }
};

// Runs f(lane, object) for every lane in m, each lane's object looked up by its handle; stops
// at the first lane whose handle names none or for which f reports a fault (returns false).
template <class F>
uint32_t forObjectLanes(Warp& w, const Inst& in, uint32_t m, const uint64_t* handle, const char* what, F&& f) {
  ViewCache cache;
  bool bad = false;
  forLanes(m, [&](uint32_t i) {
    if (bad) return;
    bad = !cache.get(w, in, handle[i], what) || !f(i, cache.view);
  });
  return bad ? kPcStop : in.next;
}

// The level of detail of tex.level (the operand) or tex.grad (log2 of the longer gradient, in
// level-0 texels; isotropic), read from the slots at Function::operands[in.imm]; 0 for tex.
float levelOfDetail(Warp& w, const Inst& in, uint32_t lane, const cuda::TextureView& t, int dims) {
  const uint32_t* ops = w.fn->operands.data() + in.imm;
  auto f = [&](uint32_t slot) { return std::bit_cast<float>(static_cast<uint32_t>(TF_REG(slot)[lane])); };
  if (in.aux2 & kLevel) return f(ops[0]);
  if (!(in.aux2 & kGrad)) return 0;
  const uint32_t extent[3] = {t.width, t.height, t.depth};
  float rho = 0;
  for (int g = 0; g < 2; ++g) {
    float sum = 0;
    for (int k = 0; k < dims; ++k) {
      const float v = f(ops[g * 3 + k]) * (t.normalizedCoords ? float(extent[k]) : 1.0f);
      sum += v * v;
    }
    rho = std::max(rho, std::sqrt(sum));
  }
  return std::log2(rho);
}

// tex/tld4: d[0..3] <- sample(texture a[0], coordinates a[1..aux], layer a[3]); aux =
// dimensions, aux2 = TexOut | kIntCoords | kLayered | kGather | kLevel | kGrad | channel << 8.
// Unnormalised coordinates address level 0's texels at every level.
uint32_t hTex(Warp& w, const Inst& in, uint32_t m) {
  const uint64_t* handle = TF_REG(in.a[0]);
  const int dims = static_cast<int>(in.aux);
  const bool intCoords = in.aux2 & kIntCoords;
  const bool layered = in.aux2 & kLayered, gathers = in.aux2 & kGather;
  const uint32_t comp = (in.aux2 >> 8) & 3;
  const uint32_t outKind = in.aux2 & 3;
  uint64_t* d[4];
  for (int k = 0; k < 4; ++k) d[k] = TF_REG(in.d[k]);
  return forObjectLanes(w, in, m, handle, "texture", [&](uint32_t i, const cuda::TextureView& t) {
    const uint32_t layer = layered ? static_cast<uint32_t>(TF_REG(in.a[3])[i]) : 0;
    float c[3] = {0, 0, 0};
    for (int k = 0; k < dims; ++k) {
      uint32_t bits = static_cast<uint32_t>(TF_REG(in.a[1 + k])[i]);
      c[k] = intCoords ? float(static_cast<int32_t>(bits)) : std::bit_cast<float>(bits);
    }
    cuda::TextureLevel img;
    if (gathers) { // level 0
      if (!pickImage(w, in, t, layered, layer, 0, &img)) return false;
      Texel q[4];
      gather(t, img, c, q);
      for (int k = 0; k < 4; ++k) d[k][i] = outKind == kOutF32 ? std::bit_cast<uint32_t>(q[k].f[comp]) : q[k].n[comp];
      return true;
    }
    uint32_t first;
    float weight;
    pickLevels(t, levelOfDetail(w, in, i, t, dims), &first, &weight);
    Texel v;
    for (uint32_t l = first; l <= first + (weight > 0 ? 1 : 0); ++l) {
      if (!pickImage(w, in, t, layered, layer, l, &img)) return false;
      float cl[3] = {c[0], c[1], c[2]};
      if (l > 0 && !t.normalizedCoords) {
        const uint32_t e0[3] = {t.width, t.height, t.depth}, el[3] = {img.width, img.height, img.depth};
        for (int k = 0; k < dims; ++k) cl[k] = c[k] * float(el[k]) / float(e0[k]);
      }
      Texel x = sample(t, img, cl, dims, intCoords);
      if (l == first) {
        v = x;
        continue;
      }
      for (int k = 0; k < 4; ++k) {
        v.f[k] = (1 - weight) * v.f[k] + weight * x.f[k];
        v.n[k] = std::bit_cast<uint32_t>(v.f[k]);
      }
    }
    for (int k = 0; k < 4; ++k) {
      if (outKind == kOutF32) d[k][i] = std::bit_cast<uint32_t>(v.f[k]);
      else d[k][i] = v.n[k];
    }
    return true;
  });
}

// A texture operand [handle, ...]: the slot of the handle register (texture objects only; a
// name that is not a register is a .texref, the pre-object API).
Result<uint32_t> textureHandle(Builder& b, const ast::Operand& where) {
  auto sym = b.lookup(where.name);
  if (!sym || sym->kind != Symbol::Kind::Reg) return b.unsupported();
  ast::Operand texReg;
  texReg.name = where.name;
  return b.srcOp(texReg, Ty::U64);
}

// tex{.level,.grad}.{1d,2d,3d,a1d,a2d}.v4.dtype.ctype d, [t, {coords}]{, lod | , dPdx, dPdy}
// tld4.{r,g,b,a}.{2d,a2d}.v4.dtype.f32 d, [t, {coords}]
Status dTexFetch(Builder& b, bool gathers) {
  uint32_t comp = 0;
  std::string lod;
  if (gathers) {
    std::string c;
    if (!b.mods.takeAny({".r", ".g", ".b", ".a"}, &c)) return b.error("tld4 needs a channel (.r .g .b .a)");
    comp = c == ".r" ? 0 : c == ".g" ? 1 : c == ".b" ? 2 : 3;
  } else {
    b.mods.takeAny({".level", ".grad"}, &lod);
  }
  std::string geometry;
  if (!b.mods.takeAny({".1d", ".2d", ".3d", ".a1d", ".a2d"}, &geometry)) return b.unsupported();
  const bool layered = geometry[1] == 'a';
  const int dims = geometry[layered ? 2 : 1] - '0';
  if (gathers && dims != 2) return b.unsupported();
  if (b.mods.takeVec() != 4) return b.unsupported();
  auto ts = b.mods.takeTypes();
  if (ts.size() != 2) return b.error("a texture fetch takes a result type and a coordinate type");
  uint32_t outKind;
  switch (ts[0]) {
  case Ty::F32: outKind = kOutF32; break;
  case Ty::S32: outKind = kOutS32; break;
  case Ty::U32: outKind = kOutU32; break;
  default: return b.unsupported();
  }
  if (ts[1] != Ty::F32 && (ts[1] != Ty::S32 || gathers)) return b.unsupported();
  const size_t lodOps = lod == ".level" ? 1 : lod == ".grad" ? 2 : 0;
  if (b.numOps() != 2 + lodOps) return b.unsupported(); // offsets, depth compare
  const auto& dst = b.op(0);
  const auto& src = b.op(1);
  if (dst.kind != ast::Operand::Kind::Vec || dst.elems.size() != 4 || !dst.pairPred.empty())
    return b.error("a texture fetch needs four destinations");
  // The coordinates: the layer first when layered, then one per dimension; 3D and a2d take
  // four (the last unused).
  const size_t want = dims == 3 || (layered && dims == 2) ? 4 : static_cast<size_t>(dims) + (layered ? 1 : 0);
  if (src.kind != ast::Operand::Kind::Addr || src.name.empty() || src.imm != 0 ||
      src.elems.size() != 1 || src.elems[0].kind != ast::Operand::Kind::Vec ||
      src.elems[0].elems.size() != want)
    return b.error("a texture fetch needs [texture, {coordinates}]");
  auto h = textureHandle(b, src);
  if (!h) return h.status();
  const auto& cs = src.elems[0].elems;
  uint32_t coords[3] = {0, 0, 0};
  if (layered) {
    auto l = b.srcOp(cs[0], Ty::U32);
    if (!l) return l.status();
    coords[2] = *l;
  }
  for (int k = 0; k < dims; ++k) {
    auto c = b.srcOp(cs[static_cast<size_t>(k) + (layered ? 1 : 0)], ts[1]);
    if (!c) return c.status();
    coords[k] = *c;
  }
  // The level of detail, or the gradients (one value per dimension, the rest unused).
  std::vector<uint32_t> lodSlots(lod == ".grad" ? 6 : 1, lodOps ? b.constSlot(0) : 0);
  for (size_t k = 2; k < 2 + lodOps; ++k) {
    const auto& o = b.op(k);
    if (lod == ".level") {
      auto x = b.src(k, Ty::F32);
      if (!x) return x.status();
      lodSlots[0] = *x;
      continue;
    }
    if (o.kind != ast::Operand::Kind::Vec || o.elems.size() < static_cast<size_t>(dims))
      return b.error("tex.grad needs two gradient vectors");
    for (int e = 0; e < dims; ++e) {
      auto x = b.srcOp(o.elems[static_cast<size_t>(e)], Ty::F32);
      if (!x) return x.status();
      lodSlots[(k - 2) * 3 + static_cast<size_t>(e)] = *x;
    }
  }
  auto& list = b.fd.fn.operands;
  const uint32_t lodAt = static_cast<uint32_t>(list.size());
  if (lodOps) list.insert(list.end(), lodSlots.begin(), lodSlots.end());
  uint32_t out[4];
  for (int k = 0; k < 4; ++k) {
    auto x = b.dstOp(dst.elems[k]);
    if (!x) return x.status();
    out[k] = *x;
  }
  Inst& in = b.emit(hTex);
  in.a[0] = *h;
  for (int k = 0; k < 3; ++k) in.a[1 + k] = coords[k];
  for (int k = 0; k < 4; ++k) in.d[k] = out[k];
  in.aux = static_cast<uint32_t>(dims);
  in.imm = lodAt;
  in.aux2 = outKind | (ts[1] == Ty::S32 ? kIntCoords : 0) | (layered ? kLayered : 0) |
            (gathers ? kGather : 0) | (lod == ".level" ? kLevel : 0) | (lod == ".grad" ? kGrad : 0) | comp << 8;
  return Status::ok();
}

// txq.query.b32 d, [t]: what the texture object is. Addressing modes and the filter are PTX's
// enums (wrap 0, mirror 1, clamp_to_edge 3, clamp_to_border 4; nearest 0, linear 1); extents
// are 1 along dimensions the texture lacks; array_size is the layer count (0: not layered).
enum TxqQuery : uint32_t { kQWidth, kQHeight, kQDepth, kQNormalized, kQFilter, kQAddr0, kQArraySize = kQAddr0 + 3, kQLevels };

uint32_t txqValue(const cuda::TextureView& t, uint32_t query) {
  switch (query) {
  case kQWidth: return t.width;
  case kQHeight: return t.height;
  case kQDepth: return t.layers ? 1 : t.depth;
  case kQNormalized: return t.normalizedCoords ? 1 : 0;
  case kQFilter: return t.filter == CU_TR_FILTER_MODE_LINEAR ? 1 : 0;
  case kQArraySize: return t.layers;
  case kQLevels: return t.levels;
  default: {
    switch (t.address[query - kQAddr0]) {
    case CU_TR_ADDRESS_MODE_WRAP: return 0;
    case CU_TR_ADDRESS_MODE_MIRROR: return 1;
    case CU_TR_ADDRESS_MODE_BORDER: return 4;
    default: return 3;
    }
  }
  }
}

uint32_t hTxq(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  return forObjectLanes(w, in, m, TF_REG(in.a[0]), "texture", [&](uint32_t i, const cuda::TextureView& t) {
    d[i] = txqValue(t, in.aux);
    return true;
  });
}

Status dTxq(Builder& b) {
  static const std::pair<const char*, uint32_t> kQueries[] = {
      {".width", kQWidth}, {".height", kQHeight}, {".depth", kQDepth},
      {".normalized_coords", kQNormalized}, {".filter_mode", kQFilter},
      {".addr_mode_0", kQAddr0}, {".addr_mode_1", kQAddr0 + 1}, {".addr_mode_2", kQAddr0 + 2},
      {".array_size", kQArraySize}, {".num_mipmap_levels", kQLevels}};
  uint32_t query = UINT32_MAX;
  for (const auto& [name, q] : kQueries)
    if (b.mods.take(name)) query = q;
  if (query == UINT32_MAX) return b.unsupported(); // .level queries, channel type/order, samples
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1 || ts[0] != Ty::B32) return b.error("txq returns .b32");
  if (b.numOps() != 2) return b.unsupported();
  const auto& where = b.op(1);
  if (where.kind != ast::Operand::Kind::Addr || where.name.empty() || where.imm != 0 || !where.elems.empty())
    return b.error("txq needs [texture]");
  auto h = textureHandle(b, where);
  if (!h) return h.status();
  auto d = b.dst(0);
  if (!d) return d.status();
  Inst& in = b.emit(hTxq);
  in.a[0] = *h;
  in.d[0] = *d;
  in.aux = query;
  return Status::ok();
}

// ---- surfaces: suld.b / sust.b ------------------------------------------------------------
// x is in bytes, y and z in rows and slices. Out of range: .trap faults, .zero reads zeros and
// drops writes, .clamp moves to the nearest element.
enum SurfClamp : uint32_t { kTrap = 0, kZero = 1, kClamp = 2 };

// The bytes of the element at the coordinates, or nullptr (out of range under .zero; a fault
// under .trap sets *fault).
uint8_t* surfaceElement(const cuda::TextureView& v, const int64_t c[3], int dims, uint32_t size,
                        uint32_t clamp, bool* fault) {
  const int64_t rowBytes = int64_t(v.width) * cuda::arrayFormatBytes(v.format) * v.channels;
  const int64_t limit[3] = {rowBytes - int64_t(size), int64_t(v.height) - 1, int64_t(v.depth) - 1};
  int64_t at[3] = {0, 0, 0};
  for (int k = 0; k < dims; ++k) {
    at[k] = c[k];
    if (at[k] >= 0 && at[k] <= limit[k] && (k != 0 || at[k] % size == 0)) continue;
    if (clamp == kClamp && limit[k] >= 0) {
      at[k] = at[k] < 0 ? 0 : at[k] > limit[k] ? limit[k] : at[k];
      if (k == 0) at[k] -= at[k] % size;
      continue;
    }
    if (clamp == kTrap) *fault = true;
    return nullptr;
  }
  return v.data + uint64_t(at[2]) * v.slicePitch + uint64_t(at[1]) * v.pitch + uint64_t(at[0]);
}

// suld / sust: the operand list at Function::operands[imm] holds the surface, three
// coordinate slots and up to four value slots; aux = dims | n << 2 | bytes << 5, aux2 = clamp.
template <bool Store> uint32_t hSurf(Warp& w, const Inst& in, uint32_t m) {
  const Function& fn = *w.fn;
  const uint32_t* ops = fn.operands.data() + in.imm; // surface, coords[3], values[4]
  const uint64_t* handle = TF_REG(ops[0]);
  const int dims = static_cast<int>(in.aux & 3);
  const uint32_t n = (in.aux >> 2) & 7, bytes = (in.aux >> 5) & 15, clamp = in.aux2;
  return forObjectLanes(w, in, m, handle, "surface", [&](uint32_t i, const cuda::TextureView& view) {
    int64_t c[3] = {0, 0, 0};
    for (int k = 0; k < dims; ++k) c[k] = static_cast<int32_t>(TF_REG(ops[1 + k])[i]);
    bool fault = false;
    uint8_t* p = surfaceElement(view, c, dims, n * bytes, clamp, &fault);
    if (fault) {
      faultAt(w, in, CUDA_ERROR_ILLEGAL_ADDRESS,
              "surface access out of range at (" + std::to_string(c[0]) + ", " +
                  std::to_string(c[1]) + ", " + std::to_string(c[2]) + ")");
      return false;
    }
    for (uint32_t k = 0; k < n; ++k) {
      uint64_t* r = TF_REG(ops[4 + k]) + i;
      if (Store) {
        if (p) std::memcpy(p + k * bytes, r, bytes); // little-endian: the low bytes
      } else {
        uint64_t v = 0;
        if (p) std::memcpy(&v, p + k * bytes, bytes);
        *r = v;
      }
    }
    return true;
  });
}

template <bool Store> Status dSurf(Builder& b) {
  if (!b.mods.take(".b")) return b.unsupported(); // .p (formatted) is not supported
  std::string geometry;
  if (!b.mods.takeAny({".1d", ".2d", ".3d"}, &geometry)) return b.unsupported();
  const int dims = geometry[1] - '0';
  const int n = b.mods.takeVec();
  std::string clampName = ".trap";
  b.mods.takeAny({".trap", ".zero", ".clamp"}, &clampName);
  b.mods.takeAny({".ca", ".cg", ".cs", ".cv", ".wb", ".wt"}, nullptr);
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("a surface access takes one type");
  uint32_t bytes = 0;
  switch (ts[0]) {
  case Ty::B8: bytes = 1; break;
  case Ty::B16: bytes = 2; break;
  case Ty::B32: bytes = 4; break;
  case Ty::B64: bytes = 8; break;
  default: return b.unsupported();
  }
  if (b.numOps() != 2) return b.error("a surface access takes two operands");
  const auto& where = b.op(Store ? 0 : 1);
  const auto& values = b.op(Store ? 1 : 0);
  const size_t want = dims == 3 ? 4 : static_cast<size_t>(dims);
  if (where.kind != ast::Operand::Kind::Addr || where.name.empty() || where.imm != 0 ||
      where.elems.size() != 1 || where.elems[0].kind != ast::Operand::Kind::Vec ||
      where.elems[0].elems.size() != want)
    return b.error("a surface access needs [surface, {coordinates}]");
  std::vector<uint32_t> ops(8, 0);
  auto h = textureHandle(b, where); // a .surfref is not supported
  if (!h) return h.status();
  ops[0] = *h;
  for (int k = 0; k < dims; ++k) {
    auto c = b.srcOp(where.elems[0].elems[k], Ty::S32);
    if (!c) return c.status();
    ops[1 + k] = *c;
  }
  std::vector<const ast::Operand*> elems;
  if (n == 1) {
    // A scalar is written bare or in braces ({%r1}, as nvcc writes sust).
    if (values.kind == ast::Operand::Kind::Vec && values.elems.size() != 1)
      return b.error("vector operand for a scalar access");
    elems.push_back(values.kind == ast::Operand::Kind::Vec ? &values.elems[0] : &values);
  } else {
    if (values.kind != ast::Operand::Kind::Vec || values.elems.size() != static_cast<size_t>(n))
      return b.error("a vector surface access needs " + std::to_string(n) + " values");
    for (const auto& e : values.elems) elems.push_back(&e);
  }
  for (int k = 0; k < n; ++k) {
    auto r = Store ? b.srcOp(*elems[k], ts[0]) : b.dstOp(*elems[k]);
    if (!r) return r.status();
    ops[4 + k] = *r;
  }
  auto& list = b.fd.fn.operands;
  const uint32_t at = static_cast<uint32_t>(list.size());
  list.insert(list.end(), ops.begin(), ops.end());
  Inst& in = b.emit(&hSurf<Store>);
  in.imm = at;
  in.aux = uint32_t(dims) | uint32_t(n) << 2 | bytes << 5;
  in.aux2 = clampName == ".zero" ? kZero : clampName == ".clamp" ? kClamp : kTrap;
  return Status::ok();
}

} // namespace

void registerTexOps(std::unordered_map<std::string, DecodeFn>& r) {
  r["tex"] = [](Builder& b) { return dTexFetch(b, false); };
  r["tld4"] = [](Builder& b) { return dTexFetch(b, true); };
  r["txq"] = dTxq;
  r["suld"] = dSurf<false>;
  r["sust"] = dSurf<true>;
}

} // namespace tf::ptx
