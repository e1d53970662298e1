// Per-instruction tests: small handwritten PTX bodies run over 64 lanes of random inputs and
// compared with a host reference.
#include <gtest/gtest.h>

#include <chrono>

#include <cfenv>
#include <climits>
#include <cmath>
#include <functional>
#include <random>

#include "ptx/half.h"
#include "test_util.h"

namespace tf::ptx::test {
namespace {

constexpr int kLanes = 64;

enum class Out { U64, U32, F32, F64, Pred };

std::string wrapBody(const std::string& body, Out out) {
  std::string epi;
  switch (out) {
  case Out::U64: break;
  case Out::U32: epi = "cvt.u64.u32 %o, %o32;"; break;
  case Out::F32: epi = "mov.b32 %o32, %fo; cvt.u64.u32 %o, %o32;"; break;
  case Out::F64: epi = "mov.b64 %o, %do;"; break;
  case Out::Pred: epi = "selp.u64 %o, 1, 0, %po;"; break;
  }
  return R"(
.version 8.5
.target sm_90
.address_size 64
.visible .entry k(.param .u64 pa, .param .u64 pb, .param .u64 pc, .param .u64 pout)
{
  .reg .b64 %a, %b, %c, %o, %off, %pa, %pb, %pc, %po_, %t64, %u64;
  .reg .b32 %a32, %b32, %c32, %o32, %tid, %t32, %u32;
  .reg .f32 %fa, %fb, %fc, %fo, %ft;
  .reg .f64 %da, %db, %dc, %do, %dt;
  .reg .b16 %ha, %hb, %ho;
  .reg .pred %po, %pq, %pt;
  mov.u32 %tid, %tid.x;
  mul.wide.u32 %off, %tid, 8;
  ld.param.u64 %pa, [pa];
  ld.param.u64 %pb, [pb];
  ld.param.u64 %pc, [pc];
  ld.param.u64 %po_, [pout];
  add.s64 %pa, %pa, %off;
  add.s64 %pb, %pb, %off;
  add.s64 %pc, %pc, %off;
  add.s64 %po_, %po_, %off;
  ld.global.u64 %a, [%pa];
  ld.global.u64 %b, [%pb];
  ld.global.u64 %c, [%pc];
  cvt.u32.u64 %a32, %a;
  cvt.u32.u64 %b32, %b;
  cvt.u32.u64 %c32, %c;
  mov.b32 %fa, %a32;
  mov.b32 %fb, %b32;
  mov.b32 %fc, %c32;
  mov.b64 %da, %a;
  mov.b64 %db, %b;
  mov.b64 %dc, %c;
  cvt.u16.u32 %ha, %a32;
  cvt.u16.u32 %hb, %b32;
  mov.u64 %o, 0;
)" + body + "\n" + epi + R"(
  st.global.u64 [%po_], %o;
  ret;
}
)";
}

struct Inputs {
  std::vector<uint64_t> a, b, c;
};

// Runs the body; returns outputs per lane (empty and a failure on error).
std::vector<uint64_t> runBody(const std::string& body, Out out, const Inputs& in) {
  TestMemory mem;
  auto l = loadPtx(wrapBody(body, out), "instr.ptx", mem);
  EXPECT_TRUE(l.error.empty()) << l.error << "\n" << body;
  if (!l.error.empty()) return {};
  uint64_t da = mem.upload(in.a), db = mem.upload(in.b), dc = mem.upload(in.c);
  uint64_t dout = mem.alloc(kLanes * 8);
  std::string msg;
  CUresult r = launch(*l.mod, "k", {1}, {kLanes}, Args().add(da).add(db).add(dc).add(dout), mem, &msg);
  EXPECT_EQ(r, CUDA_SUCCESS) << msg;
  return mem.download<uint64_t>(dout, kLanes);
}

std::mt19937_64 rng(777);

Inputs ints32(std::vector<uint32_t> edges = {}) {
  Inputs in;
  std::uniform_int_distribution<uint32_t> d;
  static const uint32_t special[] = {0, 1, 0xFFFFFFFFu, 0x80000000u, 0x7FFFFFFFu, 31, 32, 33, 2, 7};
  for (int i = 0; i < kLanes; ++i) {
    auto pick = [&](int salt) -> uint32_t {
      if ((i + salt) % 5 == 0) return special[(i * 3 + salt) % 10];
      return d(rng);
    };
    in.a.push_back(pick(0));
    in.b.push_back(pick(1));
    in.c.push_back(pick(2));
  }
  for (size_t k = 0; k + 2 < edges.size() && k / 3 < kLanes; k += 3) {
    in.a[k / 3] = edges[k];
    in.b[k / 3] = edges[k + 1];
    in.c[k / 3] = edges[k + 2];
  }
  return in;
}

Inputs ints64() {
  Inputs in;
  std::uniform_int_distribution<uint64_t> d;
  static const uint64_t special[] = {0, 1, ~0ull, 1ull << 63, (1ull << 63) - 1, 63, 64, 65, 2, 7};
  for (int i = 0; i < kLanes; ++i) {
    in.a.push_back(i % 4 == 0 ? special[i % 10] : d(rng));
    in.b.push_back(i % 3 == 0 ? special[(i + 3) % 10] : d(rng));
    in.c.push_back(d(rng));
  }
  return in;
}

uint32_t fbits(float f) { return std::bit_cast<uint32_t>(f); }
float bitsf(uint64_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b)); }
double bitsd(uint64_t b) { return std::bit_cast<double>(b); }

Inputs floats32() {
  Inputs in;
  std::uniform_real_distribution<float> d(-100, 100);
  static const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-40f, -1e-40f, 1.0f, 0.5f, 3.0f, 2.5f, -2.5f};
  for (int i = 0; i < kLanes; ++i) {
    auto pick = [&](int salt) { return (i + salt) % 4 == 0 ? special[(i + salt * 5) % 12] : d(rng); };
    in.a.push_back(fbits(pick(0)));
    in.b.push_back(fbits(pick(1)));
    in.c.push_back(fbits(pick(2)));
  }
  return in;
}

Inputs floats64() {
  Inputs in;
  std::uniform_real_distribution<double> d(-1e6, 1e6);
  static const double special[] = {0.0, -0.0, INFINITY, -INFINITY, NAN, 1e-310, 1.0, 0.5, 3.0, 2.5};
  for (int i = 0; i < kLanes; ++i) {
    auto pick = [&](int salt) { return (i + salt) % 4 == 0 ? special[(i + salt * 3) % 10] : d(rng); };
    in.a.push_back(std::bit_cast<uint64_t>(pick(0)));
    in.b.push_back(std::bit_cast<uint64_t>(pick(1)));
    in.c.push_back(std::bit_cast<uint64_t>(pick(2)));
  }
  return in;
}

