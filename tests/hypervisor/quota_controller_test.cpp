#include "hypervisor/quota_controller.h"

#include <gtest/gtest.h>

namespace tf::hypervisor {
namespace {

Vgpu vgpu(uint32_t requestBp, uint32_t limitBp, Qos qos = Qos::Medium) {
  Vgpu v;
  v.devices = {DeviceGrant{0, "GPU-a", requestBp, limitBp}};
  v.request.qos = qos;
  return v;
}

TEST(QuotaControllerTest, BusyVgpusGetTheirRequests) {
  Vgpu a = vgpu(3000, 3000), b = vgpu(7000, 7000);
  auto s = computeShares({{&a, 3000, 3000, true}, {&b, 7000, 7000, true}});
  EXPECT_EQ(s[0], 3000u);
  EXPECT_EQ(s[1], 7000u);
}

TEST(QuotaControllerTest, IdleShareIsLentUpToTheLimitAndTakenBack) {
  Vgpu a = vgpu(3000, 10000), b = vgpu(7000, 7000);
  // b idle: a may borrow b's unused time, up to a's limit.
  auto lent = computeShares({{&a, 3000, 3000, true}, {&b, 0, 7000, false}});
  EXPECT_EQ(lent[0], 10000u);
  EXPECT_EQ(lent[1], 7000u); // b keeps its guarantee, ready for when it returns
  // b launches again (next tick), though a's borrowing left it little: a is back to its request.
  auto back = computeShares({{&a, 9500, 10000, true}, {&b, 500, 7000, true}});
  EXPECT_EQ(back[0], 3000u);
  EXPECT_EQ(back[1], 7000u);
  // a not using what it has: it does not borrow.
  auto lazy = computeShares({{&a, 1000, 3000, true}, {&b, 0, 7000, false}});
  EXPECT_EQ(lazy[0], 3000u);
}

TEST(QuotaControllerTest, HigherQosBorrowsFirst) {
  Vgpu hi = vgpu(2000, 8000, Qos::High), lo = vgpu(2000, 8000, Qos::Low), idle = vgpu(4000, 4000);
  auto s = computeShares({{&hi, 2000, 2000, true}, {&lo, 2000, 2000, true}, {&idle, 0, 4000, false}});
  // 6000 bp are free: the high-QoS vGPU fills to its limit first, the rest goes to low.
  EXPECT_EQ(s[0], 8000u);
  EXPECT_EQ(s[1], 2000u);
  Vgpu m1 = vgpu(2000, 10000), m2 = vgpu(2000, 10000);
  auto even = computeShares({{&m1, 2000, 2000, true}, {&m2, 2000, 2000, true}});
  EXPECT_EQ(even[0], 5000u);
  EXPECT_EQ(even[1], 5000u);
}

} // namespace
} // namespace tf::hypervisor
