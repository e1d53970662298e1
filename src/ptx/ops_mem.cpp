// ld/st/ldu, atom/red, fences, prefetch, cp.async and mbarrier.
#include <atomic>
#include <cmath>
#include <cstring>

#include "ptx/function_decoder.h"
#include "ptx/half.h"
#include "ptx/ops_common.h"

namespace tf::ptx {

namespace {

enum Space : int { SGlobal = 0, SShared = 1, SLocal = 2, SKParam = 3, SGeneric = 4 };

template <int SP> inline uint8_t* ptrFor(Warp& w, uint32_t lane, uint64_t addr, uint32_t size,
                                         const Inst& in) {
  if constexpr (SP == SGlobal) return globalPtr(w, addr, size, in);
  if constexpr (SP == SShared) return sharedPtr(w, addr, size, in);
  if constexpr (SP == SLocal) return localPtr(w, lane, addr, size, in);
  if constexpr (SP == SKParam) return paramPtr(w, addr, size, in);
  return genericPtr(w, lane, addr, size, in);
}

template <class T> inline uint64_t extend(T v) {
  if constexpr (std::is_signed_v<T>) {
    return static_cast<uint64_t>(static_cast<int64_t>(v));
  } else {
    return static_cast<uint64_t>(v);
  }
}

// ld: d[0..N-1] <- [a[0] + imm]; aux2 = 1 when the base register is 32-bit
template <int SP, class T, int N> uint32_t hLd(Warp& w, const Inst& in, uint32_t m) {
  const uint64_t* base = TF_REG(in.a[0]);
  const uint64_t amask = in.aux2 ? 0xFFFFFFFFull : ~0ull;
  uint64_t* d[N];
  for (int k = 0; k < N; ++k) d[k] = TF_REG(in.d[k]);
  bool bad = false;
  forLanes(m, [&](uint32_t i) {
    if (bad) return;
    uint64_t addr = (base[i] & amask) + static_cast<uint64_t>(in.imm);
    uint8_t* p = ptrFor<SP>(w, i, addr, sizeof(T) * N, in);
    if (!p) {
      bad = true;
      return;
    }
    for (int k = 0; k < N; ++k) {
      T v;
      std::memcpy(&v, p + k * sizeof(T), sizeof(T));
      d[k][i] = extend(v);
    }
  });
  return bad ? kPcStop : in.next;
}

// st: [d[0] + imm] <- a[0..N-1]
template <int SP, class T, int N> uint32_t hSt(Warp& w, const Inst& in, uint32_t m) {
  const uint64_t* base = TF_REG(in.d[0]);
  const uint64_t amask = in.aux2 ? 0xFFFFFFFFull : ~0ull;
  const uint64_t* s[N];
  for (int k = 0; k < N; ++k) s[k] = TF_REG(in.a[k]);
  if constexpr (SP == SKParam) {
    return faultStop(w, in, CUDA_ERROR_ILLEGAL_ADDRESS, "store to kernel parameter space");
  }
  bool bad = false;
  forLanes(m, [&](uint32_t i) {
    if (bad) return;
    uint64_t addr = (base[i] & amask) + static_cast<uint64_t>(in.imm);
    uint8_t* p = ptrFor<SP>(w, i, addr, sizeof(T) * N, in);
    if (!p) {
      bad = true;
      return;
    }
    for (int k = 0; k < N; ++k) {
      T v = static_cast<T>(s[k][i]);
      std::memcpy(p + k * sizeof(T), &v, sizeof(T));
    }
  });
  return bad ? kPcStop : in.next;
}

// ld.param of a kernel parameter at a fixed offset: one read, broadcast to the lanes
template <class T, int N> uint32_t hLdKParam(Warp& w, const Inst& in, uint32_t m) {
  const auto& p = w.launch->params;
  uint64_t off = static_cast<uint64_t>(in.imm);
  if (off > p.size() || p.size() - off < sizeof(T) * N)
    return faultStop(w, in, CUDA_ERROR_ILLEGAL_ADDRESS, "kernel parameter read past the parameter buffer");
  for (int k = 0; k < N; ++k) {
    T v;
    std::memcpy(&v, p.data() + off + k * sizeof(T), sizeof(T));
    uint64_t x = extend(v);
    uint64_t* d = TF_REG(in.d[k]);
    forLanes(m, [&](uint32_t i) { d[i] = x; });
  }
  return in.next;
}
template <int SP, class T, int N> struct KParamH {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) { return hLdKParam<T, N>(w, in, m); }
};

template <template <int, class, int> class H, int SP, class T> Handler byVec(int n) {
  switch (n) {
  case 1: return &H<SP, T, 1>::run;
  case 2: return &H<SP, T, 2>::run;
  case 4: return &H<SP, T, 4>::run;
  default: return nullptr;
  }
}

template <int SP, class T, int N> struct LdH {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) { return hLd<SP, T, N>(w, in, m); }
};
template <int SP, class T, int N> struct StH {
  static uint32_t run(Warp& w, const Inst& in, uint32_t m) { return hSt<SP, T, N>(w, in, m); }
};

