// nvcc-compiled kernels (kernels/basic.cu, sm_90 and sm_80 PTX) against CPU references over
// random inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <random>

#include "test_util.h"

namespace tf::ptx::test {
namespace {

// a * b rounded to float before anything else uses it (never contracted into an fma).
float volatileMul(float a, float b) {
  volatile float p = a * b;
  return p;
}

class Kernels : public ::testing::TestWithParam<const char*> {
protected:
  void SetUp() override {
    std::string path = ptxPath(GetParam());
    std::string text = readFile(path);
    ASSERT_FALSE(text.empty()) << "missing " << path;
    auto l = loadPtx(text, GetParam(), mem_);
    ASSERT_TRUE(l.error.empty()) << l.error;
    mod_ = std::move(l.mod);
  }
  CUresult run(const std::string& k, cuda::Dim3 g, cuda::Dim3 b, const Args& a, uint32_t dyn = 0) {
    msg_.clear();
    return launch(*mod_, k, g, b, a, mem_, &msg_, dyn);
  }
  TestMemory mem_;
  std::unique_ptr<cuda::LoadedModule> mod_;
  std::string msg_;
  std::mt19937 rng_{12345};
};

TEST_P(Kernels, VectorAdd) {
  const int n = 10000 + 37;
  std::uniform_real_distribution<float> d(-100, 100);
  std::vector<float> a(n), b(n);
  for (int i = 0; i < n; ++i) a[i] = d(rng_), b[i] = d(rng_);
  uint64_t da = mem_.upload(a), db = mem_.upload(b), dc = mem_.alloc(n * 4);
  ASSERT_EQ(run("vecAdd", {(n + 255) / 256}, {256}, Args().add(da).add(db).add(dc).add(n)), CUDA_SUCCESS) << msg_;
  auto c = mem_.download<float>(dc, n);
  for (int i = 0; i < n; ++i) ASSERT_EQ(c[i], a[i] + b[i]) << i;
}

TEST_P(Kernels, GridStrideSaxpy) {
  const int n = 50000;
  std::uniform_real_distribution<float> d(-10, 10);
  std::vector<float> x(n), y(n);
  for (int i = 0; i < n; ++i) x[i] = d(rng_), y[i] = d(rng_);
  uint64_t dx = mem_.upload(x), dy = mem_.upload(y);
  float a = 2.5f;
  ASSERT_EQ(run("saxpy", {7}, {128}, Args().add(n).add(a).add(dx).add(dy)), CUDA_SUCCESS) << msg_;
  auto r = mem_.download<float>(dy, n);
  for (int i = 0; i < n; ++i) ASSERT_EQ(r[i], std::fma(a, x[i], y[i])) << i;
}

TEST_P(Kernels, SharedTreeReduction) {
  const int n = 256 * 40 - 13;
  std::uniform_real_distribution<float> d(0, 1);
  std::vector<float> in(n);
  for (auto& v : in) v = d(rng_);
  int blocks = (n + 255) / 256;
  uint64_t di = mem_.upload(in), dout = mem_.alloc(blocks * 4);
  ASSERT_EQ(run("reduceShared", {uint32_t(blocks)}, {256}, Args().add(di).add(dout).add(n)), CUDA_SUCCESS) << msg_;
  auto out = mem_.download<float>(dout, blocks);
  for (int b = 0; b < blocks; ++b) {
    // same tree order as the kernel
    std::vector<float> s(256, 0.0f);
    for (int t = 0; t < 256; ++t) s[t] = b * 256 + t < n ? in[b * 256 + t] : 0.0f;
    for (int k = 128; k > 0; k >>= 1)
      for (int t = 0; t < k; ++t) s[t] += s[t + k];
    ASSERT_EQ(out[b], s[0]) << b;
  }
}

TEST_P(Kernels, WarpShuffleReduceAndScan) {
  const int n = 256 * 3;
  std::uniform_int_distribution<int> d(-1000, 1000);
  std::vector<int> in(n);
  for (auto& v : in) v = d(rng_);
  uint64_t di = mem_.upload(in), ds = mem_.alloc(n / 32 * 4), dscan = mem_.alloc(n * 4);
  ASSERT_EQ(run("warpReduceScan", {3}, {256}, Args().add(di).add(ds).add(dscan)), CUDA_SUCCESS) << msg_;
  auto sums = mem_.download<int>(ds, n / 32);
  auto scan = mem_.download<int>(dscan, n);
  for (int w = 0; w < n / 32; ++w) {
    int total = 0;
    for (int l = 0; l < 32; ++l) {
      total += in[w * 32 + l];
      ASSERT_EQ(scan[w * 32 + l], total) << w << " " << l;
    }
    ASSERT_EQ(sums[w], total) << w;
  }
}

TEST_P(Kernels, TiledMatmul) {
  const int M = 45, N = 37, K = 53;
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> A(M * K), B(K * N);
  for (auto& v : A) v = d(rng_);
  for (auto& v : B) v = d(rng_);
  uint64_t da = mem_.upload(A), db = mem_.upload(B), dc = mem_.alloc(M * N * 4);
  ASSERT_EQ(run("matmulTiled", {(N + 15) / 16, (M + 15) / 16}, {16, 16},
                Args().add(da).add(db).add(dc).add(M).add(N).add(K)), CUDA_SUCCESS) << msg_;
  auto C = mem_.download<float>(dc, M * N);
  for (int r = 0; r < M; ++r)
    for (int c = 0; c < N; ++c) {
      double acc = 0;
      for (int k = 0; k < K; ++k) acc += double(A[r * K + k]) * B[k * N + c];
      ASSERT_NEAR(C[r * N + c], acc, 1e-4) << r << "," << c;
    }
}

TEST_P(Kernels, HistogramSharedAndGlobalAtomics) {
  const int n = 100000;
  std::uniform_int_distribution<int> d(0, 255);
  std::vector<uint8_t> data(n);
  for (auto& v : data) v = static_cast<uint8_t>(d(rng_));
  uint64_t dd = mem_.upload(data), db = mem_.alloc(64 * 4);
  ASSERT_EQ(run("histogram", {13}, {192}, Args().add(dd).add(n).add(db)), CUDA_SUCCESS) << msg_;
  auto bins = mem_.download<unsigned>(db, 64);
  std::vector<unsigned> ref(64, 0);
  for (auto v : data) ref[v & 63]++;
  EXPECT_EQ(bins, ref);
}

TEST_P(Kernels, AtomicFamilies) {
  const int n = 512;
  std::uniform_int_distribution<int> d(-100000, 100000);
  std::vector<int> in(n);
  for (auto& v : in) v = d(rng_);
  std::vector<int> vals = {INT_MIN, INT_MAX, -1, 0, 0x12345678, 1000, 0, 0, 0};
  uint64_t dv = mem_.upload(vals), du = mem_.alloc(16), df = mem_.alloc(4), ddb = mem_.alloc(8);
  uint64_t di = mem_.upload(in);
  std::vector<unsigned> u0 = {0, 7, 0, 0};
  std::memcpy(mem_.host(du), u0.data(), 16);
  ASSERT_EQ(run("atomicsMisc", {4}, {128}, Args().add(dv).add(du).add(df).add(ddb).add(di)), CUDA_SUCCESS) << msg_;
  auto r = mem_.download<int>(dv, 9);
  int mx = INT_MIN, mn = INT_MAX, an = -1, orv = 0, xr = 0x12345678;
  unsigned inc = 0, dec = 7;
  for (int v : in) {
    mx = std::max(mx, v);
    mn = std::min(mn, v);
    an &= v | 0x0F0F0F0F;
    orv |= v & 0x00FF00FF;
    xr ^= v;
    inc = inc >= 100 ? 0 : inc + 1;
    dec = (dec == 0 || dec > 50) ? 50 : dec - 1;
  }
  EXPECT_EQ(r[0], mx);
  EXPECT_EQ(r[1], mn);
  EXPECT_EQ(r[2], an);
  EXPECT_EQ(r[3], orv);
  EXPECT_EQ(r[4], xr);
  EXPECT_EQ(r[5], 1000 - 3 * n);
  EXPECT_EQ(r[6], 1);
  EXPECT_EQ(r[7], 1);
  EXPECT_EQ(r[8], 42);
  auto u = mem_.download<unsigned>(du, 4);
  EXPECT_EQ(u[0], inc); // the wrap-around sequence is order independent for a single counter
  EXPECT_EQ(u[1], dec);
  uint64_t cnt;
  std::memcpy(&cnt, mem_.host(du + 8), 8);
  EXPECT_EQ(cnt, uint64_t(n));
  EXPECT_EQ(mem_.download<float>(df, 1)[0], 0.5f * n);
  EXPECT_EQ(mem_.download<double>(ddb, 1)[0], 0.25 * n);
}

TEST_P(Kernels, BitonicSortDynamicShared) {
  const int blocks = 5, n = 512;
  std::uniform_int_distribution<int> d(-1000000, 1000000);
  std::vector<int> data(blocks * n);
  for (auto& v : data) v = d(rng_);
  uint64_t dd = mem_.upload(data);
  ASSERT_EQ(run("bitonicSort", {blocks}, {n}, Args().add(dd), n * 4), CUDA_SUCCESS) << msg_;
  auto r = mem_.download<int>(dd, blocks * n);
  for (int b = 0; b < blocks; ++b) {
    std::vector<int> ref(data.begin() + b * n, data.begin() + (b + 1) * n);
    std::sort(ref.begin(), ref.end());
    std::vector<int> got(r.begin() + b * n, r.begin() + (b + 1) * n);
    ASSERT_EQ(got, ref) << b;
  }
}

TEST_P(Kernels, DivergentLoopsAndEarlyExit) {
  const int n = 3000;
  std::uniform_int_distribution<unsigned> d(0, 100000);
  std::vector<unsigned> in(n);
  for (auto& v : in) v = d(rng_);
  in[5] = 0;
  in[64] = 1;
  uint64_t di = mem_.upload(in);
  std::vector<unsigned> init(n, 0xDEADBEEF);
  uint64_t dout = mem_.upload(init);
  ASSERT_EQ(run("divergent", {(n + 127) / 128}, {128}, Args().add(di).add(dout).add(n)), CUDA_SUCCESS) << msg_;
  auto out = mem_.download<unsigned>(dout, n);
  for (int i = 0; i < n; ++i) {
    unsigned x = in[i];
    unsigned expect;
    if (x == 0) {
      expect = 0xFFFFFFFFu;
    } else {
      unsigned steps = 0;
      while (x != 1) {
        x = (x & 1) ? 3 * x + 1 : x >> 1;
        if (++steps > 1000) break;
      }
      expect = steps;
      switch (i % 4) {
      case 0: expect += 1; break;
      case 1: expect *= 2; break;
      case 2: expect = steps > 10 ? steps - 10 : 0xDEADBEEF; break;
      default: break;
      }
    }
    ASSERT_EQ(out[i], expect) << i;
  }
}

TEST_P(Kernels, DeviceFunctionCalls) {
  const int n = 300;
  std::uniform_real_distribution<float> d(-2, 2);
  std::vector<float> x(n), coef = {0.5f, -1.25f, 2.0f, 0.75f};
  for (auto& v : x) v = d(rng_);
  uint64_t dx = mem_.upload(x), dc = mem_.upload(coef), dy = mem_.alloc(n * 4), df = mem_.alloc(n * 4);
  ASSERT_EQ(run("deviceCalls", {3}, {128}, Args().add(dx).add(dc).add(dy).add(df).add(n)), CUDA_SUCCESS) << msg_;
  auto y = mem_.download<float>(dy, n);
  auto f = mem_.download<int>(df, n);
  // nvcc contracts poly()'s `r * x + coef[k]` into fma.rn.f32 (its default --fmad=true, for
  // sm_80 and sm_90 alike), so the one right answer is the fused one: an engine that rounded
  // between the multiply and the add would differ here.
  int differs = 0;
  for (int i = 0; i < n; ++i) {
    float r = 0, unfused = 0;
    for (int k = 3; k >= 0; --k) r = std::fma(r, x[i], coef[k]);
    for (int k = 3; k >= 0; --k) unfused = volatileMul(unfused, x[i]) + coef[k];
    differs += r != unfused;
    ASSERT_EQ(y[i], r) << i << " (unfused would be " << unfused << ")";
    int fa = 1;
    for (int k = 2; k <= i % 10; ++k) fa *= k;
    int a = i % 7, b = (i * 3) % 5;
    if (a > b) std::swap(a, b);
    ASSERT_EQ(f[i], fa + a * 100 + b) << i;
  }
  // The inputs tell the two apart: otherwise the check above would prove nothing.
  EXPECT_GT(differs, n / 10);
}

TEST_P(Kernels, Templates) {
  const int n = 100;
  std::vector<int> a(n);
  std::vector<double> b(n);
  for (int i = 0; i < n; ++i) a[i] = i - 50, b[i] = i * 0.5;
  uint64_t da = mem_.upload(a), db = mem_.upload(b);
  ASSERT_EQ(run("scaleInt", {1}, {128}, Args().add(da).add(n)), CUDA_SUCCESS) << msg_;
  ASSERT_EQ(run("scaleDouble", {1}, {128}, Args().add(db).add(n)), CUDA_SUCCESS) << msg_;
  auto ra = mem_.download<int>(da, n);
  auto rb = mem_.download<double>(db, n);
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(ra[i], (i - 50) * 3 + 1);
    ASSERT_EQ(rb[i], i * 0.5 * 5 + 1);
  }
  std::string fname, lname;
  for (const auto& k : mod_->kernels()) {
    if (k.name.find("addOne") != std::string::npos && k.name.find("If") != std::string::npos) fname = k.name;
    if (k.name.find("addOne") != std::string::npos && k.name.find("Ix") != std::string::npos) lname = k.name;
  }
  ASSERT_FALSE(fname.empty());
  ASSERT_FALSE(lname.empty());
  std::vector<float> fv = {1.5f, 2.5f};
  std::vector<long long> lv = {1ll << 40, -5};
  uint64_t dfv = mem_.upload(fv), dlv = mem_.upload(lv);
  ASSERT_EQ(run(fname, {1}, {2}, Args().add(dfv)), CUDA_SUCCESS) << msg_;
  ASSERT_EQ(run(lname, {1}, {2}, Args().add(dlv)), CUDA_SUCCESS) << msg_;
  EXPECT_EQ(mem_.download<float>(dfv, 2), (std::vector<float>{2.5f, 3.5f}));
  EXPECT_EQ(mem_.download<long long>(dlv, 2), (std::vector<long long>{(1ll << 40) + 1, -4}));
}

TEST_P(Kernels, DynamicSharedReverse) {
  const int bs = 200, blocks = 4;
  std::vector<float> in(bs * blocks);
  for (int i = 0; i < bs * blocks; ++i) in[i] = float(i) * 1.5f;
  uint64_t di = mem_.upload(in), dout = mem_.alloc(in.size() * 4);
  ASSERT_EQ(run("dynShared", {blocks}, {bs}, Args().add(di).add(dout), bs * 4), CUDA_SUCCESS) << msg_;
  auto out = mem_.download<float>(dout, in.size());
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < bs; ++t) ASSERT_EQ(out[b * bs + t], in[b * bs + bs - 1 - t]);
  // too little dynamic shared memory for the block: out of bounds in shared space
  EXPECT_EQ(run("dynShared", {1}, {bs}, Args().add(di).add(dout), 16), CUDA_ERROR_ILLEGAL_ADDRESS);
  EXPECT_NE(msg_.find("shared"), std::string::npos) << msg_;
}

