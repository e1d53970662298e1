// Measures the PTX engine against plain C++ loops doing the same work, in the same run, on the
// same number of threads (the engine's pool runs both sides, each thread a share of the lanes):
//  1. an FMA loop (8 independent fma.rn.f32 chains + loop control per iteration), against the
//     same loop in C++ as the compiler builds it for this CPU (the FMA instruction where the CPU
//     has one, as the engine uses; the libm call only on a CPU without it);
//  2. vector add over 64 MiB arrays (nvcc's PTX for c[i] = a[i] + b[i]) against the C++ loop.
// Exits 2 when a result differs from the C++ one, 1 when the engine fails.
// Usage: ptx_bench [fma-iterations]   (threads from TF_SOFTGPU_THREADS, default all cores)
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "ptx/executor.h"
#include "ptx/thread_pool.h"

namespace {

using Clock = std::chrono::steady_clock;

class BenchMemory : public tf::cuda::DeviceMemory {
public:
  uint64_t alloc(size_t bytes) {
    uint64_t d = next_;
    ranges_[d] = std::unique_ptr<uint8_t[]>(new uint8_t[bytes]);
    sizes_[d] = bytes;
    next_ += (bytes + (1 << 20)) & ~uint64_t((1 << 20) - 1);
    return d;
  }
  uint8_t* host(uint64_t d) { return ranges_[d].get(); }
  bool lookup(uint64_t addr, tf::cuda::MemoryRange* out) const override {
    auto it = sizes_.upper_bound(addr);
    if (it == sizes_.begin()) return false;
    --it;
    if (addr - it->first >= it->second) return false;
    out->base = it->first;
    out->size = it->second;
    out->host = ranges_.at(it->first).get();
    return true;
  }

private:
  uint64_t next_ = 0x7000'0000'0000ull;
  std::map<uint64_t, std::unique_ptr<uint8_t[]>> ranges_;
  std::map<uint64_t, size_t> sizes_;
};

// 11 instructions per iteration: 8 fma, add, setp, bra.
const char* kFmaPtx = R"(
.version 8.5
.target sm_90
.address_size 64
.visible .entry fmaLoop(.param .u64 out, .param .u32 iters)
{
  .reg .f32 %f<17>;
  .reg .b32 %i, %n, %t;
  .reg .b64 %o, %off;
  .reg .pred %p;
  mov.u32 %t, %tid.x;
  cvt.rn.f32.u32 %f1, %t;
  mul.f32 %f1, %f1, 0f3A800000;
  add.f32 %f2, %f1, 0f3F800000;
  add.f32 %f3, %f1, 0f3F000000;
  add.f32 %f4, %f1, 0f3E800000;
  add.f32 %f5, %f1, 0f3E000000;
  add.f32 %f6, %f1, 0f3D800000;
  add.f32 %f7, %f1, 0f3D000000;
  add.f32 %f8, %f1, 0f3C800000;
  mov.f32 %f9, 0f3F7FF000;
  mov.f32 %f10, 0f3A000000;
  ld.param.u32 %n, [iters];
  mov.u32 %i, 0;
LOOP:
  fma.rn.f32 %f1, %f1, %f9, %f10;
  fma.rn.f32 %f2, %f2, %f9, %f10;
  fma.rn.f32 %f3, %f3, %f9, %f10;
  fma.rn.f32 %f4, %f4, %f9, %f10;
  fma.rn.f32 %f5, %f5, %f9, %f10;
  fma.rn.f32 %f6, %f6, %f9, %f10;
  fma.rn.f32 %f7, %f7, %f9, %f10;
  fma.rn.f32 %f8, %f8, %f9, %f10;
  add.u32 %i, %i, 1;
  setp.lt.u32 %p, %i, %n;
  @%p bra LOOP;
  add.f32 %f1, %f1, %f2;
  add.f32 %f3, %f3, %f4;
  add.f32 %f5, %f5, %f6;
  add.f32 %f7, %f7, %f8;
  add.f32 %f1, %f1, %f3;
  add.f32 %f5, %f5, %f7;
  add.f32 %f1, %f1, %f5;
  ctaid.x;
  ret;
}
)";