using Ref = std::function<uint64_t(uint64_t, uint64_t, uint64_t)>;

void check(const std::string& body, Out out, const Inputs& in, const Ref& ref) {
  auto got = runBody(body, out, in);
  ASSERT_EQ(got.size(), size_t(kLanes)) << body;
  for (int i = 0; i < kLanes; ++i) {
    uint64_t want = ref(in.a[i], in.b[i], in.c[i]);
    if (out == Out::F32 && std::isnan(bitsf(want)) && std::isnan(bitsf(got[i]))) continue;
    if (out == Out::F64 && std::isnan(bitsd(want)) && std::isnan(bitsd(got[i]))) continue;
    ASSERT_EQ(got[i], want) << body << "\nlane " << i << " a=0x" << std::hex << in.a[i] << " b=0x"
                            << in.b[i] << " c=0x" << in.c[i] << " got 0x" << got[i] << " want 0x" << want;
  }
}

uint64_t u32(uint64_t v) { return static_cast<uint32_t>(v); }
int32_t s32(uint64_t v) { return static_cast<int32_t>(v); }

TEST(Instr, IntegerArithmetic32) {
  auto in = ints32();
  check("add.s32 %o32, %a32, %b32;", Out::U32, in, [](auto a, auto b, auto) { return u32(a + b); });
  check("sub.u32 %o32, %a32, %b32;", Out::U32, in, [](auto a, auto b, auto) { return u32(a - b); });
  check("mul.lo.s32 %o32, %a32, %b32;", Out::U32, in, [](auto a, auto b, auto) { return u32(a * b); });
  check("mul.hi.s32 %o32, %a32, %b32;", Out::U32, in,
        [](auto a, auto b, auto) { return u32((int64_t(s32(a)) * s32(b)) >> 32); });
  check("mul.hi.u32 %o32, %a32, %b32;", Out::U32, in,
        [](auto a, auto b, auto) { return u32((u32(a) * u32(b)) >> 32); });
  check("mul.wide.s32 %o, %a32, %b32;", Out::U64, in,
        [](auto a, auto b, auto) { return uint64_t(int64_t(s32(a)) * s32(b)); });
  check("mul.wide.u32 %o, %a32, %b32;", Out::U64, in, [](auto a, auto b, auto) { return u32(a) * u32(b); });
  check("mad.lo.s32 %o32, %a32, %b32, %c32;", Out::U32, in, [](auto a, auto b, auto c) { return u32(a * b + c); });
  check("mad.hi.u32 %o32, %a32, %b32, %c32;", Out::U32, in,
        [](auto a, auto b, auto c) { return u32(((u32(a) * u32(b)) >> 32) + c); });
  check("mad.wide.s32 %o, %a32, %b32, %c;", Out::U64, in,
        [](auto a, auto b, auto c) { return uint64_t(int64_t(s32(a)) * s32(b)) + c; });
  check("add.sat.s32 %o32, %a32, %b32;", Out::U32, in, [](auto a, auto b, auto) {
    int64_t r = int64_t(s32(a)) + s32(b);
    return u32(std::clamp<int64_t>(r, INT_MIN, INT_MAX));
  });
  check("sub.sat.s32 %o32, %a32, %b32;", Out::U32, in, [](auto a, auto b, auto) {
    int64_t r = int64_t(s32(a)) - s32(b);
    return u32(std::clamp<int64_t>(r, INT_MIN, INT_MAX));
  });
  check("min.s32 %o32, %a32, %b32;", Out::U32, in, [](auto a, auto b, auto) { return u32(std::min(s32(a), s32(b))); });
  check("max.u32 %o32, %a32, %b32;", Out::U32, in, [](auto a, auto b, auto) { return std::max(u32(a), u32(b)); });
  check("abs.s32 %o32, %a32;", Out::U32, in, [](auto a, auto, auto) { return u32(s32(a) < 0 ? 0u - u32(a) : a); });
  check("neg.s32 %o32, %a32;", Out::U32, in, [](auto a, auto, auto) { return u32(0u - u32(a)); });
  check("sad.u32 %o32, %a32, %b32, %c32;", Out::U32, in, [](auto a, auto b, auto c) {
    uint32_t x = u32(a), y = u32(b);
    return u32(c + (x > y ? x - y : y - x));
  });
  check("mul24.lo.u32 %o32, %a32, %b32;", Out::U32, in,
        [](auto a, auto b, auto) { return u32((a & 0xFFFFFF) * (b & 0xFFFFFF)); });
}

TEST(Instr, DivisionEdgeCases) {
  auto in = ints32({0x80000000u, 0xFFFFFFFFu, 0, 5, 0, 0, 0xFFFFFFFFu, 0, 0, 7, 2, 0});
  auto sdiv = [](auto a, auto b, auto) -> uint64_t {
    int32_t x = s32(a), y = s32(b);
    if (y == 0) return 0xFFFFFFFFu;
    if (x == INT_MIN && y == -1) return u32(x);
    return u32(x / y);
  };
  auto srem = [](auto a, auto b, auto) -> uint64_t {
    int32_t x = s32(a), y = s32(b);
    if (y == 0) return u32(x);
    if (y == -1) return 0;
    return u32(x % y);
  };
  check("div.s32 %o32, %a32, %b32;", Out::U32, in, sdiv);
  check("rem.s32 %o32, %a32, %b32;", Out::U32, in, srem);
  check("div.u32 %o32, %a32, %b32;", Out::U32, in,
        [](auto a, auto b, auto) -> uint64_t { return u32(b) ? u32(a) / u32(b) : 0xFFFFFFFFu; });
  check("rem.u32 %o32, %a32, %b32;", Out::U32, in,
        [](auto a, auto b, auto) -> uint64_t { return u32(b) ? u32(a) % u32(b) : u32(a); });
  auto in64 = ints64();
  in64.a[1] = 1ull << 63;
  in64.b[1] = ~0ull;
  in64.b[2] = 0;
  check("div.s64 %o, %a, %b;", Out::U64, in64, [](auto a, auto b, auto) -> uint64_t {
    int64_t x = int64_t(a), y = int64_t(b);
    if (y == 0) return ~0ull;
    if (x == LLONG_MIN && y == -1) return a;
    return uint64_t(x / y);
  });
  check("rem.u64 %o, %a, %b;", Out::U64, in64, [](auto a, auto b, auto) -> uint64_t { return b ? a % b : a; });
}

