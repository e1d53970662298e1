// Integer arithmetic, logic and bit manipulation.
#include <bit>

#include "ptx/function_decoder.h"
#include "ptx/int_math.h"
#include "ptx/ops_common.h"

namespace tf::ptx {

Status decodeFloatOp(Builder& b, const std::string& op, Ty t); // ops_float.cpp

namespace {

namespace im = imath;

template <class U> U brev(U x) {
  U r = 0;
  for (unsigned i = 0; i < 8 * sizeof(U); ++i) {
    r = static_cast<U>((r << 1) | (x & 1));
    x = static_cast<U>(x >> 1);
  }
  return r;
}

// ----- generic shapes ---------------------------------------------------------------------

template <class T, class Op> struct Bin {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) {
    uint64_t* d = TF_REG(in.d[0]);
    const uint64_t* a = TF_REG(in.a[0]);
    const uint64_t* b = TF_REG(in.a[1]);
    forLanes(m, [&](uint32_t i) { d[i] = wr<T>(Op::f(rd<T>(a[i]), rd<T>(b[i]))); });
    return in.next;
  }
};
template <class T, class Op> struct Un {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) {
    uint64_t* d = TF_REG(in.d[0]);
    const uint64_t* a = TF_REG(in.a[0]);
    forLanes(m, [&](uint32_t i) { d[i] = wr(Op::f(rd<T>(a[i]))); });
    return in.next;
  }
};
template <class T, class Op> struct Tern {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) {
    uint64_t* d = TF_REG(in.d[0]);
    const uint64_t* a = TF_REG(in.a[0]);
    const uint64_t* b = TF_REG(in.a[1]);
    const uint64_t* c = TF_REG(in.a[2]);
    forLanes(m, [&](uint32_t i) {
      d[i] = wr<T>(Op::f(rd<T>(a[i]), rd<T>(b[i]), rd<T>(c[i])));
    });
    return in.next;
  }
};

#define TF_OP2(Name, expr)                                                                        \
  struct Name {                                                                                   \
    template <class T> static T f(T a, T b) { return expr; }                                      \
  };
#define TF_OP1(Name, expr)                                                                        \
  struct Name {                                                                                   \
    template <class T> static auto f(T a) { return expr; }                                       \
  };
#define TF_OP3(Name, expr)                                                                        \
  struct Name {                                                                                   \
    template <class T> static T f(T a, T b, T c) { return expr; }                                 \
  };

TF_OP2(OAdd, im::add(a, b))
TF_OP2(OSub, im::sub(a, b))
TF_OP2(OMulLo, im::mulLo(a, b))
TF_OP2(OMulHi, im::mulHi(a, b))
TF_OP2(ODiv, im::div(a, b))
TF_OP2(ORem, im::rem(a, b))
TF_OP2(OMin, a < b ? a : b)
TF_OP2(OMax, a > b ? a : b)
TF_OP2(OAnd, static_cast<T>(a & b))
TF_OP2(OOr, static_cast<T>(a | b))
TF_OP2(OXor, static_cast<T>(a ^ b))
TF_OP2(OSatAdd, im::satAdd(a, b))
TF_OP2(OSatSub, im::satSub(a, b))
TF_OP2(OMaxRelu, static_cast<T>((a > b ? a : b) < 0 ? 0 : (a > b ? a : b)))
TF_OP1(ONeg, im::neg(a))
TF_OP1(OAbs, im::abs(a))
TF_OP1(ONot, static_cast<T>(~a))
TF_OP1(OCnot, static_cast<T>(a == 0 ? 1 : 0))
TF_OP1(OPopc, static_cast<uint32_t>(std::popcount(static_cast<im::U<T>>(a))))
TF_OP1(OClz, static_cast<uint32_t>(std::countl_zero(static_cast<im::U<T>>(a))))
TF_OP1(OBrev, static_cast<T>(brev(static_cast<im::U<T>>(a))))
TF_OP3(OMadLo, im::add(im::mulLo(a, b), c))
TF_OP3(OMadHi, im::add(im::mulHi(a, b), c))


template <template <class, class> class H, class Op> Handler sel(Ty t) {
  switch (t) {
  case Ty::B16: case Ty::U16: return &H<uint16_t, Op>::run;
  case Ty::S16: return &H<int16_t, Op>::run;
  case Ty::B32: case Ty::U32: return &H<uint32_t, Op>::run;
  case Ty::S32: return &H<int32_t, Op>::run;
  case Ty::B64: case Ty::U64: return &H<uint64_t, Op>::run;
  case Ty::S64: return &H<int64_t, Op>::run;
  default: return nullptr;
  }
}
template <template <class, class> class H, class Op> Handler selBits(Ty t) {
  switch (t) {
  case Ty::B16: case Ty::U16: case Ty::S16: return &H<uint16_t, Op>::run;
  case Ty::B32: case Ty::U32: case Ty::S32: return &H<uint32_t, Op>::run;
  case Ty::B64: case Ty::U64: case Ty::S64: return &H<uint64_t, Op>::run;
  default: return nullptr;
  }
}

Result<Ty> oneType(Builder& b) {
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected exactly one type");
  return ts[0];
}

