// Floating-point arithmetic (f32/f64 and f16/bf16 scalars and pairs), comparisons and selects.
#include <cmath>

#include "ptx/float_math.h"
#include "ptx/function_decoder.h"
#include "ptx/half.h"
#include "ptx/ops_common.h"

namespace tf::ptx {

namespace {

namespace fm = fmath;

// aux bits for the generic float handlers: [0..1] rounding, 4 ftz, 8 sat
constexpr uint32_t kFtz = 4, kSat = 8;

#define TF_FOP2(Name, expr)                                                                       \
  struct Name {                                                                                   \
    template <class T> static T f(T a, T b) { return expr; }                                      \
  };
#define TF_FOP1(Name, expr)                                                                       \
  struct Name {                                                                                   \
    template <class T> static T f(T a) { return expr; }                                           \
  };

TF_FOP2(FAdd, a + b)
TF_FOP2(FSub, a - b)
TF_FOP2(FMul, a * b)
TF_FOP2(FDiv, a / b)
TF_FOP2(FMin, fm::fmin(a, b))
TF_FOP2(FMax, fm::fmax(a, b))
TF_FOP2(FMinNaN, fm::fminNaN(a, b))
TF_FOP2(FMaxNaN, fm::fmaxNaN(a, b))
TF_FOP2(FCopysign, std::copysign(b, a))
TF_FOP1(FNeg, -a)
TF_FOP1(FAbs, std::fabs(a))
TF_FOP1(FRcp, T(1) / a)
TF_FOP1(FSqrt, std::sqrt(a))
TF_FOP1(FRsqrt, T(1) / std::sqrt(a))
TF_FOP1(FSin, std::sin(a))
TF_FOP1(FCos, std::cos(a))
TF_FOP1(FLg2, std::log2(a))
TF_FOP1(FEx2, std::exp2(a))
TF_FOP1(FTanh, std::tanh(a))
TF_FOP1(FRelu, (std::isnan(a) ? a : (a < T(0) ? T(0) : a)))

// fast path: .rn, no ftz, no sat
template <class T, class Op> struct FBin {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) {
    uint64_t* d = TF_REG(in.d[0]);
    const uint64_t* a = TF_REG(in.a[0]);
    const uint64_t* b = TF_REG(in.a[1]);
    forLanes(m, [&](uint32_t i) { d[i] = wr<T>(Op::f(rd<T>(a[i]), rd<T>(b[i]))); });
    return in.next;
  }
};
template <class T, class Op> struct FUn {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) {
    uint64_t* d = TF_REG(in.d[0]);
    const uint64_t* a = TF_REG(in.a[0]);
    forLanes(m, [&](uint32_t i) { d[i] = wr<T>(Op::f(rd<T>(a[i]))); });
    return in.next;
  }
};
template <class T> struct FFma {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) {
    uint64_t* d = TF_REG(in.d[0]);
    const uint64_t* a = TF_REG(in.a[0]);
    const uint64_t* b = TF_REG(in.a[1]);
    const uint64_t* c = TF_REG(in.a[2]);
    forLanes(m, [&](uint32_t i) { d[i] = wr<T>(std::fma(rd<T>(a[i]), rd<T>(b[i]), rd<T>(c[i]))); });
    return in.next;
  }
};

// The same with the FMA instruction set (chosen at decode time when the CPU has it); written
// without lambdas so that the whole loop is compiled for the target.
template <class T> struct FFmaHw {
  __attribute__((target("fma"))) static uint32_t run(Warp& w, const Inst& in, uint32_t m) {
    uint64_t* d = TF_REG(in.d[0]);
    const uint64_t* a = TF_REG(in.a[0]);
    const uint64_t* b = TF_REG(in.a[1]);
    const uint64_t* c = TF_REG(in.a[2]);
    if (m == 0xFFFFFFFFu) {
      for (uint32_t i = 0; i < 32; ++i) {
        if constexpr (std::is_same_v<T, float>) {
          d[i] = std::bit_cast<uint32_t>(__builtin_fmaf(std::bit_cast<float>(static_cast<uint32_t>(a[i])),
                                                        std::bit_cast<float>(static_cast<uint32_t>(b[i])),
                                                        std::bit_cast<float>(static_cast<uint32_t>(c[i]))));
        } else {
          d[i] = std::bit_cast<uint64_t>(__builtin_fma(std::bit_cast<double>(a[i]), std::bit_cast<double>(b[i]),
                                                       std::bit_cast<double>(c[i])));
        }
      }
    } else {
      while (m) {
        uint32_t i = static_cast<uint32_t>(__builtin_ctz(m));
        m &= m - 1;
        if constexpr (std::is_same_v<T, float>) {
          d[i] = std::bit_cast<uint32_t>(__builtin_fmaf(std::bit_cast<float>(static_cast<uint32_t>(a[i])),
                                                        std::bit_cast<float>(static_cast<uint32_t>(b[i])),
                                                        std::bit_cast<float>(static_cast<uint32_t>(c[i]))));
        } else {
          d[i] = std::bit_cast<uint64_t>(__builtin_fma(std::bit_cast<double>(a[i]), std::bit_cast<double>(b[i]),
                                                       std::bit_cast<double>(c[i])));
        }
      }
    }
    return in.next;
  }
};