template <template <int, class, int> class H, int SP> Handler byType(Ty t, int n) {
  switch (t) {
  case Ty::S8: return byVec<H, SP, int8_t>(n);
  case Ty::U8: case Ty::B8: return byVec<H, SP, uint8_t>(n);
  case Ty::S16: return byVec<H, SP, int16_t>(n);
  case Ty::U16: case Ty::B16: case Ty::F16: case Ty::BF16: return byVec<H, SP, uint16_t>(n);
  case Ty::S32: return byVec<H, SP, int32_t>(n);
  case Ty::U32: case Ty::B32: case Ty::F32: case Ty::F16x2: case Ty::BF16x2:
    return byVec<H, SP, uint32_t>(n);
  case Ty::S64: case Ty::U64: case Ty::B64: case Ty::F64: return byVec<H, SP, uint64_t>(n);
  default: return nullptr;
  }
}

template <template <int, class, int> class H> Handler bySpace(int sp, Ty t, int n) {
  switch (sp) {
  case SGlobal: return byType<H, SGlobal>(t, n);
  case SShared: return byType<H, SShared>(t, n);
  case SLocal: return byType<H, SLocal>(t, n);
  case SKParam: return byType<H, SKParam>(t, n);
  default: return byType<H, SGeneric>(t, n);
  }
}

// Which space an instruction touches given its state-space modifier and its address symbol.
Result<int> resolveSpace(Builder& b, std::string* spaceName) {
  std::string sp;
  if (b.mods.takeAny({".global", ".shared", ".local", ".param", ".const", ".shared::cta",
                      ".shared::cluster", ".param::entry", ".param::func"}, &sp)) {
    *spaceName = sp;
  } else {
    spaceName->clear();
  }
  if (sp == ".global" || sp == ".const") return SGlobal;
  if (sp == ".shared" || sp == ".shared::cta" || sp == ".shared::cluster") return SShared;
  if (sp == ".local") return SLocal;
  if (sp == ".param" || sp == ".param::entry" || sp == ".param::func") {
    // a .param variable declared in a body (call arguments) or a .func parameter lives in the
    // local frame; kernel parameters live in the launch's parameter buffer
    size_t ai = b.ai.opcode == "st" ? 0 : 1;
    const auto& o = b.op(ai);
    if (o.kind == ast::Operand::Kind::Addr && !o.name.empty()) {
      auto s = b.lookup(o.name);
      if (s && s->kind == Symbol::Kind::Local) return SLocal;
      if (s && s->kind == Symbol::Kind::KernelParam) return SKParam;
    }
    return b.inEntry() ? SKParam : SLocal;
  }
  return SGeneric;
}

