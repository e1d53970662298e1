#include "ptx/exec.h"

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <span>

#include "ptx/runtime.h"
#include "ptx/thread_pool.h"

namespace tf::ptx {

namespace {

std::string hex(uint64_t v) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%" PRIx64, v);
  return b;
}

} // namespace

// ----- faults and slow memory paths ---------------------------------------------------------

void faultAt(Warp& w, const Inst& in, CUresult code, const std::string& what) {
  if (w.state == Warp::State::Faulted) return;
  w.state = Warp::State::Faulted;
  const LaunchCtx& L = *w.launch;
  const std::string& text = in.textId < L.prog->texts.size() ? L.prog->texts[in.textId] : "?";
  std::string msg = L.prog->moduleName + ":" + std::to_string(in.line) + ": " + what + " (" +
                    text + " in " + w.fn->name + ", block (" + std::to_string(w.cta->ctaid[0]) +
                    "," + std::to_string(w.cta->ctaid[1]) + "," + std::to_string(w.cta->ctaid[2]) +
                    "), warp " + std::to_string(w.id) + ")";
  w.launch->fail(code, std::move(msg));
}

uint32_t faultStop(Warp& w, const Inst& in, CUresult code, const std::string& what) {
  faultAt(w, in, code, what);
  return kPcStop;
}

uint8_t* globalSlow(Warp& w, uint64_t addr, uint32_t size, const Inst& in) {
  if ((size & (size - 1)) == 0 && (addr & (size - 1)) != 0) {
    faultAt(w, in, CUDA_ERROR_MISALIGNED_ADDRESS,
            "misaligned " + std::to_string(size) + "-byte access at " + hex(addr));
    return nullptr;
  }
  const auto& gw = w.launch->gridWorkspace;
  if (addr - kGridWindow < gw.size() && gw.size() - (addr - kGridWindow) >= size) {
    w.cache = {kGridWindow, gw.size(), const_cast<uint8_t*>(gw.data())};
    return w.cache.host + (addr - kGridWindow);
  }
  for (auto& alt : w.cacheAlt) {
    uint64_t o = addr - alt.base;
    if (o < alt.size && alt.size - o >= size) {
      std::swap(alt, w.cache);
      return w.cache.host + o;
    }
  }
  cuda::MemoryRange r;
  if (!w.launch->mem->lookup(addr, &r) || r.host == nullptr) {
    faultAt(w, in, CUDA_ERROR_ILLEGAL_ADDRESS, "illegal address " + hex(addr) + " (not device memory)");
    return nullptr;
  }
  uint64_t off = addr - r.base;
  if (addr < r.base || off >= r.size || r.size - off < size) {
    faultAt(w, in, CUDA_ERROR_ILLEGAL_ADDRESS,
            "illegal address " + hex(addr) + ": " + std::to_string(size) + "-byte access past the end of " +
                hex(r.base) + "+" + std::to_string(r.size));
    return nullptr;
  }
  ++w.cacheMisses;
  w.cacheAlt[2] = w.cacheAlt[1];
  w.cacheAlt[1] = w.cacheAlt[0];
  w.cacheAlt[0] = w.cache;
  w.cache = r;
  return r.host + off;
}

uint8_t* sharedSlow(Warp& w, uint64_t addr, uint32_t size, const Inst& in) {
  if (addr < w.cta->sharedSize && w.cta->sharedSize - addr >= size) {
    faultAt(w, in, CUDA_ERROR_MISALIGNED_ADDRESS,
            "misaligned " + std::to_string(size) + "-byte shared access at offset " + hex(addr));
  } else {
    faultAt(w, in, CUDA_ERROR_ILLEGAL_ADDRESS,
            "shared memory access at offset " + hex(addr) + " out of bounds (" +
                std::to_string(w.cta->sharedSize) + " bytes)");
  }
  return nullptr;
}

