// `tensor-fusion controller`: the operator process. It serves /healthz, /readyz and /metrics
// at once; with leader election it waits for the Lease, and only the leader starts the
// informers and reconcilers (a standby that takes over starts from a fresh list, so it acts on
// what is in the cluster, never on what it remembers). Losing the lease ends the process, as
// controller-runtime does, so the Deployment restarts it as a clean standby.
//
//   ManagerOptions o; o.leaderElect = true; o.leaseNamespace = "tensor-fusion-sys";
//   return runManager(o, stop);   // exit code
#pragma once

#include <optional>
#include <string>

#include "controller/connection_api.h"
#include "controller/context.h"
#include "k8s/stop_signal.h"
#include "webhook/server.h"

namespace tf::controller {

struct ManagerOptions {
  std::string kubeconfig;  // empty: KUBECONFIG, ~/.kube/config, then in-cluster
  bool leaderElect = false;
  std::string leaseNamespace = "tensor-fusion-sys";
  std::string leaseName = "tensor-fusion-controller";
  std::string identity;  // default: the host name; a random suffix is always added
  k8s::Duration leaseDuration = std::chrono::seconds(15);
  std::string listenHost = "0.0.0.0";
  int listenPort = 8080;  // 0: any free port (printed)
  int workers = 2;
  // The kube-scheduler extender (src/scheduler), served while leading; port < 0: none.
  std::string extenderHost = "0.0.0.0";
  int extenderPort = -1;
  Settings settings;
  // The admission webhook, served by every replica (leader or not) when set.
  std::optional<webhook::WebhookOptions> webhook;
  // GET /api/connection on the health port, every replica (connection_api.h).
  ConnectionApiOptions connectionApi;
  // Where remote clients reach that API, for the webhook to tell them. Empty: this
  // Service's cluster IP (works without cluster DNS), else the webhook's default DNS name.
  std::string operatorEndpoint;
  std::string controllerService = "tensor-fusion-controller";
};

int runManager(const ManagerOptions& options, k8s::StopSignal& stop);

}  // namespace tf::controller
