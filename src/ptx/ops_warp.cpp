// Warp-level operations: shfl, vote, activemask, match, redux, elect.
#include "ptx/function_decoder.h"
#include "ptx/ops_common.h"

namespace tf::ptx {

namespace {

// aux: mode (0 up, 1 down, 2 bfly, 3 idx); aux2 bit0: predicate destination in d[1]
template <uint32_t Mode> uint32_t hShfl(Warp& w, const Inst& in, uint32_t m) {
  uint64_t src[32];
  const uint64_t* a = TF_REG(in.a[0]);
  std::memcpy(src, a, sizeof src);
  const uint64_t* bv = TF_REG(in.a[1]);
  const uint64_t* cv = TF_REG(in.a[2]);
  uint64_t* d = TF_REG(in.d[0]);
  uint32_t pbits = 0;
  forLanes(m, [&](uint32_t lane) {
    uint32_t b = static_cast<uint32_t>(bv[lane]) & 0x1f;
    uint32_t c = static_cast<uint32_t>(cv[lane]);
    uint32_t clamp = c & 0x1f, seg = (c >> 8) & 0x1f;
    int32_t maxLane = static_cast<int32_t>((lane & seg) | (clamp & ~seg));
    int32_t minLane = static_cast<int32_t>(lane & seg);
    int32_t j;
    bool pval;
    if constexpr (Mode == 0) {
      j = static_cast<int32_t>(lane) - static_cast<int32_t>(b);
      pval = j >= maxLane;
    } else if constexpr (Mode == 1) {
      j = static_cast<int32_t>(lane + b);
      pval = j <= maxLane;
    } else if constexpr (Mode == 2) {
      j = static_cast<int32_t>(lane ^ b);
      pval = j <= maxLane;
    } else {
      j = minLane | static_cast<int32_t>(b & ~seg);
      pval = j <= maxLane;
    }
    if (!pval || j < 0 || j > 31) j = static_cast<int32_t>(lane);
    d[lane] = src[j];
    if (pval) pbits |= 1u << lane;
  });
  if (in.aux2 & 1) w.p[in.d[1]] = (w.p[in.d[1]] & ~m) | pbits;
  return in.next;
}

Status dShfl(Builder& b) {
  b.mods.take(".sync");
  std::string mode;
  if (!b.mods.takeAny({".up", ".down", ".bfly", ".idx"}, &mode)) return b.error("shfl needs a mode");
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1 || tySize(ts[0]) != 4) return b.unsupported();
  Handler h = mode == ".up" ? &hShfl<0> : mode == ".down" ? &hShfl<1> : mode == ".bfly" ? &hShfl<2> : &hShfl<3>;
  const auto& o0 = b.op(0);
  uint32_t pd = 0;
  bool hasP = false;
  if (!o0.pairPred.empty()) {
    auto p = b.predByName(o0.pairPred);
    if (!p) return p.status();
    pd = *p;
    hasP = true;
  }
  auto d = b.dst(0);
  if (!d) return d.status();
  auto a = b.src(1, Ty::B32);
  if (!a) return a.status();
  auto bb = b.src(2, Ty::B32);
  if (!bb) return bb.status();
  auto c = b.src(3, Ty::B32);
  if (!c) return c.status();
  Inst& in = b.emit(h);
  in.d[0] = *d;
  in.d[1] = pd;
  in.a[0] = *a;
  in.a[1] = *bb;
  in.a[2] = *c;
  in.aux2 = hasP ? 1 : 0;
  return Status::ok();
}

// vote: aux 0 all, 1 any, 2 uni, 3 ballot; aux2 bit0: source predicate negated
uint32_t hVote(Warp& w, const Inst& in, uint32_t m) {
  uint32_t p = (w.p[in.a[0]] ^ ((in.aux2 & 1) ? ~0u : 0u)) & m;
  if (in.aux == 3) {
    uint64_t* d = TF_REG(in.d[0]);
    forLanes(m, [&](uint32_t i) { d[i] = p; });
    return in.next;
  }
  bool r;
  switch (in.aux) {
  case 0: r = p == m; break;
  case 1: r = p != 0; break;
  default: r = p == 0 || p == m; break;
  }
  w.p[in.d[0]] = (w.p[in.d[0]] & ~m) | (r ? m : 0);
  return in.next;
}

Status dVote(Builder& b) {
  b.mods.take(".sync");
  std::string mode;
  if (!b.mods.takeAny({".all", ".any", ".uni", ".ballot"}, &mode)) return b.error("vote needs a mode");
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected one type");
  uint32_t kind = mode == ".all" ? 0 : mode == ".any" ? 1 : mode == ".uni" ? 2 : 3;
  uint32_t d;
  if (kind == 3) {
    auto x = b.dst(0);
    if (!x) return x.status();
    d = *x;
  } else {
    auto x = b.predDst(0);
    if (!x) return x.status();
    d = *x;
  }
  bool neg = false;
  auto p = b.predSrc(1, &neg);
  if (!p) return p.status();
  Inst& in = b.emit(hVote);
  in.d[0] = d;
  in.a[0] = *p;
  in.aux = kind;
  in.aux2 = neg ? 1 : 0;
  return Status::ok();
}

uint32_t hActivemask(Warp& w, const Inst& in, uint32_t m) {
  uint64_t* d = TF_REG(in.d[0]);
  forLanes(m, [&](uint32_t i) { d[i] = m; });
  return in.next;
}
Status dActivemask(Builder& b) {
  b.mods.takeTypes();
  auto d = b.dst(0);
  if (!d) return d.status();
  Inst& in = b.emit(hActivemask);
  in.d[0] = *d;
  return Status::ok();
}

// match.any / match.all: aux 0 any, 1 all; aux2 bit0 pred dest, bit1 64-bit
uint32_t hMatch(Warp& w, const Inst& in, uint32_t m) {
  const uint64_t* a = TF_REG(in.a[0]);
  uint64_t* d = TF_REG(in.d[0]);
  const uint64_t vm = (in.aux2 & 2) ? ~0ull : 0xFFFFFFFFull;
  if (in.aux == 0) {
    uint64_t vals[32];
    for (int i = 0; i < 32; ++i) vals[i] = a[i] & vm;
    forLanes(m, [&](uint32_t i) {
      uint32_t r = 0;
      forLanes(m, [&](uint32_t j) {
        if (vals[j] == vals[i]) r |= 1u << j;
      });
      d[i] = r;
    });
    return in.next;
  }
  bool same = true;
  uint32_t first = m ? static_cast<uint32_t>(__builtin_ctz(m)) : 0;
  forLanes(m, [&](uint32_t i) {
    if ((a[i] & vm) != (a[first] & vm)) same = false;
  });
  forLanes(m, [&](uint32_t i) { d[i] = same ? m : 0; });
  if (in.aux2 & 1) w.p[in.d[1]] = (w.p[in.d[1]] & ~m) | (same ? m : 0);
  return in.next;
}
Status dMatch(Builder& b) {
  b.mods.take(".sync");
  std::string mode;
  if (!b.mods.takeAny({".any", ".all"}, &mode)) return b.error("match needs .any or .all");
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected one type");
  const auto& o0 = b.op(0);
  uint32_t pd = 0;
  bool hasP = false;
  if (!o0.pairPred.empty()) {
    auto p = b.predByName(o0.pairPred);
    if (!p) return p.status();
    pd = *p;
    hasP = true;
  }
  auto d = b.dst(0);
  if (!d) return d.status();
  auto a = b.src(1, ts[0]);
  if (!a) return a.status();
  Inst& in = b.emit(hMatch);
  in.d[0] = *d;
  in.d[1] = pd;
  in.a[0] = *a;
  in.aux = mode == ".any" ? 0 : 1;
  in.aux2 = (hasP ? 1 : 0) | (tySize(ts[0]) == 8 ? 2 : 0);
  return Status::ok();
}

// redux.sync.op.type d, a, membermask: aux op (0 add, 1 min, 2 max, 3 and, 4 or, 5 xor),
// aux2: 1 signed
uint32_t hRedux(Warp& w, const Inst& in, uint32_t m) {
  const uint64_t* a = TF_REG(in.a[0]);
  uint64_t* d = TF_REG(in.d[0]);
  const bool sgn = in.aux2 & 1;
  uint32_t first = m ? static_cast<uint32_t>(__builtin_ctz(m)) : 0;
  uint32_t acc = static_cast<uint32_t>(a[first]);
  forLanes(m & ~(1u << first), [&](uint32_t i) {
    uint32_t v = static_cast<uint32_t>(a[i]);
    switch (in.aux) {
    case 0: acc += v; break;
    case 1: acc = sgn ? static_cast<uint32_t>(std::min<int32_t>(int32_t(acc), int32_t(v))) : std::min(acc, v); break;
    case 2: acc = sgn ? static_cast<uint32_t>(std::max<int32_t>(int32_t(acc), int32_t(v))) : std::max(acc, v); break;
    case 3: acc &= v; break;
    case 4: acc |= v; break;
    default: acc ^= v; break;
    }
  });
  forLanes(m, [&](uint32_t i) { d[i] = acc; });
  return in.next;
}
Status dRedux(Builder& b) {
  b.mods.take(".sync");
  std::string op;
  if (!b.mods.takeAny({".add", ".min", ".max", ".and", ".or", ".xor"}, &op)) return b.unsupported();
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1 || tySize(ts[0]) != 4 || tyIsFloat(ts[0])) return b.unsupported();
  auto d = b.dst(0);
  if (!d) return d.status();
  auto a = b.src(1, ts[0]);
  if (!a) return a.status();
  Inst& in = b.emit(hRedux);
  in.d[0] = *d;
  in.a[0] = *a;
  in.aux = op == ".add" ? 0 : op == ".min" ? 1 : op == ".max" ? 2 : op == ".and" ? 3 : op == ".or" ? 4 : 5;
  in.aux2 = ts[0] == Ty::S32 ? 1 : 0;
  return Status::ok();
}