TEST(Instr, LogicAndShifts) {
  auto in = ints32();
  check("and.b32 %o32, %a32, %b32;", Out::U32, in, [](auto a, auto b, auto) { return u32(a & b); });
  check("or.b32 %o32, %a32, %b32;", Out::U32, in, [](auto a, auto b, auto) { return u32(a | b); });
  check("xor.b32 %o32, %a32, %b32;", Out::U32, in, [](auto a, auto b, auto) { return u32(a ^ b); });
  check("not.b32 %o32, %a32;", Out::U32, in, [](auto a, auto, auto) { return u32(~a); });
  check("cnot.b32 %o32, %a32;", Out::U32, in, [](auto a, auto, auto) -> uint64_t { return u32(a) == 0; });
  // shift amounts past the width clamp: shl/shr.u give 0, shr.s fills with the sign
  auto sh = [](uint64_t b) { return u32(b) & 63; };
  check("and.b32 %t32, %b32, 63; shl.b32 %o32, %a32, %t32;", Out::U32, in,
        [&](auto a, auto b, auto) -> uint64_t { return sh(b) >= 32 ? 0 : u32(u32(a) << sh(b)); });
  check("and.b32 %t32, %b32, 63; shr.u32 %o32, %a32, %t32;", Out::U32, in,
        [&](auto a, auto b, auto) -> uint64_t { return sh(b) >= 32 ? 0 : u32(a) >> sh(b); });
  check("and.b32 %t32, %b32, 63; shr.s32 %o32, %a32, %t32;", Out::U32, in, [&](auto a, auto b, auto) -> uint64_t {
    return u32(sh(b) >= 32 ? (s32(a) < 0 ? -1 : 0) : s32(a) >> sh(b));
  });
  check("shr.s32 %o32, %a32, %b32;", Out::U32, in, [&](auto a, auto b, auto) -> uint64_t {
    return u32(u32(b) >= 32 ? (s32(a) < 0 ? -1 : 0) : s32(a) >> u32(b));
  });
  auto in64 = ints64();
  check("and.b32 %t32, %b32, 127; shl.b64 %o, %a, %t32;", Out::U64, in64,
        [](auto a, auto b, auto) -> uint64_t { return (b & 127) >= 64 ? 0 : a << (b & 127); });
  check("and.b32 %t32, %b32, 127; shr.s64 %o, %a, %t32;", Out::U64, in64, [](auto a, auto b, auto) -> uint64_t {
    return (b & 127) >= 64 ? (int64_t(a) < 0 ? ~0ull : 0) : uint64_t(int64_t(a) >> (b & 127));
  });
  check("shf.l.wrap.b32 %o32, %a32, %b32, %c32;", Out::U32, in, [](auto a, auto b, auto c) {
    uint64_t v = (u32(b) << 32) | u32(a);
    return u32((v << (c & 31)) >> 32);
  });
  check("shf.r.clamp.b32 %o32, %a32, %b32, %c32;", Out::U32, in, [](auto a, auto b, auto c) {
    uint64_t v = (u32(b) << 32) | u32(a);
    uint32_t n = std::min<uint32_t>(u32(c), 32);
    return u32(v >> n);
  });
  check("lop3.b32 %o32, %a32, %b32, %c32, 0xE8;", Out::U32, in,
        [](auto a, auto b, auto c) { return u32((a & b) | (a & c) | (b & c)); }); // majority
  check("lop3.b32 %o32, %a32, %b32, %c32, 0x96;", Out::U32, in, [](auto a, auto b, auto c) { return u32(a ^ b ^ c); });
}

TEST(Instr, BitManipulation) {
  auto in = ints32();
  check("popc.b32 %o32, %a32;", Out::U32, in, [](auto a, auto, auto) -> uint64_t { return __builtin_popcount(u32(a)); });
  check("clz.b32 %o32, %a32;", Out::U32, in,
        [](auto a, auto, auto) -> uint64_t { return u32(a) ? __builtin_clz(u32(a)) : 32; });
  check("brev.b32 %o32, %a32;", Out::U32, in, [](auto a, auto, auto) -> uint64_t {
    uint32_t r = 0;
    for (int k = 0; k < 32; ++k) r |= ((u32(a) >> k) & 1) << (31 - k);
    return r;
  });
  check("bfind.u32 %o32, %a32;", Out::U32, in,
        [](auto a, auto, auto) -> uint64_t { return u32(a) ? 31 - __builtin_clz(u32(a)) : 0xFFFFFFFFu; });
  check("bfind.s32 %o32, %a32;", Out::U32, in, [](auto a, auto, auto) -> uint64_t {
    uint32_t x = s32(a) < 0 ? ~u32(a) : u32(a);
    return x ? 31 - __builtin_clz(x) : 0xFFFFFFFFu;
  });
  auto bfe = [](uint32_t x, uint32_t pos, uint32_t len, bool sgn) -> uint32_t {
    pos &= 0xff;
    len &= 0xff;
    bool sbit = sgn && len && ((x >> std::min(pos + len - 1, 31u)) & 1);
    uint32_t r = 0;
    for (uint32_t k = 0; k < 32; ++k) {
      uint32_t bit = (k < len && pos + k <= 31) ? (x >> (pos + k)) & 1 : sbit;
      r |= bit << k;
    }
    return r;
  };
  check("and.b32 %t32, %b32, 40; and.b32 %u32, %c32, 40; bfe.u32 %o32, %a32, %t32, %u32;", Out::U32, in,
        [&](auto a, auto b, auto c) -> uint64_t { return bfe(u32(a), u32(b) & 40, u32(c) & 40, false); });
  check("and.b32 %t32, %b32, 40; and.b32 %u32, %c32, 40; bfe.s32 %o32, %a32, %t32, %u32;", Out::U32, in,
        [&](auto a, auto b, auto c) -> uint64_t { return bfe(u32(a), u32(b) & 40, u32(c) & 40, true); });
  check("and.b32 %t32, %c32, 31; bfi.b32 %o32, %a32, %b32, %t32, 9;", Out::U32, in, [](auto a, auto b, auto c) -> uint64_t {
    uint32_t pos = u32(c) & 31, r = u32(b);
    for (uint32_t k = 0; k < 9 && pos + k < 32; ++k) r = (r & ~(1u << (pos + k))) | (((u32(a) >> k) & 1) << (pos + k));
    return r;
  });
  check("prmt.b32 %o32, %a32, %b32, %c32;", Out::U32, in, [](auto a, auto b, auto c) -> uint64_t {
    uint64_t v = (u32(b) << 32) | u32(a);
    uint32_t r = 0;
    for (int k = 0; k < 4; ++k) {
      uint32_t sel = (u32(c) >> (4 * k)) & 0xf;
      uint32_t bt = (v >> (8 * (sel & 7))) & 0xff;
      if (sel & 8) bt = (bt & 0x80) ? 0xff : 0;
      r |= bt << (8 * k);
    }
    return r;
  });
}

