// The one-time node discovery Job (`tensor-fusion discover`): reads the node's GPUs through
// NVML and labels its Kubernetes Node with their facts, so ordinary node selectors and
// affinities can pick GPU nodes by count, model and memory:
//   tensor-fusion.ai/gpu-count=2  tensor-fusion.ai/gpu-model=H100  tensor-fusion.ai/gpu-vram=80Gi
//   tensor-fusion.ai/hardware-vendor=NVIDIA
// A node with GPUs of several models is labelled with the model of most of them.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "hypervisor/device_inventory.h"
#include "k8s/client.h"

namespace tf::hypervisor {

std::map<std::string, std::string> nodeGpuLabels(const std::vector<GpuDevice>& devices);
// Merge-patches the labels onto the Node.
Status labelNode(k8s::Client& client, const std::string& node, const std::map<std::string, std::string>& labels);

}  // namespace tf::hypervisor
