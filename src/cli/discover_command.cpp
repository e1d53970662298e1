// `tensor-fusion discover`: the node discovery Job's command (src/hypervisor/cluster).
#include <cstdio>

#include "cli/commands.h"
#include "hypervisor/cluster/node_discovery.h"
#include "k8s/config.h"

namespace tf::cli {

void addDiscoverCommand(CLI::App& app, int& exitCode) {
  static std::string node, kubeconfig;
  auto* cmd = app.add_subcommand("discover", "Label this node's Kubernetes Node with the facts of its GPUs (one-time Job)");
  cmd->add_option("--node-name", node, "The Kubernetes node to label")->required();
  cmd->add_option("--kubeconfig", kubeconfig, "Kubeconfig (default: KUBECONFIG, ~/.kube/config, in-cluster)");
  cmd->callback([&exitCode] {
    auto inventory = hypervisor::DeviceInventory::open();
    if (!inventory) {
      std::fprintf(stderr, "tensor-fusion discover: %s\n", inventory.status().toString().c_str());
      exitCode = 1;
      return;
    }
    auto config = kubeconfig.empty() ? k8s::loadDefaultConfig() : k8s::loadKubeconfigFiles({kubeconfig});
    auto client = config ? k8s::Client::create(*config) : Result<std::unique_ptr<k8s::Client>>(config.status());
    if (!client) {
      std::fprintf(stderr, "tensor-fusion discover: %s\n", client.status().toString().c_str());
      exitCode = 1;
      return;
    }
    const auto labels = hypervisor::nodeGpuLabels((*inventory)->devices());
    if (Status s = hypervisor::labelNode(**client, node, labels); !s) {
      std::fprintf(stderr, "tensor-fusion discover: %s\n", s.toString().c_str());
      exitCode = 1;
      return;
    }
    for (const auto& [k, v] : labels) std::printf("%s=%s\n", k.c_str(), v.c_str());
    exitCode = 0;
  });
}

} // namespace tf::cli
