// One agent's WebSocket session, as a state machine over text frames (no I/O: the server feeds
// it frames and carries out what it returns, so tests can drive it directly too).
//
//   hello -> challenge -> auth -> welcome, then snapshot/delta (acked), metrics, heartbeat,
//   commandResult from the agent; ack, resync, command from the portal. See
//   src/control_protocol/README.md for the flow and the close codes.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control_protocol/messages.h"
#include "portal/context.h"

namespace tf::portal {

struct SessionOutput {
  std::vector<std::string> frames;                // to send, in order
  std::optional<protocol::ProtocolError> close;   // then close with this
  // Group commit only: a delta for the caller to commit (DeltaCommitter) and to hand the outcome
  // to deltaCommitted() before it feeds the session the next frame.
  std::optional<protocol::Delta> deltaToCommit;
};

class AgentSession {
public:
  // `self` is the connection this session runs on (registered once authenticated).
  // `groupCommit`: deltas come back in SessionOutput::deltaToCommit instead of being committed
  // here, one transaction each.
  AgentSession(PortalContext& ctx, std::string peerAddress, std::weak_ptr<LiveAgent> self, bool groupCommit = false);
  SessionOutput onText(std::string_view text);
  // The outcome of committing the delta `seq` handed out in deltaToCommit: its ack (or resync).
  SessionOutput deltaCommitted(uint64_t seq, const Result<DeltaOutcome>& outcome);
  // The connection ended (any reason): leave the registry.
  void onClosed();
  bool authenticated() const { return state_ == State::Live; }
  int64_t clusterId() const { return cluster_.id; }

private:
  enum class State { AwaitHello, AwaitAuth, Live, Closed };
  void handle(const protocol::Hello& m, SessionOutput& out);
  void handle(const protocol::Auth& m, SessionOutput& out);
  void handle(const protocol::Snapshot& m, SessionOutput& out);
  void handle(const protocol::Delta& m, SessionOutput& out);
  void handle(const protocol::Metrics& m, SessionOutput& out);
  void handle(const protocol::Heartbeat& m, SessionOutput& out);
  void handle(const protocol::CommandResult& m, SessionOutput& out);
  void fail(SessionOutput& out, protocol::CloseCode code, std::string reason, const std::string& auditDetail = {});
  void storeFailed(SessionOutput& out, const Status& s);
  void answerDelta(uint64_t seq, const Result<DeltaOutcome>& outcome, SessionOutput& out);

  PortalContext& ctx_;
  std::string peer_;
  std::weak_ptr<LiveAgent> self_;
  bool groupCommit_ = false;
  State state_ = State::AwaitHello;
  TokenBucket rate_;
  protocol::Hello hello_;
  ClusterRecord cluster_;
  std::string nonce_;          // raw bytes of the challenge
  uint64_t epoch_ = 0;
  bool resyncAsked_ = false;   // one resync per gap, until the snapshot comes
  // A snapshot coming in parts (protocol::Snapshot): what arrived so far, applied at its last.
  struct StagedSnapshot {
    uint64_t seq = 0, nextPart = 0;
    std::vector<protocol::SyncedObject> objects;
  };
  std::optional<StagedSnapshot> staged_;
};

}  // namespace tf::portal
