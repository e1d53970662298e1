// VRAM tiers against the soft GPU's driver (dlopen()ed as the worker does): frozen memory is
// free for others and comes back at the same addresses with the same bytes, from host memory
// or from disk; a thaw with no room, or a cold tier that cannot be written, loses nothing; only
// chunks that are not all zero are stored, and a thaw clears the others.
#include "remoting/worker/vram_tiers.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <optional>

#include <gtest/gtest.h>

namespace tf::remoting {
namespace {

namespace fs = std::filesystem;
using cuda::FnId;
using Tier = VramTiers::Tier;
constexpr size_t kMiB = 1u << 20;

class VramTiersTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    // One 64 MiB device, this process's own (tests run as processes side by side).
    state_ = fs::temp_directory_path() / ("tf-vram-tiers-" + std::to_string(getpid()));
    fs::create_directories(state_ / "cold");
    fs::create_directories(state_ / "softgpu");
    setenv("TF_SOFTGPU_DEVICES", "H100:64MiB", 1);
    setenv("TF_SOFTGPU_STATE_DIR", (state_ / "softgpu").c_str(), 1);
    auto api = DriverApi::load(TF_SOFTGPU_LIB);
    ASSERT_TRUE(api) << api.status().toString();
    api_ = api->release();
    ASSERT_EQ(fn<decltype(&::cuInit)>(FnId::cuInit)(0), CUDA_SUCCESS);
    CUcontext ctx = nullptr;
    ASSERT_EQ(fn<decltype(&::cuDevicePrimaryCtxRetain)>(FnId::cuDevicePrimaryCtxRetain)(&ctx, 0), CUDA_SUCCESS);
    ASSERT_EQ(fn<decltype(&::cuCtxSetCurrent)>(FnId::cuCtxSetCurrent)(ctx), CUDA_SUCCESS);
    ready_ = true;
  }
  // gtest turns a failed SetUpTestSuite into skipped tests; a test that did not run must fail.
  void SetUp() override { ASSERT_TRUE(ready_) << "the soft GPU did not start (see above)"; }
  static void TearDownTestSuite() { fs::remove_all(state_); }

  template <typename F> static F fn(FnId id) { return api_->fn<F>(id); }
  static size_t freeBytes() {
    size_t free = 0, total = 0;
    EXPECT_EQ(fn<decltype(&::cuMemGetInfo_v2)>(FnId::cuMemGetInfo_v2)(&free, &total), CUDA_SUCCESS);
    return free;
  }
  static std::vector<uint32_t> pattern(size_t bytes, uint32_t seed) {
    std::vector<uint32_t> v(bytes / 4);
    std::iota(v.begin(), v.end(), seed);
    return v;
  }
  static void put(CUdeviceptr p, const std::vector<uint32_t>& v) {
    ASSERT_EQ(fn<decltype(&::cuMemcpyHtoD_v2)>(FnId::cuMemcpyHtoD_v2)(p, v.data(), v.size() * 4), CUDA_SUCCESS);
  }
  static std::vector<uint32_t> get(CUdeviceptr p, size_t bytes) {
    std::vector<uint32_t> v(bytes / 4);
    EXPECT_EQ(fn<decltype(&::cuMemcpyDtoH_v2)>(FnId::cuMemcpyDtoH_v2)(v.data(), p, bytes), CUDA_SUCCESS);
    return v;
  }
  VramTiers::Options options() const { return {(state_ / "cold").string(), 3 * kMiB}; }

  static inline DriverApi* api_ = nullptr;
  static inline bool ready_ = false;
  static inline fs::path state_;
};