bool cpuHasFma() {
  static const bool has = __builtin_cpu_supports("fma");
  return has;
}

template <class T> inline T post(T r, uint32_t aux) {
  if (aux & kFtz) r = fm::ftz(r);
  if (aux & kSat) r = fm::sat(r);
  return r;
}
template <class T> inline T pre(T x, uint32_t aux) { return (aux & kFtz) ? fm::ftz(x) : x; }

// generic path: rounding mode, ftz and sat from aux
template <class T, class Op> struct FBinG {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) {
    uint64_t* d = TF_REG(in.d[0]);
    const uint64_t* a = TF_REG(in.a[0]);
    const uint64_t* b = TF_REG(in.a[1]);
    const uint32_t aux = in.aux;
    fm::RoundingScope rs(aux & 3);
    forLanes(m, [&](uint32_t i) {
      d[i] = wr<T>(post(Op::f(pre(rd<T>(a[i]), aux), pre(rd<T>(b[i]), aux)), aux));
    });
    return in.next;
  }
};
template <class T, class Op> struct FUnG {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) {
    uint64_t* d = TF_REG(in.d[0]);
    const uint64_t* a = TF_REG(in.a[0]);
    const uint32_t aux = in.aux;
    fm::RoundingScope rs(aux & 3);
    forLanes(m, [&](uint32_t i) { d[i] = wr<T>(post(Op::f(pre(rd<T>(a[i]), aux)), aux)); });
    return in.next;
  }
};
template <class T> struct FFmaG {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) {
    uint64_t* d = TF_REG(in.d[0]);
    const uint64_t* a = TF_REG(in.a[0]);
    const uint64_t* b = TF_REG(in.a[1]);
    const uint64_t* c = TF_REG(in.a[2]);
    const uint32_t aux = in.aux;
    fm::RoundingScope rs(aux & 3);
    forLanes(m, [&](uint32_t i) {
      d[i] = wr<T>(post(std::fma(pre(rd<T>(a[i]), aux), pre(rd<T>(b[i]), aux), pre(rd<T>(c[i]), aux)), aux));
    });
    return in.next;
  }
};

// half precision: values converted to float, computed, rounded back. aux bit 16: bf16,
// bit 32: packed pair (x2). Binary ops via op id in aux2.
inline float hget(uint32_t bits, bool bf) { return bf ? bf16ToFloat(uint16_t(bits)) : halfToFloat(uint16_t(bits)); }
inline uint32_t hput(float v, bool bf) { return bf ? floatToBf16(v) : floatToHalf(v); }
constexpr uint32_t kBf = 16, kPair = 32;

float halfOp(uint32_t op, float a, float b, float c, uint32_t aux) {
  double r;
  switch (op) {
  case 0: r = double(a) + double(b); break;
  case 1: r = double(a) - double(b); break;
  case 2: r = double(a) * double(b); break;
  case 3: r = double(a) * double(b) + double(c); break;
  case 4: r = -a; break;
  case 5: r = std::fabs(a); break;
  case 6: r = fm::fmin(a, b); break;
  case 7: r = fm::fmax(a, b); break;
  case 8: r = std::exp2(a); break;
  case 9: r = std::tanh(a); break;
  case 10: r = fm::fminNaN(a, b); break;
  case 11: r = fm::fmaxNaN(a, b); break;
  case 12: r = 1.0 / a; break;
  case 13: r = std::sqrt(a); break;
  case 14: r = 1.0 / std::sqrt(a); break;
  case 15: r = std::sin(a); break;
  case 16: r = std::cos(a); break;
  case 17: r = std::log2(a); break;
  default: r = a; break;
  }
  float f = static_cast<float>(r);
  if (aux & kSat) f = fm::sat(f);
  return f;
}