TEST(Instr, CarryChains) {
  auto in = ints64();
  // 64-bit add and subtract from 32-bit halves with carry/borrow
  std::string add = R"(
    .reg .b32 %al, %ah, %bl, %bh, %rl, %rh;
    mov.b64 {%al, %ah}, %a;
    mov.b64 {%bl, %bh}, %b;
    add.cc.u32 %rl, %al, %bl;
    addc.u32 %rh, %ah, %bh;
    mov.b64 %o, {%rl, %rh};)";
  check(add, Out::U64, in, [](auto a, auto b, auto) { return a + b; });
  std::string sub = R"(
    .reg .b32 %al, %ah, %bl, %bh, %rl, %rh;
    mov.b64 {%al, %ah}, %a;
    mov.b64 {%bl, %bh}, %b;
    sub.cc.u32 %rl, %al, %bl;
    subc.u32 %rh, %ah, %bh;
    mov.b64 %o, {%rl, %rh};)";
  check(sub, Out::U64, in, [](auto a, auto b, auto) { return a - b; });
  // 32x32 -> 64 multiply-add with mad.lo.cc / madc.hi
  std::string mad = R"(
    .reg .b32 %cl, %ch, %rl, %rh;
    mov.b64 {%cl, %ch}, %c;
    mad.lo.cc.u32 %rl, %a32, %b32, %cl;
    madc.hi.u32 %rh, %a32, %b32, %ch;
    mov.b64 %o, {%rl, %rh};)";
  check(mad, Out::U64, in, [](auto a, auto b, auto c) { return u32(a) * u32(b) + c; });
}

TEST(Instr, ComparisonsAndSelects) {
  auto in = ints32();
  check("setp.lt.s32 %po, %a32, %b32;", Out::Pred, in, [](auto a, auto b, auto) -> uint64_t { return s32(a) < s32(b); });
  check("setp.lo.u32 %po, %a32, %b32;", Out::Pred, in, [](auto a, auto b, auto) -> uint64_t { return u32(a) < u32(b); });
  check("setp.hs.s32 %po, %a32, %b32;", Out::Pred, in, [](auto a, auto b, auto) -> uint64_t { return u32(a) >= u32(b); });
  check("setp.ne.s32 %pt, %a32, 0; setp.gt.s32.and %po, %a32, %b32, !%pt;", Out::Pred, in,
        [](auto a, auto b, auto) -> uint64_t { return s32(a) > s32(b) && u32(a) == 0; });
  check("setp.eq.u32 %po|%pq, %a32, %b32; selp.b32 %o32, 5, 9, %pq;", Out::U32, in,
        [](auto a, auto b, auto) -> uint64_t { return u32(a) == u32(b) ? 9 : 5; });
  check("selp.b64 %o, %a, %b, 1;", Out::U64, in, [](auto a, auto, auto) { return a; });
  check("set.le.u32.s32 %o32, %a32, %b32;", Out::U32, in,
        [](auto a, auto b, auto) -> uint64_t { return s32(a) <= s32(b) ? 0xFFFFFFFFu : 0; });
  check("slct.b32.s32 %o32, %a32, %b32, %c32;", Out::U32, in,
        [](auto a, auto b, auto c) -> uint64_t { return s32(c) >= 0 ? u32(a) : u32(b); });
  check("setp.lt.s32 %pt, %a32, %b32; setp.gt.u32 %pq, %a32, %c32; xor.pred %po, %pt, %pq;", Out::Pred, in,
        [](auto a, auto b, auto c) -> uint64_t { return (s32(a) < s32(b)) != (u32(a) > u32(c)); });
  auto fin = floats32();
  check("setp.lt.f32 %po, %fa, %fb;", Out::Pred, fin, [](auto a, auto b, auto) -> uint64_t { return bitsf(a) < bitsf(b); });
  check("setp.ltu.f32 %po, %fa, %fb;", Out::Pred, fin, [](auto a, auto b, auto) -> uint64_t {
    return std::isnan(bitsf(a)) || std::isnan(bitsf(b)) || bitsf(a) < bitsf(b);
  });
  check("setp.ne.f32 %po, %fa, %fb;", Out::Pred, fin, [](auto a, auto b, auto) -> uint64_t {
    return !std::isnan(bitsf(a)) && !std::isnan(bitsf(b)) && bitsf(a) != bitsf(b);
  });
  check("setp.nan.f32 %po, %fa, %fb;", Out::Pred, fin,
        [](auto a, auto b, auto) -> uint64_t { return std::isnan(bitsf(a)) || std::isnan(bitsf(b)); });
  check("testp.subnormal.f32 %po, %fa;", Out::Pred, fin,
        [](auto a, auto, auto) -> uint64_t { return std::fpclassify(bitsf(a)) == FP_SUBNORMAL; });
}

float withRounding(int mode, const std::function<float()>& f) {
  int saved = std::fegetround();
  std::fesetround(mode);
  volatile float r = f();
  std::fesetround(saved);
  return r;
}

