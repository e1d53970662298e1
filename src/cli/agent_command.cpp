// `tensor-fusion agent`: the cluster agent (src/agent). Flags fall back to the environment the
// portal's install command sets up (the Secret tensor-fusion-agent-config): CLOUD_ENDPOINT,
// AGENT_ID, ENROLL_TOKEN, PORTAL_PIN; the namespace to POD_NAMESPACE.
#include <cstdio>

#include "agent/agent.h"
#include "cli/build_info.h"
#include "cli/commands.h"
#include "cli/stop_signals.h"
#include "common/env.h"
#include "k8s/client.h"
#include "k8s/config.h"

namespace tf::cli {

void addAgentCommand(CLI::App& app, int& exitCode) {
  static agent::AgentOptions o;
  static std::string kubeconfig;
  auto* cmd = app.add_subcommand("agent", "Run the cluster agent: sync this cluster to the portal, run its commands");
  cmd->add_option("--cloud-endpoint", o.portalUrl, "The portal's agent WebSocket, wss://HOST[:PORT]/_ws (CLOUD_ENDPOINT)");
  cmd->add_option("--agent-id", o.agentId, "This cluster's AgentID, org:env, as the portal named it (AGENT_ID)");
  cmd->add_option("--enroll-token", o.enrollToken, "The one-time EnrollToken; used only until the agent is enrolled (ENROLL_TOKEN)");
  cmd->add_option("--portal-pin", o.portalPin, "sha256:<hex> of the portal certificate's public key (PORTAL_PIN)");
  cmd->add_option("--namespace", o.ns, "Namespace of the credential Secret (POD_NAMESPACE; default tensor-fusion-sys)");
  cmd->add_option("--secret-name", o.secretName, "The Secret that keeps the agent's key and AgentID");
  cmd->add_option("--kubeconfig", kubeconfig, "Kubeconfig (default: KUBECONFIG, ~/.kube/config, in-cluster)");
  cmd->callback([&exitCode] {
    auto fill = [](std::string& v, const char* var) {
      if (v.empty()) v = env::getOr(var, "");
    };
    fill(o.portalUrl, "CLOUD_ENDPOINT");
    fill(o.agentId, "AGENT_ID");
    fill(o.enrollToken, "ENROLL_TOKEN");
    fill(o.portalPin, "PORTAL_PIN");
    if (auto ns = env::get("POD_NAMESPACE"); ns && !ns->empty() && o.ns == agent::AgentOptions{}.ns) o.ns = *ns;
    o.agentVersion = TF_BUILD_VERSION;
    if (o.portalUrl.empty()) {
      std::fprintf(stderr, "tensor-fusion agent: no portal configured (--cloud-endpoint or CLOUD_ENDPOINT)\n");
      exitCode = 2;
      return;
    }
    if (Status s = agent::validateOptions(o); !s) {
      std::fprintf(stderr, "tensor-fusion agent: %s\n", s.message().c_str());
      exitCode = 2;
      return;
    }
    auto config = kubeconfig.empty() ? k8s::loadDefaultConfig() : k8s::loadKubeconfigFiles({kubeconfig});
    if (!config) {
      std::fprintf(stderr, "tensor-fusion agent: %s\n", config.status().toString().c_str());
      exitCode = 1;
      return;
    }
    auto client = k8s::Client::create(*config);
    if (!client) {
      std::fprintf(stderr, "tensor-fusion agent: %s\n", client.status().toString().c_str());
      exitCode = 1;
      return;
    }
    // SIGINT/SIGTERM: a normal close to the portal, then exit.
    const sigset_t sigs = blockStopSignals();
    auto a = agent::Agent::start(o, **client);
    if (!a) {
      std::fprintf(stderr, "tensor-fusion agent: %s\n", a.status().toString().c_str());
      exitCode = 1;
      return;
    }
    std::printf("agent %s started (portal %s)\n", o.agentId.c_str(), o.portalUrl.c_str());
    std::fflush(stdout);
    awaitStopSignal(sigs);
    (*a)->stop();
    std::printf("agent stopped\n");
  });
}

}  // namespace tf::cli