uint32_t hHalf(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  const uint64_t* a = TF_REG(in.a[0]);
  const uint64_t* b = TF_REG(in.a[1]);
  const uint64_t* c = TF_REG(in.a[2]);
  const uint32_t aux = in.aux, op = in.aux2;
  const bool bf = aux & kBf;
  const int parts = (aux & kPair) ? 2 : 1;
  forLanes(m, [&](uint32_t i) {
    uint32_t out = 0;
    for (int k = 0; k < parts; ++k) {
      uint32_t sh = 16 * k;
      float x = hget(uint32_t(a[i] >> sh) & 0xffff, bf);
      float y = hget(uint32_t(b[i] >> sh) & 0xffff, bf);
      float z = hget(uint32_t(c[i] >> sh) & 0xffff, bf);
      out |= (hput(halfOp(op, x, y, z, aux), bf) & 0xffffu) << sh;
    }
    d[i] = out;
  });
  return in.next;
}

Status emitN(Builder& b, Handler h, Ty t, int nsrc, uint32_t aux) {
  auto d = b.dst(0);
  if (!d) return d.status();
  uint32_t s[3] = {0, 0, 0};
  for (int k = 0; k < nsrc; ++k) {
    auto x = b.src(1 + k, t);
    if (!x) return x.status();
    s[k] = *x;
  }
  Inst& in = b.emit(h);
  in.d[0] = *d;
  for (int k = 0; k < 3; ++k) in.a[k] = s[k];
  if (nsrc < 2) in.a[1] = s[0];
  if (nsrc < 3) in.a[2] = s[0];
  in.aux = aux;
  return Status::ok();
}

uint32_t roundingMod(Builder& b, bool* had) {
  std::string r;
  *had = b.mods.takeAny({".rn", ".rz", ".rm", ".rp"}, &r);
  if (!*had) return fm::kRn;
  return r == ".rz" ? fm::kRz : r == ".rm" ? fm::kRm : r == ".rp" ? fm::kRp : fm::kRn;
}

template <class Op> Status floatBin(Builder& b, Ty t, uint32_t aux) {
  bool generic = aux != 0;
  Handler h = nullptr;
  if (t == Ty::F32) h = generic ? &FBinG<float, Op>::run : &FBin<float, Op>::run;
  if (t == Ty::F64) h = generic ? &FBinG<double, Op>::run : &FBin<double, Op>::run;
  if (!h) return b.unsupported();
  return emitN(b, h, t, 2, aux);
}
template <class Op> Status floatUn(Builder& b, Ty t, uint32_t aux) {
  bool generic = aux != 0;
  Handler h = nullptr;
  if (t == Ty::F32) h = generic ? &FUnG<float, Op>::run : &FUn<float, Op>::run;
  if (t == Ty::F64) h = generic ? &FUnG<double, Op>::run : &FUn<double, Op>::run;
  if (!h) return b.unsupported();
  return emitN(b, h, t, 1, aux);
}

int halfOpId(const std::string& op) {
  static const char* names[] = {"add", "sub", "mul", "fma", "neg", "abs", "min", "max", "ex2",
                                "tanh", "minnan", "maxnan", "rcp", "sqrt", "rsqrt", "sin", "cos", "lg2"};
  for (int i = 0; i < 18; ++i)
    if (op == names[i]) return i;
  return -1;
}

} // namespace

