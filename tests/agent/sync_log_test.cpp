// SyncLog: snapshot, deltas, acks, resume, resync, window and overflow, each against the
// portal's rules; and a long random run against a model of the portal's store (the rules of
// src/portal/sqlite_store.cpp and agent_session.cpp) with links cut at random, which must end
// with the portal's table equal to the agent's and every delta applied once.
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "agent/sync_log.h"

namespace tf::agent {
namespace {

using protocol::SyncedObject;

SyncedObject gpu(const std::string& name, const std::string& rv) {
  return {"GPU", "", name, rv, {{"metadata", {{"name", name}, {"resourceVersion", rv}}}}};
}

template <typename T> T parse(const std::string& frame) {
  auto m = protocol::parseMessage(frame);
  EXPECT_TRUE(m) << frame;
  EXPECT_TRUE(std::holds_alternative<T>(*m)) << frame;
  return std::get<T>(*m);
}

protocol::Welcome snapshotWelcome() { return {"s", true, 0}; }
protocol::Welcome resumeWelcome(uint64_t from) { return {"s", false, from}; }

TEST(SyncLogTest, AFreshEpochStartsWithASnapshotOfEverything) {
  SyncLog log({}, 42);
  log.upsert(gpu("a", "1"));
  log.upsert(gpu("b", "2"));
  EXPECT_TRUE(log.takeFrames().empty()) << "nothing is sent while disconnected";
  EXPECT_TRUE(log.onWelcome(snapshotWelcome()).empty());
  auto frames = log.takeFrames();
  ASSERT_EQ(frames.size(), 1u);
  auto s = parse<protocol::Snapshot>(frames[0]);
  EXPECT_EQ(s.epoch, 42u);
  EXPECT_EQ(s.seq, 1u);
  ASSERT_EQ(s.objects.size(), 2u);
  EXPECT_EQ(s.objects[1].name, "b");
  EXPECT_EQ(s.objects[1].resourceVersion, "2");
  EXPECT_TRUE(log.takeFrames().empty()) << "nothing changed since";
  EXPECT_EQ(log.outboxDepth(), 1u);
  log.onAck(1);
  EXPECT_EQ(log.outboxDepth(), 0u);
  EXPECT_EQ(log.ackedSeq(), 1u);
}

TEST(SyncLogTest, ChangesBecomeCoalescedSequencedDeltas) {
  SyncLog log({}, 1);
  log.upsert(gpu("a", "1"));
  log.upsert(gpu("b", "1"));
  log.onWelcome(snapshotWelcome());
  log.takeFrames();
  log.onAck(1);
  log.upsert(gpu("a", "1"));  // an informer resync: same resourceVersion, nothing to say
  EXPECT_TRUE(log.takeFrames().empty());
  log.upsert(gpu("a", "2"));
  log.upsert(gpu("a", "3"));  // coalesced: only the latest goes
  log.remove({"GPU", "", "b"});
  log.remove({"GPU", "", "never-seen"});
  auto frames = log.takeFrames();
  ASSERT_EQ(frames.size(), 1u);
  auto d = parse<protocol::Delta>(frames[0]);
  EXPECT_EQ(d.seq, 2u);
  ASSERT_EQ(d.upserts.size(), 1u);
  EXPECT_EQ(d.upserts[0].resourceVersion, "3");
  ASSERT_EQ(d.deletes.size(), 1u);
  EXPECT_EQ(d.deletes[0].name, "b");
  log.upsert(gpu("c", "9"));
  EXPECT_EQ(parse<protocol::Delta>(log.takeFrames().at(0)).seq, 3u) << "each delta is the previous seq + 1";
}

TEST(SyncLogTest, AReconnectResendsExactlyWhatThePortalLacks) {
  SyncLog log({.maxObjectsPerDelta = 1}, 7);
  log.onWelcome(snapshotWelcome());
  log.takeFrames();  // snapshot 1
  log.onAck(1);
  log.upsert(gpu("a", "1"));
  log.upsert(gpu("b", "1"));
  log.upsert(gpu("c", "1"));
  auto sent = log.takeFrames();  // deltas 2, 3, 4
  ASSERT_EQ(sent.size(), 3u);
  log.onAck(2);
  log.onDisconnected();
  log.upsert(gpu("d", "1"));
  EXPECT_TRUE(log.takeFrames().empty());
  EXPECT_EQ(log.lastSeq(), 4u) << "the agent tells the portal its last seq in auth";
  // The portal committed 3 before the link broke (its ack was lost): resend 4 only, then d.
  auto resent = log.onWelcome(resumeWelcome(4));
  ASSERT_EQ(resent.size(), 1u);
  EXPECT_EQ(resent[0], sent[2]);
  auto next = log.takeFrames();
  ASSERT_EQ(next.size(), 1u);
  auto d = parse<protocol::Delta>(next[0]);
  EXPECT_EQ(d.seq, 5u);
  EXPECT_EQ(d.upserts.at(0).name, "d");
}

TEST(SyncLogTest, AResumePointItCannotServeMeansASnapshot) {
  for (uint64_t from : {uint64_t(0), uint64_t(1), uint64_t(9)}) {
    SyncLog log({}, 7);
    log.upsert(gpu("a", "1"));
    log.onWelcome(snapshotWelcome());
    log.takeFrames();
    log.onAck(1);
    log.upsert(gpu("a", "2"));
    log.takeFrames();  // delta 2
    log.onAck(2);
    log.onDisconnected();
    // 0: none; 1: behind what it acked (the portal lost state); 9: ahead of anything sent.
    EXPECT_TRUE(log.onWelcome(resumeWelcome(from)).empty()) << from;
    auto frames = log.takeFrames();
    ASSERT_EQ(frames.size(), 1u) << from;
    auto s = parse<protocol::Snapshot>(frames[0]);
    EXPECT_EQ(s.seq, 3u);
    EXPECT_EQ(s.objects.at(0).resourceVersion, "2");
  }
}

TEST(SyncLogTest, ResyncReplacesTheOutboxWithASnapshot) {
  SyncLog log({}, 3);
  log.onWelcome(snapshotWelcome());
  log.takeFrames();
  log.upsert(gpu("a", "1"));
  log.takeFrames();  // delta 2, unacked
  log.onResync();
  auto frames = log.takeFrames();
  ASSERT_EQ(frames.size(), 1u);
  auto s = parse<protocol::Snapshot>(frames[0]);
  EXPECT_EQ(s.seq, 3u);
  EXPECT_EQ(s.objects.size(), 1u);
  EXPECT_EQ(log.outboxDepth(), 1u) << "only the snapshot is in flight now";
  log.onAck(2);  // a late ack of the replaced delta changes nothing
  EXPECT_EQ(log.outboxDepth(), 1u);
}

TEST(SyncLogTest, TheWindowBoundsMessagesInFlight) {
  SyncLog log({.window = 2, .maxObjectsPerDelta = 1}, 3);
  log.onWelcome(snapshotWelcome());
  log.takeFrames();  // the snapshot fills one slot
  for (int i = 0; i < 5; ++i) log.upsert(gpu("g" + std::to_string(i), "1"));
  EXPECT_EQ(log.takeFrames().size(), 1u);
  EXPECT_EQ(log.pendingChanges(), 4u);
  log.onAck(2);
  EXPECT_EQ(log.takeFrames().size(), 2u);
  EXPECT_EQ(log.takeFrames().size(), 0u) << "window full";
}

TEST(SyncLogTest, OverflowWhileAwayStartsANewEpoch) {
  uint64_t next = 100;
  SyncLog log({.maxPendingObjects = 3}, 5, [&] { return next++; });
  log.onWelcome(snapshotWelcome());
  log.takeFrames();
  log.onAck(1);
  log.onDisconnected();
  for (int i = 0; i < 3; ++i) log.upsert(gpu("g" + std::to_string(i), "1"));
  EXPECT_EQ(log.epoch(), 5u);
  log.upsert(gpu("g3", "1"));  // the fourth waiting change overflows
  EXPECT_EQ(log.overflows(), 1u);
  EXPECT_EQ(log.epoch(), 100u);
  EXPECT_EQ(log.lastSeq(), 0u);
  EXPECT_TRUE(log.snapshotOwed());
  // Even a portal that offers to resume gets the snapshot.
  EXPECT_TRUE(log.onWelcome(resumeWelcome(1)).empty());
  auto s = parse<protocol::Snapshot>(log.takeFrames().at(0));
  EXPECT_EQ(s.epoch, 100u);
  EXPECT_EQ(s.seq, 1u);
  EXPECT_EQ(s.objects.size(), 4u);
}

TEST(SyncLogTest, OverflowWhileConnectedSendsASnapshotInTheSameEpoch) {
  SyncLog log({.window = 1, .maxPendingObjects = 2}, 5, [] { return uint64_t(99); });
  log.onWelcome(snapshotWelcome());
  log.takeFrames();  // snapshot 1 in flight, never acked: the window is full
  for (int i = 0; i < 3; ++i) log.upsert(gpu("g" + std::to_string(i), "1"));
  EXPECT_EQ(log.overflows(), 1u);
  EXPECT_EQ(log.epoch(), 5u) << "the session's epoch cannot change";
  auto s = parse<protocol::Snapshot>(log.takeFrames().at(0));
  EXPECT_EQ(s.seq, 2u);
  EXPECT_EQ(s.objects.size(), 3u);
}

TEST(SyncLogTest, ALargeSnapshotGoesInPartsUnderTheFrameLimits) {
  SyncLog log({.maxObjectsPerDelta = 500, .maxDeltaBytes = 4096}, 7);
  for (int i = 0; i < 100; ++i) log.upsert(gpu("g" + std::to_string(i), "1"));
  log.onWelcome(snapshotWelcome());
  auto frames = log.takeFrames();
  ASSERT_GT(frames.size(), 2u) << "100 objects of ~100 bytes do not fit 4 KiB parts";
  std::set<std::string> names;
  for (size_t i = 0; i < frames.size(); ++i) {
    auto s = parse<protocol::Snapshot>(frames[i]);
    EXPECT_EQ(s.epoch, 7u);
    EXPECT_EQ(s.seq, 1u) << "one seq for every part";
    EXPECT_EQ(s.part, i);
    EXPECT_EQ(s.more, i + 1 < frames.size());
    EXPECT_LE(frames[i].size(), 4096u + 1024u) << "a part stays near the byte budget";
    for (auto& o : s.objects) EXPECT_TRUE(names.insert(o.name).second) << o.name << " sent twice";
  }
  EXPECT_EQ(names.size(), 100u);
  EXPECT_EQ(log.outboxDepth(), frames.size());
  // Resumed before the ack, every part goes again; the ack of the seq clears them all.
  log.onDisconnected();
  EXPECT_EQ(log.onWelcome(resumeWelcome(1)).size(), frames.size());
  log.onAck(1);
  EXPECT_EQ(log.outboxDepth(), 0u);
  // An empty cluster is still one (empty, final) snapshot.
  SyncLog empty({}, 8);
  empty.onWelcome(snapshotWelcome());
  auto one = empty.takeFrames();
  ASSERT_EQ(one.size(), 1u);
  auto s = parse<protocol::Snapshot>(one[0]);
  EXPECT_TRUE(s.objects.empty());
  EXPECT_FALSE(s.more);
}

// The portal's sync rules, as src/portal/sqlite_store.cpp and agent_session.cpp apply them.
struct ModelPortal {
  bool hasState = false;
  uint64_t epoch = 0, lastSeq = 0, sessionEpoch = 0;
  bool resyncAsked = false;
  std::map<std::string, std::string> table;  // name -> resourceVersion
  int applied = 0;
  std::map<uint64_t, int> appliedSeqs;  // seq of this epoch -> times applied

