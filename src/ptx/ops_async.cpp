// mbarrier: split arrive/wait barriers in shared memory (cuda::barrier, pipelines). A wait that
// is not yet satisfied yields the warp so the others of the CTA can arrive.
#include <atomic>

#include "ptx/function_decoder.h"
#include "ptx/ops_common.h"

namespace tf::ptx {

namespace {

// The 64-bit barrier object: bits 0..29 pending arrivals, 30..59 expected arrivals, 63 phase.
constexpr uint64_t kCountMask = (1ull << 30) - 1;
inline uint64_t pendingOf(uint64_t v) { return v & kCountMask; }
inline uint64_t expectedOf(uint64_t v) { return (v >> 30) & kCountMask; }
inline uint64_t phaseOf(uint64_t v) { return v >> 63; }
inline uint64_t make(uint64_t pending, uint64_t expected, uint64_t phase) {
  return (pending & kCountMask) | ((expected & kCountMask) << 30) | (phase << 63);
}

enum MbOp : uint32_t { MInit, MInval, MArrive, MArriveDrop, MTestWait, MTestWaitParity, MTryWait,
                       MTryWaitParity, MPending, MExpectTx, MArriveNoComplete, MCheck };

uint8_t* mbPtr(Warp& w, uint32_t lane, uint64_t addr, bool shared, const Inst& in) {
  return shared ? sharedPtr(w, addr, 8, in) : genericPtr(w, lane, addr, 8, in);
}

// aux: op; aux2 bit0 shared space, bit1 32-bit address register, bit2 count operand present
uint32_t hMbarrier(Warp& w, const Inst& in, uint32_t m) {
  const uint32_t op = in.aux;
  const bool shared = in.aux2 & 1;
  const uint64_t amask = (in.aux2 & 2) ? 0xFFFFFFFFull : ~0ull;
  const uint64_t* base = TF_REG(in.a[0]);
  const uint64_t* cnt = TF_REG(in.a[1]);
  uint64_t* d = TF_REG(in.d[0]);
  if (op == MPending) {
    forLanes(m, [&](uint32_t i) { d[i] = 0; });
    return in.next;
  }
  bool bad = false, waitFailed = false;
  uint32_t done = 0;
  forLanes(m, [&](uint32_t i) {
    if (bad) return;
    uint8_t* p = mbPtr(w, i, (base[i] & amask) + static_cast<uint64_t>(in.imm), shared, in);
    if (!p) {
      bad = true;
      return;
    }
    std::atomic_ref<uint64_t> ref(*reinterpret_cast<uint64_t*>(p));
    uint64_t v = ref.load();
    switch (op) {
    case MInit: {
      uint64_t n = static_cast<uint32_t>(cnt[i]) & kCountMask;
      ref.store(make(n, n, 0));
      break;
    }
    case MInval: case MCheck: break;
    case MExpectTx: break; // no asynchronous transactions: bulk copies complete at once
    case MArrive: case MArriveDrop: case MArriveNoComplete: {
      uint64_t n = (in.aux2 & 4) ? (static_cast<uint32_t>(cnt[i]) & kCountMask) : 1;
      for (;;) {
        uint64_t pend = pendingOf(v), exp = expectedOf(v), ph = phaseOf(v);
        if (op == MArriveDrop) exp = exp >= n ? exp - n : 0;
        uint64_t nv;
        if (pend <= n) {
          nv = make(exp, exp, ph ^ 1); // phase completes
        } else {
          nv = make(pend - n, exp, ph);
        }
        if (ref.compare_exchange_weak(v, nv)) break;
      }
      d[i] = phaseOf(v) << 63; // state token: the phase arrived at
      w.cta->spinYields = 0;
      break;
    }
    default: { // waits: complete when the phase named by the token/parity has flipped
      uint64_t want = (op == MTestWait || op == MTryWait) ? (cnt[i] >> 63) : (cnt[i] & 1);
      bool complete = phaseOf(v) != want;
      if (complete) done |= 1u << i;
      else waitFailed = true;
      break;
    }
    }
  });
  if (bad) return kPcStop;
  if (op >= MTestWait && op <= MTryWaitParity) {
    w.p[in.d[0]] = (w.p[in.d[0]] & ~m) | done;
    if (waitFailed) {
      // let the other warps run before this one polls again
      if (++w.cta->spinYields > (1u << 22))
        return faultStop(w, in, CUDA_ERROR_LAUNCH_FAILED, "mbarrier wait can never complete (deadlock)");
      w.pc = in.next;
      w.yielded = true;
      return kPcStop;
    }
  }
  return in.next;
}

Status dMbarrier(Builder& b) {
  std::string op;
  uint32_t code;
  if (b.mods.take(".init")) code = MInit;
  else if (b.mods.take(".inval")) code = MInval;
  else if (b.mods.take(".arrive_drop")) code = MArriveDrop;
  else if (b.mods.take(".arrive")) code = b.mods.take(".noComplete") ? MArriveNoComplete : MArrive;
  else if (b.mods.take(".test_wait")) code = b.mods.take(".parity") ? MTestWaitParity : MTestWait;
  else if (b.mods.take(".try_wait")) code = b.mods.take(".parity") ? MTryWaitParity : MTryWait;
  else if (b.mods.take(".pending_count")) code = MPending;
  else if (b.mods.take(".expect_tx") || b.mods.take(".complete_tx")) code = MExpectTx;
  else return b.unsupported();
  if (code == MArrive || code == MArriveDrop) b.mods.take(".expect_tx");
  b.mods.takeAny({".release", ".acquire", ".relaxed"}, nullptr);
  b.mods.takeAny({".cta", ".cluster"}, nullptr);
  bool shared = b.mods.takeAny({".shared", ".shared::cta"}, nullptr);
  if (b.mods.take(".shared::cluster")) shared = true;
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1 || ts[0] != Ty::B64) return b.error("mbarrier operates on .b64");
  if (code == MPending) {
    auto d = b.dst(0);
    if (!d) return d.status();
    auto s = b.src(1, Ty::B64);
    if (!s) return s.status();
    Inst& in = b.emit(hMbarrier);
    in.d[0] = *d;
    in.a[0] = *s;
    in.a[1] = *s;
    in.aux = code;
    return Status::ok();
  }
  // [addr] position
  size_t ai = (code == MInit || code == MInval || code == MExpectTx) ? 0 : 1;
  uint32_t d = 0;
  if (ai == 1) {
    if (code >= MTestWait && code <= MTryWaitParity) {
      auto p = b.predDst(0);
      if (!p) return p.status();
      d = *p;
    } else {
      auto x = b.dst(0);
      if (!x) return x.status();
      d = *x;
    }
  }
  auto a = b.addr(ai, shared ? ".shared" : "");
  if (!a) return a.status();
  uint32_t c = b.constSlot(0);
  bool hasCount = false;
  if (b.numOps() > ai + 1) {
    auto x = b.src(ai + 1, Ty::B64);
    if (!x) return x.status();
    c = *x;
    hasCount = true;
  }
  if (code == MExpectTx) hasCount = false;
  Inst& in = b.emit(hMbarrier);
  in.d[0] = d;
  in.a[0] = a->slot;
  in.a[1] = c;
  in.imm = a->offset;
  in.aux = code;
  in.aux2 = (shared ? 1 : 0) | (a->is32 ? 2 : 0) | (hasCount ? 4 : 0);
  return Status::ok();
}

} // namespace

