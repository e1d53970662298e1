// Warp-level matrix instructions: wmma.load/store/mma (fragments are opaque in CUDA, so any
// layout consistent between load, mma and store is correct; this one gives lane l the elements
// l*per .. l*per+per-1 of the row-major matrix) and mma.sync for m16n8k16 / m16n8k8 with the
// fragment layouts of the PTX ISA.
#include <cmath>
#include <cstring>

#include "ptx/function_decoder.h"
#include "ptx/half.h"
#include "ptx/ops_common.h"

namespace tf::ptx {

namespace {

enum ET : uint32_t { EF16, EBF16, EF32, ETF32, EF64, ES8, EU8, ES32 };

uint32_t etSize(uint32_t e) {
  switch (e) {
  case EF16: case EBF16: return 2;
  case EF64: return 8;
  case ES8: case EU8: return 1;
  default: return 4;
  }
}
// elements packed per register
uint32_t etPack(uint32_t e) {
  switch (e) {
  case EF16: case EBF16: return 2;
  case ES8: case EU8: return 4;
  default: return 1;
  }
}

double getElem(uint64_t reg, uint32_t e, uint32_t k) {
  switch (e) {
  case EF16: return halfToFloat(static_cast<uint16_t>(reg >> (16 * k)));
  case EBF16: return bf16ToFloat(static_cast<uint16_t>(reg >> (16 * k)));
  case EF32: return rd<float>(reg);
  case ETF32: return rd<float>(static_cast<uint32_t>(reg) & 0xFFFFE000u);
  case EF64: return rd<double>(reg);
  case ES8: return static_cast<int8_t>(reg >> (8 * k));
  case EU8: return static_cast<uint8_t>(reg >> (8 * k));
  default: return static_cast<int32_t>(reg);
  }
}
uint64_t putElem(uint64_t reg, uint32_t e, uint32_t k, double v) {
  switch (e) {
  case EF16: {
    uint64_t h = floatToHalf(static_cast<float>(v));
    return (reg & ~(0xFFFFull << (16 * k))) | (h << (16 * k));
  }
  case EBF16: {
    uint64_t h = floatToBf16(static_cast<float>(v));
    return (reg & ~(0xFFFFull << (16 * k))) | (h << (16 * k));
  }
  case EF32: case ETF32: return wr<float>(static_cast<float>(v));
  case EF64: return wr<double>(v);
  case ES32: {
    double c = std::fmax(-2147483648.0, std::fmin(2147483647.0, v));
    return wr<int32_t>(static_cast<int32_t>(c));
  }
  default: return reg;
  }
}
// raw memory element -> register packing helpers
uint64_t memToReg(uint64_t reg, uint32_t e, uint32_t k, const uint8_t* p) {
  uint64_t v = 0;
  std::memcpy(&v, p, etSize(e));
  uint32_t bits = etSize(e) * 8;
  if (etPack(e) == 1) return v;
  uint64_t mask = ((1ull << bits) - 1) << (bits * k);
  return (reg & ~mask) | (v << (bits * k));
}
void regToMem(uint64_t reg, uint32_t e, uint32_t k, uint8_t* p) {
  uint32_t bits = etSize(e) * 8;
  uint64_t v = etPack(e) == 1 ? reg : (reg >> (bits * k));
  std::memcpy(p, &v, etSize(e));
}

// operands[in.aux2 ..]: fragment register slots. aux: bits 0..3 elem type, bit 4 col-major,
// bits 8..15 rows, 16..23 cols, 24..27 register count; a[0] address slot, a[1] stride slot;
// aux of store has bit 5 set; bit 6: the address register is 32 bits wide (.shared with .u32). imm: address offset. d[0]: space (0 global, 1 shared, 2 generic)
uint32_t hWmmaLdSt(Warp& w, const Inst& in, uint32_t m) {
  const uint32_t et = in.aux & 15, rows = (in.aux >> 8) & 0xff, cols = (in.aux >> 16) & 0xff;
  const uint32_t nreg = (in.aux >> 24) & 0xf;
  const bool colMajor = in.aux & 16, store = in.aux & 32;
  const uint32_t* regs = w.fn->operands.data() + in.aux2;
  const uint32_t pack = etPack(et), esz = etSize(et);
  const uint32_t total = rows * cols, per = (total + 31) / 32;
  const uint64_t* base = TF_REG(in.a[0]);
  const uint64_t amask = (in.aux & 64) ? 0xFFFFFFFFull : ~0ull;
  const uint64_t* strideReg = TF_REG(in.a[1]);
  bool bad = false;
  forLanes(m, [&](uint32_t lane) {
    if (bad) return;
    uint64_t stride = in.a[1] ? static_cast<uint32_t>(strideReg[lane]) : (colMajor ? rows : cols);
    for (uint32_t j = 0; j < per; ++j) {
      uint32_t e = lane * per + j;
      if (e >= total) break;
      uint32_t r = e / cols, c = e % cols;
      uint32_t reg = j / pack, k = j % pack;
      if (reg >= nreg) break;
      uint64_t off = (colMajor ? uint64_t(c) * stride + r : uint64_t(r) * stride + c) * esz;
      uint64_t addr = (base[lane] & amask) + static_cast<uint64_t>(in.imm) + off;
      uint8_t* p = in.d[0] == 0 ? globalPtr(w, addr, esz, in)
                   : in.d[0] == 1 ? sharedPtr(w, addr, esz, in) : genericPtr(w, lane, addr, esz, in);
      if (!p) {
        bad = true;
        return;
      }
      uint64_t* slot = TF_REG(regs[reg]) + lane;
      if (store) {
        regToMem(*slot, et, k, p);
      } else {
        *slot = memToReg(*slot, et, k, p);
      }
    }
  });
  return bad ? kPcStop : in.next;
}

// wmma.mma: operands[aux2..]: d regs, a regs, b regs, c regs (counts in aux bytes);
// a[0]: M, a[1]: N, a[2]: K packed in imm; d[0..3]: elem types of d, a, b, c
uint32_t hWmmaMma(Warp& w, const Inst& in, uint32_t m) {
  const uint32_t M = static_cast<uint32_t>(in.imm & 0xff), N = static_cast<uint32_t>((in.imm >> 8) & 0xff),
                 K = static_cast<uint32_t>((in.imm >> 16) & 0xff);
  const uint32_t nd = in.aux & 0xff, na = (in.aux >> 8) & 0xff, nb = (in.aux >> 16) & 0xff, nc = (in.aux >> 24) & 0xff;
  const uint32_t* ops = w.fn->operands.data() + in.aux2;
  const uint32_t *dR = ops, *aR = ops + nd, *bR = ops + nd + na, *cR = ops + nd + na + nb;
  const uint32_t te[4] = {in.d[0], in.d[1], in.d[2], in.d[3]};
  auto gather = [&](const uint32_t* regs, uint32_t nregs, uint32_t et, uint32_t rows, uint32_t cols,
                    std::vector<double>& out) {
    uint32_t total = rows * cols, per = (total + 31) / 32, pack = etPack(et);
    out.assign(total, 0.0);
    for (uint32_t e = 0; e < total; ++e) {
      uint32_t lane = e / per, j = e % per;
      uint32_t reg = j / pack, k = j % pack;
      if (reg >= nregs) continue;
      out[e] = getElem(TF_REG(regs[reg])[lane], et, k);
    }
  };
  std::vector<double> A, B, C;
  gather(aR, na, te[1], M, K, A);
  gather(bR, nb, te[2], K, N, B);
  gather(cR, nc, te[3], M, N, C);
  const bool f32acc = te[0] == EF32 || te[0] == EF16;
  uint32_t total = M * N, per = (total + 31) / 32, pack = etPack(te[0]);
  for (uint32_t e = 0; e < total; ++e) {
    uint32_t r = e / N, c = e % N;
    double acc;
    if (f32acc) {
      float f = static_cast<float>(C[e]);
      for (uint32_t k = 0; k < K; ++k) f = std::fma(static_cast<float>(A[r * K + k]), static_cast<float>(B[k * N + c]), f);
      acc = f;
    } else {
      acc = C[e];
      for (uint32_t k = 0; k < K; ++k) acc += A[r * K + k] * B[k * N + c];
    }
    uint32_t lane = e / per, j = e % per;
    uint32_t reg = j / pack, k = j % pack;
    if (reg >= nd || !((m >> lane) & 1)) continue;
    uint64_t* slot = TF_REG(dR[reg]) + lane;
    *slot = putElem(*slot, te[0], k, acc);
  }
  return in.next;
}

Result<uint32_t> elemType(Builder& b, Ty t) {
  switch (t) {
  case Ty::F16: return uint32_t(EF16);
  case Ty::BF16: return uint32_t(EBF16);
  case Ty::F32: return uint32_t(EF32);
  case Ty::TF32: return uint32_t(ETF32);
  case Ty::F64: return uint32_t(EF64);
  case Ty::S8: return uint32_t(ES8);
  case Ty::U8: return uint32_t(EU8);
  case Ty::S32: return uint32_t(ES32);
  default: return b.unsupported();
  }
}

bool parseShape(const std::string& s, uint32_t* M, uint32_t* N, uint32_t* K) {
  unsigned a, b, c;
  if (std::sscanf(s.c_str(), ".m%un%uk%u", &a, &b, &c) != 3) return false;
  if (a > 64 || b > 64 || c > 64) return false;
  *M = a;
  *N = b;
  *K = c;
  return true;
}

Result<uint32_t> fragment(Builder& b, const ast::Operand& o, bool isDst, std::vector<uint32_t>* out) {
  if (o.kind != ast::Operand::Kind::Vec || o.elems.empty() || o.elems.size() > 16)
    return b.error("expected a fragment {..}");
  for (const auto& e : o.elems) {
    auto s = isDst ? b.dstOp(e) : b.srcOp(e, Ty::B32);
    if (!s) return s.status();
    out->push_back(*s);
  }
  return static_cast<uint32_t>(o.elems.size());
}

std::string takeShape(Builder& b, uint32_t* M, uint32_t* N, uint32_t* K) {
  for (const auto& m : b.ai.mods) {
    if (m.rfind(".m", 0) == 0 && parseShape(m, M, N, K)) {
      b.mods.take(m.c_str());
      return m;
    }
  }
  return "";
}

Status dWmma(Builder& b) {
  b.mods.take(".sync");
  b.mods.take(".aligned");
  uint32_t M = 0, N = 0, K = 0;
  bool isLoad = b.mods.take(".load"), isStore = b.mods.take(".store"), isMma = b.mods.take(".mma");
  if (!isLoad && !isStore && !isMma) return b.unsupported();
  std::string subByte;
  if (b.mods.takeAny({".u4", ".s4", ".b1"}, &subByte))
    return b.error("wmma on sub-byte elements (" + subByte + ") is not supported");
  if (isMma) {
    std::string la, lb;
    b.mods.takeAny({".row", ".col"}, &la);
    b.mods.takeAny({".row", ".col"}, &lb);
    if (takeShape(b, &M, &N, &K).empty()) return b.error("missing shape");
    b.mods.take(".satfinite");
    const bool rn = b.mods.take(".rn"); // the only rounding of f64 wmma (and its default)
    auto ts = b.mods.takeTypes();
    // .dtype.ctype (f16/f32 shapes) or .dtype.atype.btype.ctype
    Ty dt, at, bt, ct;
    if (ts.size() == 2) {
      dt = ts[0];
      ct = ts[1];
      at = bt = Ty::F16;
    } else if (ts.size() == 4) {
      dt = ts[0];
      at = ts[1];
      bt = ts[2];
      ct = ts[3];
    } else {
      return b.error("bad wmma.mma types");
    }
    if (rn && dt != Ty::F64) return b.error("rounding modifier on a non-f64 wmma.mma");
    uint32_t e[4];
    Ty tys[4] = {dt, at, bt, ct};
    for (int k = 0; k < 4; ++k) {
      auto x = elemType(b, tys[k]);
      if (!x) return x.status();
      e[k] = *x;
    }
    if (b.numOps() != 4) return b.error("wmma.mma takes four fragments");
    std::vector<uint32_t> ops;
    uint32_t cnt[4];
    for (int k = 0; k < 4; ++k) {
      auto c = fragment(b, b.op(static_cast<size_t>(k)), k == 0, &ops);
      if (!c) return c.status();
      cnt[k] = *c;
    }
    auto& fops = b.fd.fn.operands;
    uint32_t idx = static_cast<uint32_t>(fops.size());
    fops.insert(fops.end(), ops.begin(), ops.end());
    Inst& in = b.emit(hWmmaMma);
    in.aux = cnt[0] | (cnt[1] << 8) | (cnt[2] << 16) | (cnt[3] << 24);
    in.aux2 = idx;
    in.imm = M | (N << 8) | (K << 16);
    for (int k = 0; k < 4; ++k) in.d[k] = e[k];
    return Status::ok();
  }
  // load.{a,b,c} / store.d
  std::string which;
  if (isLoad && !b.mods.takeAny({".a", ".b", ".c"}, &which)) return b.error("wmma.load needs .a/.b/.c");
  if (isStore && !b.mods.take(".d")) return b.error("wmma.store needs .d");
  std::string layout;
  if (!b.mods.takeAny({".row", ".col"}, &layout)) return b.error("wmma needs .row or .col");
  if (takeShape(b, &M, &N, &K).empty()) return b.error("missing shape");
  std::string spName;
  uint32_t space = 2;
  if (b.mods.takeAny({".global", ".shared", ".shared::cta"}, &spName)) space = spName == ".global" ? 0 : 1;
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1) return b.error("expected one type");
  auto et = elemType(b, ts[0]);
  if (!et) return et.status();
  uint32_t rows, cols;
  if (which == ".a") {
    rows = M;
    cols = K;
  } else if (which == ".b") {
    rows = K;
    cols = N;
  } else {
    rows = M;
    cols = N;
  }
  size_t fragOp = isStore ? 1 : 0, addrOp = isStore ? 0 : 1;
  std::vector<uint32_t> ops;
  auto cnt = fragment(b, b.op(fragOp), !isStore, &ops);
  if (!cnt) return cnt.status();
  auto a = b.addr(addrOp, space == 2 ? "" : (space == 0 ? ".global" : ".shared"));
  if (!a) return a.status();
  uint32_t strideSlot = 0;
  if (b.numOps() > 2) {
    auto s = b.src(2, Ty::U32);
    if (!s) return s.status();
    strideSlot = *s;
  }
  if (*cnt * etPack(*et) * 32 < rows * cols) return b.error("fragment too small for the shape");
  auto& fops = b.fd.fn.operands;
  uint32_t idx = static_cast<uint32_t>(fops.size());
  fops.insert(fops.end(), ops.begin(), ops.end());
  Inst& in = b.emit(hWmmaLdSt);
  in.aux = *et | (layout == ".col" ? 16u : 0u) | (isStore ? 32u : 0u) | (a->is32 ? 64u : 0u) | (rows << 8) |
           (cols << 16) | (*cnt << 24);
  in.aux2 = idx;
  in.a[0] = a->slot;
  in.a[1] = strideSlot;
  in.imm = a->offset;
  in.d[0] = space;
  if (strideSlot == 0 && b.numOps() > 2) return b.error("bad stride");
  return Status::ok();
}

// ----- mma.sync (documented fragment layouts) -------------------------------------------------
// m16n8k16 and m16n8k8 with .f16/.bf16 A/B and .f32 (or .f16) C/D, .row.col.
// operands[aux2..]: d, a, b, c registers; aux: counts; d[0..3] element types; imm: K
uint32_t hMmaSync(Warp& w, const Inst& in, uint32_t m) {
  const uint32_t K = static_cast<uint32_t>(in.imm);
  const uint32_t nd = in.aux & 0xff, na = (in.aux >> 8) & 0xff, nb = (in.aux >> 16) & 0xff;
  const uint32_t* ops = w.fn->operands.data() + in.aux2;
  const uint32_t *dR = ops, *aR = ops + nd, *bR = ops + nd + na, *cR = ops + nd + na + nb;
  const uint32_t dt = in.d[0], at = in.d[1], bt = in.d[2], ct = in.d[3];
  float A[16][16] = {}, B[16][8] = {}, C[16][8] = {};
  // element i of a lane's fragment (halves counted through the packed registers)
  auto elem = [&](const uint32_t* regs, uint32_t et, uint32_t lane, uint32_t i) -> float {
    uint32_t pack = etPack(et);
    return static_cast<float>(getElem(TF_REG(regs[i / pack])[lane], et, i % pack));
  };
  for (uint32_t lane = 0; lane < 32; ++lane) {
    uint32_t g = lane >> 2, t = lane & 3;
    uint32_t nA = K == 16 ? 8 : 4;
    for (uint32_t i = 0; i < nA; ++i) {
      uint32_t row = g + ((i >> 1) & 1) * 8;
      uint32_t col = t * 2 + (i & 1) + ((i >> 2) & 1) * 8;
      A[row][col] = elem(aR, at, lane, i);
    }
    uint32_t nB = K == 16 ? 4 : 2;
    for (uint32_t i = 0; i < nB; ++i) {
      uint32_t row = t * 2 + (i & 1) + ((i >> 1) & 1) * 8;
      B[row][g] = elem(bR, bt, lane, i);
    }
    for (uint32_t i = 0; i < 4; ++i) {
      uint32_t row = g + ((i >> 1) & 1) * 8, col = t * 2 + (i & 1);
      C[row][col] = elem(cR, ct, lane, i);
    }
  }
  for (uint32_t lane = 0; lane < 32; ++lane) {
    if (!((m >> lane) & 1)) continue;
    uint32_t g = lane >> 2, t = lane & 3;
    for (uint32_t i = 0; i < 4; ++i) {
      uint32_t row = g + ((i >> 1) & 1) * 8, col = t * 2 + (i & 1);
      float acc = C[row][col];
      for (uint32_t k = 0; k < K; ++k) acc = std::fma(A[row][k], B[k][col], acc);
      uint32_t pack = etPack(dt);
      uint64_t* slot = TF_REG(dR[i / pack]) + lane;
      *slot = putElem(*slot, dt, i % pack, acc);
    }
  }
  return in.next;
}

Status dMma(Builder& b) {
  b.mods.take(".sync");
  b.mods.take(".aligned");
  uint32_t M = 0, N = 0, K = 0;
  if (takeShape(b, &M, &N, &K).empty()) return b.error("missing shape");
  if (M != 16 || N != 8 || (K != 16 && K != 8)) return b.unsupported();
  if (!b.mods.take(".row") || !b.mods.take(".col")) return b.unsupported();
  auto ts = b.mods.takeTypes();
  if (ts.size() != 4) return b.error("mma needs .dtype.atype.btype.ctype");
  uint32_t e[4];
  for (int k = 0; k < 4; ++k) {
    auto x = elemType(b, ts[static_cast<size_t>(k)]);
    if (!x) return x.status();
    e[k] = *x;
  }
  if ((e[1] != EF16 && e[1] != EBF16) || e[1] != e[2]) return b.unsupported();
  if ((e[0] != EF32 && e[0] != EF16) || (e[3] != EF32 && e[3] != EF16)) return b.unsupported();
  if (b.numOps() != 4) return b.error("mma takes four fragments");
  std::vector<uint32_t> ops;
  uint32_t cnt[4];
  for (int k = 0; k < 4; ++k) {
    auto c = fragment(b, b.op(static_cast<size_t>(k)), k == 0, &ops);
    if (!c) return c.status();
    cnt[k] = *c;
  }
  uint32_t needA = K == 16 ? 4 : 2, needB = K == 16 ? 2 : 1, needC = e[3] == EF32 ? 4 : 2, needD = e[0] == EF32 ? 4 : 2;
  if (cnt[0] != needD || cnt[1] != needA || cnt[2] != needB || cnt[3] != needC)
    return b.error("fragment sizes do not match the shape");
  auto& fops = b.fd.fn.operands;
  uint32_t idx = static_cast<uint32_t>(fops.size());
  fops.insert(fops.end(), ops.begin(), ops.end());
  Inst& in = b.emit(hMmaSync);
  in.aux = cnt[0] | (cnt[1] << 8) | (cnt[2] << 16) | (cnt[3] << 24);
  in.aux2 = idx;
  in.imm = K;
  for (int k = 0; k < 4; ++k) in.d[k] = e[k];
  return Status::ok();
}

} // namespace

void registerMmaOps(std::unordered_map<std::string, DecodeFn>& r) {
  r["wmma"] = dWmma;
  r["mma"] = dMma;
}

} // namespace tf::ptx