Status emit2(Builder& b, Handler h, Ty t) {
  if (!h) return b.unsupported();
  auto d = b.dst(0);
  if (!d) return d.status();
  auto a = b.src(1, t);
  if (!a) return a.status();
  auto c = b.src(2, t);
  if (!c) return c.status();
  Inst& in = b.emit(h);
  in.d[0] = *d;
  in.a[0] = *a;
  in.a[1] = *c;
  return Status::ok();
}
Status emit1(Builder& b, Handler h, Ty t) {
  if (!h) return b.unsupported();
  auto d = b.dst(0);
  if (!d) return d.status();
  auto a = b.src(1, t);
  if (!a) return a.status();
  Inst& in = b.emit(h);
  in.d[0] = *d;
  in.a[0] = *a;
  return Status::ok();
}
Status emit3(Builder& b, Handler h, Ty t, Ty tc) {
  if (!h) return b.unsupported();
  auto d = b.dst(0);
  if (!d) return d.status();
  auto a = b.src(1, t);
  if (!a) return a.status();
  auto c1 = b.src(2, t);
  if (!c1) return c1.status();
  auto c2 = b.src(3, tc);
  if (!c2) return c2.status();
  Inst& in = b.emit(h);
  in.d[0] = *d;
  in.a[0] = *a;
  in.a[1] = *c1;
  in.a[2] = *c2;
  return Status::ok();
}

// ----- predicates as operands of logic ops --------------------------------------------------

uint32_t hPredLogic(Warp& w, const Inst& in, uint32_t m) {
  uint32_t a = w.p[in.a[0]] ^ (in.aux & 1 ? ~0u : 0u);
  uint32_t b = w.p[in.a[1]] ^ (in.aux & 2 ? ~0u : 0u);
  uint32_t r;
  switch (in.aux2) {
  case 0: r = a & b; break;
  case 1: r = a | b; break;
  case 2: r = a ^ b; break;
  case 3: r = ~a; break;
  default: r = a; break; // mov
  }
  w.p[in.d[0]] = (w.p[in.d[0]] & ~m) | (r & m);
  return in.next;
}

Status decodePredLogic(Builder& b, int op) {
  auto d = b.predDst(0);
  if (!d) return d.status();
  bool na = false, nb = false;
  auto a = b.predSrc(1, &na);
  if (!a) return a.status();
  uint32_t bs = 0;
  if (op <= 2) {
    auto c = b.predSrc(2, &nb);
    if (!c) return c.status();
    bs = *c;
  }
  Inst& in = b.emit(hPredLogic);
  in.d[0] = *d;
  in.a[0] = *a;
  in.a[1] = bs;
  in.aux = (na ? 1 : 0) | (nb ? 2 : 0);
  in.aux2 = static_cast<uint32_t>(op);
  return Status::ok();
}

// ----- carry chains -------------------------------------------------------------------------

uint32_t ccSlot(Builder& b) {
  if (b.fd.cc == UINT32_MAX) b.fd.cc = b.fd.allocSlot();
  return b.fd.cc;
}

// aux bits: 1 = carry in, 2 = carry out, 4 = subtract
template <class T> struct AddCC {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) {
    uint64_t* d = TF_REG(in.d[0]);
    const uint64_t* a = TF_REG(in.a[0]);
    const uint64_t* b = TF_REG(in.a[1]);
    uint64_t* cc = TF_REG(in.a[3]);
    const bool cin = in.aux & 1, cout = in.aux & 2, isSub = in.aux & 4;
    forLanes(m, [&](uint32_t i) {
      using UT = im::U<T>;
      UT x = static_cast<UT>(a[i]), y = static_cast<UT>(b[i]);
      UT c = cin ? static_cast<UT>(cc[i] & 1) : 0;
      UT r;
      uint64_t carry;
      if (!isSub) {
        r = static_cast<UT>(x + y + c);
        carry = (r < x || (c && r == x)) ? 1 : 0;
      } else {
        r = static_cast<UT>(x - y - c);
        carry = (x < y || (c && x == y)) ? 1 : 0; // borrow
      }
      d[i] = wr<UT>(r);
      if (cout) cc[i] = carry;
    });
    return in.next;
  }
};

// mad with carry: d = (hi ? mulHi : mulLo)(a,b) + c [+ cc]; aux: 1 cin, 2 cout, 8 hi
template <class T> struct MadCC {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) {
    uint64_t* d = TF_REG(in.d[0]);
    const uint64_t* a = TF_REG(in.a[0]);
    const uint64_t* b = TF_REG(in.a[1]);
    const uint64_t* c = TF_REG(in.a[2]);
    uint64_t* cc = TF_REG(in.a[3]);
    const bool cin = in.aux & 1, cout = in.aux & 2, hi = in.aux & 8;
    forLanes(m, [&](uint32_t i) {
      using UT = im::U<T>;
      T x = rd<T>(a[i]), y = rd<T>(b[i]);
      UT p = static_cast<UT>(hi ? im::mulHi(x, y) : im::mulLo(x, y));
      UT z = static_cast<UT>(c[i]);
      UT ci = cin ? static_cast<UT>(cc[i] & 1) : 0;
      UT r = static_cast<UT>(p + z + ci);
      uint64_t carry = (r < p || (ci && r == p)) ? 1 : 0;
      if (z != 0 || ci != 0) {
        // recompute carry exactly using wider arithmetic
        unsigned __int128 s = static_cast<unsigned __int128>(p) + z + ci;
        carry = static_cast<uint64_t>(s >> (8 * sizeof(UT))) & 1;
      } else {
        carry = 0;
      }
      d[i] = wr<UT>(r);
      if (cout) cc[i] = carry;
    });
    return in.next;
  }
};

