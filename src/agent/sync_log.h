// What the agent has told the portal and what it still owes: the mirror of the synced objects,
// the changes not yet sent (coalesced per object), and the outbox of sequenced messages sent
// but not yet acked. No I/O and no locking: the agent calls it under one mutex, so a snapshot
// and the deltas after it describe the same history.
//
//   SyncLog log(limits, epoch);
//   log.upsert(obj);                          // informer events
//   auth.epoch = log.epoch(); auth.lastSeq = log.lastSeq();
//   for (auto& f : log.onWelcome(welcome)) send(f);   // resend from the resume point
//   for (auto& f : log.takeFrames()) send(f);         // snapshot when owed, else deltas
//   log.onAck(ack.seq);  log.onResync();
//
// Rules (the portal's, src/portal/agent_session.cpp): a snapshot takes a seq and replaces the
// portal's table; each delta is previous seq + 1; acks are cumulative; a duplicate is acked and
// ignored; a gap or an unknown epoch is answered by resync, after which a snapshot is owed. The
// outbox holds at most `window` messages in flight; changes wait (coalesced) behind it. When
// the waiting changes overflow (more objects or bytes than the limits) they are dropped and a
// fresh snapshot is owed instead; while disconnected that also draws a new epoch, so the next
// welcome asks for the snapshot itself.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "control_protocol/messages.h"

namespace tf::agent {

struct SyncLimits {
  size_t window = 64;                         // sequenced messages in flight (unacked)
  size_t maxPendingObjects = 20000;           // changes waiting behind the window
  size_t maxPendingBytes = 16u << 20;
  size_t maxObjectsPerDelta = 500;            // <= protocol::kMaxObjectsPerMessage (also per snapshot part)
  size_t maxDeltaBytes = 256u << 10;          // well under protocol::kMaxMessageBytes (also per snapshot part)
};

using ObjectKeyTuple = std::tuple<std::string, std::string, std::string>;  // kind, ns, name

class SyncLog {
public:
  SyncLog(SyncLimits limits, uint64_t epoch, std::function<uint64_t()> newEpoch = {});

  // The cluster changed (informer events). An upsert with the resourceVersion already held is
  // ignored (informer resyncs), as is a delete of an object never seen.
  void upsert(protocol::SyncedObject object);
  void remove(const protocol::ObjectKey& key);

  // Connection events.
  // The frames to resend after a welcome (the outbox from resumeFromSeq), or none when a
  // snapshot is owed instead (takeFrames() then yields it).
  std::vector<std::string> onWelcome(const protocol::Welcome& welcome);
  void onAck(uint64_t seq);
  void onResync();
  void onDisconnected();

  // Frames to send now: the snapshot when one is owed, else deltas while the window allows.
  std::vector<std::string> takeFrames();

  uint64_t epoch() const { return epoch_; }
  uint64_t lastSeq() const { return lastSeq_; }
  uint64_t ackedSeq() const { return ackedSeq_; }
  size_t outboxDepth() const { return outbox_.size(); }
  size_t pendingChanges() const { return pending_.size(); }
  bool snapshotOwed() const { return snapshotOwed_; }
  uint64_t overflows() const { return overflows_; }
  size_t mirrorSize() const { return mirror_.size(); }
  // The objects as the agent sees them (what the portal should hold once everything is acked).
  std::vector<protocol::SyncedObject> objects() const;

private:
  struct Entry {
    uint64_t seq;   // a snapshot's parts share one
    bool snapshot;
    std::string frame;
  };
  struct Change {
    std::optional<protocol::SyncedObject> object;  // nullopt: deleted
    size_t bytes = 0;
  };
  void addPending(const ObjectKeyTuple& key, std::optional<protocol::SyncedObject> object);
  void overflow();

  SyncLimits limits_;
  std::function<uint64_t()> newEpoch_;
  uint64_t epoch_;
  uint64_t lastSeq_ = 0, ackedSeq_ = 0, overflows_ = 0;
  bool connected_ = false;
  bool snapshotOwed_ = true;  // a new epoch starts with one
  std::map<ObjectKeyTuple, protocol::SyncedObject> mirror_;
  std::map<ObjectKeyTuple, Change> pending_;
  size_t pendingBytes_ = 0;
  std::deque<Entry> outbox_;
};

// A rough size of an object on the wire (its body's and names' bytes), for the byte limits.
size_t approximateBytes(const protocol::SyncedObject& object);

}  // namespace tf::agent