TEST(Instr, FloatArithmeticAndRounding) {
  auto in = floats32();
  check("add.f32 %fo, %fa, %fb;", Out::F32, in, [](auto a, auto b, auto) -> uint64_t { return fbits(bitsf(a) + bitsf(b)); });
  check("mul.rn.f32 %fo, %fa, %fb;", Out::F32, in, [](auto a, auto b, auto) -> uint64_t { return fbits(bitsf(a) * bitsf(b)); });
  check("fma.rn.f32 %fo, %fa, %fb, %fc;", Out::F32, in,
        [](auto a, auto b, auto c) -> uint64_t { return fbits(std::fma(bitsf(a), bitsf(b), bitsf(c))); });
  struct M {
    const char* mod;
    int fe;
  } modes[] = {{"rz", FE_TOWARDZERO}, {"rm", FE_DOWNWARD}, {"rp", FE_UPWARD}};
  for (auto m : modes) {
    check(std::string("add.") + m.mod + ".f32 %fo, %fa, %fb;", Out::F32, in, [&](auto a, auto b, auto) -> uint64_t {
      return fbits(withRounding(m.fe, [&] { return bitsf(a) + bitsf(b); }));
    });
    check(std::string("div.") + m.mod + ".f32 %fo, %fa, %fb;", Out::F32, in, [&](auto a, auto b, auto) -> uint64_t {
      return fbits(withRounding(m.fe, [&] { return bitsf(a) / bitsf(b); }));
    });
    check(std::string("fma.") + m.mod + ".f32 %fo, %fa, %fb, %fc;", Out::F32, in, [&](auto a, auto b, auto c) -> uint64_t {
      return fbits(withRounding(m.fe, [&] { return std::fma(bitsf(a), bitsf(b), bitsf(c)); }));
    });
  }
  check("div.rn.f32 %fo, %fa, %fb;", Out::F32, in, [](auto a, auto b, auto) -> uint64_t { return fbits(bitsf(a) / bitsf(b)); });
  check("sqrt.rn.f32 %fo, %fa;", Out::F32, in, [](auto a, auto, auto) -> uint64_t { return fbits(std::sqrt(bitsf(a))); });
  check("rcp.rn.f32 %fo, %fa;", Out::F32, in, [](auto a, auto, auto) -> uint64_t { return fbits(1.0f / bitsf(a)); });
  check("abs.f32 %fo, %fa;", Out::F32, in, [](auto a, auto, auto) -> uint64_t { return fbits(std::fabs(bitsf(a))); });
  check("neg.f32 %fo, %fa;", Out::F32, in, [](auto a, auto, auto) -> uint64_t { return fbits(-bitsf(a)); });
  check("min.f32 %fo, %fa, %fb;", Out::F32, in, [](auto a, auto b, auto) -> uint64_t {
    float x = bitsf(a), y = bitsf(b);
    if (std::isnan(x)) return fbits(y);
    if (std::isnan(y)) return fbits(x);
    if (x == y) return fbits(std::signbit(x) ? x : y);
    return fbits(std::min(x, y));
  });
  check("max.NaN.f32 %fo, %fa, %fb;", Out::F32, in, [](auto a, auto b, auto) -> uint64_t {
    float x = bitsf(a), y = bitsf(b);
    if (std::isnan(x) || std::isnan(y)) return fbits(NAN);
    if (x == y) return fbits(std::signbit(x) ? y : x);
    return fbits(std::max(x, y));
  });
  auto ftz = [](float x) { return std::fpclassify(x) == FP_SUBNORMAL ? std::copysign(0.0f, x) : x; };
  check("add.ftz.f32 %fo, %fa, %fb;", Out::F32, in,
        [&](auto a, auto b, auto) -> uint64_t { return fbits(ftz(ftz(bitsf(a)) + ftz(bitsf(b)))); });
  check("mul.sat.f32 %fo, %fa, %fb;", Out::F32, in, [](auto a, auto b, auto) -> uint64_t {
    float r = bitsf(a) * bitsf(b);
    return fbits(std::isnan(r) ? 0.0f : std::clamp(r, 0.0f, 1.0f));
  });
  check("copysign.f32 %fo, %fa, %fb;", Out::F32, in,
        [](auto a, auto b, auto) -> uint64_t { return fbits(std::copysign(bitsf(b), bitsf(a))); });
  auto din = floats64();
  check("fma.rn.f64 %do, %da, %db, %dc;", Out::F64, din,
        [](auto a, auto b, auto c) -> uint64_t { return std::bit_cast<uint64_t>(std::fma(bitsd(a), bitsd(b), bitsd(c))); });
  check("div.rn.f64 %do, %da, %db;", Out::F64, din,
        [](auto a, auto b, auto) -> uint64_t { return std::bit_cast<uint64_t>(bitsd(a) / bitsd(b)); });
  check("sqrt.rn.f64 %do, %da;", Out::F64, din,
        [](auto a, auto, auto) -> uint64_t { return std::bit_cast<uint64_t>(std::sqrt(bitsd(a))); });
  check("sub.rz.f64 %do, %da, %db;", Out::F64, din, [](auto a, auto b, auto) -> uint64_t {
    int saved = std::fegetround();
    std::fesetround(FE_TOWARDZERO);
    volatile double r = bitsd(a) - bitsd(b);
    std::fesetround(saved);
    return std::bit_cast<uint64_t>(double(r));
  });
}