Status decodeAddSub(Builder& b, bool isSub, bool withCarry) {
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected one type");
  Ty t = ts[0];
  if (tyIsFloat(t)) return decodeFloatOp(b, isSub ? "sub" : "add", t);
  bool cc = b.mods.take(".cc");
  if (cc || withCarry) {
    if (t != Ty::U32 && t != Ty::S32 && t != Ty::U64 && t != Ty::S64 && t != Ty::B32 && t != Ty::B64)
      return b.unsupported();
    Handler h = tySize(t) == 4 ? &AddCC<uint32_t>::run : &AddCC<uint64_t>::run;
    auto d = b.dst(0);
    if (!d) return d.status();
    auto a = b.src(1, t);
    if (!a) return a.status();
    auto c = b.src(2, t);
    if (!c) return c.status();
    Inst& in = b.emit(h);
    in.d[0] = *d;
    in.a[0] = *a;
    in.a[1] = *c;
    in.a[3] = ccSlot(b);
    in.aux = (withCarry ? 1 : 0) | (cc ? 2 : 0) | (isSub ? 4 : 0);
    return Status::ok();
  }
  if (b.mods.take(".sat")) {
    if (t != Ty::S32) return b.unsupported();
    return emit2(b, isSub ? &Bin<int32_t, OSatSub>::run : &Bin<int32_t, OSatAdd>::run, t);
  }
  return emit2(b, isSub ? sel<Bin, OSub>(t) : sel<Bin, OAdd>(t), t);
}

Status dAdd(Builder& b) { return decodeAddSub(b, false, false); }
Status dSub(Builder& b) { return decodeAddSub(b, true, false); }
Status dAddc(Builder& b) { return decodeAddSub(b, false, true); }
Status dSubc(Builder& b) { return decodeAddSub(b, true, true); }

// mul.wide / mad.wide: 16->32, 32->64
template <class T, class Op> struct Wide {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) {
    using W = std::conditional_t<sizeof(T) == 2,
                                 std::conditional_t<std::is_signed_v<T>, int32_t, uint32_t>,
                                 std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>;
    uint64_t* d = TF_REG(in.d[0]);
    const uint64_t* a = TF_REG(in.a[0]);
    const uint64_t* b = TF_REG(in.a[1]);
    const uint64_t* c = TF_REG(in.a[2]);
    forLanes(m, [&](uint32_t i) {
      W r = static_cast<W>(im::mulLo<W>(W(rd<T>(a[i])), W(rd<T>(b[i]))));
      if (Op::kMad) r = im::add<W>(r, rd<W>(c[i]));
      d[i] = wr<W>(r);
    });
    return in.next;
  }
};
struct WMul {
  static constexpr bool kMad = false;
};
struct WMad {
  static constexpr bool kMad = true;
};

template <class Op> Handler selWide(Ty t) {
  switch (t) {
  case Ty::U16: return &Wide<uint16_t, Op>::run;
  case Ty::S16: return &Wide<int16_t, Op>::run;
  case Ty::U32: return &Wide<uint32_t, Op>::run;
  case Ty::S32: return &Wide<int32_t, Op>::run;
  default: return nullptr;
  }
}

Ty wideOf(Ty t) {
  switch (t) {
  case Ty::U16: return Ty::U32;
  case Ty::S16: return Ty::S32;
  case Ty::U32: return Ty::U64;
  case Ty::S32: return Ty::S64;
  default: return Ty::None;
  }
}

Status dMul(Builder& b) {
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected one type");
  Ty t = ts[0];
  if (tyIsFloat(t)) return decodeFloatOp(b, "mul", t);
  if (b.mods.take(".wide")) return emit2(b, selWide<WMul>(t), t);
  if (b.mods.take(".hi")) return emit2(b, sel<Bin, OMulHi>(t), t);
  b.mods.take(".lo");
  return emit2(b, sel<Bin, OMulLo>(t), t);
}

template <class T> struct MadHiSat {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) {
    uint64_t* d = TF_REG(in.d[0]);
    const uint64_t* a = TF_REG(in.a[0]);
    const uint64_t* b = TF_REG(in.a[1]);
    const uint64_t* c = TF_REG(in.a[2]);
    forLanes(m, [&](uint32_t i) {
      d[i] = wr<int32_t>(im::satAdd<int32_t>(im::mulHi(rd<int32_t>(a[i]), rd<int32_t>(b[i])),
                                             rd<int32_t>(c[i])));
    });
    return in.next;
  }
};

Status dMad(Builder& b, bool withCarry) {
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected one type");
  Ty t = ts[0];
  if (tyIsFloat(t)) return decodeFloatOp(b, "fma", t);
  bool cc = b.mods.take(".cc");
  if (cc || withCarry) {
    bool hi = b.mods.take(".hi");
    if (!hi) b.mods.take(".lo");
    if (tySize(t) != 4 && tySize(t) != 8) return b.unsupported();
    Handler h = t == Ty::S32   ? &MadCC<int32_t>::run
                : t == Ty::S64 ? &MadCC<int64_t>::run
                : tySize(t) == 4 ? &MadCC<uint32_t>::run
                                 : &MadCC<uint64_t>::run;
    TF_RETURN_IF_ERROR(emit3(b, h, t, t));
    Inst& in = b.fd.fn.code.back();
    in.a[3] = ccSlot(b);
    in.aux = (withCarry ? 1 : 0) | (cc ? 2 : 0) | (hi ? 8 : 0);
    return Status::ok();
  }
  if (b.mods.take(".wide")) return emit3(b, selWide<WMad>(t), t, wideOf(t));
  if (b.mods.take(".hi")) {
    if (b.mods.take(".sat")) {
      if (t != Ty::S32) return b.unsupported();
      return emit3(b, &MadHiSat<int32_t>::run, t, t);
    }
    return emit3(b, sel<Tern, OMadHi>(t), t, t);
  }
  b.mods.take(".lo");
  return emit3(b, sel<Tern, OMadLo>(t), t, t);
}
Status dMadPlain(Builder& b) { return dMad(b, false); }
Status dMadc(Builder& b) { return dMad(b, true); }

