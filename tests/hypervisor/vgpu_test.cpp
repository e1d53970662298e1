#include "hypervisor/vgpu.h"
#include "hypervisor/hypervisor.h"

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
  v.devices = {DeviceGrant{1, "GPU-x", 505, 1011}, DeviceGrant{3, "GPU-y", 505, 1011}};
  v.regionPath = "/dev/shm/tf-vgpu-train";
  v.createdAt = 42;
  auto back = vgpuFromJson(toJson(v));
  ASSERT_TRUE(back) << back.status().toString();
  EXPECT_EQ(back->id, "train");
  EXPECT_EQ(back->request.tflopsLimit, 100);
  EXPECT_EQ(back->request.tflopsRequest, 50);
  ASSERT_EQ(back->devices.size(), 2u);
  EXPECT_EQ(back->devices[0].limitBp, 1011u);
  EXPECT_EQ(back->devices[0].deviceIndex, 1);
  EXPECT_EQ(back->devices[1].deviceUuid, "GPU-y");
  EXPECT_EQ(back->devices[1].requestBp, 505u);
  EXPECT_FALSE(vgpuFromJson(json{{"id", 3}}));
  // A record of a one-device version (no "devices") still reads.
  json old = toJson(v);
  old.erase("devices");
  auto one = vgpuFromJson(old);
  ASSERT_TRUE(one) << one.status().toString();
  ASSERT_EQ(one->devices.size(), 1u);
  EXPECT_EQ(one->devices[0].deviceUuid, "GPU-x");
  EXPECT_EQ(one->devices[0].limitBp, 1011u);
}

TEST(VgpuRequestTest, DevicesAndCountAreValidated) {
  auto r = parseVgpuRequest(json{{"vramLimit", "1GiB"}, {"count", 2}});
  ASSERT_TRUE(r) << r.status().toString();
  EXPECT_EQ(r->count, 2);
  auto pinned = parseVgpuRequest(json{{"vramLimit", "1GiB"}, {"devices", {"GPU-a", "GPU-b"}}});
  ASSERT_TRUE(pinned) << pinned.status().toString();
  EXPECT_EQ(pinned->count, 2);
  EXPECT_EQ(pinned->devices, (std::vector<std::string>{"GPU-a", "GPU-b"}));
  auto back = parseVgpuRequest(toJson(*pinned));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->devices, pinned->devices);
  auto refused = [](const json& body, const std::string& says) {
    auto x = parseVgpuRequest(body);
    ASSERT_FALSE(x) << body.dump();
    EXPECT_NE(x.status().message().find(says), std::string::npos) << x.status().message();
  };
  refused(json{{"vramLimit", "1GiB"}, {"count", 0}}, "count must be");
  refused(json{{"vramLimit", "1GiB"}, {"count", 9}}, "count must be");
  refused(json{{"vramLimit", "1GiB"}, {"count", "2"}}, "count must be");
  refused(json{{"vramLimit", "1GiB"}, {"devices", json::array()}}, "non-empty list");
  refused(json{{"vramLimit", "1GiB"}, {"devices", {1, 2}}}, "UUID strings");
  refused(json{{"vramLimit", "1GiB"}, {"device", "GPU-a"}, {"devices", {"GPU-b"}}}, "not both");
  refused(json{{"vramLimit", "1GiB"}, {"devices", {"GPU-a"}}, {"count", 2}}, "count is 2 but 1 devices");
}

// Where a move of a vGPU of two devices goes: one GPU per device, by index or UUID, in its
// devices' order; refused with the reason otherwise.
TEST(MoveTargetsTest, OneGpuPerDeviceInOrder) {
  std::vector<GpuDevice> node(4);
  for (int i = 0; i < 4; ++i) node[i].uuid = "GPU-" + std::to_string(i), node[i].index = i;
  Vgpu v;
  v.id = "pair";
  v.devices = {{0, "GPU-0", 0, 0}, {1, "GPU-1", 0, 0}};
  auto to = resolveMoveTargets(v, "3,GPU-2", node);
  ASSERT_TRUE(to) << to.status().toString();
  EXPECT_EQ(*to, (std::vector<std::string>{"GPU-3", "GPU-2"}));
  to = resolveMoveTargets(v, "1,2", node);  // some may be where it is already
  ASSERT_TRUE(to) << to.status().toString();
  EXPECT_EQ(*to, (std::vector<std::string>{"GPU-1", "GPU-2"}));
  auto refused = [&](const std::string& where, Code code, const std::string& says) {
    auto r = resolveMoveTargets(v, where, node);
    ASSERT_FALSE(r) << where;
    EXPECT_EQ(r.status().code(), code) << where;
    EXPECT_NE(r.status().message().find(says), std::string::npos) << r.status().message();
  };
  refused("2", Code::InvalidArgument, "spans 2 device(s)");
  refused("1,2,3", Code::InvalidArgument, "spans 2 device(s)");
  refused("2,GPU-2", Code::InvalidArgument, "named twice");
  refused("2,4", Code::NotFound, "no device '4'");
  refused("2,", Code::NotFound, "no device ''");
  refused("2,-1", Code::NotFound, "no device '-1'");
  refused("1,0", Code::InvalidArgument, "already");
  refused("GPU-0,1", Code::InvalidArgument, "already");
}

} // namespace
} // namespace tf::hypervisor
