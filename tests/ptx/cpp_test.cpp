// C++ kernels: virtual dispatch (divergent indirect calls), function-pointer tables in
// initialisers, switch statements and CUB block algorithms.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "test_util.h"

namespace tf::ptx::test {
namespace {

class Cpp : public ::testing::TestWithParam<const char*> {
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
};

TEST_P(Cpp, VirtualCallsDivergeByType) {
  uint64_t out = mem_.alloc(96 * 4);
  ASSERT_EQ(launch(*mod_, "virtualCalls", {1}, {96}, Args().add(out), mem_, &msg_), CUDA_SUCCESS) << msg_;
  auto o = mem_.download<int>(out, 96);
  for (int t = 0; t < 96; ++t) ASSERT_EQ(o[t], t % 3 == 0 ? t * t : t % 3 == 1 ? t * t / 2 : 0) << t;
}

TEST_P(Cpp, FunctionPointerTableAndPointerInitialiser) {
  uint64_t out = mem_.alloc(64 * 4);
  for (int sel = 0; sel < 3; ++sel) {
    ASSERT_EQ(launch(*mod_, "functionPointers", {1}, {64}, Args().add(out).add(sel), mem_, &msg_), CUDA_SUCCESS) << msg_;
    auto o = mem_.download<int>(out, 64);
    for (int t = 0; t < 64; ++t) {
      int k = (t + sel) % 3;
      int want = (k == 0 ? t + 3 : k == 1 ? t * 3 : t - 3) + 11;
      ASSERT_EQ(o[t], want) << sel << " " << t;
    }
  }
}

TEST_P(Cpp, SwitchStatement) {
  uint64_t out = mem_.alloc(64 * 4);
  ASSERT_EQ(launch(*mod_, "switchTable", {1}, {64}, Args().add(out).add(4), mem_, &msg_), CUDA_SUCCESS) << msg_;
  auto o = mem_.download<int>(out, 64);
  const int table[9] = {5, 17, 2, 99, -4, 8, 1, 33, 0};
  for (int t = 0; t < 64; ++t) ASSERT_EQ(o[t], table[(t + 4) % 9]) << t;
}

TEST_P(Cpp, CubReduceScanRadixSort) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> d(-100000, 100000);
  std::vector<int> in(512);
  for (auto& v : in) v = d(rng);
  uint64_t di = mem_.upload(in), scan = mem_.alloc(128 * 4), sum = mem_.alloc(4), sorted = mem_.alloc(512 * 4);
  ASSERT_EQ(launch(*mod_, "cubBlock", {1}, {128}, Args().add(di).add(scan).add(sum).add(sorted), mem_, &msg_),
            CUDA_SUCCESS) << msg_;
  auto sc = mem_.download<int>(scan, 128);
  int acc = 0;
  for (int t = 0; t < 128; ++t) {
    ASSERT_EQ(sc[t], acc) << t;
    acc += in[t];
  }
  EXPECT_EQ(mem_.download<int>(sum, 1)[0], acc);
  auto so = mem_.download<int>(sorted, 512);
  // blocked arrangement: the 512 keys come back globally sorted
  std::vector<int> ref = in;
  std::sort(ref.begin(), ref.end());
  EXPECT_EQ(so, ref);
}

INSTANTIATE_TEST_SUITE_P(Ptx, Cpp, ::testing::Values("cpp_sm90.ptx", "cpp_sm80.ptx"),
                         [](const auto& info) { return std::string(info.param).substr(4, 4); });

} // namespace
} // namespace tf::ptx::test
