// Measured utilization, from each GPU node's hypervisor (its HTTP API, docs/hypervisor-api.md),
// beside the allocated shares metrics.h samples from GPU objects. Lossy like every metric: a
// hypervisor that does not answer in time gives no points this round.
//
// Series (values 0..1):
//   gpu.<GPU object name>.utilization   the device's busy fraction
//   gpu.<GPU object name>.memory        device memory used / total
//   vgpu.<ns>/<pod>.compute             the pod's vGPU's share of its device in the last tick
//   vgpu.<ns>/<pod>.vram                the vGPU's memory used / its VRAM limit
//
//   auto targets = hypervisorEndpoints(hypervisorPods);        // Running, with an IP
//   auto pods = podsByVgpuName(log.objects());                 // "pod-<uid>" -> "ns/name"
//   for (auto& p : scrapeHypervisors(targets, pods, now, 2s, 16)) if (p) buffer.add(*p);
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "control_protocol/messages.h"

namespace tf::agent {

struct HypervisorEndpoint {
  std::string pod;  // ns/name, for logs
  std::string host;
  int port = 0;
};

// The hypervisor pods to ask: Running, with a pod IP; the port is the container port named
// "api", else 8000. Pods are whole objects (an informer's).
std::vector<HypervisorEndpoint> hypervisorEndpoints(const std::vector<nlohmann::json>& pods);

// The pods whose vGPUs a hypervisor lists, by the vGPU's name: "pod-<uid without dashes>" ->
// "ns/name", from the agent's mirrored Pod objects.
std::map<std::string, std::string> podsByVgpuName(const std::vector<protocol::SyncedObject>& objects);

// The points of one hypervisor's answers to GET /api/v1/devices and GET /api/v1/vgpus. vGPUs
// not made for a known pod give none; malformed entries are skipped.
std::vector<protocol::MetricPoint> usagePoints(const nlohmann::json& devices, const nlohmann::json& vgpus,
                                               const std::map<std::string, std::string>& podsByVgpu, int64_t tsMs);

// Asks one hypervisor (both GETs, each within `timeout`).
Result<std::vector<protocol::MetricPoint>> scrapeHypervisor(const HypervisorEndpoint& target,
                                                            const std::map<std::string, std::string>& podsByVgpu,
                                                            int64_t tsMs, std::chrono::milliseconds timeout);

// Asks every target, at most `parallel` at once (a cluster's hypervisors answer side by side:
// one that does not answer costs its own timeout, not everyone's). Results in targets' order.
std::vector<Result<std::vector<protocol::MetricPoint>>> scrapeHypervisors(
    const std::vector<HypervisorEndpoint>& targets, const std::map<std::string, std::string>& podsByVgpu,
    int64_t tsMs, std::chrono::milliseconds timeout, size_t parallel);

}  // namespace tf::agent
