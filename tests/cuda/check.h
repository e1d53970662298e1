// Helpers for the CUDA test programs under tests/cuda. Each program is a separate process run
// against the soft GPU's libcuda.so.1; it checks its own results and exits non-zero on the first
// failed check (CHECK / EXPECT_*), or at the end if any soft check (EXPECT_TRUE) failed.
//
//   CHECK(cudaMalloc(&p, n));                    // must succeed
//   EXPECT_ERR(cudaFree(bogus), cudaErrorInvalidValue);
//   EXPECT_EQ_BYTES(got, want, n, "after D2H");
//   return tf_test::summary("memory");
//
// Every program also runs as <name>_limited, in a small vGPU with the limiter preloaded
// (tests/cuda/CMakeLists.txt): TF_TEST_VGPU_VRAM then holds the vGPU's VRAM in bytes, and the
// program must call TF_CHECK_VGPU() once a context is current, which checks that the limiter
// is really there (the total it reports is the vGPU's; an allocation past it is refused).
// summary() fails a limited run that never made that check.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(__CUDACC__) || defined(TF_TEST_USE_CUDART)
#include <cuda_runtime.h>
#endif
#if defined(TF_TEST_DRIVER_API)
#include <cuda.h>
#endif

namespace tf_test {

inline int& failures() {
  static int n = 0;
  return n;
}
inline int& checks() {
  static int n = 0;
  return n;
}

[[noreturn]] inline void die() {
  std::fflush(stdout);
  std::fflush(stderr);
  std::exit(1);
}

// The VRAM of the vGPU this run is limited to (TF_TEST_VGPU_VRAM), or 0 for a run without one.
inline size_t vgpuVram() {
  const char* v = std::getenv("TF_TEST_VGPU_VRAM");
  if (!v || !*v) return 0;
  char* end = nullptr;
  unsigned long long n = std::strtoull(v, &end, 10);
  if (*end != '\0' || n == 0) {
    std::fprintf(stderr, "TF_TEST_VGPU_VRAM='%s' is not a byte count\n", v);
    std::exit(2);
  }
  return static_cast<size_t>(n);
}
inline bool& vgpuChecked() {
  static bool checked = false;
  return checked;
}

// Prints a one-line summary and returns the process exit status.
inline int summary(const char* name) {
  if (vgpuVram() != 0 && !vgpuChecked()) {
    std::fprintf(stderr, "%s: TF_TEST_VGPU_VRAM is set but the program never checked its vGPU "
                         "(TF_CHECK_VGPU)\n", name);
    ++failures();
  }
  if (failures() == 0) {
    std::printf("PASS %s: %d checks\n", name, checks());
    return 0;
  }
  std::printf("FAIL %s: %d of %d checks failed\n", name, failures(), checks());
  return 1;
}

// Compares n bytes; on a mismatch prints the first differing offset and both values.
inline bool sameBytes(const void* got, const void* want, size_t n, const char* what,
                      const char* file, int line) {
  ++checks();
  const auto* g = static_cast<const unsigned char*>(got);
  const auto* w = static_cast<const unsigned char*>(want);
  for (size_t i = 0; i < n; ++i) {
    if (g[i] != w[i]) {
      std::fprintf(stderr, "%s:%d: %s: byte %zu of %zu differs: got 0x%02x, want 0x%02x\n", file,
                   line, what, i, n, g[i], w[i]);
      ++failures();
      return false;
    }
  }
  return true;
}

// Deterministic pseudo-random bytes (xorshift64*), so every run checks the same data.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed ? seed : 0x9e3779b97f4a7c15ull) {}
  uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
  void fill(void* p, size_t n) {
    auto* b = static_cast<unsigned char*>(p);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t v = next();
      std::memcpy(b + i, &v, 8);
    }
    if (i < n) {
      uint64_t v = next();
      std::memcpy(b + i, &v, n - i);
    }
  }
};

} // namespace tf_test

#define TF_STR2(x) #x
#define TF_STR(x) TF_STR2(x)

#if defined(__CUDACC__) || defined(TF_TEST_USE_CUDART)
// A runtime call that must succeed; exits on failure.
#define CHECK(call)                                                                               \
  do {                                                                                            \
    ++tf_test::checks();                                                                          \
    cudaError_t tf_e_ = (call);                                                                   \
    if (tf_e_ != cudaSuccess) {                                                                   \
      std::fprintf(stderr, "%s:%d: %s failed: %s (%s, %d)\n", __FILE__, __LINE__, #call,          \
                   cudaGetErrorString(tf_e_), cudaGetErrorName(tf_e_), (int)tf_e_);               \
      tf_test::die();                                                                             \
    }                                                                                             \
  } while (0)

// A runtime call that should succeed; counted as a failure (not fatal) otherwise.
#define EXPECT_OK(call) EXPECT_ERR(call, cudaSuccess)