// Shared by add/sub/mul/mad/div/min/max/neg/abs in ops_int.cpp once the type says float.
Status decodeFloatOp(Builder& b, const std::string& opIn, Ty t) {
  std::string op = opIn;
  bool hadRnd = false;
  uint32_t rnd = roundingMod(b, &hadRnd);
  uint32_t aux = rnd;
  if (b.mods.take(".ftz")) aux |= kFtz;
  if (b.mods.take(".sat")) aux |= kSat;
  bool approx = b.mods.take(".approx");
  bool full = b.mods.take(".full");
  (void)full;
  bool nan = b.mods.take(".NaN");
  b.mods.take(".xorsign"), b.mods.take(".abs");
  bool relu = b.mods.take(".relu");
  if (t == Ty::F64) aux &= ~kFtz;
  if (approx) aux &= ~3u; // approximate ops: computed exactly (within the approx bound)
  if (t == Ty::F16 || t == Ty::F16x2 || t == Ty::BF16 || t == Ty::BF16x2) {
    if (nan) op += "nan";
    int id = halfOpId(op);
    if (id < 0 || relu) return b.unsupported();
    uint32_t haux = (aux & kSat) | ((t == Ty::BF16 || t == Ty::BF16x2) ? kBf : 0) |
                    ((t == Ty::F16x2 || t == Ty::BF16x2) ? kPair : 0);
    int nsrc = id == 3 ? 3 : (id == 4 || id == 5 || id == 8 || id == 9 || id >= 12) ? 1 : 2;
    TF_RETURN_IF_ERROR(emitN(b, hHalf, tySize(t) == 4 ? Ty::B32 : Ty::B16, nsrc, haux));
    b.fd.fn.code.back().aux2 = static_cast<uint32_t>(id);
    return Status::ok();
  }
  if (t != Ty::F32 && t != Ty::F64) return b.unsupported();
  if (relu) return b.unsupported();
  if (op == "add") return floatBin<FAdd>(b, t, aux);
  if (op == "sub") return floatBin<FSub>(b, t, aux);
  if (op == "mul") return floatBin<FMul>(b, t, aux);
  if (op == "div") return floatBin<FDiv>(b, t, aux);
  if (op == "min") return nan ? floatBin<FMinNaN>(b, t, aux) : floatBin<FMin>(b, t, aux);
  if (op == "max") return nan ? floatBin<FMaxNaN>(b, t, aux) : floatBin<FMax>(b, t, aux);
  if (op == "neg") return floatUn<FNeg>(b, t, aux);
  if (op == "abs") return floatUn<FAbs>(b, t, aux);
  if (op == "fma") {
    Handler h = nullptr;
    if (t == Ty::F32) h = aux ? &FFmaG<float>::run : cpuHasFma() ? &FFmaHw<float>::run : &FFma<float>::run;
    if (t == Ty::F64) h = aux ? &FFmaG<double>::run : cpuHasFma() ? &FFmaHw<double>::run : &FFma<double>::run;
    return emitN(b, h, t, 3, aux);
  }
  return b.unsupported();
}

