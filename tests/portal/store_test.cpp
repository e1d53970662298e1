// The SQLite store: migrations from empty and on re-open, nothing lost across a re-open,
// single-use enroll tokens under racing threads, sequence checks inside the transaction.
#include <atomic>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include "control_protocol/crypto.h"
#include "portal/sqlite_store.h"
#include "temp_dir.h"

namespace tf::portal {
namespace {

using protocol::SyncedObject;

class StoreTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = testing::freshTestDir("tf-portal-store-");
    path_ = (dir_ / "portal.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  SqliteStorePtr open() {
    auto s = SqliteStore::open(path_);
    EXPECT_TRUE(s.isOk()) << s.status().toString();
    return s ? std::move(*s) : nullptr;
  }
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(StoreTest, MigratesFromEmptyAndReopens) {
  {
    auto s = open();
    EXPECT_EQ(s->schemaVersion(), SqliteStore::latestSchemaVersion());
    ASSERT_TRUE(s->createCluster("acme:prod", "prod", 1).isOk());
  }
  auto s = open();  // re-open: no migration runs twice, data is there
  EXPECT_EQ(s->schemaVersion(), SqliteStore::latestSchemaVersion());
  auto c = s->clusterByAgentId("acme:prod");
  ASSERT_TRUE(c.isOk());
  EXPECT_EQ(c->name, "prod");
  EXPECT_EQ(s->createCluster("acme:prod", "again", 2).status().code(), Code::AlreadyExists);
}

TEST_F(StoreTest, RefusesASchemaFromTheFuture) {
  { open(); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto s = SqliteStore::open(path_);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.status().code(), Code::FailedPrecondition);
}

TEST_F(StoreTest, SyncStateSurvivesReopen) {
  int64_t id = 0;
  {
    auto s = open();
    id = s->createCluster("a:b", "x", 1)->id;
    protocol::Snapshot snap{77, 10, {SyncedObject{"GPU", "", "g0", "1", {{"vram", 1}}},
                                     SyncedObject{"GPU", "", "g1", "1", {{"vram", 2}}}}};
    ASSERT_TRUE(s->applySnapshot(id, snap).isOk());
    protocol::Delta d{77, 11, {SyncedObject{"GPU", "", "g0", "2", {{"vram", 3}}}}, {protocol::ObjectKey{"GPU", "", "g1"}}};
    EXPECT_EQ(*s->applyDelta(id, d), DeltaOutcome::Applied);
    EXPECT_EQ(*s->applyDelta(id, d), DeltaOutcome::Duplicate);
    d.seq = 13;
    EXPECT_EQ(*s->applyDelta(id, d), DeltaOutcome::Gap);
    d.epoch = 78;
    d.seq = 12;
    EXPECT_EQ(*s->applyDelta(id, d), DeltaOutcome::WrongEpoch);
  }
  auto s = open();
  auto c = s->clusterById(id);
  EXPECT_EQ(c->epoch, 77u);
  EXPECT_EQ(c->lastSeq, 11u);
  auto objs = s->listObjects(id, "GPU");
  ASSERT_EQ(objs->size(), 1u);
  EXPECT_EQ((*objs)[0].name, "g0");
  EXPECT_EQ((*objs)[0].resourceVersion, "2");
  EXPECT_EQ((*objs)[0].body["vram"], 3);
  // The epoch is an unsigned 64-bit number end to end.
  ASSERT_TRUE(s->applySnapshot(id, protocol::Snapshot{UINT64_MAX, 1, {}}).isOk());
  EXPECT_EQ(s->clusterById(id)->epoch, UINT64_MAX);
}

TEST_F(StoreTest, GroupCommitChecksEachDeltaAsIfAlone) {
  auto s = open();
  const int64_t a = s->createCluster("a:a", "a", 1)->id, b = s->createCluster("b:b", "b", 1)->id;
  ASSERT_TRUE(s->applySnapshot(a, protocol::Snapshot{7, 1, {}}).isOk());
  ASSERT_TRUE(s->applySnapshot(b, protocol::Snapshot{8, 1, {}}).isOk());
  auto delta = [](uint64_t epoch, uint64_t seq, const std::string& name) {
    return protocol::Delta{epoch, seq, {SyncedObject{"GPU", "", name, std::to_string(seq), {{"seq", seq}}}}, {}};
  };
  const protocol::Delta a2 = delta(7, 2, "ga"), bGap = delta(8, 5, "gb"), a3 = delta(7, 3, "ga"),
                        lost = delta(7, 2, "nowhere"), b2 = delta(8, 2, "gb");
  auto out = s->applyDeltas({{a, &a2}, {b, &bGap}, {a, &a3}, {999, &lost}, {b, &b2}, {a, &a3}});
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(*out[0], DeltaOutcome::Applied);
  EXPECT_EQ(*out[1], DeltaOutcome::Gap);
  EXPECT_EQ(*out[2], DeltaOutcome::Applied);  // sees a2, committed in the same transaction
  EXPECT_EQ(out[3].status().code(), Code::NotFound);  // fails alone
  EXPECT_EQ(*out[4], DeltaOutcome::Applied);
  EXPECT_EQ(*out[5], DeltaOutcome::Duplicate);
  s.reset();
  s = open();
  EXPECT_EQ(s->clusterById(a)->lastSeq, 3u);
  EXPECT_EQ(s->clusterById(b)->lastSeq, 2u);
  EXPECT_EQ((*s->listObjects(a, "GPU"))[0].body["seq"], 3);
  EXPECT_EQ((*s->listObjects(b, "GPU"))[0].body["seq"], 2);
}

TEST_F(StoreTest, ATokenIsRedeemedOnceEvenUnderARace) {
  auto s = open();
  const int64_t id = s->createCluster("a:b", "x", 1)->id;
  const std::string hash = protocol::hexEncode(protocol::sha256("secret"));
  ASSERT_TRUE(s->addEnrollToken(id, hash, 1000, 1).isOk());
  std::atomic<int> wins{0}, refusals{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      const Status st = s->redeemEnrollToken(id, hash, "key-" + std::to_string(i), 5);
      (st.isOk() ? wins : refusals)++;
      if (!st.isOk()) {
        EXPECT_EQ(st.code(), Code::PermissionDenied);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins.load(), 1);
  EXPECT_EQ(refusals.load(), 7);
  const std::string winner = s->clusterById(id)->publicKey;
  EXPECT_EQ(winner.rfind("key-", 0), 0u);
  // The winner may retry (crash before saving); a loser may not.
  EXPECT_TRUE(s->redeemEnrollToken(id, hash, winner, 6).isOk());
  EXPECT_EQ(s->redeemEnrollToken(id, hash, "other", 6).code(), Code::PermissionDenied);
}

TEST_F(StoreTest, ExpiredRevokedAndForeignTokensAreRefused) {
  auto s = open();
  const int64_t a = s->createCluster("a:x", "x", 1)->id, b = s->createCluster("b:x", "y", 1)->id;
  const std::string h1 = protocol::hexEncode(protocol::sha256("t1")), h2 = protocol::hexEncode(protocol::sha256("t2"));
  ASSERT_TRUE(s->addEnrollToken(a, h1, 100, 1).isOk());
  auto t2 = s->addEnrollToken(a, h2, 100, 1);
  EXPECT_EQ(s->redeemEnrollToken(a, h1, "k", 100).code(), Code::PermissionDenied);  // expired at 100
  EXPECT_EQ(s->redeemEnrollToken(b, h2, "k", 50).code(), Code::PermissionDenied);   // another cluster's
  ASSERT_TRUE(s->revokeEnrollToken(a, t2->id, 50).isOk());
  EXPECT_EQ(s->redeemEnrollToken(a, h2, "k", 51).code(), Code::PermissionDenied);   // revoked
  EXPECT_EQ(s->revokeEnrollToken(b, t2->id, 50).code(), Code::NotFound);            // not b's to revoke
}

TEST_F(StoreTest, RevokeClearsTheKeyAndFailsQueuedCommands) {
  auto s = open();
  const int64_t id = s->createCluster("a:b", "x", 1)->id;
  const std::string h = protocol::hexEncode(protocol::sha256("t"));
  ASSERT_TRUE(s->addEnrollToken(id, h, 100, 1).isOk());
  ASSERT_TRUE(s->redeemEnrollToken(id, h, "k", 2).isOk());
  auto cmd = s->addCommand(id, "cordonGpu", "{}", 1000, 3);
  ASSERT_TRUE(s->revokeAgentKey(id, 4).isOk());
  EXPECT_EQ(s->clusterById(id)->publicKey, "");
  EXPECT_EQ(s->clusterById(id)->revokedAt, 4);
  EXPECT_EQ(s->command(id, cmd->id)->state, "failed");
  // The used token cannot bring the old key back either.
  EXPECT_EQ(s->redeemEnrollToken(id, h, "k", 5).code(), Code::PermissionDenied);
}

TEST_F(StoreTest, CommandsExpireAndStayWithTheirCluster) {
  auto s = open();
  const int64_t a = s->createCluster("a:x", "x", 1)->id, b = s->createCluster("b:x", "y", 1)->id;
  auto c1 = s->addCommand(a, "cordonGpu", "{}", 100, 1);
  auto c2 = s->addCommand(a, "scaleWorkload", "{}", 1000, 1);
  auto pending = s->pendingCommands(a, 500);
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].id, c2->id);
  EXPECT_EQ(s->command(a, c1->id)->state, "expired");
  EXPECT_EQ(s->setCommandState(b, c2->id, "done", "", "{}", 2).code(), Code::NotFound);
  EXPECT_EQ(s->command(b, c2->id).status().code(), Code::NotFound);
}

TEST_F(StoreTest, MetricsKeepOnlyTheRetentionWindow) {
  auto s = open();
  const int64_t id = s->createCluster("a:b", "x", 1)->id;
  ASSERT_TRUE(s->addMetrics(id, {{"u", 100, 1}, {"u", 900, 2}, {"v", 950, 3}}, 1000, 500).isOk());
  auto all = s->metrics(id, "", 0);
  ASSERT_EQ(all->size(), 2u);  // the point at 100 is older than 1000 - 500
  ASSERT_TRUE(s->addMetrics(id, {{"u", 1400, 4}}, 1450, 500).isOk());
  auto u = s->metrics(id, "u", 0);
  ASSERT_EQ(u->size(), 1u);  // 900 aged out
  EXPECT_DOUBLE_EQ((*u)[0].value, 4);
}

TEST_F(StoreTest, SessionsExpire) {
  auto s = open();
  auto u = s->createUser("admin", "hash", true, 1);
  ASSERT_TRUE(s->addSession({"h1", u->id, "csrf", 1, 100}).isOk());
  EXPECT_TRUE(s->session("h1", 99).isOk());
  EXPECT_EQ(s->session("h1", 100).status().code(), Code::NotFound);
  ASSERT_TRUE(s->deleteSession("h1").isOk());
  EXPECT_EQ(s->session("h1", 50).status().code(), Code::NotFound);
}

}  // namespace
}  // namespace tf::portal
