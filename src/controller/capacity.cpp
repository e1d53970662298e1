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

// Host memory and disk lent to VRAM count in whole MiB (VRAM's unit in TensorFusion), so the
// figure reads "373456Mi", not a count of milli-bytes.
Quantity virtualVram(const Quantity& vram, const std::optional<Quantity>& ramSize,
                     const std::optional<Quantity>& diskSize, const Oversubscription& r) {
  constexpr int64_t kMiB = 1 << 20;
  int64_t lentMiB = 0;
  if (ramSize) lentMiB += percentOf(*ramSize, r.vramExpandToHostMem).value() / kMiB;
  if (diskSize) lentMiB += percentOf(*diskSize, r.vramExpandToHostDisk).value() / kMiB;
  return vram + Quantity::fromInt(lentMiB * kMiB, Quantity::Format::BinarySI);
}

void Totals::addGpu(const k8s::api::v1::GpuStatus& gpu) {
  tflops += gpu.capacity.tflops;
  vram += gpu.capacity.vram;
  availableTflops += gpu.available.tflops;
  availableVram += gpu.available.vram;
  ++gpus;
}

}  // namespace tf::controller