namespace {

Status dFma(Builder& b) {
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected one type");
  return decodeFloatOp(b, "fma", ts[0]);
}

Status dUnary(Builder& b, const char* op) {
  bool hadRnd = false;
  uint32_t aux = roundingMod(b, &hadRnd);
  if (b.mods.take(".ftz")) aux |= kFtz;
  if (b.mods.take(".approx")) aux &= ~3u;
  b.mods.take(".full");
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected one type");
  Ty t = ts[0];
  if (t == Ty::F64) aux &= ~kFtz;
  std::string o = op;
  if (t == Ty::F16 || t == Ty::F16x2 || t == Ty::BF16 || t == Ty::BF16x2) {
    int id = halfOpId(o);
    if (id < 0) return b.unsupported();
    uint32_t haux = ((t == Ty::BF16 || t == Ty::BF16x2) ? kBf : 0) |
                    ((t == Ty::F16x2 || t == Ty::BF16x2) ? kPair : 0);
    TF_RETURN_IF_ERROR(emitN(b, hHalf, tySize(t) == 4 ? Ty::B32 : Ty::B16, 1, haux));
    b.fd.fn.code.back().aux2 = static_cast<uint32_t>(id);
    return Status::ok();
  }
  if (o == "rcp") return floatUn<FRcp>(b, t, aux);
  if (o == "sqrt") return floatUn<FSqrt>(b, t, aux);
  if (o == "rsqrt") return floatUn<FRsqrt>(b, t, aux);
  if (o == "sin") return floatUn<FSin>(b, t, aux);
  if (o == "cos") return floatUn<FCos>(b, t, aux);
  if (o == "lg2") return floatUn<FLg2>(b, t, aux);
  if (o == "ex2") return floatUn<FEx2>(b, t, aux);
  if (o == "tanh") return floatUn<FTanh>(b, t, aux);
  return b.unsupported();
}
Status dRcp(Builder& b) { return dUnary(b, "rcp"); }
Status dSqrt(Builder& b) { return dUnary(b, "sqrt"); }
Status dRsqrt(Builder& b) { return dUnary(b, "rsqrt"); }
Status dSin(Builder& b) { return dUnary(b, "sin"); }
Status dCos(Builder& b) { return dUnary(b, "cos"); }
Status dLg2(Builder& b) { return dUnary(b, "lg2"); }
Status dEx2(Builder& b) { return dUnary(b, "ex2"); }
Status dTanh(Builder& b) { return dUnary(b, "tanh"); }

Status dCopysign(Builder& b) {
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected one type");
  return floatBin<FCopysign>(b, ts[0], 0);
}

// testp.op.type p, a
template <class T> uint32_t hTestp(Warp& w, const Inst& in, uint32_t m) {
  const uint64_t* a = TF_REG(in.a[0]);
  uint32_t bits = 0;
  forLanes(m, [&](uint32_t i) {
    T x = rd<T>(a[i]);
    bool r;
    switch (in.aux) {
    case 0: r = std::isfinite(x); break;
    case 1: r = std::isinf(x); break;
    case 2: r = !std::isnan(x); break;
    case 3: r = std::isnan(x); break;
    case 4: r = std::isnormal(x); break;
    default: r = std::fpclassify(x) == FP_SUBNORMAL; break;
    }
    if (r) bits |= 1u << i;
  });
  w.p[in.d[0]] = (w.p[in.d[0]] & ~m) | bits;
  return in.next;
}
Status dTestp(Builder& b) {
  std::string which;
  if (!b.mods.takeAny({".finite", ".infinite", ".number", ".notanumber", ".normal", ".subnormal"}, &which))
    return b.error("testp needs a test");
  uint32_t code = which == ".finite" ? 0 : which == ".infinite" ? 1 : which == ".number" ? 2
                : which == ".notanumber" ? 3 : which == ".normal" ? 4 : 5;
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1 || (ts[0] != Ty::F32 && ts[0] != Ty::F64)) return b.unsupported();
  auto p = b.predDst(0);
  if (!p) return p.status();
  auto a = b.src(1, ts[0]);
  if (!a) return a.status();
  Inst& in = b.emit(ts[0] == Ty::F32 ? &hTestp<float> : &hTestp<double>);
  in.d[0] = *p;
  in.a[0] = *a;
  in.aux = code;
  return Status::ok();
}

// ----- comparisons --------------------------------------------------------------------------

enum Cmp : uint32_t { Eq, Ne, Lt, Le, Gt, Ge, Equ, Neu, Ltu, Leu, Gtu, Geu, Num, Nan };

template <class T, uint32_t C> inline bool cmp(T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    bool un = std::isnan(a) || std::isnan(b);
    switch (C) {
    case Eq: return !un && a == b;
    case Ne: return !un && a != b;
    case Lt: return !un && a < b;
    case Le: return !un && a <= b;
    case Gt: return !un && a > b;
    case Ge: return !un && a >= b;
    case Equ: return un || a == b;
    case Neu: return un || a != b;
    case Ltu: return un || a < b;
    case Leu: return un || a <= b;
    case Gtu: return un || a > b;
    case Geu: return un || a >= b;
    case Num: return !un;
    default: return un;
    }
  } else {
    switch (C) {
    case Eq: return a == b;
    case Ne: return a != b;
    case Lt: return a < b;
    case Le: return a <= b;
    case Gt: return a > b;
    default: return a >= b;
    }
  }
}

// aux: bool op (0 none, 1 and, 2 or, 3 xor); aux2 bit0: c negated; d[1] != 0: second dest
template <class T, uint32_t C> uint32_t hSetp(Warp& w, const Inst& in, uint32_t m) {
  const uint64_t* a = TF_REG(in.a[0]);
  const uint64_t* b = TF_REG(in.a[1]);
  uint32_t bits = 0;
  if (m == 0xFFFFFFFFu) {
    for (uint32_t i = 0; i < 32; ++i) bits |= uint32_t(cmp<T, C>(rd<T>(a[i]), rd<T>(b[i]))) << i;
  } else {
    forLanes(m, [&](uint32_t i) { bits |= uint32_t(cmp<T, C>(rd<T>(a[i]), rd<T>(b[i]))) << i; });
  }
  uint32_t r1 = bits, r2 = ~bits;
  if (in.aux) {
    uint32_t c = w.p[in.a[2]] ^ (in.aux2 & 1 ? ~0u : 0u);
    switch (in.aux) {
    case 1: r1 &= c; r2 &= c; break;
    case 2: r1 |= c; r2 |= c; break;
    default: r1 ^= c; r2 ^= c; break;
    }
  }
  w.p[in.d[0]] = (w.p[in.d[0]] & ~m) | (r1 & m);
  if (in.d[1]) w.p[in.d[1]] = (w.p[in.d[1]] & ~m) | (r2 & m);
  return in.next;
}

