#include "softgpu/device_model.h"

#include <cstdio>
#include <cstdlib>
#include <gtest/gtest.h>
#include <regex>
#include <set>
#include <unistd.h>

#include "common/units.h"

namespace tf::softgpu {
namespace {

using units::GiB;
using units::MiB;

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(DeviceModelTest, TableHasTheFourModels) {
  ASSERT_EQ(knownModels().size(), 4u);
  const DeviceModel* h100 = findModel("H100");
  ASSERT_NE(h100, nullptr);
  EXPECT_STREQ(h100->name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(h100->smCount, 132);
  EXPECT_EQ(h100->ccMajor * 10 + h100->ccMinor, 90);
  EXPECT_EQ(h100->memoryBytes, 80 * GiB);
  EXPECT_EQ(h100->sharedPerBlockOptin, 232448);
  EXPECT_EQ(h100->pciDeviceId, 0x233010DEu);
  const DeviceModel* l4 = findModel("L4");
  ASSERT_NE(l4, nullptr);
  EXPECT_EQ(l4->memoryBytes, 23034 * MiB);
  EXPECT_EQ(l4->maxThreadsPerSm, 1536);
  EXPECT_EQ(l4->ccMinor, 9);
  EXPECT_STREQ(findModel("T4")->name, "Tesla T4");
  EXPECT_EQ(findModel("A100-40GB")->smCount, 108);
}

TEST(DeviceModelTest, AliasesAreCaseInsensitive) {
  EXPECT_STREQ(findModel("h100")->key, "H100");
  EXPECT_STREQ(findModel("H100-SXM-80GB")->key, "H100");
  EXPECT_STREQ(findModel("NVIDIA H100 80GB HBM3")->key, "H100");
  EXPECT_STREQ(findModel("a100")->key, "A100-40GB");
  EXPECT_STREQ(findModel("A100_SXM4_40GB")->key, "A100-40GB");
  EXPECT_STREQ(findModel("nvidia l4")->key, "L4");
  EXPECT_STREQ(findModel("Tesla-T4")->key, "T4");
  EXPECT_EQ(findModel("H200"), nullptr);
  EXPECT_EQ(findModel(""), nullptr);
}

TEST(DeviceSpecTest, GoodSpecs) {
  auto two = parseDeviceSpec("H100,A100-40GB", "n");
  ASSERT_TRUE(two) << two.status().toString();
  ASSERT_EQ(two->devices.size(), 2u);
  EXPECT_STREQ(two->devices[0].model->key, "H100");
  EXPECT_STREQ(two->devices[1].model->key, "A100-40GB");
  EXPECT_EQ(two->devices[1].index, 1);
  EXPECT_EQ(two->devices[1].memoryBytes, 40 * GiB);

  auto l4s = parseDeviceSpec("2xL4", "n");
  ASSERT_TRUE(l4s);
  ASSERT_EQ(l4s->devices.size(), 2u);
  EXPECT_STREQ(l4s->devices[1].model->name, "NVIDIA L4");

  auto small = parseDeviceSpec("H100:16GiB", "n");
  ASSERT_TRUE(small);
  EXPECT_EQ(small->devices[0].memoryBytes, 16 * GiB);

  auto mixed = parseDeviceSpec(" 2XT4:8GiB , l4 ", "n");
  ASSERT_TRUE(mixed) << mixed.status().toString();
  ASSERT_EQ(mixed->devices.size(), 3u);
  EXPECT_EQ(mixed->devices[0].memoryBytes, 8 * GiB);
  EXPECT_EQ(mixed->devices[1].memoryBytes, 8 * GiB);
  EXPECT_EQ(mixed->devices[2].memoryBytes, 23034 * MiB);
  EXPECT_EQ(mixed->devices[2].index, 2);
}

TEST(DeviceSpecTest, BadSpecsNameTheToken) {
  auto unknown = parseDeviceSpec("H100,H200", "n");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.status().code(), Code::InvalidArgument);
  EXPECT_TRUE(contains(unknown.status().message(), "'H200'"));
  EXPECT_TRUE(contains(unknown.status().message(), "known models: H100, A100-40GB, L4, T4"));

  auto size = parseDeviceSpec("H100:lots", "n");
  ASSERT_FALSE(size);
  EXPECT_TRUE(contains(size.status().message(), "H100:lots"));

  for (const char* bad : {"", " ", "H100,,L4", "H100,", "0xL4", "H100:0", "65xL4", "1000xL4", "x", ":8GiB"}) {
    auto r = parseDeviceSpec(bad, "n");
    EXPECT_FALSE(r) << "accepted '" << bad << "'";
  }
}

TEST(DeviceSpecTest, UuidsAreDeterministicAndDistinct) {
  std::regex format("^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$");
  auto a = parseDeviceSpec("4xH100", "node-a");
  auto again = parseDeviceSpec("4xH100", "node-a");
  auto b = parseDeviceSpec("4xH100", "node-b");
  auto other = parseDeviceSpec("4xL4", "node-a");
  ASSERT_TRUE(a && again && b && other);
  std::set<std::string> seen;
  std::set<int> buses;
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(std::regex_match(a->devices[i].uuidString, format)) << a->devices[i].uuidString;
    EXPECT_EQ(a->devices[i].uuidString, again->devices[i].uuidString);
    EXPECT_EQ(a->devices[i].uuid, again->devices[i].uuid);
    seen.insert(a->devices[i].uuidString);
    seen.insert(b->devices[i].uuidString);
    seen.insert(other->devices[i].uuidString);
    buses.insert(a->devices[i].pciBus);
  }
  EXPECT_EQ(seen.size(), 12u);
  EXPECT_EQ(buses.size(), 4u);
  // The string is the bytes.
  char first[9];
  snprintf(first, sizeof first, "%02x%02x%02x%02x", a->devices[0].uuid[0], a->devices[0].uuid[1],
           a->devices[0].uuid[2], a->devices[0].uuid[3]);
  EXPECT_EQ(a->devices[0].uuidString.substr(4, 8), first);
  // The memory override does not change the identity.
  auto smaller = parseDeviceSpec("H100:1GiB", "node-a");
  EXPECT_EQ(smaller->devices[0].uuidString, a->devices[0].uuidString);
}

class LoadConfigTest : public ::testing::Test {
protected:
  void SetUp() override {
    for (const char* v : {"TF_SOFTGPU_CONFIG", "TF_SOFTGPU_DEVICES", "TF_SOFTGPU_NODE"}) unsetenv(v);
  }
  void TearDown() override {
    SetUp();
    if (!file_.empty()) unlink(file_.c_str());
  }
  std::string writeFile(const std::string& text) {
    char path[] = "/tmp/tf-softgpu-config-XXXXXX";
    int fd = mkstemp(path);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, text.data(), text.size()), ssize_t(text.size()));
    close(fd);
    return file_ = path;
  }
  std::string file_;
};