Status dLd(Builder& b) {
  b.mods.take(".volatile");
  b.mods.take(".nc");
  std::string spName;
  auto sp = resolveSpace(b, &spName);
  if (!sp) return sp.status();
  int n = b.mods.takeVec();
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected one type");
  Ty t = ts[0];
  if (t == Ty::B128) return b.unsupported();
  Handler h = bySpace<LdH>(*sp, t, n);
  if (!h) return b.unsupported();
  if (b.numOps() != 2) return b.error("ld takes two operands");
  bool fixedParam = false;
  int64_t paramOff = 0;
  if (*sp == SKParam && b.op(1).kind == ast::Operand::Kind::Addr && !b.op(1).name.empty()) {
    auto s = b.lookup(b.op(1).name);
    if (s && s->kind == Symbol::Kind::KernelParam) {
      fixedParam = true;
      paramOff = int64_t(s->slot) + b.op(1).imm;
      h = byType<KParamH, SKParam>(t, n);
      if (!h || paramOff < 0) return b.unsupported();
    }
  }
  auto a = fixedParam ? Result<Builder::Addr>(Builder::Addr{0, paramOff, false})
                      : b.addr(1, *sp == SGeneric ? "" : spName);
  if (!a) return a.status();
  uint32_t d[4] = {0, 0, 0, 0};
  const auto& dst = b.op(0);
  if (n == 1) {
    if (dst.kind == ast::Operand::Kind::Vec) return b.error("vector destination for a scalar load");
    auto x = b.dst(0);
    if (!x) return x.status();
    d[0] = *x;
  } else {
    if (dst.kind != ast::Operand::Kind::Vec || dst.elems.size() != static_cast<size_t>(n))
      return b.error("vector load needs " + std::to_string(n) + " destinations");
    for (int k = 0; k < n; ++k) {
      auto x = b.dstOp(dst.elems[k]);
      if (!x) return x.status();
      d[k] = *x;
    }
  }
  Inst& in = b.emit(h);
  for (int k = 0; k < 4; ++k) in.d[k] = d[k];
  in.a[0] = a->slot;
  in.imm = a->offset;
  in.aux2 = a->is32 ? 1 : 0;
  return Status::ok();
}

Status dSt(Builder& b) {
  b.mods.take(".volatile");
  std::string spName;
  auto sp = resolveSpace(b, &spName);
  if (!sp) return sp.status();
  int n = b.mods.takeVec();
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected one type");
  Ty t = ts[0];
  if (t == Ty::B128) return b.unsupported();
  Handler h = bySpace<StH>(*sp, t, n);
  if (!h) return b.unsupported();
  if (b.numOps() != 2) return b.error("st takes two operands");
  auto a = b.addr(0, *sp == SGeneric ? "" : spName);
  if (!a) return a.status();
  uint32_t s[4] = {0, 0, 0, 0};
  const auto& src = b.op(1);
  if (n == 1) {
    auto x = b.src(1, t);
    if (!x) return x.status();
    s[0] = *x;
  } else {
    if (src.kind != ast::Operand::Kind::Vec || src.elems.size() != static_cast<size_t>(n))
      return b.error("vector store needs " + std::to_string(n) + " sources");
    for (int k = 0; k < n; ++k) {
      auto x = src.elems[k].kind == ast::Operand::Kind::Sink ? Result<uint32_t>(b.constSlot(0))
                                                             : b.srcOp(src.elems[k], t);
      if (!x) return x.status();
      s[k] = *x;
    }
  }
  Inst& in = b.emit(h);
  in.d[0] = a->slot;
  for (int k = 0; k < 4; ++k) in.a[k] = s[k];
  in.imm = a->offset;
  in.aux2 = a->is32 ? 1 : 0;
  return Status::ok();
}

// ----- atomics --------------------------------------------------------------------------------

enum AtomOp : uint32_t { AAdd, AMin, AMax, AInc, ADec, AExch, ACas, AAnd, AOr, AXor };

