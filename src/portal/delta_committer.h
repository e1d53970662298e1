// Group commit for agents' deltas: sessions hand their deltas here and are answered (on the
// committer's thread) once the delta is committed; while one transaction is being committed
// (its fsync), the deltas that arrive meanwhile gather and go together in the next one
// (Store::applyDeltas). With many agents that is one fsync for many acks instead of one each.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "portal/store.h"

namespace tf::portal {

class DeltaCommitter {
public:
  using Done = std::function<void(Result<DeltaOutcome>)>;
  // `maxBatch`: at most this many deltas per transaction.
  explicit DeltaCommitter(Store& store, size_t maxBatch = 256);
  ~DeltaCommitter();  // commits what was handed in, answers it, then stops
  DeltaCommitter(const DeltaCommitter&) = delete;
  DeltaCommitter& operator=(const DeltaCommitter&) = delete;

  // `done` runs on the committer's thread, once, after the commit (or its failure).
  void submit(int64_t clusterId, protocol::Delta delta, Done done);

  // How many transactions and deltas so far (for tests and benchmarks).
  struct Counts {
    uint64_t transactions = 0, deltas = 0;
  };
  Counts counts() const;

private:
  struct Pending {
    int64_t clusterId;
    protocol::Delta delta;
    Done done;
  };
  void run();

  Store& store_;
  const size_t maxBatch_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> pending_;
  bool stopping_ = false;
  Counts counts_;
  std::thread thread_;
};

}  // namespace tf::portal