TEST(Instr, Conversions) {
  auto fin = floats32();
  for (int i = 0; i < kLanes; i += 7) fin.a[i] = fbits(i % 2 ? 3e9f : -3e9f); // saturation
  auto toS32 = [](float x, int mode) -> uint64_t {
    if (std::isnan(x)) return 0;
    double r = mode == 0 ? std::nearbyint(double(x)) : mode == 1 ? std::trunc(x) : mode == 2 ? std::floor(x) : std::ceil(x);
    return u32(int32_t(std::clamp(r, double(INT_MIN), double(INT_MAX))));
  };
  check("cvt.rni.s32.f32 %o32, %fa;", Out::U32, fin, [&](auto a, auto, auto) { return toS32(bitsf(a), 0); });
  check("cvt.rzi.s32.f32 %o32, %fa;", Out::U32, fin, [&](auto a, auto, auto) { return toS32(bitsf(a), 1); });
  check("cvt.rmi.s32.f32 %o32, %fa;", Out::U32, fin, [&](auto a, auto, auto) { return toS32(bitsf(a), 2); });
  check("cvt.rpi.s32.f32 %o32, %fa;", Out::U32, fin, [&](auto a, auto, auto) { return toS32(bitsf(a), 3); });
  check("cvt.rzi.u32.f32 %o32, %fa;", Out::U32, fin, [](auto a, auto, auto) -> uint64_t {
    float x = bitsf(a);
    if (std::isnan(x) || x <= 0) return 0;
    return x >= 4294967295.0f ? 0xFFFFFFFFu : uint32_t(x);
  });
  check("cvt.rni.f32.f32 %fo, %fa;", Out::F32, fin, [](auto a, auto, auto) -> uint64_t { return fbits(std::nearbyint(bitsf(a))); });
  check("cvt.f64.f32 %do, %fa;", Out::F64, fin, [](auto a, auto, auto) -> uint64_t { return std::bit_cast<uint64_t>(double(bitsf(a))); });
  auto din = floats64();
  check("cvt.rn.f32.f64 %fo, %da;", Out::F32, din, [](auto a, auto, auto) -> uint64_t { return fbits(float(bitsd(a))); });
  check("cvt.rz.f32.f64 %fo, %da;", Out::F32, din, [](auto a, auto, auto) -> uint64_t {
    return fbits(withRounding(FE_TOWARDZERO, [&] { return float(bitsd(a)); }));
  });
  auto in = ints32();
  check("cvt.rn.f32.s32 %fo, %a32;", Out::F32, in, [](auto a, auto, auto) -> uint64_t { return fbits(float(s32(a))); });
  check("cvt.rz.f32.u32 %fo, %a32;", Out::F32, in, [](auto a, auto, auto) -> uint64_t {
    return fbits(withRounding(FE_TOWARDZERO, [&] { return float(u32(a)); }));
  });
  check("cvt.rn.f64.u64 %do, %a;", Out::F64, in, [](auto a, auto, auto) -> uint64_t { return std::bit_cast<uint64_t>(double(a)); });
  check("cvt.s32.s8 %o32, %a32;", Out::U32, in, [](auto a, auto, auto) -> uint64_t { return u32(int32_t(int8_t(a))); });
  check("cvt.u32.u16 %o32, %a32;", Out::U32, in, [](auto a, auto, auto) -> uint64_t { return u32(a) & 0xffff; });
  check("cvt.sat.s8.s32 %o32, %a32;", Out::U32, in,
        [](auto a, auto, auto) -> uint64_t { return u32(int32_t(int8_t(std::clamp(s32(a), -128, 127)))) ; });
  check("cvt.sat.u16.s32 %o32, %a32;", Out::U32, in,
        [](auto a, auto, auto) -> uint64_t { return u32(std::clamp(s32(a), 0, 65535)); });
  check("cvt.s64.s32 %o, %a32;", Out::U64, in, [](auto a, auto, auto) -> uint64_t { return uint64_t(int64_t(s32(a))); });
  // half precision round trip: f32 -> f16 (nearest even) -> f32
  auto hin = floats32();
  for (auto& v : hin.a) v = fbits(bitsf(v) / 16.0f);
  check("cvt.rn.f16.f32 %ho, %fa; cvt.f32.f16 %fo, %ho;", Out::F32, hin, [](auto a, auto, auto) -> uint64_t {
    return fbits(halfToFloat(floatToHalf(bitsf(a))));
  });
  check("cvt.rn.bf16.f32 %ho, %fa; cvt.f32.bf16 %fo, %ho;", Out::F32, hin, [](auto a, auto, auto) -> uint64_t {
    return fbits(bf16ToFloat(floatToBf16(bitsf(a))));
  });
  check("cvt.rn.f16.f32 %ha, %fa; cvt.rn.f16.f32 %hb, %fb; add.f16 %ho, %ha, %hb; cvt.f32.f16 %fo, %ho;", Out::F32, hin,
        [](auto a, auto b, auto) -> uint64_t {
          float x = halfToFloat(floatToHalf(bitsf(a))), y = halfToFloat(floatToHalf(bitsf(b)));
          return fbits(halfToFloat(floatToHalf(float(double(x) + double(y)))));
        });
}

TEST(Instr, HalfConversionReference) {
  // spot checks of the host-side helpers the tests above rely on
  EXPECT_EQ(floatToHalf(1.0f), 0x3C00);
  EXPECT_EQ(floatToHalf(65504.0f), 0x7BFF);
  EXPECT_EQ(floatToHalf(65520.0f), 0x7C00); // rounds to infinity
  EXPECT_EQ(floatToHalf(-2.0f), 0xC000);
  EXPECT_EQ(floatToHalf(5.960464477539063e-08f), 0x0001);
  EXPECT_EQ(halfToFloat(0x3555), 0.333251953125f);
  EXPECT_EQ(floatToBf16(1.0f), 0x3F80);
}

TEST(Instr, MovePackAndSpecials) {
  auto in = ints64();
  check("mov.b64 {%t32, %u32}, %a; mov.b64 %o, {%u32, %t32};", Out::U64, in,
        [](auto a, auto, auto) { return (a >> 32) | (a << 32); });
  auto lanes = runBody("mov.u32 %o32, %laneid;", Out::U32, in);
  ASSERT_EQ(lanes.size(), size_t(kLanes));
  for (int i = 0; i < kLanes; ++i) EXPECT_EQ(lanes[i], uint64_t(i % 32));
  // per-lane specials: compare with the lane index computed from %tid.x
  std::string body = R"(
    mov.u32 %t32, %laneid;
    and.b32 %u32, %tid, 31;
    setp.eq.u32 %pt, %t32, %u32;
    mov.u32 %t32, %lanemask_lt;
    shl.b32 %u32, 1, %u32;
    sub.u32 %u32, %u32, 1;
    setp.eq.and.u32 %pt, %t32, %u32, %pt;
    mov.u32 %t32, %warpid;
    shr.u32 %u32, %tid, 5;
    setp.eq.and.u32 %po, %t32, %u32, %pt;)";
  auto got = runBody(body, Out::Pred, in);
  ASSERT_EQ(got.size(), size_t(kLanes));
  for (auto g : got) EXPECT_EQ(g, 1u);
  // %clock64 advances over work: two reads around a 1000-iteration loop differ (by more than
  // nothing, and by less than a minute: a garbage or frozen clock fails).
  const std::string timed = R"(
    mov.u64 %t64, %clock64;
    mov.u32 %t32, 0;
  SPIN:
    add.u32 %t32, %t32, 1;
    setp.lt.u32 %pt, %t32, 1000;
    @%pt bra SPIN;
    mov.u64 %u64, %clock64;
    sub.u64 %o, %u64, %t64;)";
  auto clock = runBody(timed, Out::U64, in);
  ASSERT_EQ(clock.size(), size_t(kLanes));
  for (auto c : clock) {
    EXPECT_GT(c, 0u);
    EXPECT_LT(c, 60'000'000'000ull);
  }
  // %globaltimer is nanoseconds since the epoch: within a minute of the host's clock.
  const auto hostNs = [] {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  };
  const uint64_t before = hostNs();
  auto global = runBody("mov.u64 %o, %globaltimer;", Out::U64, in);
  const uint64_t after = hostNs();
  ASSERT_EQ(global.size(), size_t(kLanes));
  for (auto g : global) {
    EXPECT_GE(g, before);
    EXPECT_LE(g, after);
  }
  auto nt = runBody("mov.u32 %o32, %ntid.x;", Out::U32, in);
  ASSERT_EQ(nt.size(), size_t(kLanes));
  EXPECT_EQ(nt[5], uint64_t(kLanes));
}