template <class T> T atomicApply(uint8_t* p, uint32_t op, T b, T c) {
  std::atomic_ref<T> ref(*reinterpret_cast<T*>(p));
  switch (op) {
  case AAdd:
    if constexpr (std::is_floating_point_v<T>) {
      return ref.fetch_add(b);
    } else {
      return ref.fetch_add(b);
    }
  case AExch: return ref.exchange(b);
  case ACas: {
    T expected = b;
    ref.compare_exchange_strong(expected, c);
    return expected;
  }
  default: break;
  }
  if constexpr (!std::is_floating_point_v<T>) {
    switch (op) {
    case AAnd: return ref.fetch_and(b);
    case AOr: return ref.fetch_or(b);
    case AXor: return ref.fetch_xor(b);
    default: break;
    }
  }
  T old = ref.load();
  for (;;) {
    T nv;
    switch (op) {
    case AMin:
      if constexpr (std::is_floating_point_v<T>) {
        nv = std::fmin(old, b);
      } else {
        nv = b < old ? b : old;
      }
      break;
    case AMax:
      if constexpr (std::is_floating_point_v<T>) {
        nv = std::fmax(old, b);
      } else {
        nv = b > old ? b : old;
      }
      break;
    case AInc:
      if constexpr (!std::is_floating_point_v<T>) {
        nv = (old >= b) ? T(0) : T(old + 1);
      } else {
        nv = old;
      }
      break;
    case ADec:
      if constexpr (!std::is_floating_point_v<T>) {
        nv = (old == 0 || old > b) ? b : T(old - 1);
      } else {
        nv = old;
      }
      break;
    default: nv = old; break;
    }
    if (ref.compare_exchange_weak(old, nv)) return old;
  }
}

// half adds are done with a CAS loop on the containing 16-bit value
uint16_t atomicHalfAdd(uint8_t* p, uint16_t b, bool bf) {
  std::atomic_ref<uint16_t> ref(*reinterpret_cast<uint16_t*>(p));
  uint16_t old = ref.load();
  for (;;) {
    float x = bf ? bf16ToFloat(old) : halfToFloat(old);
    float y = bf ? bf16ToFloat(b) : halfToFloat(b);
    uint16_t nv = bf ? floatToBf16(x + y) : floatToHalf(x + y);
    if (ref.compare_exchange_weak(old, nv)) return old;
  }
}

// d <- atom [a + imm], b (, c); aux = op, aux2 bit0 = 32-bit base; bit1 = bf16 for half adds
template <int SP, class T> uint32_t hAtom(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  const uint64_t* base = TF_REG(in.a[0]);
  const uint64_t* bv = TF_REG(in.a[1]);
  const uint64_t* cv = TF_REG(in.a[2]);
  const uint64_t amask = (in.aux2 & 1) ? 0xFFFFFFFFull : ~0ull;
  bool bad = false;
  forLanes(m, [&](uint32_t i) {
    if (bad) return;
    uint64_t addr = (base[i] & amask) + static_cast<uint64_t>(in.imm);
    uint8_t* p = ptrFor<SP>(w, i, addr, sizeof(T), in);
    if (!p) {
      bad = true;
      return;
    }
    if constexpr (std::is_same_v<T, uint16_t>) {
      d[i] = atomicHalfAdd(p, static_cast<uint16_t>(bv[i]), in.aux2 & 2);
    } else {
      T old = atomicApply<T>(p, in.aux, rd<T>(bv[i]), rd<T>(cv[i]));
      d[i] = wr<T>(old);
    }
  });
  return bad ? kPcStop : in.next;
}