uint8_t* localSlow(Warp& w, uint32_t lane, uint64_t addr, uint32_t size, const Inst& in) {
  faultAt(w, in, CUDA_ERROR_ILLEGAL_ADDRESS,
          "local memory access at " + hex(addr) + " out of bounds (" +
              std::to_string(w.cta->stackBytes) + " bytes per thread)");
  return nullptr;
}

// ----- divergence stack -----------------------------------------------------------------------

namespace {

void finishCall(Warp& w) {
  Frame f = w.frames.back();
  w.frames.pop_back();
  const uint32_t callerLocal = w.frames.empty() ? 0 : w.frames.back().localBase;
  uint32_t lanes = f.callMask & ~w.exited;
  const uint32_t sb = w.cta->stackBytes;
  uint8_t* base = w.cta->local + uint64_t(w.id) * 32 * sb;
  while (lanes) {
    uint32_t i = static_cast<uint32_t>(__builtin_ctz(lanes));
    lanes &= lanes - 1;
    uint8_t* lb = base + uint64_t(i) * sb;
    for (size_t k = 0; k < f.site->rets.size() && k < f.callee->retOffsets.size(); ++k)
      std::memcpy(lb + callerLocal + f.site->rets[k].callerOffset, lb + f.localBase + f.callee->retOffsets[k],
                  f.callee->retSizes[k]);
  }
  const Function* caller = w.frames.empty() ? w.launch->entry : w.frames.back().callee;
  w.regBase = w.frames.empty() ? 0 : w.frames.back().regBase;
  w.predBase = w.frames.empty() ? 0 : w.frames.back().predBase;
  w.fn = caller;
  w.code = caller->code.data();
  w.r = w.regStack.data() + w.regBase;
  w.p = w.predStack.data() + w.predBase;
  w.localBase = callerLocal;
}

} // namespace

void popEntry(Warp& w) {
  for (;;) {
    w.stack.pop_back();
    if (!w.frames.empty() && w.stack.size() == w.frames.back().stackDepth) finishCall(w);
    if (w.stack.empty()) {
      w.state = Warp::State::Done;
      w.active = 0;
      return;
    }
    StackEntry& t = w.stack.back();
    uint32_t dead = w.exited | (w.frames.empty() ? 0 : w.frames.back().retMask);
    t.mask &= ~dead;
    w.pc = t.pc;
    w.active = t.mask;
    w.rpc = t.rpc;
    if (w.active != 0 && w.pc != w.rpc) return;
  }
}

namespace {

// The interpreter loop: runs one warp until it waits at a barrier, finishes or faults.
void runWarp(Warp& w) {
  // a warp that stopped right before its reconvergence point resumes there
  while (w.pc == w.rpc) {
    popEntry(w);
    if (w.state == Warp::State::Done) return;
  }
  const Inst* code = w.code;
  uint32_t pc = w.pc;
  for (;;) {
    const Inst& in = code[pc];
    const uint32_t m = w.active & (w.p[in.pred] ^ in.predNeg);
    const uint32_t npc = in.fn(w, in, m);
    if (npc != w.rpc && npc < kNoRpc) [[likely]] {
      pc = npc;
      continue;
    }
    if (npc == kPcStop) return;
    if (npc == kPcReload) {
      code = w.code;
      pc = w.pc;
    } else {
      pc = npc;
    }
    while (pc == w.rpc) {
      popEntry(w);
      if (w.state == Warp::State::Done) return;
      code = w.code;
      pc = w.pc;
    }
  }
}

// One CTA's state: resumable, so that a worker can interleave several CTAs (cooperative
// launches, where CTAs wait for each other at grid barriers).
struct CtaRun {
  Cta cta;
  std::vector<Warp> warps;
  std::vector<uint8_t> shared, local;
  uint32_t nwarps = 0;