// half compare: values converted to float
template <uint32_t C> uint32_t hSetpHalf(Warp& w, const Inst& in, uint32_t m) {
  const uint64_t* a = TF_REG(in.a[0]);
  const uint64_t* b = TF_REG(in.a[1]);
  const bool bf = in.aux2 & 2;
  uint32_t bits = 0;
  forLanes(m, [&](uint32_t i) {
    bits |= uint32_t(cmp<float, C>(hget(uint32_t(a[i]) & 0xffff, bf), hget(uint32_t(b[i]) & 0xffff, bf))) << i;
  });
  uint32_t r1 = bits, r2 = ~bits;
  if (in.aux) {
    uint32_t c = w.p[in.a[2]] ^ (in.aux2 & 1 ? ~0u : 0u);
    switch (in.aux) {
    case 1: r1 &= c; r2 &= c; break;
    case 2: r1 |= c; r2 |= c; break;
    default: r1 ^= c; r2 ^= c; break;
    }
  }
  w.p[in.d[0]] = (w.p[in.d[0]] & ~m) | (r1 & m);
  if (in.d[1]) w.p[in.d[1]] = (w.p[in.d[1]] & ~m) | (r2 & m);
  return in.next;
}

template <class T> Handler setpFor(uint32_t c) {
  switch (c) {
  case Eq: return &hSetp<T, Eq>;
  case Ne: return &hSetp<T, Ne>;
  case Lt: return &hSetp<T, Lt>;
  case Le: return &hSetp<T, Le>;
  case Gt: return &hSetp<T, Gt>;
  case Ge: return &hSetp<T, Ge>;
  }
  if constexpr (std::is_floating_point_v<T>) {
    switch (c) {
    case Equ: return &hSetp<T, Equ>;
    case Neu: return &hSetp<T, Neu>;
    case Ltu: return &hSetp<T, Ltu>;
    case Leu: return &hSetp<T, Leu>;
    case Gtu: return &hSetp<T, Gtu>;
    case Geu: return &hSetp<T, Geu>;
    case Num: return &hSetp<T, Num>;
    case Nan: return &hSetp<T, Nan>;
    }
  }
  return nullptr;
}
Handler setpHalfFor(uint32_t c) {
  switch (c) {
  case Eq: return &hSetpHalf<Eq>;
  case Ne: return &hSetpHalf<Ne>;
  case Lt: return &hSetpHalf<Lt>;
  case Le: return &hSetpHalf<Le>;
  case Gt: return &hSetpHalf<Gt>;
  case Ge: return &hSetpHalf<Ge>;
  case Equ: return &hSetpHalf<Equ>;
  case Neu: return &hSetpHalf<Neu>;
  case Ltu: return &hSetpHalf<Ltu>;
  case Leu: return &hSetpHalf<Leu>;
  case Gtu: return &hSetpHalf<Gtu>;
  case Geu: return &hSetpHalf<Geu>;
  case Num: return &hSetpHalf<Num>;
  default: return &hSetpHalf<Nan>;
  }
}

Result<uint32_t> takeCmp(Builder& b, Ty t) {
  std::string c;
  if (!b.mods.takeAny({".eq", ".ne", ".lt", ".le", ".gt", ".ge", ".lo", ".ls", ".hi", ".hs",
                       ".equ", ".neu", ".ltu", ".leu", ".gtu", ".geu", ".num", ".nan"}, &c))
    return b.error("missing comparison operator");
  (void)t;
  static const std::pair<const char*, uint32_t> map[] = {
      {".eq", Eq}, {".ne", Ne}, {".lt", Lt}, {".le", Le}, {".gt", Gt}, {".ge", Ge},
      {".lo", Lt}, {".ls", Le}, {".hi", Gt}, {".hs", Ge}, {".equ", Equ}, {".neu", Neu},
      {".ltu", Ltu}, {".leu", Leu}, {".gtu", Gtu}, {".geu", Geu}, {".num", Num}, {".nan", Nan}};
  for (auto& [n, v] : map)
    if (c == n) return v;
  return b.error("bad comparison");
}

