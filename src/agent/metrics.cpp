#include "agent/metrics.h"

#include <optional>

#include "k8s/api/quantity.h"

namespace tf::agent {
namespace {

using nlohmann::json;

std::optional<double> quantity(const json& resource, const char* field) {
  auto it = resource.find(field);
  if (it == resource.end() || !it->is_string()) return std::nullopt;
  auto q = k8s::api::Quantity::parse(it->get<std::string>());
  if (!q) return std::nullopt;
  return q->toDouble();
}

// 1 - available / capacity, clamped to 0..1; nothing when the capacity is unknown or zero.
std::optional<double> allocated(const json& status, const char* field) {
  auto cap = status.find("capacity"), avail = status.find("available");
  if (cap == status.end() || avail == status.end() || !cap->is_object() || !avail->is_object()) return std::nullopt;
  auto c = quantity(*cap, field), a = quantity(*avail, field);
  if (!c || !a || *c <= 0) return std::nullopt;
  const double f = 1.0 - *a / *c;
  return f < 0 ? 0.0 : f > 1 ? 1.0 : f;
}

}  // namespace

std::vector<protocol::MetricPoint> sampleGpus(const std::vector<protocol::SyncedObject>& objects, int64_t tsMs) {
  std::vector<protocol::MetricPoint> points;
  for (const auto& o : objects) {
    if (o.kind != "GPU") continue;
    auto st = o.body.find("status");
    if (st == o.body.end() || !st->is_object()) continue;
    const std::string prefix = "gpu." + o.name + ".";
    const auto tflops = allocated(*st, "tflops"), vram = allocated(*st, "vram");
    if (!tflops && !vram) continue;  // no usable status yet
    if (tflops) points.push_back({prefix + "tflops", tsMs, *tflops});
    if (vram) points.push_back({prefix + "vram", tsMs, *vram});
    double apps = 0;
    if (auto ra = st->find("runningApps"); ra != st->end() && ra->is_array())
      for (const auto& a : *ra) apps += a.is_object() ? a.value("count", 0) : 0;
    points.push_back({prefix + "apps", tsMs, apps});
  }
  return points;
}

void MetricsBuffer::add(std::vector<protocol::MetricPoint> points) {
  for (auto& p : points) points_.push_back(std::move(p));
  while (points_.size() > capacity_) {
    points_.pop_front();
    ++dropped_;
  }
}

std::vector<std::string> MetricsBuffer::takeFrames(size_t perFrame) {
  std::vector<std::string> frames;
  if (perFrame == 0) perFrame = 1;
  while (!points_.empty()) {
    protocol::Metrics m;
    while (!points_.empty() && m.points.size() < perFrame) {
      m.points.push_back(std::move(points_.front()));
      points_.pop_front();
    }
    frames.push_back(protocol::serialize(m));
  }
  return frames;
}

}  // namespace tf::agent
