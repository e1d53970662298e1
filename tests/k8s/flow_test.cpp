// Rate limiter, back-off and the work queue, on a manual clock.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "k8s/backoff.h"
#include "k8s/rate_limiter.h"
#include "k8s/work_queue.h"

namespace tf::k8s {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(TokenBucketTest, BurstThenQps) {
  ManualClock clock;
  TokenBucket bucket(10.0, 3, clock);  // 3 at once, then one per 100 ms
  EXPECT_EQ(bucket.reserve(), Duration::zero());
  EXPECT_EQ(bucket.reserve(), Duration::zero());
  EXPECT_EQ(bucket.reserve(), Duration::zero());
  EXPECT_FALSE(bucket.tryAccept());
  // Reservations queue up: the 4th waits 100 ms, the 5th 200 ms.
  EXPECT_NEAR(std::chrono::duration<double>(bucket.reserve()).count(), 0.1, 1e-6);
  EXPECT_NEAR(std::chrono::duration<double>(bucket.reserve()).count(), 0.2, 1e-6);
  clock.advance(seconds(10));  // refills to the burst, not beyond
  EXPECT_TRUE(bucket.tryAccept());
  EXPECT_TRUE(bucket.tryAccept());
  EXPECT_TRUE(bucket.tryAccept());
  EXPECT_FALSE(bucket.tryAccept());
  clock.advance(milliseconds(100));
  EXPECT_TRUE(bucket.tryAccept());
}

TEST(TokenBucketTest, SharedByThreads) {
  ManualClock clock;
  TokenBucket bucket(1.0, 100, clock);
  std::atomic<int> accepted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) accepted += bucket.tryAccept();
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(accepted.load(), 100);  // exactly the burst, whatever the interleaving
}

TEST(TokenBucketTest, NoLimit) {
  TokenBucket bucket(0, 1);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(bucket.reserve(), Duration::zero());
}

TEST(BackoffTest, ExponentialCapped) {
  ExponentialBackoff b{milliseconds(5), seconds(1), 2.0, 0.0};
  EXPECT_EQ(b.delay(0), milliseconds(5));
  EXPECT_EQ(b.delay(1), milliseconds(10));
  EXPECT_EQ(b.delay(3), milliseconds(40));
  EXPECT_EQ(b.delay(20), seconds(1));
  EXPECT_EQ(b.delay(5000), seconds(1));  // overflow to inf is capped too
  ExponentialBackoff j{milliseconds(100), seconds(10), 1.0, 0.5};
  for (int i = 0; i < 50; ++i) {
    Duration d = j.delay(0);
    ASSERT_GE(d, milliseconds(100));
    ASSERT_LE(d, milliseconds(150));
  }
}

TEST(BackoffTest, PerItem) {
  ItemBackoff b(ExponentialBackoff{milliseconds(1), seconds(1), 2.0, 0.0});
  EXPECT_EQ(b.when("a"), milliseconds(1));
  EXPECT_EQ(b.when("a"), milliseconds(2));
  EXPECT_EQ(b.when("b"), milliseconds(1));
  EXPECT_EQ(b.numRequeues("a"), 2);
  b.forget("a");
  EXPECT_EQ(b.numRequeues("a"), 0);
  EXPECT_EQ(b.when("a"), milliseconds(1));
}

TEST(WorkQueueTest, Deduplicates) {
  WorkQueue q;
  q.add("a");
  q.add("b");
  q.add("a");
  EXPECT_EQ(q.len(), 2u);
  EXPECT_EQ(q.getFor(Duration::zero()), "a");
  EXPECT_EQ(q.getFor(Duration::zero()), "b");
  EXPECT_EQ(q.getFor(Duration::zero()), std::nullopt);
}

