// What the REST API and the agent sessions share: the store, the pin, the clock, the settings
// and the registry of live agent connections.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "control_protocol/messages.h"
#include "portal/rate_limit.h"
#include "portal/store.h"

namespace tf::portal {

using Clock = std::function<int64_t()>;  // milliseconds since the Unix epoch
int64_t systemNowMs();

struct Settings {
  double agentMessagesPerSecond = 500;  // per agent session; over it: close 1008
  double agentMessageBurst = 1000;
  int64_t metricsRetentionMs = 3600 * 1000;
  int64_t heartbeatSeconds = 15;
  int64_t enrollTokenTtlSeconds = 24 * 3600;
  int64_t sessionTtlSeconds = 12 * 3600;
  double loginFailuresBurst = 5;        // per user name; then one more try per 10 s
  double loginFailuresPerSecond = 0.1;
  double addressFailuresBurst = 20;     // per client address
  size_t maxSnapshotObjects = 500000;   // a snapshot (all its parts) past it: close 1009
};

// One agent's live WebSocket connection, as the server gives it to others: thread-safe, both
// calls return at once and act on the connection's own strand.
class LiveAgent {
public:
  virtual ~LiveAgent() = default;
  virtual void send(std::string frame) = 0;
  virtual void close(protocol::CloseCode code, std::string reason) = 0;
};

// The live connection of each cluster's agent (at most one: a newer one supersedes).
class AgentRegistry {
public:
  // Registers `agent` for the cluster and returns the one it replaces (to be closed with 4409).
  std::shared_ptr<LiveAgent> attach(int64_t clusterId, const std::shared_ptr<LiveAgent>& agent);
  void detach(int64_t clusterId, const LiveAgent* agent);
  bool send(int64_t clusterId, const std::string& frame);
  void close(int64_t clusterId, protocol::CloseCode code, const std::string& reason);
  bool online(int64_t clusterId);

private:
  std::shared_ptr<LiveAgent> find(int64_t clusterId);
  std::mutex mu_;
  std::map<int64_t, std::weak_ptr<LiveAgent>> live_;
};

struct PortalContext {
  Store& store;
  AgentRegistry& registry;
  Clock now;
  Settings settings;
  std::string pin;            // our certificate pin
  std::string agentEndpoint;  // wss://host:port/_ws, for install commands
  KeyedLimiter loginLimiter{settings.loginFailuresBurst, settings.loginFailuresPerSecond};
  KeyedLimiter addressLimiter{settings.addressFailuresBurst, settings.loginFailuresPerSecond * 4};
};

}  // namespace tf::portal
