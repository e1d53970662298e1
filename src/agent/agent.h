// The cluster agent: mirrors the cluster's TensorFusion objects to the portal over one
// authenticated WebSocket and carries out the portal's commands.
//
//   AgentOptions o{.portalUrl = "wss://portal:8443/_ws", .agentId = "acme:prod",
//                  .enrollToken = token, .portalPin = "sha256:..."};
//   auto agent = Agent::start(o, client);   // informers, then the connection loop
//   ...
//   agent->reset();                          // stops: a normal close, informers stopped
//
// Identity: the Ed25519 key and AgentID live in a Secret (credentials.h). Without one the agent
// makes a key, saves it, and enrolls with the EnrollToken; with one it only proves possession.
// Sync: informers over syncedKinds() feed a SyncLog (sync_log.h): a snapshot per epoch, then
// sequenced deltas, resent from the portal's resume point after a reconnect. Reconnects follow
// reconnect.h's schedule; a revoked agent (4403) waits the longest delay between tries.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/commands.h"
#include "agent/credentials.h"
#include "agent/metrics.h"
#include "agent/portal_link.h"
#include "agent/reconnect.h"
#include "agent/sync_log.h"
#include "common/status.h"
#include "control_protocol/crypto.h"
#include "k8s/informer.h"
#include "k8s/stop_signal.h"

namespace tf::k8s {
class Client;
}

namespace tf::agent {

struct AgentOptions {
  std::string portalUrl;    // wss://HOST[:PORT]/_ws
  std::string agentId;      // org:env, as the portal named the cluster
  std::string enrollToken;  // used once, only while the Secret holds no enrolled key
  std::string portalPin;    // sha256:<hex> of the portal certificate's public key
  std::string ns = "tensor-fusion-sys";              // where the Secret lives
  std::string secretName = "tensor-fusion-agent";    // the credential Secret
  std::string agentVersion = "dev";
  ReconnectPolicy reconnect;
  SyncLimits limits;
  LinkConfig link;          // endpoint and pin are filled from portalUrl/portalPin
  std::chrono::milliseconds heartbeatFallback{15000};  // until a welcome says otherwise
  std::chrono::milliseconds metricsInterval{10000};    // GPU utilization samples (metrics.h)
  // Measured utilization: each hypervisor pod's API (usage_scrape.h), asked every interval.
  std::chrono::milliseconds hypervisorTimeout{1000};
  size_t hypervisorParallel = 16;                      // hypervisors asked at once
  size_t metricsBufferPoints = 8192;                   // kept while offline; the oldest go first
};

// Figures for logs and tests.
struct AgentStats {
  bool online = false;
  uint64_t sessions = 0;      // welcomes received
  uint64_t connectionsEnded = 0;  // sessions and failed attempts alike
  uint64_t epoch = 0, lastSeq = 0, ackedSeq = 0;
  size_t outboxDepth = 0, pendingChanges = 0, objects = 0;
  uint64_t overflows = 0;
  uint64_t metricsSent = 0, metricsDropped = 0;  // points
  uint64_t hypervisorScrapes = 0, hypervisorScrapeFailures = 0;
  int commandsRun = 0;
  uint16_t lastCloseCode = 0;
  std::string lastError;
};

// Checks what needs no cluster: agent id, pin, portal URL. start() calls it too.
Status validateOptions(const AgentOptions& options);

class Agent : private SessionHandler {
public:
  // Loads or creates the credential, starts the informers and the connection loop. `credentials`
  // defaults to the Secret options.ns/options.secretName through `client`.
  static Result<std::unique_ptr<Agent>> start(const AgentOptions& options, k8s::Client& client,
                                              std::unique_ptr<CredentialStore> credentials = nullptr);
  ~Agent();  // stops
  void stop();
  AgentStats stats() const;
  // True once every informer has listed (the first snapshot then holds the whole cluster).
  bool waitForSync(std::chrono::milliseconds timeout);

private:
  Agent(const AgentOptions& options, k8s::Client& client, std::unique_ptr<CredentialStore> credentials);
  Status prepareCredential();
  void connectionLoop();
  void commandLoop();
  void metricsLoop();
  int64_t portalNowMs() const;

  // SessionHandler
  protocol::Hello hello() override;
  Result<protocol::Auth> answer(const protocol::Challenge& challenge) override;
  std::vector<std::string> welcomed(const protocol::Welcome& welcome) override;
  void received(const protocol::Message& message) override;
  std::vector<std::string> poll() override;

  AgentOptions options_;
  k8s::Client& client_;
  std::unique_ptr<CredentialStore> credentials_;
  AgentCredential credential_;
  std::optional<protocol::Ed25519Key> key_;
  std::string instanceId_;

  mutable std::mutex mu_;  // guards everything below (informer threads, session, commands)
  SyncLog log_;
  AgentStats stats_;
  std::deque<protocol::Command> commands_;
  std::deque<std::string> results_;  // commandResult frames to send
  MetricsBuffer metrics_;
  std::condition_variable commandsCv_;
  bool enrolling_ = false;
  std::atomic<int64_t> portalOffsetMs_{0};
  std::chrono::milliseconds heartbeat_;
  std::chrono::steady_clock::time_point nextHeartbeat_;

  CommandRunner runner_;
  std::vector<std::unique_ptr<k8s::Informer>> informers_;
  std::unique_ptr<k8s::Informer> hypervisors_;  // the hypervisor pods, for measured utilization
  k8s::StopSignal stop_;
  std::thread connection_, commandsThread_, metricsThread_;
};

}  // namespace tf::agent