// mul24/mad24: operands are the low 24 bits, sign-extended for .s32
template <class T> int64_t low24(T x) {
  if constexpr (std::is_signed_v<T>) {
    return static_cast<int64_t>(static_cast<int32_t>(static_cast<uint32_t>(x) << 8) >> 8);
  } else {
    return static_cast<int64_t>(static_cast<uint32_t>(x) & 0xFFFFFF);
  }
}
template <class T> struct Mul24 {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) {
    uint64_t* d = TF_REG(in.d[0]);
    const uint64_t* a = TF_REG(in.a[0]);
    const uint64_t* b = TF_REG(in.a[1]);
    const uint64_t* c = TF_REG(in.a[2]);
    const bool hi = in.aux & 1, mad = in.aux & 2;
    forLanes(m, [&](uint32_t i) {
      int64_t p = low24(rd<T>(a[i])) * low24(rd<T>(b[i]));
      uint32_t r = hi ? static_cast<uint32_t>(static_cast<uint64_t>(p) >> 16)
                      : static_cast<uint32_t>(p);
      if (mad) r += static_cast<uint32_t>(c[i]);
      d[i] = r;
    });
    return in.next;
  }
};
Status dMul24(Builder& b, bool mad) {
  auto t = oneType(b);
  if (!t) return t.status();
  bool hi = b.mods.take(".hi");
  if (!hi) b.mods.take(".lo");
  Handler h = *t == Ty::S32 ? &Mul24<int32_t>::run : *t == Ty::U32 ? &Mul24<uint32_t>::run : nullptr;
  if (mad) {
    TF_RETURN_IF_ERROR(emit3(b, h, *t, *t));
  } else {
    TF_RETURN_IF_ERROR(emit2(b, h, *t));
  }
  b.fd.fn.code.back().aux = (hi ? 1 : 0) | (mad ? 2 : 0);
  return Status::ok();
}

template <class T> struct Sad {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) {
    uint64_t* d = TF_REG(in.d[0]);
    const uint64_t* a = TF_REG(in.a[0]);
    const uint64_t* b = TF_REG(in.a[1]);
    const uint64_t* c = TF_REG(in.a[2]);
    forLanes(m, [&](uint32_t i) {
      T x = rd<T>(a[i]), y = rd<T>(b[i]);
      T diff = x < y ? im::sub(y, x) : im::sub(x, y);
      d[i] = wr<T>(im::add(rd<T>(c[i]), diff));
    });
    return in.next;
  }
};

Status dSimple2(Builder& b, Handler (*pick)(Ty)) {
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected one type");
  return emit2(b, pick(ts[0]), ts[0]);
}

Status dDiv(Builder& b) {
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected one type");
  if (tyIsFloat(ts[0])) return decodeFloatOp(b, "div", ts[0]);
  return emit2(b, sel<Bin, ODiv>(ts[0]), ts[0]);
}
Status dRem(Builder& b) { return dSimple2(b, sel<Bin, ORem>); }
Status dMinMax(Builder& b, bool isMax) {
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected one type");
  Ty t = ts[0];
  if (tyIsFloat(t)) return decodeFloatOp(b, isMax ? "max" : "min", t);
  if (b.mods.take(".relu")) {
    if (t != Ty::S32) return b.unsupported();
    if (!isMax) return b.unsupported();
    return emit2(b, &Bin<int32_t, OMaxRelu>::run, t);
  }
  return emit2(b, isMax ? sel<Bin, OMax>(t) : sel<Bin, OMin>(t), t);
}
Status dMin(Builder& b) { return dMinMax(b, false); }
Status dMax(Builder& b) { return dMinMax(b, true); }

Status dNegAbs(Builder& b, bool isNeg) {
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected one type");
  Ty t = ts[0];
  if (tyIsFloat(t)) return decodeFloatOp(b, isNeg ? "neg" : "abs", t);
  return emit1(b, isNeg ? sel<Un, ONeg>(t) : sel<Un, OAbs>(t), t);
}
Status dNeg(Builder& b) { return dNegAbs(b, true); }
Status dAbs(Builder& b) { return dNegAbs(b, false); }

Status dLogic(Builder& b, int op) {
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected one type");
  Ty t = ts[0];
  if (t == Ty::Pred) return decodePredLogic(b, op);
  switch (op) {
  case 0: return emit2(b, selBits<Bin, OAnd>(t), t);
  case 1: return emit2(b, selBits<Bin, OOr>(t), t);
  case 2: return emit2(b, selBits<Bin, OXor>(t), t);
  case 3: return emit1(b, selBits<Un, ONot>(t), t);
  default: return emit1(b, selBits<Un, OCnot>(t), t);
  }
}
Status dAnd(Builder& b) { return dLogic(b, 0); }
Status dOr(Builder& b) { return dLogic(b, 1); }
Status dXor(Builder& b) { return dLogic(b, 2); }
Status dNot(Builder& b) { return dLogic(b, 3); }
Status dCnot(Builder& b) { return dLogic(b, 4); }