// A runtime call that must fail with `code`. Counted as a failure (not fatal) otherwise.
#define EXPECT_ERR(call, code)                                                                    \
  do {                                                                                            \
    ++tf_test::checks();                                                                          \
    cudaError_t tf_e_ = (call);                                                                   \
    if (tf_e_ != (code)) {                                                                        \
      std::fprintf(stderr, "%s:%d: %s returned %s (%d), want %s (%d)\n", __FILE__, __LINE__,      \
                   #call, cudaGetErrorName(tf_e_), (int)tf_e_, #code, (int)(code));               \
      ++tf_test::failures();                                                                      \
    }                                                                                             \
  } while (0)
#endif

#if defined(TF_TEST_DRIVER_API)
inline const char* tf_cuName(CUresult r) {
  const char* s = nullptr;
  if (cuGetErrorName(r, &s) != CUDA_SUCCESS || !s) return "?";
  return s;
}
// A driver call that must succeed; exits on failure.
#define CU_CHECK(call)                                                                            \
  do {                                                                                            \
    ++tf_test::checks();                                                                          \
    CUresult tf_r_ = (call);                                                                      \
    if (tf_r_ != CUDA_SUCCESS) {                                                                  \
      std::fprintf(stderr, "%s:%d: %s failed: %s (%d)\n", __FILE__, __LINE__, #call,              \
                   tf_cuName(tf_r_), (int)tf_r_);                                                 \
      tf_test::die();                                                                             \
    }                                                                                             \
  } while (0)
// A driver call that must return `code`.
#define CU_EXPECT_ERR(call, code)                                                                 \
  do {                                                                                            \
    ++tf_test::checks();                                                                          \
    CUresult tf_r_ = (call);                                                                      \
    if (tf_r_ != (code)) {                                                                        \
      std::fprintf(stderr, "%s:%d: %s returned %s (%d), want %s (%d)\n", __FILE__, __LINE__,      \
                   #call, tf_cuName(tf_r_), (int)tf_r_, #code, (int)(code));                      \
      ++tf_test::failures();                                                                      \
    }                                                                                             \
  } while (0)
#endif

// A condition that must hold; counted, not fatal.
#define EXPECT_TRUE(cond)                                                                         \
  do {                                                                                            \
    ++tf_test::checks();                                                                          \
    if (!(cond)) {                                                                                \
      std::fprintf(stderr, "%s:%d: expected %s\n", __FILE__, __LINE__, #cond);                    \
      ++tf_test::failures();                                                                      \
    }                                                                                             \
  } while (0)

// Equality with both values printed (integers).
#define EXPECT_EQ_INT(got, want)                                                                  \
  do {                                                                                            \
    ++tf_test::checks();                                                                          \
    long long tf_g_ = (long long)(got), tf_w_ = (long long)(want);                                \
    if (tf_g_ != tf_w_) {                                                                         \
      std::fprintf(stderr, "%s:%d: %s = %lld, want %s = %lld\n", __FILE__, __LINE__, #got, tf_g_, \
                   #want, tf_w_);                                                                 \
      ++tf_test::failures();                                                                      \
    }                                                                                             \
  } while (0)

// A condition that must hold; the program cannot go on otherwise.
#define REQUIRE(cond)                                                                             \
  do {                                                                                            \
    ++tf_test::checks();                                                                          \
    if (!(cond)) {                                                                                \
      std::fprintf(stderr, "%s:%d: required %s\n", __FILE__, __LINE__, #cond);                    \
      tf_test::die();                                                                             \
    }                                                                                             \
  } while (0)

#define EXPECT_EQ_BYTES(got, want, n, what)                                                       \
  tf_test::sameBytes((got), (want), (n), (what), __FILE__, __LINE__)

namespace tf_test {
// The check behind TF_CHECK_VGPU, for either API: info(&free, &total) says whether it worked;
// outOfMemory(bytes) tries one allocation (freeing it if granted) and says whether it was
// refused as out of memory.
template <class Info, class OutOfMemory> inline void checkVgpu(Info info, OutOfMemory outOfMemory) {
  vgpuChecked() = true;
  const size_t vram = vgpuVram();
  if (vram == 0) return;
  size_t freeB = 0, total = 0;
  REQUIRE(info(&freeB, &total));
  const bool refused = outOfMemory(vram + (size_t(1) << 20));
  EXPECT_EQ_INT(total, vram);
  EXPECT_TRUE(freeB <= vram);
  EXPECT_TRUE(refused);
  std::printf("vGPU: total %zu MiB (want %zu MiB), free %zu MiB, an allocation past it %s\n",
              total >> 20, vram >> 20, freeB >> 20, refused ? "refused" : "GRANTED");
}
} // namespace tf_test

// In a limited run (TF_TEST_VGPU_VRAM set), with a current context: the device's total is the
// vGPU's and an allocation one MiB past it is refused as out of memory. Without the limiter
// (ld.so silently ignores an LD_PRELOAD it cannot open) the device's own total shows and the
// allocation succeeds: both fail the run. Does nothing in a run without a vGPU.
#if defined(__CUDACC__) || defined(TF_TEST_USE_CUDART)
#define TF_CHECK_VGPU()                                                                           \
  tf_test::checkVgpu([](size_t* f, size_t* t) { return cudaMemGetInfo(f, t) == cudaSuccess; },   \
                     [](size_t n) {                                                               \
                       void* p = nullptr;                                                         \
                       cudaError_t e = cudaMalloc(&p, n);                                         \
                       if (p) (void)cudaFree(p);                                                  \
                       (void)cudaGetLastError();                                                  \
                       return e == cudaErrorMemoryAllocation;                                     \
                     })
#elif defined(TF_TEST_DRIVER_API)
#define TF_CHECK_VGPU()                                                                           \
  tf_test::checkVgpu([](size_t* f, size_t* t) { return cuMemGetInfo(f, t) == CUDA_SUCCESS; },    \
                     [](size_t n) {                                                               \
                       CUdeviceptr p = 0;                                                         \
                       CUresult r = cuMemAlloc(&p, n);                                            \
                       if (p) (void)cuMemFree(p);                                                 \
                       return r == CUDA_ERROR_OUT_OF_MEMORY;                                      \
                     })
#endif