// f16x2 / bf16x2 add: both halves in one 32-bit compare-and-swap
template <int SP> uint32_t hAtomH2(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  const uint64_t* base = TF_REG(in.a[0]);
  const uint64_t* bv = TF_REG(in.a[1]);
  const uint64_t amask = (in.aux2 & 1) ? 0xFFFFFFFFull : ~0ull;
  const bool bf = in.aux2 & 2;
  bool bad = false;
  forLanes(m, [&](uint32_t i) {
    if (bad) return;
    uint64_t addr = (base[i] & amask) + static_cast<uint64_t>(in.imm);
    uint8_t* p = ptrFor<SP>(w, i, addr, 4, in);
    if (!p) {
      bad = true;
      return;
    }
    std::atomic_ref<uint32_t> ref(*reinterpret_cast<uint32_t*>(p));
    uint32_t old = ref.load(), b = static_cast<uint32_t>(bv[i]);
    for (;;) {
      uint32_t nv = 0;
      for (int k = 0; k < 2; ++k) {
        uint16_t x = static_cast<uint16_t>(old >> (16 * k)), y = static_cast<uint16_t>(b >> (16 * k));
        float f = (bf ? bf16ToFloat(x) : halfToFloat(x)) + (bf ? bf16ToFloat(y) : halfToFloat(y));
        nv |= uint32_t(bf ? floatToBf16(f) : floatToHalf(f)) << (16 * k);
      }
      if (ref.compare_exchange_weak(old, nv)) break;
    }
    d[i] = old;
  });
  return bad ? kPcStop : in.next;
}

template <int SP> Handler atomFor(Ty t) {
  switch (t) {
  case Ty::B32: case Ty::U32: return &hAtom<SP, uint32_t>;
  case Ty::S32: return &hAtom<SP, int32_t>;
  case Ty::B64: case Ty::U64: return &hAtom<SP, uint64_t>;
  case Ty::S64: return &hAtom<SP, int64_t>;
  case Ty::F32: return &hAtom<SP, float>;
  case Ty::F64: return &hAtom<SP, double>;
  case Ty::F16: case Ty::BF16: return &hAtom<SP, uint16_t>;
  case Ty::F16x2: case Ty::BF16x2: return &hAtomH2<SP>;
  default: return nullptr;
  }
}

Status dAtomRed(Builder& b, bool isRed) {
  std::string spName;
  auto sp = resolveSpace(b, &spName);
  if (!sp) return sp.status();
  if (*sp == SKParam) return b.unsupported();
  std::string ops;
  if (!b.mods.takeAny({".add", ".min", ".max", ".inc", ".dec", ".exch", ".cas", ".and", ".or",
                       ".xor"}, &ops))
    return b.error("missing atomic operation");
  static const std::pair<const char*, AtomOp> map[] = {
      {".add", AAdd}, {".min", AMin}, {".max", AMax}, {".inc", AInc}, {".dec", ADec},
      {".exch", AExch}, {".cas", ACas}, {".and", AAnd}, {".or", AOr}, {".xor", AXor}};
  AtomOp op = AAdd;
  for (auto& [n, v] : map)
    if (ops == n) op = v;
  b.mods.take(".noftz");
  if (b.mods.takeVec() != 1) return b.unsupported();
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected one type");
  Ty t = ts[0];
  if ((t == Ty::F16 || t == Ty::BF16 || t == Ty::F16x2 || t == Ty::BF16x2) && op != AAdd) return b.unsupported();
  if ((t == Ty::F32 || t == Ty::F64) && op != AAdd && op != AExch && op != AMin && op != AMax)
    return b.unsupported();
  if ((t == Ty::B32 || t == Ty::B64) && (op == AAdd || op == AMin || op == AMax || op == AInc || op == ADec))
    t = tySize(t) == 4 ? Ty::U32 : Ty::U64;
  Handler h = nullptr;
  switch (*sp) {
  case SGlobal: h = atomFor<SGlobal>(t); break;
  case SShared: h = atomFor<SShared>(t); break;
  case SLocal: h = atomFor<SLocal>(t); break;
  default: h = atomFor<SGeneric>(t); break;
  }
  if (!h) return b.unsupported();
  size_t ai = isRed ? 0 : 1;
  uint32_t d = 0;
  if (!isRed) {
    auto x = b.dst(0);
    if (!x) return x.status();
    d = *x;
  } else {
    d = b.scratchSlot();
  }
  auto a = b.addr(ai, *sp == SGeneric ? "" : spName);
  if (!a) return a.status();
  auto bv = b.src(ai + 1, t);
  if (!bv) return bv.status();
  uint32_t cv = bv.value();
  if (op == ACas) {
    auto c = b.src(ai + 2, t);
    if (!c) return c.status();
    cv = *c;
  }
  Inst& in = b.emit(h);
  in.d[0] = d;
  in.a[0] = a->slot;
  in.a[1] = *bv;
  in.a[2] = cv;
  in.imm = a->offset;
  in.aux = op;
  in.aux2 = (a->is32 ? 1 : 0) | ((t == Ty::BF16 || t == Ty::BF16x2) ? 2 : 0);
  return Status::ok();
}
Status dAtom(Builder& b) { return dAtomRed(b, false); }
Status dRed(Builder& b) { return dAtomRed(b, true); }