  void alloc(const LaunchCtx& L, uint32_t n) {
    const Function& f = *L.entry;
    nwarps = n;
    warps.resize(n);
    for (auto& w : warps) {
      w.regStack.assign(size_t(f.numSlots) * 32, 0);
      w.predStack.assign(f.numPreds, 0);
      for (const auto& c : f.consts) {
        uint64_t* s = w.regStack.data() + size_t(c.slot) * 32;
        for (int i = 0; i < 32; ++i) s[i] = c.value;
      }
      w.stack.reserve(16);
    }
    shared.assign(std::max<uint32_t>(L.sharedBytes, 16), 0);
    local.assign(std::max<uint64_t>(uint64_t(L.stackBytes) * n * 32, 16), 0);
  }

  void start(LaunchCtx& L, uint64_t ctaIndex, uint32_t workerId) {
    const cuda::Dim3& g = L.grid;
    cta = Cta{};
    cta.launch = &L;
    cta.ctaid[0] = static_cast<uint32_t>(ctaIndex % g.x);
    cta.ctaid[1] = static_cast<uint32_t>((ctaIndex / g.x) % g.y);
    cta.ctaid[2] = static_cast<uint32_t>(ctaIndex / (uint64_t(g.x) * g.y));
    cta.nthreads = static_cast<uint32_t>(L.block.count());
    cta.nwarps = nwarps;
    cta.workerId = workerId;
    cta.shared = shared.data();
    cta.sharedSize = L.sharedBytes;
    cta.local = local.data();
    cta.stackBytes = L.stackBytes;
    const Function& f = *L.entry;
    for (uint32_t k = 0; k < nwarps; ++k) {
      Warp& w = warps[k];
      uint32_t lanes = std::min<uint32_t>(32, cta.nthreads - 32 * k);
      uint32_t mask = lanes == 32 ? 0xFFFFFFFFu : ((1u << lanes) - 1);
      w.launch = &L;
      w.cta = &cta;
      w.id = k;
      w.fn = &f;
      w.code = f.code.data();
      w.regBase = w.predBase = 0;
      w.localBase = 0;
      w.r = w.regStack.data();
      w.p = w.predStack.data();
      w.p[0] = ~0u;
      w.pc = 0;
      w.active = mask;
      w.exited = ~mask;
      w.rpc = kNoRpc;
      w.stack.clear();
      w.stack.push_back({0, mask, kNoRpc});
      w.frames.clear();
      w.state = Warp::State::Ready;
    }
  }

  enum Step { kProgress, kOnlyYields, kDone, kFailed };

  // Runs every ready warp until it blocks, yields or finishes, then releases complete barriers.
  Step step(LaunchCtx& L) {
    bool ran = false, anyYield = false;
    for (uint32_t k = 0; k < nwarps; ++k) {
      Warp& w = warps[k];
      if (w.state != Warp::State::Ready) continue;
      w.yielded = false;
      runWarp(w);
      if (!w.yielded) ran = true;
      else anyYield = true;
      if (w.state == Warp::State::Faulted || L.failed.load(std::memory_order_relaxed)) return kFailed;
    }
    uint32_t live = 0, waiting = 0;
    for (uint32_t k = 0; k < nwarps; ++k) {
      if (warps[k].state != Warp::State::Done) ++live;
      if (warps[k].state == Warp::State::AtBarrier) ++waiting;
    }
    if (live == 0) return kDone;
    bool released = false;
    if (waiting) {
      for (uint32_t id = 0; id < 16; ++id) {
        Barrier& B = cta.bars[id];
        if (B.arrived == 0) continue;
        uint32_t need = B.expected ? B.expected : live;
        if (B.arrived < need) continue;
        for (uint32_t k = 0; k < nwarps; ++k) {
          Warp& w = warps[k];
          if (w.state != Warp::State::AtBarrier || w.barId != id) continue;
          w.state = Warp::State::Ready;
          uint32_t m = w.barMask;
          if (w.barKind == 2) {
            uint64_t* d = w.r + size_t(w.barDest) * 32;
            for (uint32_t i = 0; i < 32; ++i)
              if ((m >> i) & 1) d[i] = B.popc;
          } else if (w.barKind >= 3) {
            bool v = w.barKind == 3 ? B.all : B.any;
            w.p[w.barDest] = (w.p[w.barDest] & ~m) | (v ? m : 0);
          }
        }
        B = Barrier{};
        released = true;
        cta.spinYields = 0;
      }
    }
    if (ran || released) return kProgress;
    if (anyYield) return kOnlyYields;
    L.fail(CUDA_ERROR_LAUNCH_FAILED,
           L.prog->moduleName + ": " + L.entry->name + ": barrier deadlock in block (" +
               std::to_string(cta.ctaid[0]) + "," + std::to_string(cta.ctaid[1]) + "," +
               std::to_string(cta.ctaid[2]) + "): " + std::to_string(waiting) + " of " +
               std::to_string(live) + " live warps wait at a barrier that cannot complete");
    return kFailed;
  }
};

std::atomic<uint64_t> gGridId{1};
constexpr uint64_t kMaxCooperativeCtas = 4096;

} // namespace

