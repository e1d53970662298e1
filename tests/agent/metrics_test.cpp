#include "agent/metrics.h"

#include <gtest/gtest.h>

namespace tf::agent {
namespace {

using nlohmann::json;

protocol::SyncedObject gpu(const std::string& name, json status) {
  return {"GPU", "", name, "1", {{"metadata", {{"name", name}}}, {"status", std::move(status)}}};
}

double valueOf(const std::vector<protocol::MetricPoint>& points, const std::string& series) {
  for (const auto& p : points)
    if (p.series == series) return p.value;
  ADD_FAILURE() << "no series " << series;
  return -1;
}

TEST(SampleGpus, AllocatedFractionsAndAppsPerGpu) {
  const json status = {{"capacity", {{"tflops", "1000"}, {"vram", "80Gi"}}},
                       {"available", {{"tflops", "250"}, {"vram", "60Gi"}}},
                       {"runningApps", {{{"name", "a"}, {"count", 2}}, {{"name", "b"}, {"count", 1}}}}};
  auto points = sampleGpus({gpu("gpu-a", status), {"GPUPool", "", "p", "1", json::object()}}, 1234);
  ASSERT_EQ(points.size(), 3u);
  EXPECT_DOUBLE_EQ(valueOf(points, "gpu.gpu-a.tflops"), 0.75);
  EXPECT_DOUBLE_EQ(valueOf(points, "gpu.gpu-a.vram"), 0.25);
  EXPECT_DOUBLE_EQ(valueOf(points, "gpu.gpu-a.apps"), 3);
  for (const auto& p : points) EXPECT_EQ(p.tsMs, 1234);
}

TEST(SampleGpus, GpusWithoutAUsableStatusGiveNothing) {
  EXPECT_TRUE(sampleGpus({gpu("no-status", nullptr)}, 1).empty());
  EXPECT_TRUE(sampleGpus({gpu("no-capacity", {{"available", {{"tflops", "1"}}}})}, 1).empty());
  EXPECT_TRUE(sampleGpus({gpu("zero", {{"capacity", {{"tflops", "0"}, {"vram", "0"}}},
                                       {"available", {{"tflops", "0"}, {"vram", "0"}}}})},
                         1)
                  .empty());
  EXPECT_TRUE(sampleGpus({gpu("garbage", {{"capacity", {{"tflops", "lots"}}}, {"available", {{"tflops", "1"}}}})}, 1)
                  .empty());
  // More available than capacity (a stale status) reads as nothing allocated, not negative.
  auto points = sampleGpus({gpu("stale", {{"capacity", {{"tflops", "10"}}}, {"available", {{"tflops", "20"}}}})}, 1);
  ASSERT_EQ(points.size(), 2u);
  EXPECT_DOUBLE_EQ(valueOf(points, "gpu.stale.tflops"), 0);
  EXPECT_DOUBLE_EQ(valueOf(points, "gpu.stale.apps"), 0);
}

TEST(MetricsBuffer, DropsTheOldestBeyondItsBoundAndCountsThem) {
  MetricsBuffer buf(3);
  buf.add({{"s", 1, 1}, {"s", 2, 2}});
  buf.add({{"s", 3, 3}, {"s", 4, 4}, {"s", 5, 5}});
  EXPECT_EQ(buf.size(), 3u);
  EXPECT_EQ(buf.dropped(), 2u);
  auto frames = buf.takeFrames(2);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(buf.size(), 0u);
  std::vector<int64_t> ts;
  for (const auto& f : frames) {
    auto m = protocol::parseMessage(f);
    ASSERT_TRUE(m) << m.error().reason;
    for (const auto& p : std::get<protocol::Metrics>(*m).points) ts.push_back(p.tsMs);
  }
  EXPECT_EQ(ts, (std::vector<int64_t>{3, 4, 5})) << "the newest kept, in order";
  EXPECT_TRUE(buf.takeFrames(2).empty());
}

}  // namespace
}  // namespace tf::agent
