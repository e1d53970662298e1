// TensorFusion's placement scores (reference §4.6, strategy_*.go), 0..100.
// With ta/va = available TFLOPS/VRAM in percent of capacity and tu/vu = 100 - ta/va (used):
//   norm(v, t)            = clamp(round(v * 0.7 + t * 0.3), 0, 100)
//   CompactFirst          node and GPU: norm(vu, tu)        (fill used GPUs first)
//   LowLoadFirst          node and GPU: norm(va, ta)        (spread)
//   NodeCompactGPULowLoad node: norm(vu, tu); GPU inside the node: norm(va, ta)
// A node's score is the integer mean of its GPUs' node-level scores.
#pragma once

#include "allocator/types.h"

namespace tf::allocator {

inline constexpr double kVramWeight = 0.7;
inline constexpr double kTflopsWeight = 0.3;

int gpuScore(Placement mode, const Amount& capacity, const Amount& available, bool forNode);

}  // namespace tf::allocator