Status dPopc(Builder& b) {
  auto t = oneType(b);
  if (!t) return t.status();
  Handler h = tySize(*t) == 4 ? &Un<uint32_t, OPopc>::run
              : tySize(*t) == 8 ? &Un<uint64_t, OPopc>::run : nullptr;
  return emit1(b, h, *t);
}
Status dClz(Builder& b) {
  auto t = oneType(b);
  if (!t) return t.status();
  Handler h = tySize(*t) == 4 ? &Un<uint32_t, OClz>::run
              : tySize(*t) == 8 ? &Un<uint64_t, OClz>::run : nullptr;
  return emit1(b, h, *t);
}
Status dBrev(Builder& b) {
  auto t = oneType(b);
  if (!t) return t.status();
  Handler h = tySize(*t) == 4 ? &Un<uint32_t, OBrev>::run
              : tySize(*t) == 8 ? &Un<uint64_t, OBrev>::run : nullptr;
  return emit1(b, h, *t);
}

// bfind: position of the most significant non-sign bit; 0xffffffff if none
template <class T> struct Bfind {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) {
    uint64_t* d = TF_REG(in.d[0]);
    const uint64_t* a = TF_REG(in.a[0]);
    const bool shiftAmt = in.aux & 1;
    forLanes(m, [&](uint32_t i) {
      T x = rd<T>(a[i]);
      using UT = im::U<T>;
      UT u = static_cast<UT>(x);
      if constexpr (std::is_signed_v<T>) {
        if (x < 0) u = static_cast<UT>(~u);
      }
      uint32_t r;
      if (u == 0) {
        r = 0xFFFFFFFFu;
      } else {
        r = static_cast<uint32_t>(8 * sizeof(T) - 1 - std::countl_zero(u));
        if (shiftAmt) r = static_cast<uint32_t>(8 * sizeof(T) - 1) - r;
      }
      d[i] = r;
    });
    return in.next;
  }
};
Status dBfind(Builder& b) {
  auto t = oneType(b);
  if (!t) return t.status();
  bool sa = b.mods.take(".shiftamt");
  Handler h = nullptr;
  switch (*t) {
  case Ty::U32: h = &Bfind<uint32_t>::run; break;
  case Ty::S32: h = &Bfind<int32_t>::run; break;
  case Ty::U64: h = &Bfind<uint64_t>::run; break;
  case Ty::S64: h = &Bfind<int64_t>::run; break;
  default: break;
  }
  TF_RETURN_IF_ERROR(emit1(b, h, *t));
  b.fd.fn.code.back().aux = sa ? 1 : 0;
  return Status::ok();
}

// bfe d, a, pos, len (pos and len are u32, only the low 8 bits count)
template <class T> struct Bfe {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) {
    uint64_t* d = TF_REG(in.d[0]);
    const uint64_t* a = TF_REG(in.a[0]);
    const uint64_t* bp = TF_REG(in.a[1]);
    const uint64_t* cl = TF_REG(in.a[2]);
    constexpr uint32_t msb = 8 * sizeof(T) - 1;
    forLanes(m, [&](uint32_t i) {
      using UT = im::U<T>;
      UT x = static_cast<UT>(a[i]);
      uint32_t pos = static_cast<uint32_t>(bp[i]) & 0xff, len = static_cast<uint32_t>(cl[i]) & 0xff;
      bool sbit = false;
      if constexpr (std::is_signed_v<T>) {
        if (len != 0) sbit = (x >> std::min(pos + len - 1, msb)) & 1;
      }
      UT r = 0;
      for (uint32_t k = 0; k <= msb; ++k) {
        uint32_t bit;
        if (k < len && pos + k <= msb) {
          bit = (x >> (pos + k)) & 1;
        } else {
          bit = sbit ? 1 : 0;
        }
        r = static_cast<UT>(r | (UT(bit) << k));
      }
      d[i] = wr<UT>(r);
    });
    return in.next;
  }
};
Status dBfe(Builder& b) {
  auto t = oneType(b);
  if (!t) return t.status();
  Handler h = nullptr;
  switch (*t) {
  case Ty::U32: h = &Bfe<uint32_t>::run; break;
  case Ty::S32: h = &Bfe<int32_t>::run; break;
  case Ty::U64: h = &Bfe<uint64_t>::run; break;
  case Ty::S64: h = &Bfe<int64_t>::run; break;
  default: break;
  }
  return emit3(b, h, *t, Ty::U32) ; // third operand also u32; emit3 reads op 3 as Ty::U32
}