// elect.sync d|p, membermask
uint32_t hElect(Warp& w, const Inst& in, uint32_t m) {
  uint32_t mm = m & static_cast<uint32_t>(TF_REG(in.a[0])[m ? __builtin_ctz(m) : 0]);
  uint32_t leader = mm ? static_cast<uint32_t>(__builtin_ctz(mm)) : 0;
  uint64_t* d = TF_REG(in.d[0]);
  forLanes(m, [&](uint32_t i) { d[i] = leader; });
  if (in.aux2 & 1) w.p[in.d[1]] = (w.p[in.d[1]] & ~m) | (mm ? (1u << leader) : 0);
  return in.next;
}
Status dElect(Builder& b) {
  b.mods.take(".sync");
  const auto& o0 = b.op(0);
  uint32_t pd = 0;
  bool hasP = false;
  if (!o0.pairPred.empty()) {
    auto p = b.predByName(o0.pairPred);
    if (!p) return p.status();
    pd = *p;
    hasP = true;
  }
  auto d = b.dst(0);
  if (!d) return d.status();
  auto a = b.src(1, Ty::B32);
  if (!a) return a.status();
  Inst& in = b.emit(hElect);
  in.d[0] = *d;
  in.d[1] = pd;
  in.a[0] = *a;
  in.aux2 = hasP ? 1 : 0;
  return Status::ok();
}

} // namespace

void registerWarpOps(std::unordered_map<std::string, DecodeFn>& r) {
  r["shfl"] = dShfl;
  r["vote"] = dVote;
  r["activemask"] = dActivemask;
  r["match"] = dMatch;
  r["redux"] = dRedux;
  r["elect"] = dElect;
}


} // namespace tf::ptx