TEST_F(VramTiersTest, FrozenMemoryIsFreeForOthersAndComesBackAtTheSameAddress) {
  const size_t before = freeBytes();
  VramTiers tiers(*api_, 0, options());
  auto p = tiers.allocate(40 * kMiB);
  ASSERT_TRUE(p) << p.status().toString();
  const auto bytes = pattern(40 * kMiB, 7);
  put(*p, bytes);
  EXPECT_EQ(freeBytes(), before - 40 * kMiB);

  ASSERT_TRUE(tiers.freeze(Tier::Warm));
  EXPECT_EQ(tiers.find(*p)->tier, Tier::Warm);
  EXPECT_EQ(tiers.usage().warmBytes, 40 * kMiB);
  EXPECT_EQ(tiers.usage().hotBytes, 0u);
  EXPECT_EQ(freeBytes(), before) << "the device memory went back";

  // Another vGPU takes it (40 + 40 MiB would not fit in 64): the thaw must wait, losing nothing.
  CUdeviceptr other = 0;
  ASSERT_EQ(fn<decltype(&::cuMemAlloc_v2)>(FnId::cuMemAlloc_v2)(&other, 40 * kMiB), CUDA_SUCCESS);
  Status refused = tiers.thaw();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.code(), Code::ResourceExhausted) << refused.toString();
  EXPECT_EQ(tiers.find(*p)->tier, Tier::Warm);
  ASSERT_EQ(fn<decltype(&::cuMemFree_v2)>(FnId::cuMemFree_v2)(other), CUDA_SUCCESS);

  ASSERT_TRUE(tiers.thaw());
  EXPECT_FALSE(tiers.frozen());
  EXPECT_EQ(get(*p, 40 * kMiB), bytes) << "same address, same bytes";
  const auto u = tiers.usage();
  EXPECT_EQ(u.hotBytes, 40 * kMiB);
  EXPECT_EQ(u.warmBytes, 0u);
  EXPECT_EQ(u.freezes, 1u);
  EXPECT_EQ(u.thaws, 1u);
  ASSERT_TRUE(tiers.free(*p));
  EXPECT_EQ(freeBytes(), before);
}

TEST_F(VramTiersTest, ColdContentsComeBackFromDisk) {
  VramTiers tiers(*api_, 0, options());
  auto a = tiers.allocate(10 * kMiB);  // straight to cold, in 3 MiB pieces
  auto b = tiers.allocate(6 * kMiB);   // warm first, then spilled
  ASSERT_TRUE(a && b);
  const auto bytesA = pattern(10 * kMiB, 1), bytesB = pattern(6 * kMiB, 99);
  put(*a, bytesA);
  put(*b, bytesB);
  ASSERT_TRUE(tiers.freeze(Tier::Warm));
  ASSERT_TRUE(tiers.freeze(Tier::Cold));
  EXPECT_EQ(tiers.usage().coldBytes, 16 * kMiB);
  EXPECT_EQ(tiers.usage().warmBytes, 0u);
  ASSERT_TRUE(tiers.thaw());
  EXPECT_EQ(get(*a, 10 * kMiB), bytesA);
  EXPECT_EQ(get(*b, 6 * kMiB), bytesB);
  // Freed cold space is used again: a second round does not grow the file past both.
  ASSERT_TRUE(tiers.freeze(Tier::Cold));
  ASSERT_TRUE(tiers.thaw());
  EXPECT_EQ(get(*a, 10 * kMiB), bytesA);
  EXPECT_EQ(tiers.usage().freezes, 4u);
  EXPECT_EQ(tiers.usage().thaws, 4u);
}

TEST_F(VramTiersTest, SizesRoundToTheGranularityAndAddressesInsideAreFound) {
  VramTiers tiers(*api_, 0, options());
  auto p = tiers.allocate(1);
  ASSERT_TRUE(p);
  auto r = tiers.find(*p + 100);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->base, *p);
  EXPECT_EQ(r->size, 2 * kMiB);
  EXPECT_FALSE(tiers.find(*p + 2 * kMiB));
  EXPECT_FALSE(tiers.find(*p - 1));
}

