// `tensor-fusion controller`: the Kubernetes operator (src/controller).
#include <csignal>
#include <cstdio>
#include <pthread.h>
#include <cstdlib>
#include <thread>

#include "cli/commands.h"
#include "controller/manager.h"

namespace tf::cli {
namespace {

// "HOST:PORT", ":PORT" or "PORT" (host 0.0.0.0).
bool parseHostPort(const char* flag, const std::string& text, std::string& host, int& port) {
  const auto colon = text.rfind(':');
  host = colon == std::string::npos || colon == 0 ? "0.0.0.0" : text.substr(0, colon);
  try {
    port = std::stoi(colon == std::string::npos ? text : text.substr(colon + 1));
    return true;
  } catch (const std::exception&) {
    std::fprintf(stderr, "tensor-fusion controller: %s %s: expected HOST:PORT\n", flag, text.c_str());
    return false;
  }
}

}  // namespace

void addControllerCommand(CLI::App& app, int& exitCode) {
  static controller::ManagerOptions o;
  static int leaseSeconds = 15, staleSeconds = 15;
  static std::string listen = ":8080", extenderListen;
  auto* cmd = app.add_subcommand("controller", "Run the Kubernetes operator (reconcilers, leader election)");
  cmd->add_option("--kubeconfig", o.kubeconfig, "Kubeconfig (default: KUBECONFIG, ~/.kube/config, in-cluster)");
  cmd->add_flag("--leader-elect", o.leaderElect, "Lead through a Lease; stand by while another replica leads");
  cmd->add_option("--namespace", o.leaseNamespace, "Namespace of the leader Lease");
  cmd->add_option("--lease-name", o.leaseName, "Name of the leader Lease");
  cmd->add_option("--identity", o.identity, "This replica's name in the Lease, before a random suffix (default: host name)");
  cmd->add_option("--lease-seconds", leaseSeconds, "Lease duration")->check(CLI::Range(2, 300));
  cmd->add_option("--listen", listen, "HOST:PORT for /healthz, /readyz and /metrics (port 0: any)");
  cmd->add_option("--extender-listen", extenderListen,
                  "HOST:PORT of the kube-scheduler extender, served while leading (empty: none)");
  cmd->add_option("--workers", o.workers, "Workers per reconciler")->check(CLI::Range(1, 64));
  cmd->add_option("--discovery-image", o.settings.discoveryImage,
                  "Image of the one-time node discovery Jobs (empty: no Jobs)");
  cmd->add_option("--heartbeat-stale-seconds", staleSeconds, "A hypervisor silent this long is gone")
      ->check(CLI::Range(2, 3600));
  static std::string webhookListen;
  static webhook::WebhookOptions wh;
  static int webhookValidity = 365 * 24 * 3600;
  cmd->add_option("--webhook-listen", webhookListen, "HOST:PORT for the admission webhook's HTTPS (empty: no webhook)");
  cmd->add_option("--webhook-service", wh.serviceName, "Service in --namespace that the apiserver calls");
  cmd->add_option("--webhook-url", wh.url, "Call this base URL instead of the Service (a controller outside the cluster)");
  cmd->add_option("--webhook-client-image", wh.patch.defaultClientImage,
                  "Image of the init container that copies our client libraries (when the pool names none)");
  cmd->add_option("--webhook-cert-seconds", webhookValidity, "Validity of the webhook's CA and certificate")
      ->check(CLI::Range(30, 10 * 365 * 24 * 3600));
  cmd->add_option("--worker-image", o.settings.workerImage,
                  "Image of remote vGPUs' worker pods when the pool names none (default: --webhook-client-image)");
  cmd->add_option("--operator-endpoint", o.operatorEndpoint,
                  "Base URL where remote clients reach GET /api/connection (default: the cluster IP of Service "
                  "tensor-fusion-controller)");
  cmd->add_flag("--disable-connection-auth", o.connectionApi.disableAuth,
                "Answer /api/connection without checking the caller's service-account token (also "
                "DISABLE_CONNECTION_AUTH=true)");
  cmd->callback([&exitCode] {
    if (const char* v = std::getenv("DISABLE_CONNECTION_AUTH"); v && std::string(v) == "true")
      o.connectionApi.disableAuth = true;
    if (o.settings.workerImage.empty()) o.settings.workerImage = wh.patch.defaultClientImage;
    o.leaseDuration = std::chrono::seconds(leaseSeconds);
    o.settings.namespace_ = o.leaseNamespace;
    o.settings.heartbeatStaleAfter = std::chrono::seconds(staleSeconds);
    if (!parseHostPort("--listen", listen, o.listenHost, o.listenPort)) {
      exitCode = 2;
      return;
    }
    if (!webhookListen.empty()) {
      if (!parseHostPort("--webhook-listen", webhookListen, wh.listenHost, wh.port)) {
        exitCode = 2;
        return;
      }
      wh.ns = o.leaseNamespace;
      wh.validity = std::chrono::seconds(webhookValidity);
      o.webhook = wh;
    }
    if (!extenderListen.empty()) {
      if (!parseHostPort("--extender-listen", extenderListen, o.extenderHost, o.extenderPort)) {
        exitCode = 2;
        return;
      }
    }
    // SIGINT/SIGTERM end the run cleanly (a leader releases its Lease).
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    k8s::StopSignal stop;
    std::thread waiter([&] {
      int sig = 0;
      sigwait(&set, &sig);
      stop.stop();
    });
    exitCode = controller::runManager(o, stop);
    if (!stop.stopped()) pthread_kill(waiter.native_handle(), SIGTERM);
    waiter.join();
  });
}

} // namespace tf::cli