Handler setpHandler(Ty t, uint32_t c, bool unsignedCmp) {
  switch (t) {
  case Ty::F32: return setpFor<float>(c);
  case Ty::F64: return setpFor<double>(c);
  case Ty::S16: return unsignedCmp ? setpFor<uint16_t>(c) : setpFor<int16_t>(c);
  case Ty::S32: return unsignedCmp ? setpFor<uint32_t>(c) : setpFor<int32_t>(c);
  case Ty::S64: return unsignedCmp ? setpFor<uint64_t>(c) : setpFor<int64_t>(c);
  case Ty::B16: case Ty::U16: return setpFor<uint16_t>(c);
  case Ty::B32: case Ty::U32: return setpFor<uint32_t>(c);
  case Ty::B64: case Ty::U64: return setpFor<uint64_t>(c);
  case Ty::F16: case Ty::BF16: return setpHalfFor(c);
  default: return nullptr;
  }
}

Status dSetp(Builder& b) {
  std::string cs;
  bool unsignedCmp = false;
  // .lo/.ls/.hi/.hs are unsigned comparisons even on .s types
  for (const auto& m : b.ai.mods)
    if (m == ".lo" || m == ".ls" || m == ".hi" || m == ".hs") unsignedCmp = true;
  std::string bop;
  uint32_t boolOp = 0;
  if (b.mods.takeAny({".and", ".or", ".xor"}, &bop)) boolOp = bop == ".and" ? 1 : bop == ".or" ? 2 : 3;
  b.mods.take(".ftz");
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected one type");
  Ty t = ts[0];
  auto c = takeCmp(b, t);
  if (!c) return c.status();
  Handler h = setpHandler(t, *c, unsignedCmp);
  if (!h) return b.unsupported();
  const auto& o0 = b.op(0);
  if (o0.kind != ast::Operand::Kind::Reg && o0.kind != ast::Operand::Kind::Sink)
    return b.error("setp needs a predicate destination");
  uint32_t d0, d1 = 0;
  if (o0.kind == ast::Operand::Kind::Sink) {
    d0 = b.fd.allocPred();
  } else {
    auto p = b.predByName(o0.name);
    if (!p) return p.status();
    d0 = *p;
  }
  if (!o0.pairPred.empty()) {
    auto q = b.predByName(o0.pairPred);
    if (!q) return q.status();
    d1 = *q;
  }
  auto a = b.src(1, t);
  if (!a) return a.status();
  auto bb = b.src(2, t);
  if (!bb) return bb.status();
  uint32_t cslot = 0;
  bool neg = false;
  if (boolOp) {
    auto cp = b.predSrc(3, &neg);
    if (!cp) return cp.status();
    cslot = *cp;
  }
  Inst& in = b.emit(h);
  in.d[0] = d0;
  in.d[1] = d1;
  in.a[0] = *a;
  in.a[1] = *bb;
  in.a[2] = cslot;
  in.aux = boolOp;
  in.aux2 = (neg ? 1 : 0) | ((t == Ty::BF16) ? 2 : 0);
  return Status::ok();
}

// set.cmp.dtype.stype d, a, b: d = all ones (int) / 1.0f (f32) when true
uint32_t hSetFromPred(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  uint32_t bits = w.p[in.a[3]];
  forLanes(m, [&](uint32_t i) {
    bool t = (bits >> i) & 1;
    d[i] = in.aux ? (t ? 0x3f800000u : 0u) : (t ? 0xFFFFFFFFu : 0u);
  });
  return in.next;
}
Status dSet(Builder& b) {
  // decode as setp into a scratch predicate, then materialise
  bool unsignedCmp = false;
  for (const auto& m : b.ai.mods)
    if (m == ".lo" || m == ".ls" || m == ".hi" || m == ".hs") unsignedCmp = true;
  std::string bop;
  uint32_t boolOp = 0;
  if (b.mods.takeAny({".and", ".or", ".xor"}, &bop)) boolOp = bop == ".and" ? 1 : bop == ".or" ? 2 : 3;
  b.mods.take(".ftz");
  auto ts = b.mods.takeTypes();
  if (ts.size() != 2) return b.error("set needs a destination and a source type");
  Ty dt = ts[0], st = ts[1];
  auto c = takeCmp(b, st);
  if (!c) return c.status();
  Handler h = setpHandler(st, *c, unsignedCmp);
  if (!h || (dt != Ty::U32 && dt != Ty::S32 && dt != Ty::F32 && dt != Ty::B32)) return b.unsupported();
  uint32_t tmpPred = b.fd.allocPred();
  auto d = b.dst(0);
  if (!d) return d.status();
  auto a = b.src(1, st);
  if (!a) return a.status();
  auto bb = b.src(2, st);
  if (!bb) return bb.status();
  uint32_t cslot = 0;
  bool neg = false;
  if (boolOp) {
    auto cp = b.predSrc(3, &neg);
    if (!cp) return cp.status();
    cslot = *cp;
  }
  Inst& in = b.emit(h);
  in.d[0] = tmpPred;
  in.a[0] = *a;
  in.a[1] = *bb;
  in.a[2] = cslot;
  in.aux = boolOp;
  in.aux2 = neg ? 1 : 0;
  Inst& out = b.emit(hSetFromPred);
  out.d[0] = *d;
  out.a[3] = tmpPred;
  out.aux = dt == Ty::F32 ? 1 : 0;
  return Status::ok();
}