TEST(WorkQueueTest, KeyInProcessingIsNotHandedOutTwice) {
  WorkQueue q;
  q.add("a");
  auto k = q.getFor(Duration::zero());
  ASSERT_EQ(k, "a");
  q.add("a");  // changed while being handled
  q.add("a");
  EXPECT_EQ(q.getFor(Duration::zero()), std::nullopt);  // a second worker gets nothing
  q.done("a");
  EXPECT_EQ(q.getFor(Duration::zero()), "a");  // handled again, once
  q.done("a");
  EXPECT_EQ(q.getFor(Duration::zero()), std::nullopt);
}

TEST(WorkQueueTest, ConcurrentWorkersNeverShareAKey) {
  WorkQueue q;
  std::atomic<int> inFlight{0}, maxInFlight{0}, handled{0};
  std::atomic<bool> stopAdding{false};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w)
    workers.emplace_back([&] {
      while (auto key = q.get()) {
        int n = ++inFlight;
        int m = maxInFlight.load();
        while (n > m && !maxInFlight.compare_exchange_weak(m, n)) {}
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        --inFlight;
        ++handled;
        q.done(*key);
      }
    });
  for (int i = 0; i < 2000; ++i) q.add("same");
  stopAdding = true;
  while (q.len() > 0) std::this_thread::sleep_for(milliseconds(1));
  q.shutDown();
  for (auto& t : workers) t.join();
  EXPECT_EQ(maxInFlight.load(), 1);
  EXPECT_GE(handled.load(), 1);
  EXPECT_LT(handled.load(), 2000);  // adds while queued collapsed into one
}

TEST(WorkQueueTest, RateLimitedRequeueBacksOffPerItem) {
  ManualClock clock;
  WorkQueue q(ExponentialBackoff{milliseconds(100), seconds(10), 2.0, 0.0}, clock);
  q.addRateLimited("a");  // due in 100 ms
  EXPECT_EQ(q.getFor(Duration::zero()), std::nullopt);
  EXPECT_EQ(q.waitingLen(), 1u);
  clock.advance(milliseconds(99));
  EXPECT_EQ(q.getFor(Duration::zero()), std::nullopt);
  clock.advance(milliseconds(1));
  EXPECT_EQ(q.getFor(Duration::zero()), "a");
  q.done("a");
  q.addRateLimited("a");  // second failure: 200 ms
  EXPECT_EQ(q.numRequeues("a"), 2);
  clock.advance(milliseconds(199));
  EXPECT_EQ(q.getFor(Duration::zero()), std::nullopt);
  clock.advance(milliseconds(1));
  EXPECT_EQ(q.getFor(Duration::zero()), "a");
  q.done("a");
  q.forget("a");
  q.addRateLimited("a");  // back to 100 ms
  clock.advance(milliseconds(100));
  EXPECT_EQ(q.getFor(Duration::zero()), "a");
}

TEST(WorkQueueTest, AddAfterEarlierWinsAndDirectAddIsImmediate) {
  ManualClock clock;
  WorkQueue q({}, clock);
  q.addAfter("a", seconds(10));
  q.addAfter("a", seconds(1));
  clock.advance(seconds(1));
  EXPECT_EQ(q.getFor(Duration::zero()), "a");
  q.done("a");
  q.addAfter("b", seconds(5));
  q.add("b");
  EXPECT_EQ(q.getFor(Duration::zero()), "b");
}

TEST(WorkQueueTest, ShutDownWakesWaitingWorkers) {
  WorkQueue q;
  std::atomic<int> ended{0};
  std::vector<std::thread> workers;
  for (int i = 0; i < 3; ++i)
    workers.emplace_back([&] {
      EXPECT_EQ(q.get(), std::nullopt);
      ++ended;
    });
  std::this_thread::sleep_for(milliseconds(20));
  q.shutDown();
  for (auto& t : workers) t.join();
  EXPECT_EQ(ended.load(), 3);
  q.add("late");
  EXPECT_EQ(q.len(), 0u);  // refused after shutdown
  EXPECT_TRUE(q.shuttingDown());
}

}  // namespace
}  // namespace tf::k8s