TEST(Instr, WarpSizeConstant) {
  // WARP_SZ (cooperative-groups reductions use it) is the immediate 32 wherever it appears
  auto in = ints32();
  check("mov.u32 %t32, WARP_SZ; add.u32 %o32, %a32, %t32;", Out::U32, in,
        [](auto a, auto, auto) { return u32(a + 32); });
  check("rem.u32 %o32, %a32, WARP_SZ;", Out::U32, in, [](auto a, auto, auto) { return u32(a) % 32; });
  // any other unknown name is still an error
  TestMemory mem;
  auto l = loadPtx(wrapBody("mov.u32 %o32, WARP_SIZE;", Out::U32), "instr.ptx", mem);
  EXPECT_NE(l.error.find("WARP_SIZE"), std::string::npos) << l.error;
}

TEST(Instr, SharedLocalAndGenericMemory) {
  auto in = ints32();
  // each lane writes its value to shared, reads its neighbour's after a barrier
  std::string body = R"(
    .shared .align 8 .b8 sbuf[512];
    .local .align 8 .b8 lbuf[16];
    .reg .b64 %sa, %la, %ga;
    mov.u64 %sa, sbuf;
    cvt.u64.u32 %t64, %tid;
    shl.b64 %t64, %t64, 2;
    add.s64 %sa, %sa, %t64;
    st.shared.u32 [%sa], %a32;
    bar.sync 0;
    add.u32 %t32, %tid, 1;
    and.b32 %t32, %t32, 63;
    mul.wide.u32 %t64, %t32, 4;
    mov.u64 %u64, sbuf;
    add.s64 %u64, %u64, %t64;
    ld.shared.u32 %u32, [%u64];
    bar.sync 0;
    mov.u64 %la, lbuf;
    st.local.v2.u32 [%la], {%u32, %b32};
    cvta.local.u64 %ga, %la;
    ld.v2.u32 {%t32, %o32}, [%ga];
    add.u32 %o32, %o32, %t32;
    cvta.shared.u64 %ga, %sa;
    atom.add.u32 %t32, [%ga], 10;
    ld.shared.u32 %t32, [%sa];
    xor.b32 %o32, %o32, %t32;)";
  auto got = runBody(body, Out::U32, in);
  ASSERT_EQ(got.size(), size_t(kLanes));
  for (int i = 0; i < kLanes; ++i) {
    uint32_t neighbour = u32(in.a[(i + 1) % kLanes]);
    EXPECT_EQ(got[i], u32((neighbour + u32(in.b[i])) ^ (u32(in.a[i]) + 10))) << i;
  }
}

TEST(Instr, SharedNeighbourExchange) {
  auto in = ints32();
  std::string body = R"(
    .shared .align 8 .b8 sbuf[512];
    .reg .b64 %sa, %ga;
    mov.u64 %sa, sbuf;
    cvt.u64.u32 %t64, %tid;
    shl.b64 %t64, %t64, 2;
    add.s64 %sa, %sa, %t64;
    st.shared.u32 [%sa], %a32;
    bar.sync 0;
    add.u32 %t32, %tid, 1;
    and.b32 %t32, %t32, 63;
    mul.wide.u32 %t64, %t32, 4;
    mov.u64 %u64, sbuf;
    add.s64 %u64, %u64, %t64;
    ld.shared.u32 %u32, [%u64];
    bar.sync 0;
    cvta.shared.u64 %ga, %sa;
    atom.add.u32 %t32, [%ga], 10;
    ld.shared.u32 %t32, [%sa];
    add.u32 %o32, %u32, %t32;)";
  auto got = runBody(body, Out::U32, in);
  ASSERT_EQ(got.size(), size_t(kLanes));
  for (int i = 0; i < kLanes; ++i) EXPECT_EQ(got[i], u32(in.a[(i + 1) % kLanes] + in.a[i] + 10)) << i;
}

TEST(Instr, Shuffles) {
  auto in = ints32();
  auto run = [&](const std::string& body) { return runBody(body, Out::U32, in); };
  auto up = run("shfl.sync.up.b32 %o32|%pt, %a32, 3, 0, -1;");
  auto down = run("shfl.sync.down.b32 %o32|%pt, %a32, 5, 31, -1;");
  auto bfly = run("shfl.sync.bfly.b32 %o32, %a32, 6, 31, -1;");
  auto idx = run("and.b32 %t32, %b32, 31; shfl.sync.idx.b32 %o32, %a32, %t32, 31, -1;");
  // segments of 8 lanes: c = ((32 - 8) << 8) | 7
  auto seg = run("shfl.sync.idx.b32 %o32, %a32, 2, 6151, -1;");
  auto predDown = runBody("shfl.sync.down.b32 %o32|%po, %a32, 5, 31, -1;", Out::Pred, in);
  ASSERT_EQ(up.size(), size_t(kLanes));
  for (int i = 0; i < kLanes; ++i) {
    int w = i / 32 * 32, l = i % 32;
    EXPECT_EQ(up[i], u32(in.a[l >= 3 ? i - 3 : i])) << i;
    EXPECT_EQ(down[i], u32(in.a[l + 5 <= 31 ? i + 5 : i])) << i;
    EXPECT_EQ(bfly[i], u32(in.a[w + (l ^ 6)])) << i;
    EXPECT_EQ(idx[i], u32(in.a[w + (u32(in.b[i]) & 31)])) << i;
    EXPECT_EQ(seg[i], u32(in.a[w + (l & ~7) + 2])) << i;
    EXPECT_EQ(predDown[i], uint64_t(l + 5 <= 31)) << i;
  }
}

TEST(Instr, DivergenceReconvergesBeforeShuffle) {
  // lanes take different paths, then shuffle together: all 32 must be active again
  auto in = ints32();
  std::string body = R"(
    and.b32 %t32, %a32, 3;
    setp.eq.u32 %pt, %t32, 0;
    @%pt bra L_A;
    setp.eq.u32 %pt, %t32, 1;
    @%pt bra L_B;
    mov.u32 %u32, 300;
    bra.uni L_J;
  L_A:
    mov.u32 %u32, 100;
    bra.uni L_J;
  L_B:
    mov.u32 %u32, 200;
  L_J:
    activemask.b32 %t32;
    shfl.sync.bfly.b32 %o32, %u32, 1, 31, -1;
    add.u32 %o32, %o32, %t32;)";
  auto got = runBody(body, Out::U32, in);
  ASSERT_EQ(got.size(), size_t(kLanes));
  for (int i = 0; i < kLanes; ++i) {
    int j = i ^ 1;
    uint32_t k = u32(in.a[j]) & 3;
    uint32_t v = k == 0 ? 100 : k == 1 ? 200 : 300;
    EXPECT_EQ(got[i], u32(v + 0xFFFFFFFFu)) << i;
  }
}