CUresult launchKernel(const DecodedModule& dm, int kernel, const std::vector<uint64_t>& symAddr,
                      const cuda::LaunchConfig& c, const cuda::DeviceMemory& memory,
                      std::string* message) {
  auto bad = [&](CUresult r, const std::string& m) {
    if (message) *message = m;
    return r;
  };
  if (kernel < 0 || static_cast<size_t>(kernel) >= dm.kernels.size())
    return bad(CUDA_ERROR_INVALID_HANDLE, "no kernel with index " + std::to_string(kernel));
  const cuda::KernelInfo& k = dm.kernels[static_cast<size_t>(kernel)];
  const Function& f = dm.program.functions[static_cast<size_t>(dm.kernelFunction[static_cast<size_t>(kernel)])];
  const auto& b = c.block;
  const auto& g = c.grid;
  if (b.x == 0 || b.y == 0 || b.z == 0 || g.x == 0 || g.y == 0 || g.z == 0)
    return bad(CUDA_ERROR_INVALID_VALUE, k.name + ": zero grid or block dimension");
  if (b.x > 1024 || b.y > 1024 || b.z > 64 || b.count() > 1024 || b.count() > k.maxThreadsPerBlock)
    return bad(CUDA_ERROR_INVALID_VALUE, k.name + ": block of " + std::to_string(b.count()) +
                                             " threads exceeds the limit of " +
                                             std::to_string(std::min<uint32_t>(1024, k.maxThreadsPerBlock)));
  if (k.reqNtid[0] && (b.x != k.reqNtid[0] || b.y != k.reqNtid[1] || b.z != k.reqNtid[2]))
    return bad(CUDA_ERROR_INVALID_VALUE, k.name + ": block shape differs from .reqntid");
  if (g.x > 0x7FFFFFFFu || g.y > 65535 || g.z > 65535)
    return bad(CUDA_ERROR_INVALID_VALUE, k.name + ": grid dimension too large");
  uint64_t sharedTotal = uint64_t(dm.layout.dynamicSharedOffset) + c.dynamicSharedBytes;
  if (c.dynamicSharedBytes == 0) sharedTotal = dm.layout.staticShared;
  if (sharedTotal > 227 * 1024)
    return bad(CUDA_ERROR_INVALID_VALUE, k.name + ": " + std::to_string(sharedTotal) +
                                             " bytes of shared memory exceed 227 KiB");
  if (c.paramBytes < k.paramBytes || (k.paramBytes > 0 && c.params == nullptr))
    return bad(CUDA_ERROR_INVALID_VALUE, k.name + ": parameter buffer of " + std::to_string(c.paramBytes) +
                                             " bytes, kernel needs " + std::to_string(k.paramBytes));
  if (symAddr.size() != dm.layout.vars.size())
    return bad(CUDA_ERROR_INVALID_VALUE, "internal: global address table size mismatch");
  for (size_t i = 0; i < symAddr.size(); ++i) {
    if (symAddr[i] == 0)
      return bad(CUDA_ERROR_INVALID_VALUE, "global '" + dm.layout.vars[i].name + "' was never bound");
  }

  LaunchCtx L;
  L.prog = &dm.program;
  L.entry = &f;
  L.mem = &memory;
  if (k.paramBytes) L.params.assign(c.params, c.params + k.paramBytes);
  L.symAddr = symAddr.data();
  L.grid = g;
  L.block = b;
  L.dynamicShared = c.dynamicSharedBytes;
  L.staticShared = dm.layout.staticShared;
  L.sharedBytes = static_cast<uint32_t>(sharedTotal);
  uint32_t need = dm.chainLocal[static_cast<size_t>(dm.kernelFunction[static_cast<size_t>(kernel)])];
  uint32_t stack = need;
  if (dm.recursive) {
    uint64_t rec = uint64_t(f.localBytes) + 128ull * dm.maxFrameLocal;
    stack = static_cast<uint32_t>(std::max<uint64_t>(need, std::min<uint64_t>(rec, 32 * 1024)));
  }
  L.stackBytes = (stack + 15) & ~15u;
  L.gridId = gGridId.fetch_add(1);

  ThreadPool& pool = ThreadPool::shared();
  const uint64_t total = g.count();
  const uint32_t workers = static_cast<uint32_t>(std::min<uint64_t>(pool.size(), total));
  L.numWorkers = pool.size();
  std::atomic<uint64_t> next{0};
  const uint32_t nwarps = static_cast<uint32_t>((b.count() + 31) / 32);
  {
    uint64_t perCta = uint64_t(L.stackBytes) * nwarps * 32 + L.sharedBytes +
                      uint64_t(f.numSlots) * 256 * nwarps;
    uint64_t ctas = c.cooperative ? (total + workers - 1) / workers : 1;
    if (perCta * ctas > (2ull << 30))
      return bad(CUDA_ERROR_OUT_OF_MEMORY, k.name + ": " + std::to_string(perCta * ctas >> 20) +
                                               " MiB of local/shared/register state per worker");
  }
  if (c.cooperative) {
    if (total > kMaxCooperativeCtas)
      return bad(CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE,
                 k.name + ": cooperative grid of " + std::to_string(total) + " blocks exceeds " +
                     std::to_string(kMaxCooperativeCtas));
    L.gridWorkspace.assign(64, 0);
  }
  if (!c.cooperative) {
    pool.run(workers, [&](uint32_t wid) {
      CtaRun run;
      run.alloc(L, nwarps);
      for (;;) {
        if (L.failed.load(std::memory_order_relaxed)) return;
        uint64_t idx = next.fetch_add(1, std::memory_order_relaxed);
        if (idx >= total) return;
        run.start(L, idx, wid);
        for (;;) {
          auto st = run.step(L);
          if (st == CtaRun::kDone) break;
          if (st == CtaRun::kFailed) return;
        }
      }
    });
  } else {
    // all CTAs resident at once: each worker interleaves its share of them
    pool.run(workers, [&](uint32_t wid) {
      std::vector<std::unique_ptr<CtaRun>> runs;
      for (uint64_t idx = wid; idx < total; idx += workers) {
        runs.push_back(std::make_unique<CtaRun>());
        runs.back()->alloc(L, nwarps);
        runs.back()->start(L, idx, wid);
      }
      std::vector<bool> done(runs.size(), false);
      size_t remaining = runs.size();
      while (remaining) {
        for (size_t i = 0; i < runs.size(); ++i) {
          if (done[i]) continue;
          auto st = runs[i]->step(L);
          if (st == CtaRun::kFailed || L.failed.load(std::memory_order_relaxed)) return;
          if (st == CtaRun::kDone) {
            done[i] = true;
            --remaining;
          }
        }
      }
    });
  }
  if (L.error != CUDA_SUCCESS) {
    if (message) *message = L.message;
    return L.error;
  }
  if (message) message->clear();
  return CUDA_SUCCESS;
}

} // namespace tf::ptx