// bfi d, a (insert), b (base), pos, len
template <class T> struct Bfi {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) {
    uint64_t* d = TF_REG(in.d[0]);
    const uint64_t* a = TF_REG(in.a[0]);
    const uint64_t* bb = TF_REG(in.a[1]);
    const uint64_t* cp = TF_REG(in.a[2]);
    const uint64_t* dl = TF_REG(in.a[3]);
    constexpr uint32_t bits = 8 * sizeof(T);
    forLanes(m, [&](uint32_t i) {
      T x = static_cast<T>(a[i]), base = static_cast<T>(bb[i]);
      uint32_t pos = static_cast<uint32_t>(cp[i]) & 0xff, len = static_cast<uint32_t>(dl[i]) & 0xff;
      T r = base;
      for (uint32_t k = 0; k < len && pos + k < bits; ++k) {
        T bit = (x >> k) & 1;
        r = static_cast<T>((r & ~(T(1) << (pos + k))) | (bit << (pos + k)));
      }
      d[i] = wr<T>(r);
    });
    return in.next;
  }
};
Status dBfi(Builder& b) {
  auto t = oneType(b);
  if (!t) return t.status();
  Handler h = tySize(*t) == 4 ? &Bfi<uint32_t>::run : tySize(*t) == 8 ? &Bfi<uint64_t>::run : nullptr;
  if (!h) return b.unsupported();
  auto d = b.dst(0);
  if (!d) return d.status();
  auto a = b.src(1, *t);
  if (!a) return a.status();
  auto bb = b.src(2, *t);
  if (!bb) return bb.status();
  auto c = b.src(3, Ty::U32);
  if (!c) return c.status();
  auto l = b.src(4, Ty::U32);
  if (!l) return l.status();
  Inst& in = b.emit(h);
  in.d[0] = *d;
  in.a[0] = *a;
  in.a[1] = *bb;
  in.a[2] = *c;
  in.a[3] = *l;
  return Status::ok();
}

// shl/shr: the shift amount is .u32 whatever the data type
template <class T> struct Shl {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) {
    uint64_t* d = TF_REG(in.d[0]);
    const uint64_t* a = TF_REG(in.a[0]);
    const uint64_t* b = TF_REG(in.a[1]);
    forLanes(m, [&](uint32_t i) { d[i] = wr<T>(im::shl(rd<T>(a[i]), static_cast<uint32_t>(b[i]))); });
    return in.next;
  }
};
template <class T> struct Shr {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) {
    uint64_t* d = TF_REG(in.d[0]);
    const uint64_t* a = TF_REG(in.a[0]);
    const uint64_t* b = TF_REG(in.a[1]);
    forLanes(m, [&](uint32_t i) { d[i] = wr<T>(im::shr(rd<T>(a[i]), static_cast<uint32_t>(b[i]))); });
    return in.next;
  }
};
Status dShift(Builder& b, bool left) {
  auto t = oneType(b);
  if (!t) return t.status();
  Handler h = nullptr;
  if (left) {
    h = tySize(*t) == 2 ? &Shl<uint16_t>::run
        : tySize(*t) == 4 ? &Shl<uint32_t>::run
        : tySize(*t) == 8 ? &Shl<uint64_t>::run : nullptr;
  } else {
    switch (*t) {
    case Ty::B16: case Ty::U16: h = &Shr<uint16_t>::run; break;
    case Ty::S16: h = &Shr<int16_t>::run; break;
    case Ty::B32: case Ty::U32: h = &Shr<uint32_t>::run; break;
    case Ty::S32: h = &Shr<int32_t>::run; break;
    case Ty::B64: case Ty::U64: h = &Shr<uint64_t>::run; break;
    case Ty::S64: h = &Shr<int64_t>::run; break;
    default: break;
    }
  }
  if (!h) return b.unsupported();
  auto d = b.dst(0);
  if (!d) return d.status();
  auto a = b.src(1, *t);
  if (!a) return a.status();
  auto s = b.src(2, Ty::U32);
  if (!s) return s.status();
  Inst& in = b.emit(h);
  in.d[0] = *d;
  in.a[0] = *a;
  in.a[1] = *s;
  return Status::ok();
}
Status dShl(Builder& b) { return dShift(b, true); }
Status dShr(Builder& b) { return dShift(b, false); }

// shf.{l,r}.{wrap,clamp}.b32 d, a, b, c : funnel shift of b:a
uint32_t hShf(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  const uint64_t* a = TF_REG(in.a[0]);
  const uint64_t* b = TF_REG(in.a[1]);
  const uint64_t* c = TF_REG(in.a[2]);
  const bool left = in.aux & 1, clamp = in.aux & 2;
  forLanes(m, [&](uint32_t i) {
    uint32_t n = static_cast<uint32_t>(c[i]);
    n = clamp ? (n > 32 ? 32 : n) : (n & 31);
    uint64_t v = (uint64_t(static_cast<uint32_t>(b[i])) << 32) | static_cast<uint32_t>(a[i]);
    uint32_t r = left ? static_cast<uint32_t>((v << n) >> 32) : static_cast<uint32_t>(v >> n);
    d[i] = r;
  });
  return in.next;
}
Status dShf(Builder& b) {
  bool left = b.mods.take(".l");
  if (!left && !b.mods.take(".r")) return b.error("shf needs .l or .r");
  bool clamp = b.mods.take(".clamp");
  if (!clamp) b.mods.take(".wrap");
  auto t = oneType(b);
  if (!t) return t.status();
  if (tySize(*t) != 4) return b.unsupported();
  TF_RETURN_IF_ERROR(emit3(b, hShf, *t, Ty::U32));
  b.fd.fn.code.back().aux = (left ? 1 : 0) | (clamp ? 2 : 0);
  return Status::ok();
}

