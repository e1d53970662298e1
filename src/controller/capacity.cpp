#include "controller/capacity.h"

namespace tf::controller {

Oversubscription ratiosOf(const k8s::api::v1::GpuPoolSpec* spec) {
  Oversubscription r;
  if (!spec || !spec->capacityConfig || !spec->capacityConfig->oversubscription) return r;
  const auto& o = *spec->capacityConfig->oversubscription;
  if (o.tflopsOversellRatio) r.tflopsOversellRatio = *o.tflopsOversellRatio;
  if (o.vramExpandToHostMem) r.vramExpandToHostMem = *o.vramExpandToHostMem;
  if (o.vramExpandToHostDisk) r.vramExpandToHostDisk = *o.vramExpandToHostDisk;
  return r;
}

namespace {
Quantity percentOf(const Quantity& q, int percent) {
  auto scaled = q.scaled(percent, 100);
  return scaled ? *scaled : q;  // ratios are bounded by the schema; out of range keeps q
}
}  // namespace

Quantity virtualTflops(const Quantity& tflops, const Oversubscription& r) {
  return percentOf(tflops, r.tflopsOversellRatio);
}

Quantity virtualVram(const Quantity& vram, const std::optional<Quantity>& ramSize,
                     const std::optional<Quantity>& diskSize, const Oversubscription& r) {
  Quantity out = vram;
  if (ramSize) out += percentOf(*ramSize, r.vramExpandToHostMem);
  if (diskSize) out += percentOf(*diskSize, r.vramExpandToHostDisk);
  return out;
}

void Totals::addGpu(const k8s::api::v1::GpuStatus& gpu) {
  tflops += gpu.capacity.tflops;
  vram += gpu.capacity.vram;
  availableTflops += gpu.available.tflops;
  availableVram += gpu.available.vram;
  ++gpus;
}

}  // namespace tf::controller
