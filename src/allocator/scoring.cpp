#include "allocator/scoring.h"

#include <algorithm>
#include <cmath>

namespace tf::allocator {
namespace {

double percent(int64_t part, int64_t whole) {
  return whole <= 0 ? 0.0 : static_cast<double>(part) / static_cast<double>(whole) * 100.0;
}

int norm(double vram, double tflops) {
  const double v = std::round(vram * kVramWeight + tflops * kTflopsWeight);
  return static_cast<int>(std::clamp(v, 0.0, 100.0));
}

}  // namespace

int gpuScore(Placement mode, const Amount& capacity, const Amount& available, bool forNode) {
  const double ta = percent(available.milliTflops, capacity.milliTflops);
  const double va = percent(available.vramBytes, capacity.vramBytes);
  const bool compact = mode == Placement::CompactFirst || (mode == Placement::NodeCompactGpuLowLoad && forNode);
  return compact ? norm(100 - va, 100 - ta) : norm(va, ta);
}

}  // namespace tf::allocator
