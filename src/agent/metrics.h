// The lossy utilization stream: samples of the mirrored GPU objects, buffered up to a bound and
// sent as `metrics` frames (never acked, never resent). No I/O and no locking: the agent calls
// it under its mutex. When the buffer is full the oldest points go, counted in dropped()
// (reported in heartbeat.droppedMetrics): utilization is worth having fresh, not complete.
//
//   MetricsBuffer buf(4096);
//   buf.add(sampleGpus(log.objects(), nowMs));    // every sample interval
//   for (auto& f : buf.takeFrames(500)) send(f);  // while online
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "control_protocol/messages.h"

namespace tf::agent {

// Per GPU object (status.capacity vs status.available): "gpu.<name>.tflops" and
// "gpu.<name>.vram", the allocated fraction (0..1), and "gpu.<name>.apps", the running apps.
// GPUs without a usable status (no capacity yet, unparsable quantities) give no points.
std::vector<protocol::MetricPoint> sampleGpus(const std::vector<protocol::SyncedObject>& objects, int64_t tsMs);

class MetricsBuffer {
public:
  explicit MetricsBuffer(size_t capacity) : capacity_(capacity) {}
  void add(std::vector<protocol::MetricPoint> points);
  // Everything buffered, as metrics frames of at most `perFrame` points; the buffer empties.
  std::vector<std::string> takeFrames(size_t perFrame);
  size_t size() const { return points_.size(); }
  uint64_t dropped() const { return dropped_; }

private:
  size_t capacity_;
  std::deque<protocol::MetricPoint> points_;
  uint64_t dropped_ = 0;
};

}  // namespace tf::agent