TEST_F(LoadConfigTest, DefaultIsOneH100OnThisHost) {
  auto cfg = loadConfig();
  ASSERT_TRUE(cfg);
  ASSERT_EQ(cfg->devices.size(), 1u);
  EXPECT_STREQ(cfg->devices[0].model->key, "H100");
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  EXPECT_EQ(cfg->node, host);
}

TEST_F(LoadConfigTest, DevicesAndNodeFromEnvironment) {
  setenv("TF_SOFTGPU_DEVICES", "2xL4", 1);
  setenv("TF_SOFTGPU_NODE", "node-x", 1);
  auto cfg = loadConfig();
  ASSERT_TRUE(cfg);
  EXPECT_EQ(cfg->node, "node-x");
  ASSERT_EQ(cfg->devices.size(), 2u);
  EXPECT_EQ(cfg->devices[1].uuidString, parseDeviceSpec("2xL4", "node-x")->devices[1].uuidString);

  setenv("TF_SOFTGPU_DEVICES", "2xB200", 1);
  auto bad = loadConfig();
  ASSERT_FALSE(bad);
  EXPECT_TRUE(contains(bad.status().message(), "TF_SOFTGPU_DEVICES"));
  EXPECT_TRUE(contains(bad.status().message(), "B200"));
}

TEST_F(LoadConfigTest, JsonFileWinsOverDevices) {
  setenv("TF_SOFTGPU_DEVICES", "2xL4", 1);
  setenv("TF_SOFTGPU_CONFIG",
         writeFile(R"({"node":"node-a","devices":[{"model":"T4","memory":"8GiB"},
                     {"model":"h100","count":2},{"model":"L4","memory":1048576}]})").c_str(), 1);
  auto cfg = loadConfig();
  ASSERT_TRUE(cfg) << cfg.status().toString();
  EXPECT_EQ(cfg->node, "node-a");
  ASSERT_EQ(cfg->devices.size(), 4u);
  EXPECT_STREQ(cfg->devices[0].model->key, "T4");
  EXPECT_EQ(cfg->devices[0].memoryBytes, 8 * GiB);
  EXPECT_STREQ(cfg->devices[2].model->key, "H100");
  EXPECT_EQ(cfg->devices[3].memoryBytes, 1048576u);
  EXPECT_EQ(cfg->devices[3].index, 3);
}

TEST_F(LoadConfigTest, BadJsonIsAClearError) {
  for (const char* text : {"{not json", R"({"devices":[{"model":"X100"}]})", R"({"devices":[{"memory":"1GiB"}]})",
                           R"({"devices":[{"model":"T4","memory":"huge"}]})", R"({"devices":[]})",
                           R"({"devices":[{"model":"T4","count":0}]})", R"({"node":5})"}) {
    std::string path = writeFile(text);
    setenv("TF_SOFTGPU_CONFIG", path.c_str(), 1);
    auto cfg = loadConfig();
    ASSERT_FALSE(cfg) << text;
    EXPECT_TRUE(contains(cfg.status().message(), path)) << cfg.status().toString();
    unlink(path.c_str());
  }
  setenv("TF_SOFTGPU_CONFIG", "/nonexistent/softgpu.json", 1);
  auto missing = loadConfig();
  ASSERT_FALSE(missing);
  EXPECT_TRUE(contains(missing.status().message(), "/nonexistent/softgpu.json"));
}

} // namespace
} // namespace tf::softgpu
