// wmma (opaque fragments: load/mma/store must agree) and mma.sync (documented layouts) against
// a CPU matrix product.
#include <gtest/gtest.h>

#include <random>
#include <regex>

#include "ptx/half.h"
#include "test_util.h"

namespace tf::ptx::test {
namespace {

class Mma : public ::testing::TestWithParam<const char*> {
protected:
  void SetUp() override {
    std::string text = readFile(ptxPath(GetParam()));
    ASSERT_FALSE(text.empty());
    auto l = loadPtx(text, GetParam(), mem_);
    ASSERT_TRUE(l.error.empty()) << l.error;
    mod_ = std::move(l.mod);
  }
  TestMemory mem_;
  std::unique_ptr<cuda::LoadedModule> mod_;
  std::string msg_;
  std::mt19937 rng_{99};
};

std::vector<uint16_t> randomHalves(std::mt19937& rng, size_t n, bool bf) {
  std::uniform_real_distribution<float> d(-2, 2);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = bf ? floatToBf16(d(rng)) : floatToHalf(d(rng));
  return v;
}

TEST_P(Mma, WmmaF16RowColAccumulate) {
  const int tiles = 3;
  auto a = randomHalves(rng_, 256 * tiles, false), b = randomHalves(rng_, 256 * tiles, false);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> c(256 * tiles);
  for (auto& x : c) x = d(rng_);
  uint64_t da = mem_.upload(a), db = mem_.upload(b), dc = mem_.upload(c);
  ASSERT_EQ(launch(*mod_, "wmmaF16", {tiles}, {32}, Args().add(da).add(db).add(dc).add(tiles), mem_, &msg_),
            CUDA_SUCCESS) << msg_;
  auto out = mem_.download<float>(dc, 256 * tiles);
  for (int t = 0; t < tiles; ++t)
    for (int r = 0; r < 16; ++r)
      for (int col = 0; col < 16; ++col) {
        double acc = c[t * 256 + r * 16 + col];
        for (int k = 0; k < 16; ++k)
          acc += double(halfToFloat(a[t * 256 + r * 16 + k])) * halfToFloat(b[t * 256 + col * 16 + k]);
        // stored column-major
        ASSERT_NEAR(out[t * 256 + col * 16 + r], 2 * acc, 1e-4) << t << " " << r << " " << col;
      }
}

TEST_P(Mma, WmmaBf16FromShared) {
  auto a = randomHalves(rng_, 256, true), b = randomHalves(rng_, 256, true);
  uint64_t da = mem_.upload(a), db = mem_.upload(b), dc = mem_.alloc(256 * 4);
  ASSERT_EQ(launch(*mod_, "wmmaBf16", {1}, {32}, Args().add(da).add(db).add(dc), mem_, &msg_), CUDA_SUCCESS) << msg_;
  auto out = mem_.download<float>(dc, 256);
  for (int r = 0; r < 16; ++r)
    for (int col = 0; col < 16; ++col) {
      double acc = 0.5;
      // A column-major, B row-major
      for (int k = 0; k < 16; ++k) acc += double(bf16ToFloat(a[k * 16 + r])) * bf16ToFloat(b[k * 16 + col]);
      ASSERT_NEAR(out[r * 16 + col], acc, 1e-4) << r << " " << col;
    }
}

TEST_P(Mma, WmmaAccumulatorInSharedWith32BitAddress) {
  auto a = randomHalves(rng_, 256, false), b = randomHalves(rng_, 256, false);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> c(256);
  for (auto& x : c) x = d(rng_);
  std::string text = readFile(ptxPath(GetParam()));
  // the point of the test: the PTX really has a shared wmma.load through a 32-bit register
  ASSERT_TRUE(std::regex_search(text, std::regex(R"(wmma\.load\.c\.[a-z0-9.]*\.shared\.f32\s+\{[^}]*\},\s*\[%r\d+\])")))
      << "nvcc no longer emits wmma.load.c ... .shared with a .u32 address";
  uint64_t da = mem_.upload(a), db = mem_.upload(b), dc = mem_.upload(c), dd = mem_.alloc(256 * 4);
  ASSERT_EQ(launch(*mod_, "wmmaSharedAcc", {1}, {32}, Args().add(da).add(db).add(dc).add(dd), mem_, &msg_),
            CUDA_SUCCESS) << msg_;
  auto out = mem_.download<float>(dd, 256);
  for (int r = 0; r < 16; ++r)
    for (int col = 0; col < 16; ++col) {
      double acc = c[r * 16 + col];
      for (int k = 0; k < 16; ++k) acc += double(halfToFloat(a[r * 16 + k])) * halfToFloat(b[col * 16 + k]);
      ASSERT_NEAR(out[col * 16 + r], acc, 1e-4) << r << " " << col; // stored column-major
    }
}

TEST_P(Mma, MmaSyncM16n8k16) {
  auto a = randomHalves(rng_, 16 * 16, false), b = randomHalves(rng_, 16 * 8, false);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> c(16 * 8);
  for (auto& x : c) x = d(rng_);
  uint64_t da = mem_.upload(a), db = mem_.upload(b), dc = mem_.upload(c), dd = mem_.alloc(16 * 8 * 4);
  ASSERT_EQ(launch(*mod_, "mmaSync", {1}, {32}, Args().add(da).add(db).add(dc).add(dd), mem_, &msg_), CUDA_SUCCESS)
      << msg_;
  auto out = mem_.download<float>(dd, 16 * 8);
  for (int r = 0; r < 16; ++r)
    for (int col = 0; col < 8; ++col) {
      double acc = c[r * 8 + col];
      for (int k = 0; k < 16; ++k) acc += double(halfToFloat(a[r * 16 + k])) * halfToFloat(b[k * 8 + col]);
      ASSERT_NEAR(out[r * 8 + col], acc, 1e-4) << r << " " << col;
    }
}

INSTANTIATE_TEST_SUITE_P(Ptx, Mma, ::testing::Values("mma_sm90.ptx", "mma_sm80.ptx"),
                         [](const auto& info) { return std::string(info.param).substr(4, 4); });

} // namespace
} // namespace tf::ptx::test