TEST_F(VramTiersTest, BadRequestsAreRefusedAndLoseNothing) {
  const size_t before = freeBytes();
  {
    VramTiers tiers(*api_, 0, options());
    EXPECT_EQ(tiers.allocate(0).status().code(), Code::InvalidArgument);
    EXPECT_EQ(tiers.allocate(1ull << 40).status().code(), Code::ResourceExhausted);
    auto p = tiers.allocate(4 * kMiB);
    ASSERT_TRUE(p);
    EXPECT_EQ(tiers.free(*p + 4096).code(), Code::InvalidArgument) << "not the start of an allocation";
    EXPECT_EQ(tiers.freeze(Tier::Hot).code(), Code::InvalidArgument);
    const auto bytes = pattern(4 * kMiB, 5);
    put(*p, bytes);
    // Frozen and left frozen: the destructor gives everything back.
    ASSERT_TRUE(tiers.freeze(Tier::Cold));
    auto q = tiers.allocate(2 * kMiB);
    ASSERT_TRUE(q);
    ASSERT_TRUE(tiers.freeze(Tier::Warm));
  }
  EXPECT_EQ(freeBytes(), before);
  // A cold tier that cannot be written: the freeze fails and the memory stays hot and whole.
  VramTiers tiers(*api_, 0, {(state_ / "no-such-dir").string(), kMiB});
  auto p = tiers.allocate(2 * kMiB);
  ASSERT_TRUE(p);
  const auto bytes = pattern(2 * kMiB, 3);
  put(*p, bytes);
  Status s = tiers.freeze(Tier::Cold);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("no-such-dir"), std::string::npos) << s.toString();
  EXPECT_EQ(tiers.find(*p)->tier, Tier::Hot);
  EXPECT_EQ(get(*p, 2 * kMiB), bytes);
}

// NVIDIA's driver gives new device memory whatever it held before: while one of these lives,
// memory the soft GPU maps gets garbage as it becomes accessible, so a thaw that left a chunk
// it did not store uncleared would show it.
class GarbageInNewMemory {
public:
  explicit GarbageInNewMemory(DriverApi* api) : api_(api) {
    real_ = api->fn<SetAccess>(FnId::cuMemSetAccess);
    memset_ = api->fn<decltype(&::cuMemsetD8_v2)>(FnId::cuMemsetD8_v2);
    api->setForTest(FnId::cuMemSetAccess, reinterpret_cast<void*>(&setAccess));
  }
  ~GarbageInNewMemory() { api_->setForTest(FnId::cuMemSetAccess, reinterpret_cast<void*>(real_)); }

private:
  using SetAccess = decltype(&::cuMemSetAccess);
  static CUresult setAccess(CUdeviceptr p, size_t n, const CUmemAccessDesc* d, size_t count) {
    CUresult r = real_(p, n, d, count);
    return r == CUDA_SUCCESS ? memset_(p, 0xEE, n) : r;
  }
  DriverApi* api_;
  static inline SetAccess real_ = nullptr;
  static inline decltype(&::cuMemsetD8_v2) memset_ = nullptr;
};

// A driver whose device memory is no file with holes (as NVIDIA's): a freeze reads all of it.
class NoDescriptorOfDeviceMemory {
public:
  explicit NoDescriptorOfDeviceMemory(DriverApi* api) : api_(api) {
    real_ = api->raw(static_cast<uint32_t>(FnId::cuMemExportToShareableHandle));
    api->setForTest(FnId::cuMemExportToShareableHandle, reinterpret_cast<void*>(&refuse));
  }
  ~NoDescriptorOfDeviceMemory() { api_->setForTest(FnId::cuMemExportToShareableHandle, real_); }

private:
  static CUresult refuse(void*, CUmemGenericAllocationHandle, CUmemAllocationHandleType, unsigned long long) {
    return CUDA_ERROR_NOT_SUPPORTED;
  }
  DriverApi* api_;
  void* real_;
};

class SparseFreezeTest : public VramTiersTest, public ::testing::WithParamInterface<bool> {};
INSTANTIATE_TEST_SUITE_P(HolesFoundOrEveryByteRead, SparseFreezeTest, ::testing::Bool());

