// When the agent dials the portal again, and where: the reconnect schedule (gRPC's connection
// back-off: 1 s, x1.6, +-20 % jitter, capped at 120 s) as a pure function of the attempt and a
// random draw, and the portal URL taken apart.
//
//   ReconnectPolicy p;                       // defaults as above
//   auto d = reconnectDelay(p, attempt, u);  // u uniform in [0, 1): the jitter draw
//   auto e = parsePortalUrl("wss://portal.example.com/_ws");  // host, port 443, target "/_ws"
#pragma once

#include <chrono>
#include <string>

#include "common/status.h"

namespace tf::agent {

struct ReconnectPolicy {
  std::chrono::milliseconds initial{1000};
  double multiplier = 1.6;
  double jitter = 0.2;                      // the delay is scaled by 1 + jitter * (2u - 1)
  std::chrono::milliseconds max{120000};    // no delay exceeds it, jitter included
  std::chrono::milliseconds stableAfter{30000};  // a session up this long resets the attempts
};

// The delay before reconnect attempt `attempt` (0: the first after a loss). `u` in [0, 1).
std::chrono::milliseconds reconnectDelay(const ReconnectPolicy& policy, int attempt, double u);

struct PortalEndpoint {
  std::string host;
  int port = 443;
  std::string target = "/_ws";
};

// wss://HOST[:PORT][/PATH]; IPv6 as [addr]. Only wss: the agent never talks to a portal in clear.
Result<PortalEndpoint> parsePortalUrl(const std::string& url);

}  // namespace tf::agent
