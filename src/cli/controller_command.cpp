// `tensor-fusion controller`: the Kubernetes operator (src/controller).
#include <csignal>
#include <cstdio>
#include <pthread.h>
#include <thread>

#include "cli/commands.h"
#include "controller/manager.h"

namespace tf::cli {

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
  cmd->callback([&exitCode] {
    o.leaseDuration = std::chrono::seconds(leaseSeconds);
    o.settings.namespace_ = o.leaseNamespace;
    o.settings.heartbeatStaleAfter = std::chrono::seconds(staleSeconds);
    // HOST:PORT (HOST may be empty: every address).
    const auto hostPort = [&exitCode](const char* flag, const std::string& text, std::string& host, int& port) {
      const auto colon = text.rfind(':');
      host = colon == std::string::npos || colon == 0 ? "0.0.0.0" : text.substr(0, colon);
      try {
        port = std::stoi(colon == std::string::npos ? text : text.substr(colon + 1));
        return true;
      } catch (const std::exception&) {
        std::fprintf(stderr, "tensor-fusion controller: %s %s: expected HOST:PORT\n", flag, text.c_str());
        exitCode = 2;
        return false;
      }
    };
    if (!hostPort("--listen", listen, o.listenHost, o.listenPort)) return;
    if (!extenderListen.empty() && !hostPort("--extender-listen", extenderListen, o.extenderHost, o.extenderPort)) return;
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
