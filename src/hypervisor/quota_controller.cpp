#include "hypervisor/quota_controller.h"

#include <algorithm>
#include <numeric>

namespace tf::hypervisor {

std::vector<uint32_t> computeShares(const std::vector<VgpuObservation>& vgpus) {
  const size_t n = vgpus.size();
  std::vector<uint32_t> share(n);
  std::vector<bool> busy(n);
  int64_t lendable = 10000;
  for (size_t i = 0; i < n; ++i) {
    const DeviceGrant& g = vgpus[i].vgpu->devices[vgpus[i].device];
    share[i] = g.requestBp;
    // Busy: launching, and using most of what it was allowed, so it could use more.
    busy[i] = vgpus[i].active && vgpus[i].usedBp * 10 >= vgpus[i].currentBp * 8;
    // What it keeps: its whole request while it launches anything (a returning owner may see
    // little of the device while others borrow it, so use is no measure of its demand); what it
    // used if it launched nothing.
    lendable -= vgpus[i].active ? g.requestBp : std::min(g.requestBp, vgpus[i].usedBp);
  }
  if (lendable <= 0) return share;
  // Hand the rest to busy vGPUs up to their limits: higher QoS first, equal QoS by weight.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return vgpus[a].vgpu->request.qos > vgpus[b].vgpu->request.qos;
  });
  for (size_t k = 0; k < n && lendable > 0;) {
    Qos level = vgpus[order[k]].vgpu->request.qos;
    size_t end = k;
    int weights = 0;
    while (end < n && vgpus[order[end]].vgpu->request.qos == level) {
      if (busy[order[end]]) weights += qosWeight(level);
      ++end;
    }
    // Water-fill within the level: shares capped at limits, leftovers to the others.
    for (int round = 0; round < 4 && lendable > 0 && weights > 0; ++round) {
      int64_t pool = lendable;
      int nextWeights = 0;
      for (size_t j = k; j < end; ++j) {
        size_t i = order[j];
        if (!busy[i]) continue;
        const uint32_t cap = vgpus[i].vgpu->devices[vgpus[i].device].limitBp;
        int64_t give = std::min<int64_t>(pool * qosWeight(level) / weights, cap - share[i]);
        if (give > 0) {
          share[i] += static_cast<uint32_t>(give);
          lendable -= give;
        }
        if (share[i] < cap) nextWeights += qosWeight(level);
      }
      weights = nextWeights;
    }
    k = end;
  }
  return share;
}

} // namespace tf::hypervisor
