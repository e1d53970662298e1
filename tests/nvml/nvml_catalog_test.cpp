// Walks the whole NVML table (src/cuda/nvml_catalog.inc) against the built libnvidia-ml.so.1:
// every row is exported and answers its documented code; uninitialised, bad handles, NULL
// pointers and short buffers get NVIDIA's errors, in every function, without a crash.
#include <dlfcn.h>
#include <fstream>
#include <gtest/gtest.h>
#include <string>
#include <unistd.h>

#include "tests/nvml/nvml_walker.h"
#include "tests/support/state_dir.h"

namespace tf::nvml {
namespace {

using testing::Variation;
using testing::Walker;

void* library() {
  static void* handle = dlopen(TF_NVML_PATH, RTLD_NOW | RTLD_LOCAL);
  return handle;
}

template <typename Fn> Fn fn(const char* name) { return reinterpret_cast<Fn>(dlsym(library(), name)); }

class NvmlCatalogTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_NE(library(), nullptr) << dlerror();
    ASSERT_FALSE(state_.path().empty());
    setenv("TF_SOFTGPU_DEVICES", "H100:1GiB,2xL4", 1);
    setenv("TF_SOFTGPU_NODE", "nvml-catalog-test", 1);
  }
  nvmlDevice_t init() {
    EXPECT_EQ(fn<nvmlReturn_t (*)()>("nvmlInit_v2")(), NVML_SUCCESS);
    nvmlDevice_t h100 = nullptr;
    EXPECT_EQ(fn<nvmlReturn_t (*)(unsigned, nvmlDevice_t*)>("nvmlDeviceGetHandleByIndex_v2")(0, &h100), NVML_SUCCESS);
    return h100;
  }
  void shutdown() { EXPECT_EQ(fn<nvmlReturn_t (*)()>("nvmlShutdown")(), NVML_SUCCESS); }

  tf::testing::StateDir state_{"nvml-catalog"};
};

TEST_F(NvmlCatalogTest, EveryRowIsExported) {
  for (const Entry& e : catalog()) EXPECT_NE(dlsym(library(), e.name), nullptr) << e.name;
  EXPECT_GE(catalog().size(), 250u);
}

// The peers' view: every NVML function HAMi-core resolves is found.
TEST_F(NvmlCatalogTest, EverythingHamiCoreResolvesIsExported) {
  std::ifstream names(TF_HAMI_NAMES);
  ASSERT_TRUE(names) << TF_HAMI_NAMES;
  int count = 0;
  for (std::string name; std::getline(names, name);) {
    if (name.empty() || name[0] == '#') continue;
    ++count;
    EXPECT_NE(dlsym(library(), name.c_str()), nullptr) << name;
  }
  EXPECT_EQ(count, 244);
}

TEST_F(NvmlCatalogTest, BeforeInitEveryRowIsUninitialised) {
  Walker walker(library(), reinterpret_cast<nvmlDevice_t>(1));
  for (const Entry& e : catalog()) {
    if (e.init == InitRule::Lifecycle) continue;
    nvmlReturn_t want = e.init == InitRule::Init ? NVML_ERROR_UNINITIALIZED : e.expect; // Any: answers anyway
    EXPECT_EQ(walker.call(e), want) << e.name;
  }
}

TEST_F(NvmlCatalogTest, EveryRowAnswersItsDocumentedCode) {
  Walker walker(library(), init());
  int defaults = 0;
  for (const Entry& e : catalog()) {
    if (e.init == InitRule::Lifecycle) continue;
    EXPECT_EQ(walker.call(e), e.expect) << e.name;
    defaults += e.family == Family::Default;
  }
  EXPECT_GT(defaults, 100);
  shutdown();
}

// Calls every row once per argument the predicate picks, with that argument varied, and
// expects NVML_ERROR_INVALID_ARGUMENT; returns how many calls it checked.
template <typename Pick, typename Vary> int expectEachInvalid(Walker& walker, Pick pick, Vary vary) {
  int checked = 0;
  for (const Entry& e : catalog()) {
    if (e.init == InitRule::Lifecycle) continue;
    for (int i = 0; i < e.arity; ++i) {
      if (!pick(e.kinds[i])) continue;
      ++checked;
      EXPECT_EQ(walker.call(e, vary(i)), NVML_ERROR_INVALID_ARGUMENT) << e.name << " argument " << i;
    }
  }
  return checked;
}

TEST_F(NvmlCatalogTest, BadHandlesAreInvalidArguments) {
  Walker walker(library(), init());
  EXPECT_GT(expectEachInvalid(walker, Walker::isHandle, [](int i) { return Variation{.badArg = i}; }), 150);
  shutdown();
}

TEST_F(NvmlCatalogTest, NullPointersAreInvalidArguments) {
  Walker walker(library(), init());
  EXPECT_GT(expectEachInvalid(walker, isRequiredPointer, [](int i) { return Variation{.nullArg = i}; }), 200);
  shutdown();
}

TEST_F(NvmlCatalogTest, ShortBuffersAreInsufficientSize) {
  Walker walker(library(), init());
  int checked = 0;
  for (const Entry& e : catalog()) {
    bool hasBuffer = false;
    for (int i = 0; i < e.arity; ++i) hasBuffer |= e.kinds[i] == Kind::Len;
    if (!hasBuffer || e.expect != NVML_SUCCESS) continue;
    ++checked;
    EXPECT_EQ(walker.call(e, Variation{.shortBuffer = true}), NVML_ERROR_INSUFFICIENT_SIZE) << e.name;
  }
  EXPECT_GE(checked, 8);
  shutdown();
}

} // namespace
} // namespace tf::nvml