// cp.async.mbarrier.arrive{.noinc}.shared{::cta}.b64 [mbar]: an arrive-on that fires once the
// thread's earlier cp.async copies complete; they completed when issued, so it fires now.
// Without .noinc the pending count is first raised by one, which the arrive takes back:
// nothing changes (only the address is checked). With .noinc it is an ordinary arrive.
Status dCpAsyncMbarrierArrive(Builder& b) {
  if (!b.mods.take(".arrive")) return b.unsupported();
  const bool noinc = b.mods.take(".noinc");
  bool shared = b.mods.takeAny({".shared", ".shared::cta"}, nullptr);
  auto ts = b.mods.takeTypes();
  if (ts.size() != 1 || ts[0] != Ty::B64) return b.error("mbarrier operates on .b64");
  if (b.numOps() != 1) return b.error("cp.async.mbarrier.arrive takes one address");
  auto a = b.addr(0, shared ? ".shared" : "");
  if (!a) return a.status();
  Inst& in = b.emit(hMbarrier);
  in.d[0] = b.scratchSlot();
  in.a[0] = a->slot;
  in.a[1] = b.constSlot(0);
  in.imm = a->offset;
  in.aux = noinc ? MArrive : MCheck;
  in.aux2 = (shared ? 1 : 0) | (a->is32 ? 2 : 0);
  return Status::ok();
}

void registerAsyncOps(std::unordered_map<std::string, DecodeFn>& r) { r["mbarrier"] = dMbarrier; }

} // namespace tf::ptx