uint32_t hFence(Warp& w, const Inst& in, uint32_t m) {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return in.next;
}
// Every fence is a full fence here: host threads run the warps, and one sequentially
// consistent fence orders all of them at any scope.
Status dFence(Builder& b) {
  b.mods.takeAny({".sc", ".acq_rel", ".acquire", ".release", ".proxy", ".async", ".alias"}, nullptr);
  b.mods.takeAny({".global", ".shared", ".shared::cta", ".shared::cluster"}, nullptr);
  b.mods.takeAny({".async", ".alias"}, nullptr);
  b.mods.takeAny({".cta", ".cluster", ".gpu", ".sys"}, nullptr);
  b.emit(hFence);
  return Status::ok();
}
// membar.{cta,gl,sys}: the older spelling of fence.sc.{cta,gpu,sys}.
Status dMembar(Builder& b) {
  b.mods.takeAny({".cta", ".gl", ".sys"}, nullptr);
  b.emit(hFence);
  return Status::ok();
}
Status dNop(Builder& b) {
  // prefetch, applypriority, discard...: hints with no effect; accept their modifiers
  for (const auto& m : b.ai.mods) b.mods.take(m.c_str());
  return Status::ok();
}

// cp.async.{ca,cg}.shared.global [dst], [src], cp-size{, src-size | ignore-src}: executed
// synchronously. Bytes past src-size (all of them when ignore-src is true) are zero-filled.
// aux: cp-size; aux2: bit0 32-bit dst register, bit1 src-size register in a[1], bit2 ignore-src
// predicate in a[1], bits 8.. source offset.
uint32_t hCpAsync(Warp& w, const Inst& in, uint32_t m) {
  const uint64_t* dst = TF_REG(in.d[0]);
  const uint64_t* src = TF_REG(in.a[0]);
  const uint64_t* srcSize = (in.aux2 & 2) ? TF_REG(in.a[1]) : nullptr;
  const uint32_t ignore = (in.aux2 & 4) ? w.p[in.a[1]] : 0;
  const uint32_t size = in.aux;
  const uint64_t dmask = (in.aux2 & 1) ? 0xFFFFFFFFull : ~0ull;
  bool bad = false;
  forLanes(m, [&](uint32_t i) {
    if (bad) return;
    uint32_t n = srcSize ? static_cast<uint32_t>(srcSize[i]) : size;
    if (n > size) n = size;
    if (ignore & (1u << i)) n = 0;
    uint8_t* dp = sharedPtr(w, (dst[i] & dmask) + static_cast<uint64_t>(in.imm), size, in);
    if (!dp) {
      bad = true;
      return;
    }
    if (n) {
      uint8_t* sp = globalPtr(w, src[i] + static_cast<uint64_t>(in.aux2 >> 8), n, in);
      if (!sp) {
        bad = true;
        return;
      }
      std::memcpy(dp, sp, n);
    }
    std::memset(dp + n, 0, size - n);
  });
  return bad ? kPcStop : in.next;
}
Status dCpAsync(Builder& b) {
  if (!b.mods.take(".async")) return b.unsupported();
  if (b.mods.take(".commit_group") || b.mods.take(".wait_group") || b.mods.take(".wait_all")) {
    return Status::ok(); // copies complete immediately
  }
  if (b.mods.take(".mbarrier")) return dCpAsyncMbarrierArrive(b);
  b.mods.takeAny({".ca", ".cg"}, nullptr);
  if (!b.mods.take(".shared") && !b.mods.take(".shared::cta")) return b.unsupported();
  if (!b.mods.take(".global")) return b.unsupported();
  b.mods.takeAny({".L2::64B", ".L2::128B", ".L2::256B"}, nullptr);
  const size_t nops = b.numOps();
  auto dst = b.addr(0, ".shared");
  if (!dst) return dst.status();
  auto src = b.addr(1, ".global");
  if (!src) return src.status();
  if (nops < 3 || b.op(2).kind != ast::Operand::Kind::Imm) return b.error("cp-size must be an immediate");
  uint32_t size = static_cast<uint32_t>(b.op(2).imm);
  if (size != 4 && size != 8 && size != 16) return b.error("bad cp-size");
  if (nops > 4) return b.error("too many operands");
  uint32_t extraSlot = 0, extraKind = 0;
  if (nops == 4) {
    const auto& o = b.op(3);
    bool isPred = false;
    if (o.kind == ast::Operand::Kind::Reg) {
      auto sym = b.lookup(o.name);
      isPred = sym && sym->kind == Symbol::Kind::Pred;
    }
    if (isPred) {
      bool neg = false;
      auto p = b.predSrc(3, &neg);
      if (!p) return p.status();
      if (neg) return b.error("ignore-src cannot be negated");
      extraSlot = *p;
      extraKind = 4;
    } else {
      auto s = b.src(3, Ty::U32);
      if (!s) return s.status();
      extraSlot = *s;
      extraKind = 2;
    }
  }
  if (src->offset < 0 || src->offset > 0xFFFFFF) return b.error("source offset out of range");
  Inst& in = b.emit(hCpAsync);
  in.d[0] = dst->slot;
  in.a[0] = src->slot;
  in.a[1] = extraSlot;
  in.imm = dst->offset;
  in.aux = size;
  in.aux2 = (dst->is32 ? 1 : 0) | extraKind | (static_cast<uint32_t>(src->offset) << 8);
  return Status::ok();
}

} // namespace

uint8_t* paramPtr(Warp& w, uint64_t addr, uint32_t size, const Inst& in) {
  const auto& p = w.launch->params;
  if (addr < p.size() && p.size() - addr >= size) return const_cast<uint8_t*>(p.data()) + addr;
  faultAt(w, in, CUDA_ERROR_ILLEGAL_ADDRESS,
          "kernel parameter access at offset " + std::to_string(addr) + " out of bounds");
  return nullptr;
}

void registerMemOps(std::unordered_map<std::string, DecodeFn>& r) {
  r["ld"] = dLd;
  r["ldu"] = dLd;
  r["st"] = dSt;
  r["atom"] = dAtom;
  r["red"] = dRed;
  r["fence"] = dFence;
  r["membar"] = dMembar;
  r["prefetch"] = [](Builder& b) -> Status { return dNop(b); };
  r["prefetchu"] = [](Builder& b) -> Status { return dNop(b); };
  r["applypriority"] = [](Builder& b) -> Status { return dNop(b); };
  r["discard"] = [](Builder& b) -> Status { return dNop(b); };
  r["cp"] = dCpAsync;
}

} // namespace tf::ptx
