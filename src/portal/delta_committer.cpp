#include "portal/delta_committer.h"

namespace tf::portal {

DeltaCommitter::DeltaCommitter(Store& store, size_t maxBatch)
    : store_(store), maxBatch_(maxBatch < 1 ? 1 : maxBatch), thread_([this] { run(); }) {}

DeltaCommitter::~DeltaCommitter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void DeltaCommitter::submit(int64_t clusterId, protocol::Delta delta, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back({clusterId, std::move(delta), std::move(done)});
  }
  cv_.notify_one();
}

DeltaCommitter::Counts DeltaCommitter::counts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_;
}

void DeltaCommitter::run() {
  for (;;) {
    std::vector<Pending> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping, and everything handed in is answered
      while (!pending_.empty() && batch.size() < maxBatch_) {
        batch.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }
    std::vector<Store::ClusterDelta> items;
    items.reserve(batch.size());
    for (const auto& p : batch) items.push_back({p.clusterId, &p.delta});
    auto results = store_.applyDeltas(items);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++counts_.transactions;
      counts_.deltas += batch.size();
    }
    for (size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(results[i]));
  }
}

}  // namespace tf::portal