// lop3.b32 d, a, b, c, immLut
uint32_t hLop3(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  const uint64_t* a = TF_REG(in.a[0]);
  const uint64_t* b = TF_REG(in.a[1]);
  const uint64_t* c = TF_REG(in.a[2]);
  const uint32_t lut = in.aux;
  forLanes(m, [&](uint32_t i) {
    uint32_t x = static_cast<uint32_t>(a[i]), y = static_cast<uint32_t>(b[i]), z = static_cast<uint32_t>(c[i]);
    uint32_t r = 0;
    if (lut & 0x01) r |= ~x & ~y & ~z;
    if (lut & 0x02) r |= ~x & ~y & z;
    if (lut & 0x04) r |= ~x & y & ~z;
    if (lut & 0x08) r |= ~x & y & z;
    if (lut & 0x10) r |= x & ~y & ~z;
    if (lut & 0x20) r |= x & ~y & z;
    if (lut & 0x40) r |= x & y & ~z;
    if (lut & 0x80) r |= x & y & z;
    d[i] = r;
  });
  return in.next;
}
Status dLop3(Builder& b) {
  auto t = oneType(b);
  if (!t) return t.status();
  if (tySize(*t) != 4) return b.unsupported();
  if (b.numOps() != 5 || b.op(4).kind != ast::Operand::Kind::Imm)
    return b.error("lop3 needs an immediate lookup table");
  TF_RETURN_IF_ERROR(emit3(b, hLop3, *t, *t));
  b.fd.fn.code.back().aux = static_cast<uint32_t>(b.op(4).imm) & 0xff;
  return Status::ok();
}

// prmt.b32{.mode} d, a, b, c
uint32_t hPrmt(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  const uint64_t* a = TF_REG(in.a[0]);
  const uint64_t* b = TF_REG(in.a[1]);
  const uint64_t* c = TF_REG(in.a[2]);
  const uint32_t mode = in.aux;
  forLanes(m, [&](uint32_t i) {
    uint64_t v = (uint64_t(static_cast<uint32_t>(b[i])) << 32) | static_cast<uint32_t>(a[i]);
    auto byte = [&](uint32_t k) { return static_cast<uint32_t>((v >> (8 * (k & 7))) & 0xff); };
    uint32_t s = static_cast<uint32_t>(c[i]);
    uint32_t r = 0;
    if (mode == 0) {
      for (int k = 0; k < 4; ++k) {
        uint32_t sel = (s >> (4 * k)) & 0xf;
        uint32_t bt = byte(sel & 7);
        if (sel & 8) bt = (bt & 0x80) ? 0xff : 0;
        r |= bt << (8 * k);
      }
    } else {
      uint32_t n = s & 3;
      uint32_t sel[4];
      switch (mode) {
      case 1: sel[0] = n; sel[1] = (n + 1) & 7; sel[2] = (n + 2) & 7; sel[3] = (n + 3) & 7; break; // f4e
      case 2: sel[0] = n; sel[1] = (n - 1) & 7; sel[2] = (n - 2) & 7; sel[3] = (n - 3) & 7; break; // b4e
      case 3: sel[0] = sel[1] = sel[2] = sel[3] = n; break; // rc8
      case 4: { // ecl
        static const uint32_t t[4][4] = {{0, 1, 2, 3}, {1, 1, 2, 3}, {2, 2, 2, 3}, {3, 3, 3, 3}};
        for (int k = 0; k < 4; ++k) sel[k] = t[n][k];
        break;
      }
      case 5: { // ecr
        static const uint32_t t[4][4] = {{0, 0, 0, 0}, {0, 1, 1, 1}, {0, 1, 2, 2}, {0, 1, 2, 3}};
        for (int k = 0; k < 4; ++k) sel[k] = t[n][k];
        break;
      }
      default: { // rc16
        uint32_t lo = (n & 1) * 2;
        sel[0] = lo; sel[1] = lo + 1; sel[2] = lo; sel[3] = lo + 1;
        break;
      }
      }
      for (int k = 0; k < 4; ++k) r |= byte(sel[k]) << (8 * k);
    }
    d[i] = r;
  });
  return in.next;
}
Status dPrmt(Builder& b) {
  std::string mode;
  uint32_t mcode = 0;
  if (b.mods.takeAny({".f4e", ".b4e", ".rc8", ".ecl", ".ecr", ".rc16"}, &mode)) {
    mcode = mode == ".f4e" ? 1 : mode == ".b4e" ? 2 : mode == ".rc8" ? 3 : mode == ".ecl" ? 4
          : mode == ".ecr" ? 5 : 6;
  }
  auto t = oneType(b);
  if (!t) return t.status();
  TF_RETURN_IF_ERROR(emit3(b, hPrmt, *t, *t));
  b.fd.fn.code.back().aux = mcode;
  return Status::ok();
}

