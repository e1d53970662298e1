// Execution state shared by the interpreter loop and the instruction handlers: the launch, one
// CTA, one warp, and the memory access paths (global through DeviceMemory with a per-warp
// cached range, shared and local with bounds checks, generic through the address windows).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include <cuda.h>

#include "cuda/kernel_executor.h"
#include "ptx/ir.h"

namespace tf::ptx {

struct LaunchCtx {
  const Program* prog = nullptr;
  const Function* entry = nullptr;
  const cuda::DeviceMemory* mem = nullptr;
  std::vector<uint8_t> params;
  const uint64_t* symAddr = nullptr; // bound device address of each module variable
  cuda::Dim3 grid, block;
  uint32_t sharedBytes = 0; // static + dynamic
  uint32_t dynamicShared = 0;
  uint32_t staticShared = 0;
  uint32_t stackBytes = 0;  // per-thread local memory
  uint32_t maxCallDepth = 0;
  uint32_t numWorkers = 1;
  uint64_t gridId = 0;
  std::vector<uint8_t> gridWorkspace; // cooperative launches: grid barrier word (%envreg1/2)
  std::atomic<bool> failed{false};
  std::mutex mu;
  CUresult error = CUDA_SUCCESS;
  std::string message;

  void fail(CUresult code, std::string msg) {
    std::lock_guard<std::mutex> lock(mu);
    if (error == CUDA_SUCCESS) {
      error = code;
      message = std::move(msg);
    }
    failed.store(true, std::memory_order_relaxed);
  }
};

struct Barrier {
  uint32_t arrived = 0;  // warps
  uint32_t expected = 0; // warps, 0 = all live warps
  uint32_t popc = 0;
  bool all = true, any = false;
};

struct Cta {
  LaunchCtx* launch = nullptr;
  uint8_t* shared = nullptr;
  uint32_t sharedSize = 0;
  uint8_t* local = nullptr;
  uint32_t stackBytes = 0;
  uint32_t ctaid[3] = {0, 0, 0};
  uint32_t nthreads = 0, nwarps = 0;
  uint32_t workerId = 0;
  uint32_t spinYields = 0; // consecutive unsatisfied waits (deadlock detection)
  Barrier bars[16];
};

struct StackEntry {
  uint32_t pc, mask, rpc;
};

struct Frame {
  const Function* callee;
  const CallSite* site;
  uint32_t regBase, predBase, localBase; // the callee's
  uint32_t stackDepth;                   // divergence stack size below the callee's entries
  uint32_t callMask, retMask;
};

struct Warp {
  // hot state
  uint64_t* r = nullptr;
  uint32_t* p = nullptr;
  const Inst* code = nullptr;
  uint32_t pc = 0, active = 0, rpc = kNoRpc;
  uint32_t exited = 0;
  uint32_t localBase = 0;
  cuda::MemoryRange cache;       // most recently used range: the one-compare fast path
  cuda::MemoryRange cacheAlt[3]; // older ranges, checked before asking DeviceMemory
  LaunchCtx* launch = nullptr;
  Cta* cta = nullptr;
  const Function* fn = nullptr;
  uint32_t id = 0;
  uint32_t regBase = 0, predBase = 0;
  enum class State : uint8_t { Ready, AtBarrier, Done, Faulted } state = State::Ready;
  // barrier wait
  uint32_t barId = 0;
  bool yielded = false; // stopped voluntarily (unsatisfied wait, long loop); still Ready
  uint32_t loopBudget = 1u << 14; // backward branches before a long-running warp yields
  uint32_t barDest = 0, barKind = 0, barMask = 0; // bar.red result
  std::vector<StackEntry> stack;
  std::vector<Frame> frames;
  std::vector<uint64_t> regStack;
  std::vector<uint32_t> predStack;
  uint64_t cacheMisses = 0;
};

// ----- faults -----------------------------------------------------------------------------
void faultAt(Warp& w, const Inst& in, CUresult code, const std::string& what);
uint32_t faultStop(Warp& w, const Inst& in, CUresult code, const std::string& what);

// ----- memory -----------------------------------------------------------------------------
uint8_t* globalSlow(Warp& w, uint64_t addr, uint32_t size, const Inst& in);

inline uint8_t* globalPtr(Warp& w, uint64_t addr, uint32_t size, const Inst& in) {
  uint64_t off = addr - w.cache.base;
  if (off < w.cache.size && w.cache.size - off >= size && (addr & (size - 1)) == 0)
    return w.cache.host + off;
  return globalSlow(w, addr, size, in);
}

uint8_t* sharedSlow(Warp& w, uint64_t addr, uint32_t size, const Inst& in);
inline uint8_t* sharedPtr(Warp& w, uint64_t addr, uint32_t size, const Inst& in) {
  if (addr < w.cta->sharedSize && w.cta->sharedSize - addr >= size && (addr & (size - 1)) == 0)
    return w.cta->shared + addr;
  return sharedSlow(w, addr, size, in);
}

uint8_t* localSlow(Warp& w, uint32_t lane, uint64_t addr, uint32_t size, const Inst& in);
inline uint8_t* localPtr(Warp& w, uint32_t lane, uint64_t addr, uint32_t size, const Inst& in) {
  uint32_t sb = w.cta->stackBytes;
  if (addr < sb && sb - addr >= size)
    return w.cta->local + (uint64_t(w.id) * 32 + lane) * sb + addr;
  return localSlow(w, lane, addr, size, in);
}

uint8_t* paramPtr(Warp& w, uint64_t addr, uint32_t size, const Inst& in);

// Generic address: shared / local / kernel-param windows, otherwise global.
inline uint8_t* genericPtr(Warp& w, uint32_t lane, uint64_t addr, uint32_t size,
                           const Inst& in) {
  if (addr - kWindowLow < kWindowHigh - kWindowLow) [[unlikely]] {
    if (addr - kSharedWindow < kWindowSize) return sharedPtr(w, addr - kSharedWindow, size, in);
    if (addr - kLocalWindow < kWindowSize) return localPtr(w, lane, addr - kLocalWindow, size, in);
    if (addr - kParamWindow < kWindowSize) return paramPtr(w, addr - kParamWindow, size, in);
  }
  return globalPtr(w, addr, size, in);
}

// ----- control ----------------------------------------------------------------------------
// The running divergence entry is finished (reached its reconvergence pc or lost all lanes):
// pop entries (and finished calls) until one can run, or mark the warp done.
void popEntry(Warp& w);

inline uint32_t lanesOf(uint32_t m) { return static_cast<uint32_t>(__builtin_popcount(m)); }

} // namespace tf::ptx
