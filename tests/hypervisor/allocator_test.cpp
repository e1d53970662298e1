#include "hypervisor/allocator.h"

#include <gtest/gtest.h>

namespace tf::hypervisor {
namespace {

GpuDevice device(int index, const std::string& uuid, uint64_t memory, double tflops) {
  GpuDevice d;
  d.index = index;
  d.uuid = uuid;
  d.name = "test gpu";
  d.memoryTotal = memory;
  d.fp16Tflops = tflops;
  return d;
}

VgpuRequest request(uint64_t vram, double percent) {
  VgpuRequest r;
  r.vramRequest = r.vramLimit = vram;
  r.percentRequest = r.percentLimit = percent;
  return r;
}

Vgpu granted(const std::string& uuid, uint64_t vram, uint32_t bp) {
  Vgpu v;
  v.request = request(vram, bp / 100.0);
  v.devices = {DeviceGrant{0, uuid, bp, bp}};
  return v;
}

constexpr uint64_t GiB = 1ull << 30;

TEST(AllocatorTest, LowLoadFirst) {
  std::vector<GpuDevice> devs = {device(0, "A", 80 * GiB, 989), device(1, "B", 80 * GiB, 989)};
  std::vector<Vgpu> existing = {granted("A", 40 * GiB, 5000)};
  auto p = place(request(10 * GiB, 30), devs, existing, {});
  ASSERT_TRUE(p) << p.status().toString();
  ASSERT_EQ(p->size(), 1u);
  EXPECT_EQ(p->front().deviceUuid, "B");
  EXPECT_EQ(p->front().requestBp, 3000u);
}

// gpu-count: the devices with the most room, each fitting the whole per-device request; a
// refusal says how many fit and why the others do not.
TEST(AllocatorTest, SeveralDevicesTakeTheLeastLoadedAndAllMustFit) {
  std::vector<GpuDevice> devs = {device(0, "A", 80 * GiB, 989), device(1, "B", 80 * GiB, 989),
                                 device(2, "C", 80 * GiB, 989)};
  std::vector<Vgpu> existing = {granted("B", 70 * GiB, 5000)};
  VgpuRequest r = request(20 * GiB, 30);
  r.count = 2;
  auto p = place(r, devs, existing, {});
  ASSERT_TRUE(p) << p.status().toString();
  ASSERT_EQ(p->size(), 2u);
  EXPECT_EQ((*p)[0].deviceUuid, "A");
  EXPECT_EQ((*p)[1].deviceUuid, "C");
  r.count = 3;
  auto three = place(r, devs, existing, {});
  ASSERT_FALSE(three);
  EXPECT_EQ(three.status().code(), Code::ResourceExhausted);
  EXPECT_NE(three.status().message().find("needs 3 GPUs and fits on 2"), std::string::npos) << three.status().message();
  EXPECT_NE(three.status().message().find("B (test gpu): 20 GiB VRAM requested, 10 GiB free"), std::string::npos)
      << three.status().message();
  r.count = 9;
  EXPECT_EQ(place(r, devs, {}, {}).status().code(), Code::InvalidArgument);
  // Pinned: exactly those, in the order named; a device named twice or unknown is refused.
  r.count = 1;
  r.devices = {"C", "A"};
  auto pinned = place(r, devs, existing, {});
  ASSERT_TRUE(pinned) << pinned.status().toString();
  ASSERT_EQ(pinned->size(), 2u);
  EXPECT_EQ((*pinned)[0].deviceUuid, "C");
  EXPECT_EQ((*pinned)[1].deviceUuid, "A");
  r.devices = {"A", "B"};
  EXPECT_EQ(place(r, devs, existing, {}).status().code(), Code::ResourceExhausted);
  r.devices = {"A", "A"};
  EXPECT_EQ(place(r, devs, existing, {}).status().code(), Code::InvalidArgument);
  r.devices = {"A", "Z"};
  EXPECT_EQ(place(r, devs, existing, {}).status().code(), Code::NotFound);
}

TEST(AllocatorTest, RefusalSaysWhy) {
  std::vector<GpuDevice> devs = {device(0, "A", 16 * GiB, 65)};
  std::vector<Vgpu> existing = {granted("A", 10 * GiB, 8000)};
  auto vram = place(request(8 * GiB, 10), devs, existing, {});
  ASSERT_FALSE(vram);
  EXPECT_EQ(vram.status().code(), Code::ResourceExhausted);
  EXPECT_NE(vram.status().message().find("8 GiB VRAM requested, 6 GiB free"), std::string::npos)
      << vram.status().message();
  auto compute = place(request(1 * GiB, 30), devs, existing, {});
  ASSERT_FALSE(compute);
  EXPECT_NE(compute.status().message().find("30.0% compute requested, 20.0% free"), std::string::npos)
      << compute.status().message();
  EXPECT_EQ(place(request(GiB, 1), {}, {}, {}).status().code(), Code::NotFound);
}

TEST(AllocatorTest, OversubscriptionRatiosWidenCapacity) {
  std::vector<GpuDevice> devs = {device(0, "A", 16 * GiB, 65)};
  std::vector<Vgpu> existing = {granted("A", 12 * GiB, 9000)};
  EXPECT_FALSE(place(request(8 * GiB, 50), devs, existing, {}));
  Oversubscription o;
  o.tflopsOversell = 2.0;
  o.vramExpandToHost = 0.5; // up to 24 GiB of requests
  // ...for vGPUs whose memory can leave the device (a worker's tiers); a soft vGPU's cannot.
  auto soft = place(request(8 * GiB, 50), devs, existing, o);
  ASSERT_FALSE(soft);
  EXPECT_NE(soft.status().message().find("8 GiB VRAM requested by a soft vGPU, 4 GiB of device memory left to soft vGPUs"),
            std::string::npos) << soft.status().message();
  VgpuRequest hard = request(8 * GiB, 50);
  hard.isolation = Isolation::Hard;
  EXPECT_TRUE(place(hard, devs, existing, o));
  EXPECT_TRUE(place(request(4 * GiB, 50), devs, existing, o)) << "soft ones up to the device's memory";
}

// The cluster's scheduler placed it with the pool's ratios: the node's own capacity view does
// not refuse it, but a limit past the device still is.
TEST(AllocatorTest, ScheduledRequestsSkipCapacityButNotTheDevicesBounds) {
  std::vector<GpuDevice> devs = {device(0, "A", 16 * GiB, 65), device(1, "B", 16 * GiB, 65)};
  std::vector<Vgpu> existing = {granted("A", 12 * GiB, 9000)};
  VgpuRequest r = request(8 * GiB, 50);
  r.devices = {"A"};
  EXPECT_FALSE(place(r, devs, existing, {}));
  r.scheduled = true;
  auto p = place(r, devs, existing, {});
  ASSERT_TRUE(p) << p.status().toString();
  EXPECT_EQ(p->front().deviceUuid, "A");
  r.vramLimit = 17 * GiB;
  EXPECT_FALSE(place(r, devs, existing, {}));
}

// A cluster pod's vGPU: its pool's allowance per device replaces the hypervisor's --vram-expand.
TEST(AllocatorTest, APodsPoolAllowanceDecidesHowFarPastItsMemoryADeviceGoes) {
  std::vector<GpuDevice> devs = {device(0, "A", 16 * GiB, 65), device(1, "B", 16 * GiB, 65)};
  const Oversubscription standalone{1.0, 1.0};  // the node's own flag would allow 32 GiB
  VgpuRequest r = request(8 * GiB, 10);
  r.isolation = Isolation::Hard;
  r.scheduled = true;
  r.devices = {"A"};
  r.vramLimit = 20 * GiB;
  EXPECT_TRUE(place(r, devs, {}, standalone));
  r.vramAllowance = std::map<std::string, uint64_t>{};  // the pool gives none (not tiered)
  auto none = place(r, devs, {}, standalone);
  ASSERT_FALSE(none);
  EXPECT_NE(none.status().message().find("VRAM limit 20 GiB is more than the device can give (16 GiB: 16 GiB of "
                                         "memory and 0 B from its pool's VRAM expansion)"),
            std::string::npos)
      << none.status().message();
  (*r.vramAllowance)["A"] = 4 * GiB;
  auto fits = place(r, devs, {}, standalone);
  ASSERT_TRUE(fits) << fits.status().toString();
  EXPECT_EQ(fits->front().deviceUuid, "A");
  r.vramLimit = 20 * GiB + 1;
  EXPECT_FALSE(place(r, devs, {}, standalone));
  r.devices = {"B"};  // B's share was not given: its memory only
  r.vramLimit = 17 * GiB;
  EXPECT_FALSE(place(r, devs, {}, standalone));
}

TEST(AllocatorTest, TflopsAreConvertedWithTheRatingAndPinningIsHonoured) {
  std::vector<GpuDevice> devs = {device(0, "A", 80 * GiB, 989.4), device(1, "B", 24 * GiB, 0)};
  VgpuRequest r = request(GiB, 0);
  r.percentRequest = r.percentLimit = 0;
  r.tflopsRequest = r.tflopsLimit = 98.94;
  auto p = place(r, devs, {}, {});
  ASSERT_TRUE(p);
  EXPECT_EQ(p->front().deviceUuid, "A");
  EXPECT_EQ(p->front().limitBp, 1000u); // 10% of an H100
  r.devices = {"B"};                     // no rating: cannot convert TFLOPS there
  auto q = place(r, devs, {}, {});
  ASSERT_FALSE(q);
  EXPECT_NE(q.status().message().find("no known TFLOPS rating"), std::string::npos);
  r.devices = {"C"};
  EXPECT_EQ(place(r, devs, {}, {}).status().code(), Code::NotFound);
}

} // namespace
} // namespace tf::hypervisor
