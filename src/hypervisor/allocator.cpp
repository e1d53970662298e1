#include "hypervisor/allocator.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/units.h"

namespace tf::hypervisor {

Result<std::pair<uint32_t, uint32_t>> computeShares(const VgpuRequest& r, const GpuDevice& d) {
  double req = r.percentRequest, lim = r.percentLimit;
  if (r.tflopsLimit > 0) {
    if (d.fp16Tflops <= 0)
      return invalidArgument("device " + d.uuid + " (" + d.name +
                             ") has no known TFLOPS rating; ask for a compute percent instead");
    req = r.tflopsRequest / d.fp16Tflops * 100.0;
    lim = r.tflopsLimit / d.fp16Tflops * 100.0;
  }
  if (lim > 100.0 + 1e-9)
    return resourceExhausted("a compute limit of " + std::to_string(lim) + "% is more than one " + d.name);
  auto bp = [](double p) { return static_cast<uint32_t>(std::clamp(std::lround(p * 100.0), 1l, 10000l)); };
  return std::make_pair(bp(req), bp(lim));
}

Result<std::vector<DeviceGrant>> place(const VgpuRequest& r, const std::vector<GpuDevice>& devices,
                                        const std::vector<Vgpu>& existing, const Oversubscription& o) {
  if (devices.empty()) return notFound("this node has no GPU");
  if (r.count < 1 || r.count > kMaxVgpuDevices)
    return invalidArgument("a vGPU spans 1 to " + std::to_string(kMaxVgpuDevices) + " devices, not " +
                           std::to_string(r.count));
  auto pinned = [&](const std::string& uuid) {
    return std::find(r.devices.begin(), r.devices.end(), uuid) != r.devices.end();
  };
  for (const std::string& uuid : r.devices) {
    bool known = false;
    for (const auto& d : devices) known |= d.uuid == uuid && d.present;
    if (!known) return notFound("no device " + uuid + " on this node");
    if (std::count(r.devices.begin(), r.devices.end(), uuid) > 1)
      return invalidArgument("device " + uuid + " is named twice");
  }
  const size_t want = r.devices.empty() ? static_cast<size_t>(r.count) : r.devices.size();
  std::string reasons;
  struct Fit {
    DeviceGrant grant;
    double room;
  };
  std::vector<Fit> fits;
  for (const auto& d : devices) {
    if (!d.present) continue;
    if (!r.devices.empty() && !pinned(d.uuid)) continue;
    auto shares = computeShares(r, d);
    if (!shares) {
      reasons += "\n  " + d.uuid + ": " + shares.status().message();
      continue;
    }
    uint64_t vramUsed = 0, softVramUsed = 0;
    uint64_t computeUsed = 0;
    for (const auto& v : existing)
      for (const auto& g : v.devices)
        if (g.deviceUuid == d.uuid) {
          vramUsed += v.request.vramRequest;
          if (v.request.isolation == Isolation::Soft) softVramUsed += v.request.vramRequest;
          computeUsed += g.requestBp;
        }
    // What the device can give: its memory and the pool's allowance (a cluster pod's), or the
    // hypervisor's own expansion.
    uint64_t allowance = 0;
    if (r.vramAllowance)
      if (auto it = r.vramAllowance->find(d.uuid); it != r.vramAllowance->end()) allowance = it->second;
    const double vramCap = r.vramAllowance ? static_cast<double>(d.memoryTotal + allowance)
                                           : static_cast<double>(d.memoryTotal) * (1.0 + o.vramExpandToHost);
    const double computeCap = 10000.0 * o.tflopsOversell;
    const double vramFree = vramCap - static_cast<double>(vramUsed);
    const double computeFree = computeCap - static_cast<double>(computeUsed);
    char why[256];
    if (!r.scheduled && static_cast<double>(r.vramRequest) > vramFree) {
      snprintf(why, sizeof why, "%s VRAM requested, %s free", units::formatBytes(r.vramRequest).c_str(),
               units::formatBytes(vramFree > 0 ? static_cast<uint64_t>(vramFree) : 0).c_str());
      reasons += "\n  " + d.uuid + " (" + d.name + "): " + why;
      continue;
    }
    // Soft vGPUs' memory lives in their own processes and cannot leave the device: only hard
    // and remote vGPUs (whose workers can move idle memory off it) use the expansion.
    if (!r.scheduled && r.isolation == Isolation::Soft && softVramUsed + r.vramRequest > d.memoryTotal) {
      snprintf(why, sizeof why, "%s VRAM requested by a soft vGPU, %s of device memory left to soft vGPUs",
               units::formatBytes(r.vramRequest).c_str(),
               units::formatBytes(d.memoryTotal > softVramUsed ? d.memoryTotal - softVramUsed : 0).c_str());
      reasons += "\n  " + d.uuid + " (" + d.name + "): " + why;
      continue;
    }
    if (static_cast<double>(r.vramLimit) > vramCap) {
      reasons += "\n  " + d.uuid + ": VRAM limit " + units::formatBytes(r.vramLimit) + " is more than the device can give (" +
                 units::formatBytes(static_cast<uint64_t>(vramCap)) + ": " + units::formatBytes(d.memoryTotal) +
                 " of memory" +
                 (r.vramAllowance ? " and " + units::formatBytes(allowance) + " from its pool's VRAM expansion"
                                  : o.vramExpandToHost > 0 ? " with --vram-expand" : std::string()) +
                 ")";
      continue;
    }
    if (!r.scheduled && shares->first > computeFree) {
      snprintf(why, sizeof why, "%.1f%% compute requested, %.1f%% free", shares->first / 100.0,
               std::max(0.0, computeFree / 100.0));
      reasons += "\n  " + d.uuid + " (" + d.name + "): " + why;
      continue;
    }
    // Low load first: the devices with the most room left after this request.
    double room = (vramFree - static_cast<double>(r.vramRequest)) / std::max(vramCap, 1.0) +
                  (computeFree - shares->first) / computeCap;
    fits.push_back({{d.index, d.uuid, shares->first, shares->second}, room});
  }
  if (fits.size() < want) {
    std::string need = want == 1 ? "the request does not fit on any GPU of this node"
                                 : "the request needs " + std::to_string(want) + " GPUs and fits on " +
                                       std::to_string(fits.size()) + " of this node";
    return resourceExhausted(need + (reasons.empty() ? "" : ":" + reasons));
  }
  if (r.devices.empty())
    std::stable_sort(fits.begin(), fits.end(), [](const Fit& a, const Fit& b) { return a.room > b.room; });
  else  // pinned: in the order asked for
    std::stable_sort(fits.begin(), fits.end(), [&](const Fit& a, const Fit& b) {
      return std::find(r.devices.begin(), r.devices.end(), a.grant.deviceUuid) <
             std::find(r.devices.begin(), r.devices.end(), b.grant.deviceUuid);
    });
  std::vector<DeviceGrant> out;
  for (size_t i = 0; i < want; ++i) out.push_back(fits[i].grant);
  return out;
}

} // namespace tf::hypervisor