// what nvcc 13 emits for: if (i < n) c[i] = a[i] + b[i];
const char* kVecAddPtx = R"(
.version 9.0
.target sm_90
.address_size 64
.visible .entry vecAdd(.param .u64 p0, .param .u64 p1, .param .u64 p2, .param .u32 p3)
{
  .reg .pred %p<2>;
  .reg .f32 %f<4>;
  .reg .b32 %r<6>;
  .reg .b64 %rd<11>;
  ld.param.u64 %rd1, [p0];
  ld.param.u64 %rd2, [p1];
  ld.param.u64 %rd3, [p2];
  ld.param.u32 %r2, [p3];
  mov.u32 %r3, %ctaid.x;
  mov.u32 %r4, %ntid.x;
  mov.u32 %r5, %tid.x;
  mad.lo.s32 %r1, %r3, %r4, %r5;
  setp.ge.s32 %p1, %r1, %r2;
  @%p1 bra $L__BB0_2;
  cvta.to.global.u64 %rd4, %rd1;
  mul.wide.s32 %rd5, %r1, 4;
  add.s64 %rd6, %rd4, %rd5;
  cvta.to.global.u64 %rd7, %rd2;
  add.s64 %rd8, %rd7, %rd5;
  ld.global.f32 %f1, [%rd8];
  ld.global.f32 %f2, [%rd6];
  add.f32 %f3, %f2, %f1;
  cvta.to.global.u64 %rd9, %rd3;
  add.s64 %rd10, %rd9, %rd5;
  st.global.f32 [%rd10], %f3;
$L__BB0_2:
  ret;
}
)";

// The same arithmetic in plain C++ for lanes [from, to). fmaf is exact-rounded fma, the
// operation fma.rn.f32 names: with the FMA instruction set the compiler emits the instruction
// (and may vectorise the 8 chains); without it, a libm call, which is all such a CPU can do.
// Inlined into each caller, so it is compiled for the caller's instruction set.
[[gnu::always_inline]] inline void fmaBody(float* out, uint64_t from, uint64_t to, uint32_t block, uint32_t iters) {
  for (uint64_t t = from; t < to; ++t) {
    float f1 = float(t % block) * 0x1p-10f;
    float f[8] = {f1, f1 + 1.0f, f1 + 0.5f, f1 + 0.25f, f1 + 0.125f, f1 + 0.0625f, f1 + 0.03125f, f1 + 0.015625f};
    const float m = 0x1.ffep-1f, a = 0x1p-11f;
    for (uint32_t i = 0; i < iters; ++i)
      for (int k = 0; k < 8; ++k) f[k] = __builtin_fmaf(f[k], m, a);
    out[t] = ((f[0] + f[1]) + (f[2] + f[3])) + ((f[4] + f[5]) + (f[6] + f[7]));
  }
}
__attribute__((target("fma"))) void fmaBodyFmaIsa(float* out, uint64_t from, uint64_t to, uint32_t block,
                                                  uint32_t iters) {
  fmaBody(out, from, to, block, iters);
}
void fmaBodyLibm(float* out, uint64_t from, uint64_t to, uint32_t block, uint32_t iters) {
  fmaBody(out, from, to, block, iters);
}

// Runs fn(from, to) on `threads` workers of the engine's pool, each a contiguous share of n.
template <typename F> void onThreads(uint32_t threads, uint64_t n, F&& fn) {
  tf::ptx::ThreadPool::shared().run(threads, [&](uint32_t w) {
    fn(n * w / threads, n * (w + 1) / threads);
  });
}

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

} // namespace

