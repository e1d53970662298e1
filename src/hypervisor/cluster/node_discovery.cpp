#include "hypervisor/cluster/node_discovery.h"

#include <cctype>

#include "k8s/api/quantity.h"
#include "k8s/api/well_known.h"
#include "k8s/builtin.h"
#include "softgpu/device_model.h"

namespace tf::hypervisor {
namespace api = k8s::api;

std::map<std::string, std::string> nodeGpuLabels(const std::vector<GpuDevice>& devices) {
  std::map<std::string, int> models;
  std::map<std::string, uint64_t> memory;
  int count = 0;
  for (const auto& d : devices) {
    if (!d.present) continue;
    const softgpu::DeviceModel* m = softgpu::findModel(d.name);
    std::string model = m ? m->key : d.name;
    for (char& c : model)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_') c = '-';
    ++models[model];
    memory[model] = d.memoryTotal;
    ++count;
  }
  std::map<std::string, std::string> labels{{api::kNodeLabelGpuCount, std::to_string(count)}};
  if (count == 0) return labels;
  auto most = models.begin();
  for (auto it = models.begin(); it != models.end(); ++it)
    if (it->second > most->second) most = it;
  labels[api::kNodeLabelGpuModel] = most->first.substr(0, 63);
  labels[api::kNodeLabelGpuVram] =
      api::Quantity::fromInt(static_cast<int64_t>(memory[most->first]), api::Quantity::Format::BinarySI).toString();
  labels[api::kNodeLabelHardwareVendor] = "NVIDIA";
  return labels;
}

Status labelNode(k8s::Client& client, const std::string& node, const std::map<std::string, std::string>& labels) {
  nlohmann::json patch = {{"metadata", {{"labels", labels}}}};
  auto r = client.patch(k8s::builtin::kNodes, "", node, k8s::PatchType::Merge, patch);
  if (!r) return r.error().toStatus().withContext("labelling node " + node);
  return Status::ok();
}

}  // namespace tf::hypervisor
