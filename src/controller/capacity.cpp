#include "controller/capacity.h"

#include "allocator/expansion.h"

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

// Host memory and disk lent to VRAM: the allocator's rule, which the scheduler and the
// hypervisor use too (whole MiB of each, so the figure reads "373456Mi"). A fact the node has
// not published lends nothing here (the virtual figure is informational, as TensorFusion's);
// the scheduler expands no GPU of such a node.
Quantity virtualVram(const Quantity& vram, const std::optional<Quantity>& ramSize,
                     const std::optional<Quantity>& diskSize, const Oversubscription& r) {
  const allocator::VramExpansion e{ramSize ? r.vramExpandToHostMem : 0, diskSize ? r.vramExpandToHostDisk : 0};
  allocator::HostFacts host;
  if (ramSize) host.ramBytes = ramSize->value();
  if (diskSize) host.diskBytes = diskSize->value();
  auto lent = allocator::nodeVramLent(e, host);
  return vram + Quantity::fromInt(lent ? *lent : 0, Quantity::Format::BinarySI);
}

void Totals::addGpu(const k8s::api::v1::GpuStatus& gpu) {
  tflops += gpu.capacity.tflops;
  vram += gpu.capacity.vram;
  availableTflops += gpu.available.tflops;
  availableVram += gpu.available.vram;
  ++gpus;
}

}  // namespace tf::controller
