// mov, cvt, cvta, isspacep and the special-register / symbol-address moves.
#include <chrono>
#include <cmath>
#include <limits>
#include <thread>

#include "ptx/float_math.h"
#include "ptx/function_decoder.h"
#include "ptx/half.h"
#include "ptx/ops_common.h"

namespace tf::ptx {

uint64_t nowNanos() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

uint32_t hMovSpecial(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  const Cta& c = *w.cta;
  const LaunchCtx& L = *w.launch;
  const cuda::Dim3& bd = L.block;
  auto sp = static_cast<Special>(in.aux);
  uint64_t uniform = 0;
  bool perLane = false;
  switch (sp) {
  case Special::TidX: case Special::TidY: case Special::TidZ: case Special::LaneId:
  case Special::LanemaskEq: case Special::LanemaskLe: case Special::LanemaskLt:
  case Special::LanemaskGe: case Special::LanemaskGt:
    perLane = true;
    break;
  case Special::NtidX: uniform = bd.x; break;
  case Special::NtidY: uniform = bd.y; break;
  case Special::NtidZ: uniform = bd.z; break;
  case Special::CtaidX: case Special::ClusterIdX: uniform = c.ctaid[0]; break;
  case Special::CtaidY: case Special::ClusterIdY: uniform = c.ctaid[1]; break;
  case Special::CtaidZ: case Special::ClusterIdZ: uniform = c.ctaid[2]; break;
  case Special::NctaidX: case Special::NClusterIdX: uniform = L.grid.x; break;
  case Special::NctaidY: case Special::NClusterIdY: uniform = L.grid.y; break;
  case Special::NctaidZ: case Special::NClusterIdZ: uniform = L.grid.z; break;
  case Special::WarpId: uniform = w.id; break;
  case Special::NWarpId: uniform = c.nwarps; break;
  case Special::SmId: uniform = c.workerId; break;
  case Special::NSmId: uniform = L.numWorkers; break;
  case Special::GridId: uniform = L.gridId; break;
  case Special::Clock: uniform = static_cast<uint32_t>(nowNanos()); break;
  case Special::Clock64: uniform = nowNanos(); break;
  case Special::GlobalTimer: {
    uniform = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
    break;
  }
  case Special::GlobalTimerLo: uniform = static_cast<uint32_t>(nowNanos()); break;
  case Special::GlobalTimerHi: uniform = nowNanos() >> 32; break;
  case Special::DynSmem: uniform = L.dynamicShared; break;
  // the grid-barrier workspace pointer cooperative groups read (0 outside cooperative launches)
  case Special::EnvReg1: uniform = L.gridWorkspace.empty() ? 0 : (kGridWindow >> 32); break;
  case Special::EnvReg2: uniform = L.gridWorkspace.empty() ? 0 : (kGridWindow & 0xFFFFFFFFu); break;
  case Special::TotalSmem: uniform = L.sharedBytes; break;
  case Special::ClusterNCtaRank: case Special::ClusterNCtaidX: case Special::ClusterNCtaidY:
  case Special::ClusterNCtaidZ:
    uniform = 1;
    break;
  default: uniform = 0; break;
  }
  if (!perLane) {
    forLanes(m, [&](uint32_t i) { d[i] = uniform; });
    return in.next;
  }
  if (sp == Special::TidX || sp == Special::TidY || sp == Special::TidZ) {
    // walk the 32 linear thread ids with carries instead of dividing per lane
    uint32_t t0 = w.id * 32;
    uint32_t x = t0 % bd.x, y = (t0 / bd.x) % bd.y, z = t0 / (bd.x * bd.y);
    uint32_t vals[32];
    for (uint32_t i = 0; i < 32; ++i) {
      vals[i] = sp == Special::TidX ? x : sp == Special::TidY ? y : z;
      if (++x == bd.x) {
        x = 0;
        if (++y == bd.y) {
          y = 0;
          ++z;
        }
      }
    }
    forLanes(m, [&](uint32_t i) { d[i] = vals[i]; });
    return in.next;
  }
  forLanes(m, [&](uint32_t i) {
    uint32_t t = w.id * 32 + i;
    uint64_t v = 0;
    switch (sp) {
    case Special::TidX: v = t % bd.x; break;
    case Special::TidY: v = (t / bd.x) % bd.y; break;
    case Special::TidZ: v = t / (bd.x * bd.y); break;
    case Special::LaneId: v = i; break;
    case Special::LanemaskEq: v = 1u << i; break;
    case Special::LanemaskLe: v = (i == 31) ? 0xFFFFFFFFu : ((2u << i) - 1); break;
    case Special::LanemaskLt: v = (1u << i) - 1; break;
    case Special::LanemaskGe: v = ~((1u << i) - 1) & 0xFFFFFFFFu; break;
    case Special::LanemaskGt: v = (i == 31) ? 0 : (~((2u << i) - 1) & 0xFFFFFFFFu); break;
    default: break;
    }
    d[i] = v;
  });
  return in.next;
}

uint32_t hMovSymAddr(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  uint64_t v = w.launch->symAddr[in.aux] + static_cast<uint64_t>(in.imm);
  for (uint32_t i = 0; i < 32; ++i) d[i] = v; // uniform; safe to write all lanes of a temp
  (void)m;
  return in.next;
}

uint32_t hMovLocalAddr(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  uint64_t v = w.localBase + static_cast<uint64_t>(in.imm) + (in.aux ? kLocalWindow : 0);
  forLanes(m, [&](uint32_t i) { d[i] = v; });
  return in.next;
}

namespace {

uint32_t hMov(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  const uint64_t* a = TF_REG(in.a[0]);
  forLanes(m, [&](uint32_t i) { d[i] = a[i]; });
  return in.next;
}

// pack: d = {a0, a1, ...} each part aux bits wide
uint32_t hPack(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  const uint32_t bits = in.aux, n = in.aux2;
  const uint64_t mask = bits >= 64 ? ~0ull : ((1ull << bits) - 1);
  forLanes(m, [&](uint32_t i) {
    uint64_t v = 0;
    for (uint32_t k = 0; k < n; ++k) v |= (TF_REG(in.a[k])[i] & mask) << (bits * k);
    d[i] = v;
  });
  return in.next;
}
uint32_t hUnpack(Warp& w, const Inst& in, uint32_t m) {
  const uint64_t* a = TF_REG(in.a[0]);
  const uint32_t bits = in.aux, n = in.aux2;
  const uint64_t mask = bits >= 64 ? ~0ull : ((1ull << bits) - 1);
  forLanes(m, [&](uint32_t i) {
    uint64_t v = a[i];
    for (uint32_t k = 0; k < n; ++k) TF_REG(in.d[k])[i] = (v >> (bits * k)) & mask;
  });
  return in.next;
}

Status dMov(Builder& b) {
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected one type");
  Ty t = ts[0];
  if (b.numOps() != 2) return b.error("mov takes two operands");
  if (t == Ty::Pred) {
    auto d = b.predDst(0);
    if (!d) return d.status();
    bool neg = false;
    auto a = b.predSrc(1, &neg);
    if (!a) return a.status();
    Inst& in = b.emit([](Warp& w, const Inst& in, uint32_t m) -> uint32_t {
      uint32_t v = w.p[in.a[0]] ^ in.aux;
      w.p[in.d[0]] = (w.p[in.d[0]] & ~m) | (v & m);
      return in.next;
    });
    in.d[0] = *d;
    in.a[0] = *a;
    in.aux = neg ? ~0u : 0u;
    return Status::ok();
  }
  const auto& src = b.op(1);
  const auto& dst = b.op(0);
  if (src.kind == ast::Operand::Kind::Vec) {
    uint32_t n = static_cast<uint32_t>(src.elems.size());
    if (n < 2 || n > 4 || tySize(t) * 8 % n) return b.error("bad vector pack");
    uint32_t s[4];
    for (uint32_t k = 0; k < n; ++k) {
      auto x = b.srcOp(src.elems[k], Ty::None);
      if (!x) return x.status();
      s[k] = *x;
    }
    auto d = b.dst(0);
    if (!d) return d.status();
    Inst& in = b.emit(hPack);
    in.d[0] = *d;
    for (uint32_t k = 0; k < n; ++k) in.a[k] = s[k];
    in.aux = tySize(t) * 8 / n;
    in.aux2 = n;
    return Status::ok();
  }
  if (dst.kind == ast::Operand::Kind::Vec) {
    uint32_t n = static_cast<uint32_t>(dst.elems.size());
    if (n < 2 || n > 4 || tySize(t) * 8 % n) return b.error("bad vector unpack");
    auto a = b.src(1, t);
    if (!a) return a.status();
    uint32_t s[4];
    for (uint32_t k = 0; k < n; ++k) {
      auto x = b.dstOp(dst.elems[k]);
      if (!x) return x.status();
      s[k] = *x;
    }
    Inst& in = b.emit(hUnpack);
    in.a[0] = *a;
    for (uint32_t k = 0; k < n; ++k) in.d[k] = s[k];
    in.aux = tySize(t) * 8 / n;
    in.aux2 = n;
    return Status::ok();
  }
  Special sp;
  if (src.kind == ast::Operand::Kind::Reg && !src.name.empty() && src.name[0] == '%' &&
      parseSpecial(src.name, &sp)) {
    auto d = b.dst(0);
    if (!d) return d.status();
    Inst& in = b.emit(hMovSpecial);
    in.d[0] = *d;
    in.aux = static_cast<uint32_t>(sp);
    return Status::ok();
  }
  auto d = b.dst(0);
  if (!d) return d.status();
  auto a = b.src(1, t);
  if (!a) return a.status();
  Inst& in = b.emit(hMov);
  in.d[0] = *d;
  in.a[0] = *a;
  return Status::ok();
}

// ----- cvt ----------------------------------------------------------------------------------

struct H16 {
  uint16_t bits;
};
struct BF16 {
  uint16_t bits;
};

template <class T> constexpr bool isHalfT = std::is_same_v<T, H16> || std::is_same_v<T, BF16>;
template <class T> constexpr bool isFloatT = std::is_floating_point_v<T> || isHalfT<T>;

template <class T> T load(uint64_t v) {
  if constexpr (std::is_same_v<T, H16>) {
    return H16{static_cast<uint16_t>(v)};
  } else if constexpr (std::is_same_v<T, BF16>) {
    return BF16{static_cast<uint16_t>(v)};
  } else {
    return rd<T>(v);
  }
}
template <class T> uint64_t store(T v) {
  if constexpr (isHalfT<T>) {
    return v.bits;
  } else {
    return wr<T>(v);
  }
}
template <class T> double toDouble(T v) {
  if constexpr (std::is_same_v<T, H16>) {
    return halfToFloat(v.bits);
  } else if constexpr (std::is_same_v<T, BF16>) {
    return bf16ToFloat(v.bits);
  } else {
    return static_cast<double>(v);
  }
}

// aux: [0..1] float rounding, bit 2: integer rounding given, [3..4] integer rounding,
// bit 5 ftz, bit 6 sat
constexpr uint32_t kIrnd = 4, kCFtz = 32, kCSat = 64;

inline double roundInt(double x, uint32_t mode) {
  switch (mode) {
  case 0: return std::nearbyint(x); // rni: nearest even (default rounding mode)
  case 1: return std::trunc(x);
  case 2: return std::floor(x);
  default: return std::ceil(x);
  }
}

template <class D> D satInt(double x) {
  if (std::isnan(x)) return D(0);
  constexpr double lo = static_cast<double>(std::numeric_limits<D>::min());
  constexpr double hi = static_cast<double>(std::numeric_limits<D>::max());
  if (x <= lo) return std::numeric_limits<D>::min();
  if (x >= hi) return std::numeric_limits<D>::max();
  return static_cast<D>(x);
}

template <class D, class A> uint64_t convert(uint64_t raw, uint32_t aux) {
  A a = load<A>(raw);
  if constexpr (!isFloatT<D> && !isFloatT<A>) {
    // integer -> integer
    if (aux & kCSat) {
      using W = std::conditional_t<std::is_signed_v<A>, int64_t, uint64_t>;
      W v = static_cast<W>(a);
      if constexpr (std::is_signed_v<A>) {
        if constexpr (std::is_signed_v<D>) {
          if (v < int64_t(std::numeric_limits<D>::min())) return wr<D>(std::numeric_limits<D>::min());
          if (v > int64_t(std::numeric_limits<D>::max())) return wr<D>(std::numeric_limits<D>::max());
        } else {
          if (v < 0) return 0;
          if (uint64_t(v) > uint64_t(std::numeric_limits<D>::max())) return wr<D>(std::numeric_limits<D>::max());
        }
      } else {
        if (v > uint64_t(std::numeric_limits<D>::max())) return wr<D>(std::numeric_limits<D>::max());
      }
      return wr<D>(static_cast<D>(v));
    }
    return wr<D>(static_cast<D>(a));
  } else if constexpr (!isFloatT<D> && isFloatT<A>) {
    // float -> integer: round, saturate, NaN -> 0
    double x = toDouble(a);
    if constexpr (std::is_same_v<A, float>) {
      if (aux & kCFtz) x = fmath::ftz(static_cast<float>(x));
    }
    x = roundInt(x, (aux >> 3) & 3);
    return wr<D>(satInt<D>(x));
  } else if constexpr (isFloatT<D> && !isFloatT<A>) {
    // integer -> float (rounding scope set by the handler)
    if constexpr (std::is_same_v<D, H16>) {
      return floatToHalf(static_cast<float>(a));
    } else if constexpr (std::is_same_v<D, BF16>) {
      return floatToBf16(static_cast<float>(a));
    } else {
      D r = static_cast<D>(a);
      if (aux & kCSat) r = fmath::sat(r);
      return wr<D>(r);
    }
  } else {
    // float -> float
    if constexpr (std::is_same_v<A, float>) {
      if (aux & kCFtz) a = fmath::ftz(a);
    }
    if constexpr (std::is_same_v<D, H16>) {
      float f = static_cast<float>(toDouble(a));
      if (aux & kCSat) f = fmath::sat(f);
      return floatToHalf(f);
    } else if constexpr (std::is_same_v<D, BF16>) {
      float f = static_cast<float>(toDouble(a));
      if (aux & kCSat) f = fmath::sat(f);
      return floatToBf16(f);
    } else {
      D r;
      if constexpr (std::is_same_v<A, D>) {
        r = a;
        if (aux & kIrnd) r = static_cast<D>(roundInt(static_cast<double>(r), (aux >> 3) & 3));
      } else if constexpr (isHalfT<A>) {
        r = static_cast<D>(toDouble(a));
      } else {
        r = static_cast<D>(a);
        if (aux & kIrnd) r = static_cast<D>(roundInt(static_cast<double>(r), (aux >> 3) & 3));
      }
      if constexpr (std::is_same_v<D, float>) {
        if (aux & kCFtz) r = fmath::ftz(r);
      }
      if (aux & kCSat) r = fmath::sat(r);
      return wr<D>(r);
    }
  }
}

template <class D, class A> uint32_t hCvt(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  const uint64_t* a = TF_REG(in.a[0]);
  const uint32_t aux = in.aux;
  fmath::RoundingScope rs(aux & 3);
  forLanes(m, [&](uint32_t i) {
    uint64_t v = convert<D, A>(a[i], aux);
    if constexpr (std::is_signed_v<D> && !isFloatT<D>) {
      v = static_cast<uint64_t>(static_cast<int64_t>(static_cast<D>(v)));
    }
    d[i] = v;
  });
  return in.next;
}

template <class D> Handler cvtFrom(Ty a) {
  switch (a) {
  case Ty::U8: case Ty::B8: return &hCvt<D, uint8_t>;
  case Ty::S8: return &hCvt<D, int8_t>;
  case Ty::U16: case Ty::B16: return &hCvt<D, uint16_t>;
  case Ty::S16: return &hCvt<D, int16_t>;
  case Ty::U32: case Ty::B32: return &hCvt<D, uint32_t>;
  case Ty::S32: return &hCvt<D, int32_t>;
  case Ty::U64: case Ty::B64: return &hCvt<D, uint64_t>;
  case Ty::S64: return &hCvt<D, int64_t>;
  case Ty::F16: return &hCvt<D, H16>;
  case Ty::BF16: return &hCvt<D, BF16>;
  case Ty::F32: return &hCvt<D, float>;
  case Ty::F64: return &hCvt<D, double>;
  default: return nullptr;
  }
}
Handler cvtHandler(Ty d, Ty a) {
  switch (d) {
  case Ty::U8: case Ty::B8: return cvtFrom<uint8_t>(a);
  case Ty::S8: return cvtFrom<int8_t>(a);
  case Ty::U16: case Ty::B16: return cvtFrom<uint16_t>(a);
  case Ty::S16: return cvtFrom<int16_t>(a);
  case Ty::U32: case Ty::B32: return cvtFrom<uint32_t>(a);
  case Ty::S32: return cvtFrom<int32_t>(a);
  case Ty::U64: case Ty::B64: return cvtFrom<uint64_t>(a);
  case Ty::S64: return cvtFrom<int64_t>(a);
  case Ty::F16: return cvtFrom<H16>(a);
  case Ty::BF16: return cvtFrom<BF16>(a);
  case Ty::F32: return cvtFrom<float>(a);
  case Ty::F64: return cvtFrom<double>(a);
  default: return nullptr;
  }
}

// cvt.rn.f16x2.f32 d, a, b : d = {cvt(a) in the upper half, cvt(b) in the lower}
uint32_t hCvtPack(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  const uint64_t* a = TF_REG(in.a[0]);
  const uint64_t* b = TF_REG(in.a[1]);
  const bool bf = in.aux & 1, relu = in.aux & 2;
  forLanes(m, [&](uint32_t i) {
    float x = rd<float>(a[i]), y = rd<float>(b[i]);
    if (relu) {
      x = (std::isnan(x) || x > 0) ? x : 0.0f;
      y = (std::isnan(y) || y > 0) ? y : 0.0f;
    }
    uint32_t hi = bf ? floatToBf16(x) : floatToHalf(x);
    uint32_t lo = bf ? floatToBf16(y) : floatToHalf(y);
    d[i] = (hi << 16) | lo;
  });
  return in.next;
}

// cvt.rna.tf32.f32: round to 10 mantissa bits, nearest ties away
uint32_t hCvtTf32(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  const uint64_t* a = TF_REG(in.a[0]);
  forLanes(m, [&](uint32_t i) {
    uint32_t x = static_cast<uint32_t>(a[i]);
    if ((x & 0x7f800000u) != 0x7f800000u) x = (x + 0x1000u) & 0xffffe000u;
    d[i] = x;
  });
  return in.next;
}

Status dCvt(Builder& b) {
  uint32_t aux = 0;
  std::string r;
  if (b.mods.takeAny({".rni", ".rzi", ".rmi", ".rpi"}, &r)) {
    aux |= kIrnd;
    aux |= (r == ".rni" ? 0u : r == ".rzi" ? 1u : r == ".rmi" ? 2u : 3u) << 3;
  } else if (b.mods.takeAny({".rn", ".rz", ".rm", ".rp"}, &r)) {
    aux |= r == ".rn" ? 0u : r == ".rz" ? 1u : r == ".rm" ? 2u : 3u;
  }
  bool rna = b.mods.take(".rna");
  if (b.mods.take(".ftz")) aux |= kCFtz;
  if (b.mods.take(".sat")) aux |= kCSat;
  bool relu = b.mods.take(".relu");
  b.mods.take(".satfinite");
  auto ts = b.mods.takeTypes();
  if (ts.size() != 2) return b.error("cvt needs two types");
  Ty dt = ts[0], at = ts[1];
  if (dt == Ty::TF32 && at == Ty::F32) {
    auto d = b.dst(0);
    if (!d) return d.status();
    auto a = b.src(1, at);
    if (!a) return a.status();
    Inst& in = b.emit(hCvtTf32);
    in.d[0] = *d;
    in.a[0] = *a;
    return Status::ok();
  }
  if (rna) return b.unsupported();
  if ((dt == Ty::F16x2 || dt == Ty::BF16x2) && at == Ty::F32) {
    auto d = b.dst(0);
    if (!d) return d.status();
    auto a = b.src(1, at);
    if (!a) return a.status();
    auto c = b.src(2, at);
    if (!c) return c.status();
    Inst& in = b.emit(hCvtPack);
    in.d[0] = *d;
    in.a[0] = *a;
    in.a[1] = *c;
    in.aux = (dt == Ty::BF16x2 ? 1 : 0) | (relu ? 2 : 0);
    return Status::ok();
  }
  if (relu) return b.unsupported();
  // float -> int needs an integer rounding; default to .rzi like C if absent
  if (tyIsFloat(at) && !tyIsFloat(dt) && !(aux & kIrnd)) aux |= kIrnd | (1u << 3);
  if (!tyIsFloat(at) && !tyIsFloat(dt)) aux &= ~3u;
  Handler h = cvtHandler(dt, at);
  if (!h) return b.unsupported();
  auto d = b.dst(0);
  if (!d) return d.status();
  auto a = b.src(1, at);
  if (!a) return a.status();
  Inst& in = b.emit(h);
  in.d[0] = *d;
  in.a[0] = *a;
  in.aux = aux;
  return Status::ok();
}

// ----- cvta / isspacep ----------------------------------------------------------------------

uint32_t hAddWindow(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  const uint64_t* a = TF_REG(in.a[0]);
  const uint64_t add = static_cast<uint64_t>(in.imm);
  const uint64_t mask = in.aux ? 0xFFFFFFFFull : ~0ull;
  forLanes(m, [&](uint32_t i) { d[i] = (a[i] + add) & mask; });
  return in.next;
}

Status dCvta(Builder& b) {
  bool to = b.mods.take(".to");
  std::string sp;
  if (!b.mods.takeAny({".global", ".shared", ".local", ".const", ".param"}, &sp))
    return b.error("cvta needs a state space");
  b.mods.take(".shared::cta");
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected one type");
  uint64_t window = sp == ".shared" ? kSharedWindow : sp == ".local" ? kLocalWindow
                  : sp == ".param" ? kParamWindow : 0;
  if (sp == ".param" && !b.inEntry()) window = kLocalWindow;
  auto d = b.dst(0);
  if (!d) return d.status();
  auto a = b.src(1, ts[0]);
  if (!a) return a.status();
  Inst& in = b.emit(hAddWindow);
  in.d[0] = *d;
  in.a[0] = *a;
  in.imm = static_cast<int64_t>(to ? (0 - window) : window);
  in.aux = tySize(ts[0]) == 4 ? 1 : 0;
  return Status::ok();
}

uint32_t hIsspacep(Warp& w, const Inst& in, uint32_t m) {
  const uint64_t* a = TF_REG(in.a[0]);
  uint32_t bits = 0;
  forLanes(m, [&](uint32_t i) {
    uint64_t x = a[i];
    bool r;
    switch (in.aux) {
    case 1: r = x - kSharedWindow < kWindowSize; break;
    case 2: r = x - kLocalWindow < kWindowSize; break;
    case 3: r = x - kParamWindow < kWindowSize; break;
    default: r = !(x - kWindowLow < kWindowHigh - kWindowLow); break;
    }
    if (r) bits |= 1u << i;
  });
  w.p[in.d[0]] = (w.p[in.d[0]] & ~m) | bits;
  return in.next;
}
Status dIsspacep(Builder& b) {
  std::string sp;
  if (!b.mods.takeAny({".global", ".shared", ".local", ".const", ".param"}, &sp))
    return b.error("isspacep needs a state space");
  b.mods.take(".shared::cta");
  auto p = b.predDst(0);
  if (!p) return p.status();
  auto a = b.src(1, Ty::U64);
  if (!a) return a.status();
  Inst& in = b.emit(hIsspacep);
  in.d[0] = *p;
  in.a[0] = *a;
  in.aux = sp == ".shared" ? 1 : sp == ".local" ? 2 : sp == ".param" ? 3 : 0;
  return Status::ok();
}

} // namespace

void registerMovOps(std::unordered_map<std::string, DecodeFn>& r) {
  r["mov"] = dMov;
  r["cvt"] = dCvt;
  r["cvta"] = dCvta;
  r["isspacep"] = dIsspacep;
}

} // namespace tf::ptx