// dp4a.atype.btype d, a, b, c ; dp2a.{lo,hi}
uint32_t hDp4a(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  const uint64_t* a = TF_REG(in.a[0]);
  const uint64_t* b = TF_REG(in.a[1]);
  const uint64_t* c = TF_REG(in.a[2]);
  const bool as = in.aux & 1, bs = in.aux & 2, two = in.aux & 4, hi = in.aux & 8;
  forLanes(m, [&](uint32_t i) {
    uint32_t x = static_cast<uint32_t>(a[i]), y = static_cast<uint32_t>(b[i]);
    int64_t acc = as || bs ? int64_t(static_cast<int32_t>(c[i])) : int64_t(static_cast<uint32_t>(c[i]));
    if (!two) {
      for (int k = 0; k < 4; ++k) {
        int64_t xa = as ? int64_t(int8_t(x >> (8 * k))) : int64_t(uint8_t(x >> (8 * k)));
        int64_t yb = bs ? int64_t(int8_t(y >> (8 * k))) : int64_t(uint8_t(y >> (8 * k)));
        acc += xa * yb;
      }
    } else {
      for (int k = 0; k < 2; ++k) {
        int64_t xa = as ? int64_t(int16_t(x >> (16 * k))) : int64_t(uint16_t(x >> (16 * k)));
        int k2 = hi ? k + 2 : k;
        int64_t yb = bs ? int64_t(int8_t(y >> (8 * k2))) : int64_t(uint8_t(y >> (8 * k2)));
        acc += xa * yb;
      }
    }
    d[i] = static_cast<uint32_t>(acc);
  });
  return in.next;
}
Status dDp(Builder& b, bool two) {
  bool hi = false;
  if (two) {
    hi = b.mods.take(".hi");
    if (!hi && !b.mods.take(".lo")) return b.error("dp2a needs .lo or .hi");
  }
  auto ts = b.mods.takeTypes();
  if (ts.size() != 2) return b.error("expected two types");
  TF_RETURN_IF_ERROR(emit3(b, hDp4a, Ty::U32, Ty::U32));
  b.fd.fn.code.back().aux = (tyIsSigned(ts[0]) ? 1 : 0) | (tyIsSigned(ts[1]) ? 2 : 0) |
                            (two ? 4 : 0) | (hi ? 8 : 0);
  return Status::ok();
}
Status dDp4a(Builder& b) { return dDp(b, false); }
Status dDp2a(Builder& b) { return dDp(b, true); }

// szext.{wrap,clamp}.{u32,s32} d, a, b ; bmsk.{wrap,clamp}.b32 d, a, b
uint32_t hSzext(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  const uint64_t* a = TF_REG(in.a[0]);
  const uint64_t* b = TF_REG(in.a[1]);
  const bool clamp = in.aux & 1, sgn = in.aux & 2, bmsk = in.aux & 4;
  forLanes(m, [&](uint32_t i) {
    uint32_t x = static_cast<uint32_t>(a[i]), n = static_cast<uint32_t>(b[i]);
    if (bmsk) {
      uint32_t pos = clamp ? std::min(x, 32u) : (x & 31);
      uint32_t len = clamp ? std::min(n, 32u) : (n & 31);
      uint64_t mask = ((uint64_t(1) << len) - 1) << pos;
      d[i] = static_cast<uint32_t>(mask);
      return;
    }
    n = clamp ? std::min(n, 32u) : (n & 31);
    uint32_t r;
    if (n == 0) {
      r = 0;
    } else if (n >= 32) {
      r = x;
    } else {
      uint32_t mask = (1u << n) - 1;
      r = x & mask;
      if (sgn && ((x >> (n - 1)) & 1)) r |= ~mask;
    }
    d[i] = r;
  });
  return in.next;
}
Status dSzext(Builder& b, bool bmsk) {
  bool clamp = b.mods.take(".clamp");
  if (!clamp) b.mods.take(".wrap");
  auto t = oneType(b);
  if (!t) return t.status();
  TF_RETURN_IF_ERROR(emit2(b, hSzext, Ty::U32));
  b.fd.fn.code.back().aux = (clamp ? 1 : 0) | (*t == Ty::S32 ? 2 : 0) | (bmsk ? 4 : 0);
  return Status::ok();
}
Status dSzextOp(Builder& b) { return dSzext(b, false); }
Status dBmsk(Builder& b) { return dSzext(b, true); }

Status dSad(Builder& b) {
  auto t = oneType(b);
  if (!t) return t.status();
  Handler h = nullptr;
  switch (*t) {
  case Ty::U16: h = &Sad<uint16_t>::run; break;
  case Ty::S16: h = &Sad<int16_t>::run; break;
  case Ty::U32: h = &Sad<uint32_t>::run; break;
  case Ty::S32: h = &Sad<int32_t>::run; break;
  case Ty::U64: h = &Sad<uint64_t>::run; break;
  case Ty::S64: h = &Sad<int64_t>::run; break;
  default: break;
  }
  return emit3(b, h, *t, *t);
}

} // namespace

void registerIntOps(std::unordered_map<std::string, DecodeFn>& r) {
  r["add"] = dAdd;
  r["sub"] = dSub;
  r["addc"] = dAddc;
  r["subc"] = dSubc;
  r["mul"] = dMul;
  r["mad"] = dMadPlain;
  r["madc"] = dMadc;
  r["mul24"] = [](Builder& b) { return dMul24(b, false); };
  r["mad24"] = [](Builder& b) { return dMul24(b, true); };
  r["sad"] = dSad;
  r["div"] = dDiv;
  r["rem"] = dRem;
  r["min"] = dMin;
  r["max"] = dMax;
  r["neg"] = dNeg;
  r["abs"] = dAbs;
  r["and"] = dAnd;
  r["or"] = dOr;
  r["xor"] = dXor;
  r["not"] = dNot;
  r["cnot"] = dCnot;
  r["popc"] = dPopc;
  r["clz"] = dClz;
  r["brev"] = dBrev;
  r["bfind"] = dBfind;
  r["bfe"] = dBfe;
  r["bfi"] = dBfi;
  r["shl"] = dShl;
  r["shr"] = dShr;
  r["shf"] = dShf;
  r["lop3"] = dLop3;
  r["prmt"] = dPrmt;
  r["dp4a"] = dDp4a;
  r["dp2a"] = dDp2a;
  r["szext"] = dSzextOp;
  r["bmsk"] = dBmsk;
}

} // namespace tf::ptx
