#include "hypervisor/vgpu.h"

#include <gtest/gtest.h>

namespace tf::hypervisor {
namespace {

using nlohmann::json;

TEST(VgpuRequestTest, MissingRequestDefaultsToTheLimit) {
  auto r = parseVgpuRequest(json{{"vramLimit", "4GiB"}, {"computeLimit", 30}, {"qos", "high"}});
  ASSERT_TRUE(r) << r.status().toString();
  EXPECT_EQ(r->vramRequest, 4ull << 30);
  EXPECT_EQ(r->percentRequest, 30);
  EXPECT_EQ(r->qos, Qos::High);
  EXPECT_EQ(r->isolation, Isolation::Soft);
  auto whole = parseVgpuRequest(json{{"vramRequest", 1024}});
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->percentLimit, 100); // no compute given: the whole device's time
}

TEST(VgpuRequestTest, BadRequestsNameTheField) {
  auto msg = [](const json& j) { return parseVgpuRequest(j).status().message(); };
  EXPECT_NE(msg(json::array()).find("JSON object"), std::string::npos);
  EXPECT_NE(msg(json{{"computeLimit", 30}}).find("vramLimit"), std::string::npos);
  EXPECT_NE(msg(json{{"vramLimit", "lots"}}).find("vramLimit"), std::string::npos);
  EXPECT_NE(msg(json{{"vramLimit", 1}, {"computeLimit", 130}}).find("at most 100"), std::string::npos);
  EXPECT_NE(msg(json{{"vramLimit", 1}, {"computeLimit", 30}, {"tflopsLimit", 10}}).find("not both"),
            std::string::npos);
  EXPECT_NE(msg(json{{"vramLimit", 1}, {"qos", "urgent"}}).find("qos"), std::string::npos);
  EXPECT_NE(msg(json{{"vramLimit", 1}, {"isolation", "strong"}}).find("isolation"), std::string::npos);
  EXPECT_NE(msg(json{{"vramLimit", 1}, {"gpus", 2}}).find("unknown field 'gpus'"), std::string::npos);
  EXPECT_NE(msg(json{{"vramLimit", 1}, {"name", "a b"}}).find("name"), std::string::npos);
  EXPECT_NE(msg(json{{"vramLimit", 1}, {"computeRequest", 50}, {"computeLimit", 20}}).find("more than"),
            std::string::npos);
}

TEST(VgpuRequestTest, RecordsRoundTripThroughJson) {
  Vgpu v;
  v.id = "train";
  v.request = *parseVgpuRequest(json{{"vramLimit", "2GiB"}, {"tflopsLimit", 100}, {"tflopsRequest", 50}});
  v.deviceUuid = "GPU-x";
  v.deviceIndex = 1;
  v.regionPath = "/dev/shm/tf-vgpu-train";
  v.requestBp = 505;
  v.limitBp = 1011;
  v.createdAt = 42;
  auto back = vgpuFromJson(toJson(v));
  ASSERT_TRUE(back) << back.status().toString();
  EXPECT_EQ(back->id, "train");
  EXPECT_EQ(back->request.tflopsLimit, 100);
  EXPECT_EQ(back->request.tflopsRequest, 50);
  EXPECT_EQ(back->limitBp, 1011u);
  EXPECT_EQ(back->deviceIndex, 1);
  EXPECT_FALSE(vgpuFromJson(json{{"id", 3}}));
}

} // namespace
} // namespace tf::hypervisor