TEST(Instr, AtomicsOnSharedCasExch) {
  auto in = ints32();
  std::string body = R"(
    .shared .align 4 .b32 cell;
    .shared .align 4 .b32 ticket;
    setp.ne.u32 %pt, %tid, 0;
    @%pt bra SKIP;
    st.shared.u32 [cell], 0;
    st.shared.u32 [ticket], 0;
  SKIP:
    bar.sync 0;
    atom.shared.add.u32 %t32, [ticket], 1;
  RETRY:
    ld.shared.u32 %u32, [cell];
    add.u32 %o32, %u32, %t32;
    atom.shared.cas.b32 %o32, [cell], %u32, %o32;
    setp.ne.u32 %pt, %o32, %u32;
    @%pt bra RETRY;
    bar.sync 0;
    ld.shared.u32 %o32, [cell];
    atom.shared.exch.b32 %t32, [ticket], 5;)";
  auto got = runBody(body, Out::U32, in);
  ASSERT_EQ(got.size(), size_t(kLanes));
  for (auto g : got) EXPECT_EQ(g, uint64_t(kLanes * (kLanes - 1) / 2)); // sum of tickets 0..63
}

// ----- whole-kernel PTX: faults and limits -----------------------------------------------------

const char* kHeader = ".version 8.5\n.target sm_90\n.address_size 64\n";

CUresult runKernel(const std::string& text, cuda::Dim3 block, std::string* msg, TestMemory& mem,
                   const Args& args = Args()) {
  auto l = loadPtx(text, "k.ptx", mem);
  EXPECT_TRUE(l.error.empty()) << l.error;
  if (!l.error.empty()) return CUDA_ERROR_INVALID_PTX;
  return launch(*l.mod, "k", {2}, block, args, mem, msg);
}

TEST(Instr, RecursionDepthLimitIsLaunchError) {
  std::string text = std::string(kHeader) + R"(
.func (.param .b32 r) down(.param .b32 n)
{
  .reg .b32 %n, %m, %r;
  .reg .pred %p;
  ld.param.b32 %n, [n];
  setp.eq.s32 %p, %n, 0;
  @%p bra DONE;
  sub.s32 %m, %n, 1;
  {
  .param .b32 a0;
  .param .b32 r0;
  st.param.b32 [a0], %m;
  call (r0), down, (a0);
  ld.param.b32 %r, [r0];
  }
  add.s32 %n, %r, 1;
DONE:
  st.param.b32 [r], %n;
  ret;
}
.visible .entry k(.param .u64 out, .param .u32 depth)
{
  .reg .b32 %d, %r;
  .reg .b64 %o;
  ld.param.u64 %o, [out];
  ld.param.u32 %d, [depth];
  {
  .param .b32 a0;
  .param .b32 r0;
  st.param.b32 [a0], %d;
  call (r0), down, (a0);
  ld.param.b32 %r, [r0];
  }
  st.global.u32 [%o], %r;
  ret;
}
)";
  TestMemory mem;
  uint64_t out = mem.alloc(4);
  std::string msg;
  EXPECT_EQ(runKernel(text, {32}, &msg, mem, Args().add(out).add(20u)), CUDA_SUCCESS) << msg;
  EXPECT_EQ(mem.download<uint32_t>(out, 1)[0], 20u);
  EXPECT_EQ(runKernel(text, {32}, &msg, mem, Args().add(out).add(100000u)), CUDA_ERROR_LAUNCH_FAILED);
  EXPECT_NE(msg.find("depth"), std::string::npos) << msg;
}

TEST(Instr, BarrierDeadlockIsLaunchError) {
  // warp 0 waits for 96 threads at barrier 1, nobody else comes
  std::string text = std::string(kHeader) + R"(
.visible .entry k()
{
  .reg .b32 %t;
  .reg .pred %p;
  mov.u32 %t, %tid.x;
  setp.ge.u32 %p, %t, 32;
  @%p bra END;
  bar.sync 1, 96;
END:
  ret;
}
)";
  TestMemory mem;
  std::string msg;
  EXPECT_EQ(runKernel(text, {64}, &msg, mem), CUDA_ERROR_LAUNCH_FAILED);
  EXPECT_NE(msg.find("deadlock"), std::string::npos) << msg;
}

TEST(Instr, MisalignedAndUnmappedAccess) {
  std::string text = std::string(kHeader) + R"(
.visible .entry k(.param .u64 p)
{
  .reg .b64 %a;
  .reg .b32 %v;
  ld.param.u64 %a, [p];
  ld.global.u32 %v, [%a];
  ret;
}
)";
  TestMemory mem;
  uint64_t buf = mem.alloc(64);
  std::string msg;
  EXPECT_EQ(runKernel(text, {32}, &msg, mem, Args().add(buf)), CUDA_SUCCESS) << msg;
  EXPECT_EQ(runKernel(text, {32}, &msg, mem, Args().add(buf + 2)), CUDA_ERROR_MISALIGNED_ADDRESS);
  EXPECT_EQ(runKernel(text, {32}, &msg, mem, Args().add(buf + 64)), CUDA_ERROR_ILLEGAL_ADDRESS);
  EXPECT_EQ(runKernel(text, {32}, &msg, mem, Args().add(uint64_t(0))), CUDA_ERROR_ILLEGAL_ADDRESS);
  EXPECT_NE(msg.find("k.ptx:10"), std::string::npos) << msg; // the faulting line
}

TEST(Instr, GlobalAccessGoesThroughDeviceMemoryCache) {
  std::string text = std::string(kHeader) + R"(
.visible .entry k(.param .u64 p)
{
  .reg .b64 %a, %o;
  .reg .b32 %v, %t;
  ld.param.u64 %a, [p];
  mov.u32 %t, %tid.x;
  mul.wide.u32 %o, %t, 4;
  add.s64 %a, %a, %o;
  ld.global.u32 %v, [%a];
  add.u32 %v, %v, 1;
  st.global.u32 [%a], %v;
  ret;
}
)";
  TestMemory mem;
  uint64_t buf = mem.alloc(2 * 256 * 4);
  std::string msg;
  auto l = loadPtx(text, "k.ptx", mem);
  ASSERT_TRUE(l.error.empty()) << l.error;
  mem.lookups = 0;
  ASSERT_EQ(launch(*l.mod, "k", {1}, {256}, Args().add(buf), mem, &msg), CUDA_SUCCESS) << msg;
  EXPECT_LE(mem.lookups, 8u); // one miss per warp, then the cached range
  auto v = mem.download<uint32_t>(buf, 256);
  for (auto x : v) EXPECT_EQ(x, 1u);
}

} // namespace
} // namespace tf::ptx::test
