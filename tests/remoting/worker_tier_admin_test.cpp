// The hypervisor's admin connection to a worker (tier_control.h): it sees each client's bytes
// per tier, freezes idle clients to make room for one that waits, and thaws ahead of a call.
// Only its own token opens it, and neither side can make the other's calls.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <unistd.h>

#include <cuda.h>

#include "cuda/catalog.h"
#include "remoting/protocol.h"
#include "remoting/tier_control.h"
#include "worker_harness.h"

namespace tf::remoting {
namespace {

using cuda::FnId;
constexpr uint64_t kSize = 64ull << 20;

// On a 100 MiB device two clients of 64 MiB fit one at a time; nobody freezes by idling, only
// the admin does.
class TierAdminTest : public ::testing::TestWithParam<std::string> {
protected:
  void SetUp() override {
    setenv("TF_SOFTGPU_DEVICES", "H100:100MiB", 1);
    worker_ = std::make_unique<WorkerProcess>(
        GetParam(), token_,
        std::vector<std::string>{"--tiers", "--admin-token", adminToken_, "--alloc-wait-ms", "20000",
                                 "--thaw-wait-ms", "20000"});
    ASSERT_FALSE(worker_->address().empty()) << "worker did not start";
    auto admin = WorkerAdmin::connect(worker_->address(), adminToken_);
    ASSERT_TRUE(admin.isOk()) << admin.status().toString();
    admin_ = std::move(*admin);
  }
  // The record of the client whose host channel... all clients here share our pid: by order of
  // the bytes they hold, the test keeps one client per state it checks.
  std::vector<TierRecord> status() {
    auto s = admin_->status();
    EXPECT_TRUE(s.isOk()) << s.status().toString();
    return s.isOk() ? *s : std::vector<TierRecord>{};
  }
  // Waits until some client reports waiting for `bytes`.
  bool waitsFor(uint64_t bytes) {
    for (int i = 0; i < 2000; ++i) {
      for (const auto& r : status())
        if (r.waitingBytes >= bytes) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  std::string token_ = "tenant-" + std::to_string(getpid());
  std::string adminToken_ = "admin-" + std::to_string(getpid());
  std::unique_ptr<WorkerProcess> worker_;
  std::unique_ptr<WorkerAdmin> admin_;
};

std::vector<uint8_t> pattern(uint8_t seed) {
  std::vector<uint8_t> bytes(kSize);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 131 + (i >> 20) + seed);
  return bytes;
}

TEST_P(TierAdminTest, FreezesTheIdleClientForTheOneWaitingAndReportsEachTier) {
  RawClient a, b;
  ASSERT_EQ(a.open(worker_->address(), token_), CUDA_SUCCESS);
  ASSERT_EQ(b.open(worker_->address(), token_), CUDA_SUCCESS);
  const uint64_t ctxA = a.context(), ctxB = b.context();
  uint64_t pA = 0, pB = 0;
  ASSERT_EQ(a.call(FnId::cuMemAlloc_v2, {kSize}, ctxA, &pA), CUDA_SUCCESS);
  const auto bytesA = pattern(1), bytesB = pattern(2);
  ASSERT_EQ(a.call(FnId::cuMemcpyHtoD_v2, {pA, kSize}, ctxA, nullptr, nullptr, &bytesA), CUDA_SUCCESS);
  {
    auto s = status();
    ASSERT_EQ(s.size(), 2u);
    uint64_t hot = 0;
    for (const auto& r : s) {
      EXPECT_EQ(r.pid, static_cast<uint32_t>(getpid()));
      EXPECT_EQ(r.state, TierState::Hot);
      EXPECT_EQ(r.warmBytes + r.coldBytes, 0u);
      hot += r.hotBytes;
    }
    EXPECT_GE(hot, kSize);
  }

  // B's allocation finds no room and waits, saying for how much; the admin freezes the idle
  // (A: B is in its call, so it is not idle and not frozen) and B gets the room.
  auto allocB = std::async(std::launch::async, [&] { return b.call(FnId::cuMemAlloc_v2, {kSize}, ctxB, &pB); });
  ASSERT_TRUE(waitsFor(kSize)) << "B never said it waits for memory";
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // A idle for more than the 1 ms asked
  auto moved = admin_->control(TierAction::Freeze, 1, 10000);
  ASSERT_TRUE(moved.isOk()) << moved.status().toString();
  EXPECT_EQ(*moved, 1);
  ASSERT_EQ(allocB.get(), CUDA_SUCCESS);
  ASSERT_EQ(b.call(FnId::cuMemcpyHtoD_v2, {pB, kSize}, ctxB, nullptr, nullptr, &bytesB), CUDA_SUCCESS);
  {
    uint64_t warm = 0, stored = 0, freezes = 0;
    for (const auto& r : status()) {
      warm += r.warmBytes;
      stored += r.warmStoredBytes;
      freezes += r.freezes;
      if (r.warmBytes) EXPECT_EQ(r.state, TierState::Warm);
    }
    EXPECT_GE(warm, kSize);
    EXPECT_EQ(stored, warm) << "A's bytes are dense: all of them stored";
    EXPECT_GE(freezes, 1u);
  }

  // Everyone to disk (no minimum idle: B, just out of its call, too), then A's call waits for
  // room; the admin freezes B (now idle) and A's bytes come back at the same address.
  moved = admin_->control(TierAction::FreezeCold, 0, 10000);
  ASSERT_TRUE(moved.isOk());
  EXPECT_EQ(*moved, 2) << "A (warm -> cold) and B (hot -> cold) both move";
  ASSERT_EQ(b.call(FnId::cuCtxSynchronize, {}, ctxB), CUDA_SUCCESS);  // B thaws: all hot again
  std::vector<uint8_t> gotA;
  auto readA = std::async(std::launch::async, [&] { return a.call(FnId::cuMemcpyDtoH_v2, {pA, kSize}, ctxA, nullptr, &gotA); });
  ASSERT_TRUE(waitsFor(kSize)) << "A never said it waits for its memory";
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  moved = admin_->control(TierAction::Freeze, 1, 10000);
  ASSERT_TRUE(moved.isOk());
  EXPECT_EQ(*moved, 1);
  ASSERT_EQ(readA.get(), CUDA_SUCCESS);
  EXPECT_TRUE(gotA == bytesA) << "A's bytes came back changed";

  // A thaw order brings B back before it calls; B's bytes are whole.
  ASSERT_EQ(a.call(FnId::cuMemFree_v2, {pA}, ctxA), CUDA_SUCCESS);
  moved = admin_->control(TierAction::Thaw, 0, 10000);
  ASSERT_TRUE(moved.isOk());
  EXPECT_EQ(*moved, 1);
  for (const auto& r : status()) EXPECT_EQ(r.warmBytes + r.coldBytes, 0u);
  std::vector<uint8_t> gotB;
  ASSERT_EQ(b.call(FnId::cuMemcpyDtoH_v2, {pB, kSize}, ctxB, nullptr, &gotB), CUDA_SUCCESS);
  EXPECT_TRUE(gotB == bytesB);
  // Clients idle for less than asked are left alone.
  moved = admin_->control(TierAction::Freeze, 3600000, 1000);
  ASSERT_TRUE(moved.isOk());
  EXPECT_EQ(*moved, 0);
}

TEST_P(TierAdminTest, OnlyTheAdminTokenOpensItAndEachSideKeepsToItsCalls) {
  auto wrong = WorkerAdmin::connect(worker_->address(), "not-the-admin");
  EXPECT_EQ(wrong.status().code(), Code::PermissionDenied);
  auto tenantAsAdmin = WorkerAdmin::connect(worker_->address(), token_);
  EXPECT_EQ(tenantAsAdmin.status().code(), Code::PermissionDenied);
  RawClient adminAsTenant;
  EXPECT_EQ(adminAsTenant.open(worker_->address(), adminToken_), CUDA_ERROR_NOT_PERMITTED);

  RawClient tenant;
  ASSERT_EQ(tenant.open(worker_->address(), token_), CUDA_SUCCESS);
  EXPECT_EQ(tenant.call(static_cast<uint32_t>(Op::TierStatus), {}, 0), CUDA_ERROR_NOT_PERMITTED);
  EXPECT_EQ(tenant.call(static_cast<uint32_t>(Op::TierControl), {0, 0, 0}, 0), CUDA_ERROR_NOT_PERMITTED);
  // The admin: no driver calls, and a bad order is refused; the connection lives on.
  RawClient raw;  // speaks as the admin through the raw harness
  ASSERT_EQ(raw.open(worker_->address(), adminToken_, {}, kRoleAdmin), CUDA_SUCCESS);
  uint64_t p = 0;
  EXPECT_EQ(raw.call(FnId::cuMemAlloc_v2, {kSize}, 0, &p), CUDA_ERROR_NOT_PERMITTED);
  EXPECT_EQ(raw.call(static_cast<uint32_t>(Op::TierControl), {7, 0, 0}, 0), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(raw.call(static_cast<uint32_t>(Op::TierControl), {0}, 0), CUDA_ERROR_INVALID_VALUE);
  EXPECT_EQ(raw.call(static_cast<uint32_t>(Op::TierStatus), {}, 0), CUDA_SUCCESS);
  EXPECT_TRUE(admin_->status().isOk());
}

TEST(TierRecords, RoundTripAndRefuseWhatDoesNotAddUp) {
  std::vector<TierRecord> in(2);
  in[0].pid = 7;
  in[0].state = TierState::Cold;
  in[0].coldBytes = 1ull << 40;
  in[1].waitingBytes = 5;
  in[1].coldStoredBytes = 6;
  Writer w;
  encodeTierRecords(w, in);
  std::vector<TierRecord> out;
  ASSERT_TRUE(decodeTierRecords({reinterpret_cast<const char*>(w.data()), w.size()}, &out).isOk());
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].pid, 7u);
  EXPECT_EQ(out[0].state, TierState::Cold);
  EXPECT_EQ(out[0].coldBytes, 1ull << 40);
  EXPECT_EQ(out[1].waitingBytes, 5u);
  EXPECT_EQ(out[1].coldStoredBytes, 6u);
  std::string bytes(reinterpret_cast<const char*>(w.data()), w.size());
  EXPECT_EQ(decodeTierRecords(bytes.substr(0, bytes.size() - 1), &out).code(), Code::DataLoss);
  EXPECT_EQ(decodeTierRecords(bytes.substr(0, 2), &out).code(), Code::DataLoss);
  std::string badState = bytes;
  badState[8] = 9;  // the first record's state
  EXPECT_EQ(decodeTierRecords(badState, &out).code(), Code::DataLoss);
  std::string huge = bytes;
  huge[3] = '\x7f';  // a count far past the bytes
  EXPECT_EQ(decodeTierRecords(huge, &out).code(), Code::DataLoss);
}

INSTANTIATE_TEST_SUITE_P(Both, TierAdminTest, ::testing::Values("tcp", "shm"));

}  // namespace
}  // namespace tf::remoting