// selp.type d, a, b, p
uint32_t hSelp(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  const uint64_t* a = TF_REG(in.a[0]);
  const uint64_t* b = TF_REG(in.a[1]);
  uint32_t p = w.p[in.a[2]] ^ in.aux;
  forLanes(m, [&](uint32_t i) { d[i] = ((p >> i) & 1) ? a[i] : b[i]; });
  return in.next;
}
Status dSelp(Builder& b) {
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected one type");
  auto d = b.dst(0);
  if (!d) return d.status();
  auto a = b.src(1, ts[0]);
  if (!a) return a.status();
  auto c = b.src(2, ts[0]);
  if (!c) return c.status();
  bool neg = false;
  auto p = b.predSrc(3, &neg);
  if (!p) return p.status();
  Inst& in = b.emit(hSelp);
  in.d[0] = *d;
  in.a[0] = *a;
  in.a[1] = *c;
  in.a[2] = *p;
  in.aux = neg ? ~0u : 0u;
  return Status::ok();
}

// slct.dtype.ctype d, a, b, c: d = c >= 0 ? a : b
template <class C> uint32_t hSlct(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  const uint64_t* a = TF_REG(in.a[0]);
  const uint64_t* b = TF_REG(in.a[1]);
  const uint64_t* c = TF_REG(in.a[2]);
  const bool ftz = in.aux;
  forLanes(m, [&](uint32_t i) {
    C x = rd<C>(c[i]);
    if constexpr (std::is_same_v<C, float>) {
      if (ftz) x = fm::ftz(x);
    }
    d[i] = x >= C(0) ? a[i] : b[i];
  });
  return in.next;
}
Status dSlct(Builder& b) {
  bool ftz = b.mods.take(".ftz");
  auto ts = b.mods.takeTypes();
  if (ts.size() != 2) return b.error("slct needs two types");
  Handler h = ts[1] == Ty::S32 ? &hSlct<int32_t> : ts[1] == Ty::F32 ? &hSlct<float> : nullptr;
  if (!h) return b.unsupported();
  auto d = b.dst(0);
  if (!d) return d.status();
  auto a = b.src(1, ts[0]);
  if (!a) return a.status();
  auto bb = b.src(2, ts[0]);
  if (!bb) return bb.status();
  auto c = b.src(3, ts[1]);
  if (!c) return c.status();
  Inst& in = b.emit(h);
  in.d[0] = *d;
  in.a[0] = *a;
  in.a[1] = *bb;
  in.a[2] = *c;
  in.aux = ftz ? 1 : 0;
  return Status::ok();
}

} // namespace

void registerFloatOps(std::unordered_map<std::string, DecodeFn>& r) {
  r["fma"] = dFma;
  r["rcp"] = dRcp;
  r["sqrt"] = dSqrt;
  r["rsqrt"] = dRsqrt;
  r["sin"] = dSin;
  r["cos"] = dCos;
  r["lg2"] = dLg2;
  r["ex2"] = dEx2;
  r["tanh"] = dTanh;
  r["copysign"] = dCopysign;
  r["testp"] = dTestp;
  r["setp"] = dSetp;
  r["set"] = dSet;
  r["selp"] = dSelp;
  r["slct"] = dSlct;
}

} // namespace tf::ptx
