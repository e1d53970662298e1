// Group commit: deltas handed in while a transaction commits go together in the next one, each
// answered once with its own outcome; nothing handed in is dropped at shutdown.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>

#include <gtest/gtest.h>

#include "portal/delta_committer.h"
#include "portal/sqlite_store.h"
#include "temp_dir.h"

namespace tf::portal {
namespace {

protocol::Delta delta(uint64_t seq) {
  return {5, seq, {protocol::SyncedObject{"GPU", "", "g" + std::to_string(seq), "1", {{"seq", seq}}}}, {}};
}

class DeltaCommitterTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = testing::freshTestDir("tf-portal-committer-");
    store_ = std::move(*SqliteStore::open((dir_ / "portal.db").string()));
    for (int i = 0; i < kClusters; ++i) {
      clusters_.push_back(store_->createCluster("c:" + std::to_string(i), "c", 1)->id);
      ASSERT_TRUE(store_->applySnapshot(clusters_.back(), protocol::Snapshot{5, 1, {}}).isOk());
    }
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  static constexpr int kClusters = 20;
  std::filesystem::path dir_;
  SqliteStorePtr store_;
  std::vector<int64_t> clusters_;
};

TEST_F(DeltaCommitterTest, DeltasArrivingDuringACommitShareTheNextTransaction) {
  DeltaCommitter committer(*store_);
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::vector<std::optional<Result<DeltaOutcome>>> outcomes(kClusters);
  // The first answer holds the committer until every other delta has been handed in.
  committer.submit(clusters_[0], delta(2), [&](Result<DeltaOutcome> r) {
    std::unique_lock<std::mutex> lock(mu);
    outcomes[0] = std::move(r);
    cv.wait(lock, [&] { return release; });
  });
  for (int i = 1; i < kClusters; ++i)
    committer.submit(clusters_[size_t(i)], delta(i % 2 ? 2 : 9), [&, i](Result<DeltaOutcome> r) {
      std::lock_guard<std::mutex> lock(mu);
      outcomes[size_t(i)] = std::move(r);
      cv.notify_all();
    });
  {
    std::unique_lock<std::mutex> lock(mu);
    release = true;
    cv.notify_all();
    cv.wait(lock, [&] { return std::all_of(outcomes.begin(), outcomes.end(), [](auto& o) { return o.has_value(); }); });
  }
  // The first delta may go alone (the committer woke at once); the other 19 all waited behind
  // it and share one transaction. One transaction per delta would be 20.
  EXPECT_LE(committer.counts().transactions, 2u);
  EXPECT_EQ(committer.counts().deltas, uint64_t(kClusters));
  for (int i = 0; i < kClusters; ++i) {
    const DeltaOutcome want = i == 0 || i % 2 ? DeltaOutcome::Applied : DeltaOutcome::Gap;
    ASSERT_TRUE(outcomes[size_t(i)]->isOk()) << i;
    EXPECT_EQ(**outcomes[size_t(i)], want) << i;
    EXPECT_EQ(store_->clusterById(clusters_[size_t(i)])->lastSeq, want == DeltaOutcome::Applied ? 2u : 1u) << i;
  }
}

TEST_F(DeltaCommitterTest, StoppingAnswersEverythingHandedIn) {
  std::atomic<int> answered{0};
  {
    DeltaCommitter committer(*store_, 3);  // small batches: several transactions
    for (uint64_t seq = 2; seq < 12; ++seq)
      committer.submit(clusters_[0], delta(seq), [&](Result<DeltaOutcome> r) {
        if (r.isOk() && *r == DeltaOutcome::Applied) ++answered;
      });
  }
  EXPECT_EQ(answered.load(), 10);
  EXPECT_EQ(store_->clusterById(clusters_[0])->lastSeq, 11u);
}

}  // namespace
}  // namespace tf::portal
