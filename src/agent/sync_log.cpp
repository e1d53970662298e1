#include "agent/sync_log.h"

namespace tf::agent {

size_t approximateBytes(const protocol::SyncedObject& o) {
  return o.kind.size() + o.ns.size() + o.name.size() + o.resourceVersion.size() + o.body.dump().size() + 64;
}

SyncLog::SyncLog(SyncLimits limits, uint64_t epoch, std::function<uint64_t()> newEpoch)
    : limits_(limits), newEpoch_(std::move(newEpoch)), epoch_(epoch) {}

void SyncLog::upsert(protocol::SyncedObject object) {
  ObjectKeyTuple key{object.kind, object.ns, object.name};
  auto it = mirror_.find(key);
  if (it != mirror_.end() && it->second.resourceVersion == object.resourceVersion) return;
  mirror_[key] = object;
  addPending(key, std::move(object));
}

void SyncLog::remove(const protocol::ObjectKey& k) {
  ObjectKeyTuple key{k.kind, k.ns, k.name};
  if (mirror_.erase(key) == 0) return;
  addPending(key, std::nullopt);
}

void SyncLog::addPending(const ObjectKeyTuple& key, std::optional<protocol::SyncedObject> object) {
  if (snapshotOwed_) return;  // the snapshot will carry the mirror as it is then
  Change& c = pending_[key];
  pendingBytes_ -= c.bytes;
  c.bytes = object ? approximateBytes(*object) : std::get<0>(key).size() + std::get<1>(key).size() +
                                                     std::get<2>(key).size() + 32;
  c.object = std::move(object);
  pendingBytes_ += c.bytes;
  if (pending_.size() > limits_.maxPendingObjects || pendingBytes_ > limits_.maxPendingBytes) overflow();
}

void SyncLog::overflow() {
  ++overflows_;
  pending_.clear();
  pendingBytes_ = 0;
  snapshotOwed_ = true;
  if (!connected_ && newEpoch_) {
    // Nothing of the old epoch can be resumed: start a new one, which the portal answers with
    // needSnapshot at the next welcome.
    epoch_ = newEpoch_();
    lastSeq_ = ackedSeq_ = 0;
    outbox_.clear();
  }
}

std::vector<std::string> SyncLog::onWelcome(const protocol::Welcome& w) {
  connected_ = true;
  if (w.needSnapshot || snapshotOwed_) {
    snapshotOwed_ = true;
    return {};
  }
  const uint64_t from = w.resumeFromSeq;
  // The portal holds everything below `from`. It cannot be ahead of us, nor behind what it
  // acked; and what it lacks must still be in the outbox (or be covered by a snapshot there).
  const bool covered = outbox_.empty() ? from == lastSeq_ + 1
                                       : from > ackedSeq_ && from <= lastSeq_ + 1 &&
                                             (from >= outbox_.front().seq || outbox_.front().snapshot);
  if (from == 0 || !covered) {
    snapshotOwed_ = true;
    return {};
  }
  if (from > 0) onAck(from - 1);
  std::vector<std::string> frames;
  for (const Entry& e : outbox_) frames.push_back(e.frame);
  return frames;
}

void SyncLog::onAck(uint64_t seq) {
  if (seq > lastSeq_) return;  // not ours (another epoch's): ignore
  if (seq > ackedSeq_) ackedSeq_ = seq;
  while (!outbox_.empty() && outbox_.front().seq <= seq) outbox_.pop_front();
}

void SyncLog::onResync() { snapshotOwed_ = true; }

void SyncLog::onDisconnected() { connected_ = false; }

std::vector<protocol::SyncedObject> SyncLog::objects() const {
  std::vector<protocol::SyncedObject> out;
  out.reserve(mirror_.size());
  for (const auto& [k, o] : mirror_) out.push_back(o);
  return out;
}

std::vector<std::string> SyncLog::takeFrames() {
  std::vector<std::string> frames;
  if (!connected_) return frames;
  if (snapshotOwed_) {
    // Replaces the portal's table: what is in flight or waiting is part of it.
    outbox_.clear();
    pending_.clear();
    pendingBytes_ = 0;
    snapshotOwed_ = false;
    // In parts of at most maxDeltaBytes / maxObjectsPerDelta, one seq for all: the portal
    // applies the whole at the last part, and acks that seq.
    const uint64_t seq = ++lastSeq_;
    protocol::Snapshot s{epoch_, seq, {}, 0, false};
    size_t bytes = 0;
    const auto emit = [&](bool more) {
      s.more = more;
      outbox_.push_back({seq, true, protocol::serialize(s)});
      frames.push_back(outbox_.back().frame);
      s.objects.clear();
      ++s.part;
      bytes = 0;
    };
    for (const auto& [key, o] : mirror_) {
      const size_t n = approximateBytes(o);
      if (!s.objects.empty() && (bytes + n > limits_.maxDeltaBytes || s.objects.size() >= limits_.maxObjectsPerDelta))
        emit(true);
      s.objects.push_back(o);
      bytes += n;
    }
    emit(false);
    return frames;
  }
  while (!pending_.empty() && outbox_.size() < limits_.window) {
    protocol::Delta d{epoch_, 0, {}, {}};
    size_t bytes = 0;
    auto it = pending_.begin();
    while (it != pending_.end() && d.upserts.size() + d.deletes.size() < limits_.maxObjectsPerDelta &&
           (bytes == 0 || bytes + it->second.bytes <= limits_.maxDeltaBytes)) {
      const auto& [kind, ns, name] = it->first;
      if (it->second.object)
        d.upserts.push_back(std::move(*it->second.object));
      else
        d.deletes.push_back({kind, ns, name});
      bytes += it->second.bytes;
      pendingBytes_ -= it->second.bytes;
      it = pending_.erase(it);
    }
    d.seq = ++lastSeq_;
    outbox_.push_back({d.seq, false, protocol::serialize(d)});
    frames.push_back(outbox_.back().frame);
  }
  return frames;
}

}  // namespace tf::agent