  std::optional<protocol::Snapshot> staged;  // a snapshot's parts so far (per session)

  protocol::Welcome welcome(uint64_t agentEpoch, uint64_t agentLastSeq) {
    sessionEpoch = agentEpoch;
    resyncAsked = false;
    staged.reset();
    protocol::Welcome w{"s", true, 0};
    w.needSnapshot = !(hasState && epoch == agentEpoch && agentLastSeq >= lastSeq);
    w.resumeFromSeq = w.needSnapshot ? 0 : lastSeq + 1;
    return w;
  }
  // The portal's answer to one frame (an ack or a resync), if any.
  std::optional<protocol::Message> receive(const std::string& frame) {
    auto m = protocol::parseMessage(frame);
    EXPECT_TRUE(m);
    if (auto* s = std::get_if<protocol::Snapshot>(&*m)) {
      EXPECT_EQ(s->epoch, sessionEpoch);
      // Parts in order, one seq, nothing between them (the portal closes the session otherwise).
      EXPECT_EQ(s->part, staged ? staged->part + 1 : 0);
      if (staged) {
        EXPECT_EQ(s->seq, staged->seq);
        s->objects.insert(s->objects.begin(), staged->objects.begin(), staged->objects.end());
      }
      if (s->more) {
        staged = *s;
        return std::nullopt;  // acked with the last part
      }
      staged.reset();
      if (epoch != s->epoch) appliedSeqs.clear();
      table.clear();
      for (auto& o : s->objects) table[o.name] = o.resourceVersion;
      hasState = true;
      epoch = s->epoch;
      lastSeq = s->seq;
      resyncAsked = false;
      return protocol::Ack{s->seq};
    }
    auto& d = std::get<protocol::Delta>(*m);
    EXPECT_FALSE(staged) << "a delta between a snapshot's parts";
    if (!hasState || d.epoch != epoch || d.seq > lastSeq + 1) {
      if (resyncAsked) return std::nullopt;
      resyncAsked = true;
      return protocol::Resync{"gap"};
    }
    if (d.seq <= lastSeq) return protocol::Ack{d.seq};  // duplicate
    for (auto& o : d.upserts) table[o.name] = o.resourceVersion;
    for (auto& k : d.deletes) table.erase(k.name);
    lastSeq = d.seq;
    ++appliedSeqs[d.seq];
    return protocol::Ack{d.seq};
  }
};

TEST(SyncLogTest, RandomCutsNeitherLoseNorDuplicateAnUpdate) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    uint64_t epochs = 1000;
    SyncLog log({.window = 4, .maxPendingObjects = 40, .maxObjectsPerDelta = 3}, epochs, [&] { return ++epochs; });
    ModelPortal portal;
    std::map<std::string, int> rv;
    bool connected = false;
    auto pick = [&](int n) { return int(rng() % uint32_t(n)); };
    for (int step = 0; step < 3000; ++step) {
      const int op = pick(100);
      if (op < 50) {
        const std::string name = "g" + std::to_string(pick(60));
        if (pick(5) == 0) log.remove({"GPU", "", name});
        else log.upsert(gpu(name, std::to_string(++rv[name])));
      } else if (op < 85 && connected) {
        // Deliver what the agent sends; the link may break before, between or after frames,
        // and answers (acks, resyncs) may be lost with it.
        auto frames = log.takeFrames();
        const bool cut = pick(15) == 0;
        const size_t deliver = cut ? size_t(pick(int(frames.size()) + 1)) : frames.size();
        std::vector<protocol::Message> answers;
        for (size_t i = 0; i < deliver; ++i)
          if (auto a = portal.receive(frames[i])) answers.push_back(*a);
        const size_t heard = cut ? size_t(pick(int(answers.size()) + 1)) : answers.size();
        for (size_t i = 0; i < heard; ++i) {
          if (auto* a = std::get_if<protocol::Ack>(&answers[i])) log.onAck(a->seq);
          else log.onResync();
        }
        if (cut) {
          log.onDisconnected();
          connected = false;
        }
      } else if (!connected && op >= 85) {
        auto w = portal.welcome(log.epoch(), log.lastSeq());
        connected = true;
        for (auto& f : log.onWelcome(w))
          if (auto a = portal.receive(f)) {
            if (auto* ack = std::get_if<protocol::Ack>(&*a)) log.onAck(ack->seq);
            else log.onResync();
          }
      }
    }
    // Heal and drain.
    if (!connected) {
      auto w = portal.welcome(log.epoch(), log.lastSeq());
      for (auto& f : log.onWelcome(w))
        if (auto a = portal.receive(f); a && std::holds_alternative<protocol::Ack>(*a))
          log.onAck(std::get<protocol::Ack>(*a).seq);
    }
    for (int i = 0; i < 1000 && (log.outboxDepth() > 0 || log.pendingChanges() > 0 || log.snapshotOwed()); ++i)
      for (auto& f : log.takeFrames())
        if (auto a = portal.receive(f)) {
          if (auto* ack = std::get_if<protocol::Ack>(&*a)) log.onAck(ack->seq);
          else log.onResync();
        }
    std::map<std::string, std::string> want;
    for (auto& o : log.objects()) want[o.name] = o.resourceVersion;
    EXPECT_EQ(portal.table, want) << "seed " << seed;
    EXPECT_EQ(portal.epoch, log.epoch()) << "seed " << seed;
    for (auto& [seq, n] : portal.appliedSeqs) EXPECT_EQ(n, 1) << "seed " << seed << " seq " << seq;
    EXPECT_EQ(log.outboxDepth(), 0u);
  }
}

}  // namespace
}  // namespace tf::agent
