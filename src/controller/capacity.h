// Capacity arithmetic the reconcilers share: sums of GPU capacity and availability, and the
// pool's oversubscription (virtual capacity), with TensorFusion's defaults when a pool leaves
// them unset (TFLOPS oversold 5x; VRAM expands by 50% of host memory and 70% of host disk).
//
//   Totals t; for (auto& gpu : gpus) t.add(*gpu.status);
//   Quantity vt = virtualTflops(t.tflops, ratiosOf(poolSpec));
#pragma once

#include <optional>

#include "allocator/types.h"
#include "k8s/api/quantity.h"
#include "k8s/api/v1/types.h"

namespace tf::controller {

using k8s::api::Quantity;

struct Oversubscription {
  int tflopsOversellRatio = 500;  // percent
  int vramExpandToHostMem = allocator::VramExpansion{}.toHostMemPercent;    // percent of host memory
  int vramExpandToHostDisk = allocator::VramExpansion{}.toHostDiskPercent;  // percent of host disk
};
Oversubscription ratiosOf(const k8s::api::v1::GpuPoolSpec* spec);

Quantity virtualTflops(const Quantity& tflops, const Oversubscription& r);
Quantity virtualVram(const Quantity& vram, const std::optional<Quantity>& ramSize,
                     const std::optional<Quantity>& diskSize, const Oversubscription& r);

// Sums of capacity and availability over GPUs (or nodes, or pools).
struct Totals {
  Quantity tflops = Quantity::fromInt(0);
  Quantity vram = Quantity::fromInt(0, Quantity::Format::BinarySI);
  Quantity availableTflops = Quantity::fromInt(0);
  Quantity availableVram = Quantity::fromInt(0, Quantity::Format::BinarySI);
  Quantity virtualTflops = Quantity::fromInt(0);
  Quantity virtualVram = Quantity::fromInt(0, Quantity::Format::BinarySI);
  int gpus = 0;

  void addGpu(const k8s::api::v1::GpuStatus& gpu);
  // The cluster's, pools' and nodes' statuses share these six fields: sum one in, or write all.
  template <typename Status> void addStatus(const Status& s) {
    tflops += s.totalTFlops;
    vram += s.totalVRAM;
    availableTflops += s.availableTFlops;
    availableVram += s.availableVRAM;
    virtualTflops += s.virtualTFlops;
    virtualVram += s.virtualVRAM;
  }
  template <typename Status> void writeTo(Status& s) const {
    s.totalTFlops = tflops;
    s.totalVRAM = vram;
    s.availableTFlops = availableTflops;
    s.availableVRAM = availableVram;
    s.virtualTFlops = virtualTflops;
    s.virtualVRAM = virtualVram;
  }
};

}  // namespace tf::controller