TEST_P(Kernels, Printf) {
  StdoutCapture cap;
  CUresult r = run("printer", {1}, {32}, Args().add(7));
  std::string out = cap.finish();
  ASSERT_EQ(r, CUDA_SUCCESS) << msg_;
  EXPECT_NE(out.find("tid 0 base 7 half 0.00 str ok hex ff ll 7000000000\n"), std::string::npos) << out;
  EXPECT_NE(out.find("tid 1 base 7 half 0.50 str ok hex ff ll 7000000000\n"), std::string::npos) << out;
  EXPECT_NE(out.find("tid 2 base 7 half 1.00 str ok hex ff ll 7000000000\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("tid 3"), std::string::npos) << out;
}

double ulpDiff(float a, float b) {
  if (std::isnan(a) && std::isnan(b)) return 0;
  if (a == b) return 0;
  return std::fabs(double(a) - double(b)) / std::max(std::numeric_limits<float>::denorm_min(),
                                                       std::fabs(std::nextafter(b, INFINITY) - b));
}

TEST_P(Kernels, MathF32) {
  const int n = 256;
  std::uniform_real_distribution<float> d(-8, 8);
  std::vector<float> x(n);
  for (auto& v : x) v = d(rng_);
  uint64_t dx = mem_.upload(x), dout = mem_.alloc(n * 12 * 4);
  ASSERT_EQ(run("mathF32", {2}, {128}, Args().add(dx).add(dout)), CUDA_SUCCESS) << msg_;
  auto o = mem_.download<float>(dout, n * 12);
  for (int i = 0; i < n; ++i) {
    float v = x[i];
    float ref[12] = {std::sin(v), std::cos(v), std::exp(v), std::log(std::fabs(v) + 1.0f),
                     std::sqrt(std::fabs(v)), std::pow(std::fabs(v), 1.5f), std::tanh(v),
                     std::atan2(v, 0.5f), v / (v * v + 1.0f), 1.0f / std::sqrt(std::fabs(v) + 1.0f),
                     std::fma(v, v, -1.0f),
                     std::floor(v * 3.3f) + std::ceil(v) + std::trunc(v * 7.1f) + std::rint(v * 2.5f)};
    // CUDA's documented maximum ulp errors for these functions (with a little slack)
    double tol[12] = {4, 4, 4, 4, 1, 8, 4, 4, 1, 4, 0, 0};
    for (int k = 0; k < 12; ++k) {
      double abs = std::fabs(double(o[i * 12 + k]) - double(ref[k]));
      ASSERT_TRUE(ulpDiff(o[i * 12 + k], ref[k]) <= tol[k] || abs < 1e-6)
          << "fn " << k << " x=" << v << " got " << o[i * 12 + k] << " want " << ref[k];
    }
  }
}

TEST_P(Kernels, MathF64) {
  const int n = 128;
  std::uniform_real_distribution<double> d(-8, 8);
  std::vector<double> x(n);
  for (auto& v : x) v = d(rng_);
  uint64_t dx = mem_.upload(x), dout = mem_.alloc(n * 8 * 8);
  ASSERT_EQ(run("mathF64", {1}, {128}, Args().add(dx).add(dout)), CUDA_SUCCESS) << msg_;
  auto o = mem_.download<double>(dout, n * 8);
  for (int i = 0; i < n; ++i) {
    double v = x[i];
    double ref[8] = {std::sin(v), std::cos(v), std::exp(v), std::log(std::fabs(v) + 1.0),
                     std::sqrt(std::fabs(v)), std::pow(std::fabs(v), 1.5), v / (v * v + 1.0),
                     std::fma(v, v, -1.0)};
    for (int k = 0; k < 8; ++k) {
      // k == 6: nvcc contracts v*v+1 into an fma, so one rounding less than the reference
      double tol = k == 7 || k == 4 ? 0
                   : k == 6     ? 2.3e-16 * std::fabs(ref[k])
                                : 4e-15 * std::max(1.0, std::fabs(ref[k]));
      ASSERT_NEAR(o[i * 8 + k], ref[k], tol) << "fn " << k << " x=" << v;
    }
  }
}

TEST_P(Kernels, IntegerEdgeCases) {
  std::vector<int> a = {INT_MIN, INT_MIN, 7, -7, 0, INT_MAX, 1, -1, 123456789, -98765, 0x0F0F0F0F, 5};
  std::vector<int> b = {-1, 1, 0, 2, 0, -1, 31, 33, 1000, -7, 64, 3};
  std::uniform_int_distribution<int> d(INT_MIN, INT_MAX);
  while (a.size() < 64) a.push_back(d(rng_)), b.push_back(d(rng_) % 97);
  int n = static_cast<int>(a.size());
  uint64_t da = mem_.upload(a), db = mem_.upload(b), dout = mem_.alloc(n * 12 * 4);
  ASSERT_EQ(run("intEdge", {1}, {uint32_t(n)}, Args().add(da).add(db).add(dout)), CUDA_SUCCESS) << msg_;
  auto o = mem_.download<int>(dout, n * 12);
  for (int i = 0; i < n; ++i) {
    int x = a[i], y = b[i];
    unsigned ux = x, uy = y;
    int ref[12];
    ref[0] = y != 0 && !(x == INT_MIN && y == -1) ? x / y : 0;
    ref[1] = y != 0 && !(x == INT_MIN && y == -1) ? x % y : 0;
    ref[2] = uy != 0 ? int(ux / uy) : 0;
    ref[3] = int(ux >> (uy & 31));
    ref[4] = x >> (uy & 31);
    ref[5] = __builtin_popcount(ux);
    ref[6] = ux ? __builtin_clz(ux) : 32;
    unsigned rv = 0;
    for (int k = 0; k < 32; ++k) rv |= ((ux >> k) & 1) << (31 - k);
    ref[7] = int(rv);
    ref[8] = int((int64_t(x) * int64_t(y)) >> 32);
    ref[9] = int((uint64_t(ux) * uint64_t(uy)) >> 32);
    ref[10] = x ? __builtin_ctz(ux) + 1 : 0;
    ref[11] = int((int64_t(x) * int64_t(y)) >> 7);
    for (int k = 0; k < 12; ++k) ASSERT_EQ(o[i * 12 + k], ref[k]) << "op " << k << " a=" << x << " b=" << y;
  }
}

TEST_P(Kernels, OutOfBoundsIsIllegalAddress) {
  uint64_t dp = mem_.alloc(64 * 4);
  EXPECT_EQ(run("outOfBounds", {1}, {64}, Args().add(dp).add(0ll)), CUDA_SUCCESS) << msg_;
  EXPECT_EQ(run("outOfBounds", {1}, {64}, Args().add(dp).add(10ll)), CUDA_ERROR_ILLEGAL_ADDRESS);
  EXPECT_NE(msg_.find("illegal address"), std::string::npos) << msg_;
  // a host pointer is not device memory
  int hostVar = 0;
  EXPECT_EQ(run("outOfBounds", {1}, {1}, Args().add(reinterpret_cast<uint64_t>(&hostVar)).add(0ll)),
            CUDA_ERROR_ILLEGAL_ADDRESS);
  EXPECT_EQ(hostVar, 0);
}

TEST_P(Kernels, TrapIsLaunchFailed) {
  uint64_t dp = mem_.alloc(64 * 4);
  EXPECT_EQ(run("trapper", {2}, {64}, Args().add(dp)), CUDA_ERROR_LAUNCH_FAILED);
  EXPECT_NE(msg_.find("trap"), std::string::npos) << msg_;
}

TEST_P(Kernels, ConstantAndGlobalVariables) {
  const auto& gs = mod_->globals();
  bool sawConst = false;
  for (const auto& g : gs)
    if (g.name == "cscale") {
      sawConst = g.isConst;
      ASSERT_EQ(g.size, 16u);
      float f[4];
      std::memcpy(f, g.initializer.data(), 16);
      EXPECT_EQ(f[1], 2.0f);
    }
  EXPECT_TRUE(sawConst);
  // fill gtable through the module's binding: find its address via a second load? Write via
  // the address we bound: look it up by re-binding to known memory.
  std::vector<float> table = {1, 2, 3, 4, 5, 6, 7, 8};
  uint64_t dt = mem_.upload(table);
  ASSERT_TRUE(mod_->bindGlobal("gtable", dt).isOk());
  std::vector<int> counter = {100};
  uint64_t dcnt = mem_.upload(counter);
  ASSERT_TRUE(mod_->bindGlobal("gcounter", dcnt).isOk());
  uint64_t dout = mem_.alloc(64 * 4);
  ASSERT_EQ(run("constGlobals", {1}, {64}, Args().add(dout)), CUDA_SUCCESS) << msg_;
  auto out = mem_.download<float>(dout, 64);
  float cs[4] = {1.5f, 2.0f, -1.0f, 0.25f};
  for (int t = 0; t < 64; ++t) {
    float g = out[t] - cs[t & 3] * table[t & 7];
    ASSERT_GE(g, 100.0f);
    ASSERT_LE(g, 163.0f);
  }
  EXPECT_EQ(mem_.download<int>(dcnt, 1)[0], 164);
  EXPECT_FALSE(mod_->bindGlobal("nope", dt).isOk());
}

TEST_P(Kernels, VotesMatchReduxSyncthreadsCount) {
  const int n = 64;
  std::uniform_int_distribution<int> d(-100, 100);
  std::vector<int> in(n);
  for (auto& v : in) v = d(rng_);
  uint64_t di = mem_.upload(in), dout = mem_.alloc(n * 8 * 4);
  ASSERT_EQ(run("votes", {1}, {n}, Args().add(di).add(dout)), CUDA_SUCCESS) << msg_;
  auto o = mem_.download<unsigned>(dout, n * 8);
  int cnt = 0;
  for (int v : in) cnt += v > 0;
  for (int w = 0; w < 2; ++w) {
    unsigned bal = 0, odd = 0;
    bool any = false;
    int sum = 0;
    for (int l = 0; l < 32; ++l) {
      int v = in[w * 32 + l];
      if (v > 0) bal |= 1u << l;
      if (v & 1) odd |= 1u << l;
      any |= v > 90;
      sum += v;
    }
    for (int l = 0; l < 32; ++l) {
      int t = w * 32 + l;
      const unsigned* r = &o[t * 8];
      ASSERT_EQ(r[0], bal);
      ASSERT_EQ(r[1], 1u);
      ASSERT_EQ(r[2], any ? 1u : 0u);
      ASSERT_EQ(r[3], (in[t] & 1) ? odd : 0u) << t;
      unsigned match = 0;
      for (int k = 0; k < 32; ++k)
        if ((in[w * 32 + k] & 3) == (in[t] & 3)) match |= 1u << k;
      ASSERT_EQ(r[4], match);
      ASSERT_EQ(r[5], unsigned(cnt));
      ASSERT_EQ(int(r[6]), sum);
      ASSERT_EQ(r[7], unsigned(l));
    }
  }
}

TEST_P(Kernels, ThreeDimensionalIds) {
  cuda::Dim3 g{3, 2, 2}, b{4, 3, 5};
  size_t total = g.count() * b.count();
  uint64_t dout = mem_.alloc(total * 4);
  ASSERT_EQ(run("threeD", g, b, Args().add(dout)), CUDA_SUCCESS) << msg_;
  auto o = mem_.download<unsigned>(dout, total);
  for (unsigned bz = 0; bz < 2; ++bz)
    for (unsigned by = 0; by < 2; ++by)
      for (unsigned bx = 0; bx < 3; ++bx)
        for (unsigned tz = 0; tz < 5; ++tz)
          for (unsigned ty = 0; ty < 3; ++ty)
            for (unsigned tx = 0; tx < 4; ++tx) {
              unsigned bi = (bz * 2 + by) * 3 + bx, ti = (tz * 3 + ty) * 4 + tx;
              ASSERT_EQ(o[bi * 60 + ti], tx | (ty << 8) | (tz << 16) | (bx << 20) | (by << 24) | (bz << 28));
            }
}

TEST_P(Kernels, StructParameterLayout) {
  int k = mod_->findKernel("structParam");
  ASSERT_GE(k, 0);
  const auto& info = mod_->kernels()[k];
  ASSERT_EQ(info.params.size(), 3u);
  // struct Params {int; double; char; float[3]} is 8-aligned, 32 bytes; then a char
  EXPECT_EQ(info.params[0].offset, 0u);
  EXPECT_EQ(info.params[0].size, 32u);
  EXPECT_EQ(info.params[0].align, 8u);
  EXPECT_EQ(info.params[1].offset, 32u);
  EXPECT_EQ(info.params[1].size, 1u);
  struct Params {
    int a;
    double b;
    char c;
    float d[3];
  } p{3, 0.5, 2, {1.0f, 2.0f, 4.0f}};
  static_assert(sizeof(Params) == 32);
  uint64_t dout = mem_.alloc(8);
  ASSERT_EQ(run("structParam", {1}, {1}, Args().add(p).add(char(9)).add(dout)), CUDA_SUCCESS) << msg_;
  EXPECT_EQ(mem_.download<double>(dout, 1)[0], 3 + 0.5 + 2 + 1 + 2 + 4 + 9);
}

TEST_P(Kernels, BadLaunchConfigurations) {
  uint64_t dc = mem_.alloc(4);
  EXPECT_EQ(run("vecAdd", {1}, {2048}, Args().add(dc).add(dc).add(dc).add(1)), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(run("vecAdd", {0}, {32}, Args().add(dc).add(dc).add(dc).add(1)), CUDA_ERROR_INVALID_VALUE);
  int k = mod_->findKernel("vecAdd");
  cuda::LaunchConfig c;
  c.grid = {1};
  c.block = {32};
  uint8_t small[8] = {};
  c.params = small;
  c.paramBytes = 8;
  EXPECT_EQ(mod_->launch(k, c, mem_, &msg_), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(mod_->launch(99, c, mem_, &msg_), CUDA_ERROR_INVALID_HANDLE);
  EXPECT_EQ(mod_->findKernel("nope"), -1);
}

TEST_P(Kernels, SplitArriveWaitBarrier) {
  const int bs = 192, blocks = 3;
  std::uniform_int_distribution<int> d(-1000, 1000);
  std::vector<int> in(bs * blocks);
  for (auto& v : in) v = d(rng_);
  uint64_t di = mem_.upload(in), dout = mem_.alloc(in.size() * 3 * 4);
  ASSERT_EQ(run("splitBarrier", {blocks}, {bs}, Args().add(di).add(dout)), CUDA_SUCCESS) << msg_;
  auto out = mem_.download<int>(dout, in.size() * 3);
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < bs; ++t)
      for (int r = 0; r < 3; ++r)
        ASSERT_EQ(out[(b * bs + t) * 3 + r], in[b * bs + (t + 1) % bs] * (r + 1)) << b << " " << t << " " << r;
}

TEST_P(Kernels, CooperativeGridSync) {
  const int blocks = 9, bs = 64; // more blocks than worker threads: they must interleave
  uint64_t data = mem_.alloc(blocks * 4), out = mem_.alloc(blocks * bs * 4);
  ASSERT_EQ(launch(*mod_, "gridSync", {blocks}, {bs}, Args().add(data).add(out), mem_, &msg_, 0, true),
            CUDA_SUCCESS) << msg_;
  auto o = mem_.download<int>(out, blocks * bs);
  for (int b = 0; b < blocks; ++b) {
    int v = ((b + 1) % blocks) * 10 + 1;
    int prevV = (((b + blocks - 1) % blocks + 1) % blocks) * 10 + 1;
    for (int t = 0; t < bs; ++t) ASSERT_EQ(o[b * bs + t], prevV * 2 + v) << b << " " << t;
  }
  // without a cooperative launch there is no grid workspace: cooperative groups trap
  EXPECT_EQ(launch(*mod_, "gridSync", {blocks}, {bs}, Args().add(data).add(out), mem_, &msg_), CUDA_ERROR_LAUNCH_FAILED);
}

TEST_P(Kernels, SpinWaitOnAnotherWarp) {
  uint64_t flag = mem_.alloc(4), out = mem_.alloc(32 * 4);
  ASSERT_EQ(run("spinFlag", {1}, {64}, Args().add(flag).add(out)), CUDA_SUCCESS) << msg_;
  for (int v : mem_.download<int>(out, 32)) EXPECT_EQ(v, 7);
}

INSTANTIATE_TEST_SUITE_P(Ptx, Kernels, ::testing::Values("basic_sm90.ptx", "basic_sm80.ptx"),
                         [](const auto& info) {
                           std::string s = info.param;
                           return s.substr(6, 4);
                         });

} // namespace
} // namespace tf::ptx::test
