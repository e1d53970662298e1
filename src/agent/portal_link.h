// One connection to the portal (the only file of the agent that sees Beast): TCP, TLS with the
// portal's certificate checked against the pin (sha256 of its SubjectPublicKeyInfo; the CA
// chain is not consulted, the pin is the trust), the WebSocket upgrade, then the protocol
// driven by the caller's handler until the connection ends or `stop` is set.
//
//   SessionEnd end = runPortalSession(config, handler, stop);
//   if (end.closeCode == 4403) ...  // revoked
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/reconnect.h"
#include "common/status.h"
#include "control_protocol/messages.h"
#include "k8s/stop_signal.h"

namespace tf::agent {

struct LinkConfig {
  PortalEndpoint endpoint;
  std::string pin;                    // "sha256:<hex>"; the portal must present it
  std::chrono::seconds handshakeTimeout{10};  // TCP + TLS + upgrade + hello..welcome
  std::chrono::seconds idleTimeout{60};       // WebSocket pings at half of it
  std::chrono::milliseconds pollInterval{25}; // how often handler.poll() is asked for frames
};

// What the session asks of the agent; called on the session's thread only.
class SessionHandler {
public:
  virtual ~SessionHandler() = default;
  virtual protocol::Hello hello() = 0;
  // The answer to the portal's challenge (the signature), or an error that ends the session.
  virtual Result<protocol::Auth> answer(const protocol::Challenge& challenge) = 0;
  // The session is up: frames to resend first.
  virtual std::vector<std::string> welcomed(const protocol::Welcome& welcome) = 0;
  // Anything the portal sends after the welcome (ack, resync, command, heartbeat, error).
  virtual void received(const protocol::Message& message) = 0;
  // Frames to send now (deltas, heartbeats, command results); asked every pollInterval.
  virtual std::vector<std::string> poll() = 0;
};

struct SessionEnd {
  bool connected = false;      // TLS and the pin were fine
  bool welcomed = false;       // authenticated
  uint16_t closeCode = 0;      // the portal's close code (0: none, e.g. the link broke)
  std::string reason;          // why it ended, for the log
  std::chrono::steady_clock::duration upTime{};  // from the welcome to the end
};

SessionEnd runPortalSession(const LinkConfig& config, SessionHandler& handler, k8s::StopSignal& stop);

}  // namespace tf::agent