int main(int argc, char** argv) {
  uint32_t iters = argc > 1 ? static_cast<uint32_t>(std::atoi(argv[1])) : 2000;
  const uint32_t threads = tf::ptx::ThreadPool::shared().size();
  auto exec = tf::ptx::makeExecutor();
  BenchMemory mem;

  // ---- FMA loop ----
  std::string fmaText = kFmaPtx;
  fmaText.replace(fmaText.find("  ctaid.x;\n"), 11, "  ld.param.u64 %o, [out];\n  mov.u32 %i, %ctaid.x;\n  mov.u32 %n, %ntid.x;\n"
                                                     "  mad.lo.s32 %t, %i, %n, %t;\n  mul.wide.u32 %off, %t, 4;\n"
                                                     "  add.s64 %o, %o, %off;\n  st.global.f32 [%o], %f1;\n");
  auto fm = exec->load({fmaText, "fma.ptx"});
  if (!fm) {
    std::fprintf(stderr, "load: %s\n", fm.status().toString().c_str());
    return 1;
  }
  const uint32_t blocks = 64 * threads, block = 256;
  const uint64_t lanes = uint64_t(blocks) * block;
  uint64_t out = mem.alloc(lanes * 4);
  struct {
    uint64_t out;
    uint32_t iters;
    uint32_t pad;
  } params{out, iters, 0};
  tf::cuda::LaunchConfig c;
  c.grid = {blocks};
  c.block = {block};
  c.params = reinterpret_cast<const uint8_t*>(&params);
  c.paramBytes = 12;
  std::string msg;
  auto t0 = Clock::now();
  CUresult r = (*fm)->launch(0, c, mem, &msg);
  auto t1 = Clock::now();
  if (r != CUDA_SUCCESS) {
    std::fprintf(stderr, "launch: %d %s\n", r, msg.c_str());
    return 1;
  }
  // 11 per iteration + 29 outside the loop
  const double laneInstr = double(lanes) * (11.0 * iters + 29.0);
  const double interpSec = seconds(t0, t1);

  // the same arithmetic in C++ on the same threads
  const bool hasFma = __builtin_cpu_supports("fma");
  std::vector<float> native(lanes);
  auto t2 = Clock::now();
  onThreads(threads, lanes, [&](uint64_t from, uint64_t to) {
    if (hasFma)
      fmaBodyFmaIsa(native.data(), from, to, block, iters);
    else
      fmaBodyLibm(native.data(), from, to, block, iters);
  });
  auto t3 = Clock::now();
  const double nativeSec = seconds(t2, t3);
  // the results must agree bit for bit (same operations, same order)
  const float* got = reinterpret_cast<const float*>(mem.host(out));
  uint64_t mismatches = 0;
  for (uint64_t t = 0; t < lanes; ++t) {
    bool diff = std::memcmp(&got[t], &native[t], 4) != 0;
    if (diff && mismatches < 3) std::printf("  mismatch lane %llu: %a vs %a\n", (unsigned long long)t, got[t], native[t]);
    mismatches += diff;
  }

  std::printf("threads: %u (both sides)\n", threads);
  std::printf("fma loop: %llu lanes x %u iterations, %.3g lane-instructions\n",
              static_cast<unsigned long long>(lanes), iters, laneInstr);
  std::printf("  interpreter: %.3f s  %.1f M lane-instr/s\n", interpSec, laneInstr / interpSec / 1e6);
  std::printf("  C++ (%s): %.3f s  %.1f M lane-instr/s equivalent\n",
              hasFma ? "FMA instruction, as the compiler builds it" : "NO FMA on this CPU: libm fmaf calls",
              nativeSec, laneInstr / nativeSec / 1e6);
  std::printf("  ratio interpreter time / C++ time: %.1f\n", interpSec / nativeSec);
  std::printf("  results identical: %s\n", mismatches == 0 ? "yes" : "NO");

  // ---- vector add over 64 MiB ----
  auto vm = exec->load({kVecAddPtx, "vecadd.ptx"});
  if (!vm) {
    std::fprintf(stderr, "load: %s\n", vm.status().toString().c_str());
    return 1;
  }
  const uint32_t n = 16u << 20; // 16 Mi floats = 64 MiB per array
  uint64_t da = mem.alloc(n * 4ull), db = mem.alloc(n * 4ull), dc = mem.alloc(n * 4ull);
  float* ha = reinterpret_cast<float*>(mem.host(da));
  float* hb = reinterpret_cast<float*>(mem.host(db));
  for (uint32_t i = 0; i < n; ++i) {
    ha[i] = float(i) * 0.5f;
    hb[i] = float(n - i);
  }
  std::memset(mem.host(dc), 0, n * 4ull);
  struct {
    uint64_t a, b, c;
    uint32_t n, pad;
  } vp{da, db, dc, n, 0};
  tf::cuda::LaunchConfig vc;
  vc.grid = {(n + 255) / 256};
  vc.block = {256};
  vc.params = reinterpret_cast<const uint8_t*>(&vp);
  vc.paramBytes = 28;
  auto t4 = Clock::now();
  r = (*vm)->launch(0, vc, mem, &msg);
  auto t5 = Clock::now();
  if (r != CUDA_SUCCESS) {
    std::fprintf(stderr, "launch: %d %s\n", r, msg.c_str());
    return 1;
  }
  std::vector<float> hc(n);
  auto t6 = Clock::now();
  onThreads(threads, n, [&](uint64_t from, uint64_t to) {
    for (uint64_t i = from; i < to; ++i) hc[i] = ha[i] + hb[i];
  });
  auto t7 = Clock::now();
  const float* gc = reinterpret_cast<const float*>(mem.host(dc));
  uint64_t bad = 0;
  for (uint32_t i = 0; i < n; ++i) bad += gc[i] != hc[i];
  const double vs = seconds(t4, t5), cs = seconds(t6, t7);
  std::printf("vector add: 3 x 64 MiB (%u floats)\n", n);
  std::printf("  interpreter: %.3f s  %.2f GB/s\n", vs, 12.0 * n / vs / 1e9);
  std::printf("  C++ loop: %.4f s  %.2f GB/s\n", cs, 12.0 * n / cs / 1e9);
  std::printf("  ratio interpreter time / C++ time: %.1f\n", vs / cs);
  std::printf("  results identical: %s\n", bad == 0 ? "yes" : "NO");
  return mismatches == 0 && bad == 0 ? 0 : 2;
}