TEST_P(SparseFreezeTest, FreezesStoreOnlyChunksThatAreNotAllZeroAndThawsClearTheRest) {
  std::optional<NoDescriptorOfDeviceMemory> readEveryByte;
  if (!GetParam()) readEveryByte.emplace(api_);
  VramTiers tiers(*api_, 0, options());  // 64 KiB chunks, 3 MiB of staging
  constexpr size_t kSize = 16 * kMiB, kChunk = 64 << 10;
  auto p = tiers.allocate(kSize);
  ASSERT_TRUE(p);
  std::vector<uint32_t> expected(kSize / 4, 0);
  // A word at the start, 4 KiB inside one chunk, 16 bytes across the first staging boundary
  // (two chunks, one extent), and the last word: 5 chunks.
  const auto write = [&](size_t offset, const std::vector<uint32_t>& words) {
    put(*p + offset, words);
    std::copy(words.begin(), words.end(), expected.begin() + static_cast<long>(offset / 4));
  };
  write(0, {0xa1});
  write(5 * kMiB + 128, pattern(4096, 11));
  write(3 * kMiB - 8, {1, 2, 3, 4});
  write(kSize - 4, {0xa2});
  const auto thawAndCheck = [&](const char* from) {
    std::vector<uint32_t> read(kSize / 4, 0xEEEEEEEE);  // what a migration reads, frozen
    ASSERT_TRUE(tiers.read(*p, 0, read.data(), kSize));
    EXPECT_TRUE(read == expected) << "read from " << from;
    GarbageInNewMemory garbage(api_);
    ASSERT_TRUE(tiers.thaw()) << from;
    EXPECT_TRUE(get(*p, kSize) == expected) << "back from " << from << ": the written bytes, zero elsewhere";
  };

  ASSERT_TRUE(tiers.freeze(Tier::Warm));
  EXPECT_EQ(tiers.usage().warmBytes, kSize) << "what the vGPU holds";
  EXPECT_EQ(tiers.usage().warmStoredBytes, 5 * kChunk) << "what it takes";
  thawAndCheck("host memory");
  ASSERT_TRUE(tiers.freeze(Tier::Cold));
  EXPECT_EQ(tiers.usage().coldBytes, kSize);
  EXPECT_EQ(tiers.usage().coldStoredBytes, 5 * kChunk);
  thawAndCheck("disk");
  ASSERT_TRUE(tiers.freeze(Tier::Warm));
  ASSERT_TRUE(tiers.freeze(Tier::Cold));  // spilled: the stored chunks only
  EXPECT_EQ(tiers.usage().coldStoredBytes, 5 * kChunk);
  thawAndCheck("host memory, then disk");

  // Memory never written stores nothing at all; dense memory stores all of it.
  auto empty = tiers.allocate(4 * kMiB);
  auto full = tiers.allocate(2 * kMiB);
  ASSERT_TRUE(empty && full);
  const auto dense = pattern(2 * kMiB, 1);
  put(*full, dense);
  ASSERT_TRUE(tiers.free(*p));
  ASSERT_TRUE(tiers.freeze(Tier::Warm));
  EXPECT_EQ(tiers.usage().warmBytes, 6 * kMiB);
  EXPECT_EQ(tiers.usage().warmStoredBytes, 2 * kMiB);
  {
    GarbageInNewMemory garbage(api_);
    ASSERT_TRUE(tiers.thaw());
  }
  EXPECT_TRUE(get(*empty, 4 * kMiB) == std::vector<uint32_t>(kMiB, 0));
  EXPECT_TRUE(get(*full, 2 * kMiB) == dense);
}

TEST_F(VramTiersTest, ChunkSizesAreAPowerOfTwoFrom4KiBTo2MiB) {
  for (auto [asked, chunk] : {std::pair<size_t, size_t>{1, 4096}, {5000, 8192}, {64 << 10, 64 << 10}, {1ull << 30, 2 * kMiB}}) {
    VramTiers tiers(*api_, 0, {(state_ / "cold").string(), 3 * kMiB, asked});
    auto p = tiers.allocate(4 * kMiB);
    ASSERT_TRUE(p);
    put(*p + 3 * kMiB, {7});
    ASSERT_TRUE(tiers.freeze(Tier::Warm));
    EXPECT_EQ(tiers.usage().warmStoredBytes, chunk) << "asked " << asked;
    ASSERT_TRUE(tiers.thaw());
    EXPECT_EQ(get(*p + 3 * kMiB, 4), std::vector<uint32_t>{7});
  }
}

}  // namespace
}  // namespace tf::remoting
