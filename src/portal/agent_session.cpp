#include "portal/agent_session.h"

#define TF_LOG_COMPONENT "portal"
#include "common/log.h"
#include "control_protocol/crypto.h"

namespace tf::portal {

using protocol::CloseCode;

// --- AgentRegistry ---------------------------------------------------------------------------

std::shared_ptr<LiveAgent> AgentRegistry::attach(int64_t clusterId, const std::shared_ptr<LiveAgent>& agent) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& slot = live_[clusterId];
  auto previous = slot.lock();
  slot = agent;
  return previous;
}

void AgentRegistry::detach(int64_t clusterId, const LiveAgent* agent) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(clusterId);
  if (it == live_.end()) return;
  auto cur = it->second.lock();
  if (!cur || cur.get() == agent) live_.erase(it);
}

std::shared_ptr<LiveAgent> AgentRegistry::find(int64_t clusterId) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(clusterId);
  return it == live_.end() ? nullptr : it->second.lock();
}

bool AgentRegistry::send(int64_t clusterId, const std::string& frame) {
  auto a = find(clusterId);
  if (a) a->send(frame);
  return a != nullptr;
}

void AgentRegistry::close(int64_t clusterId, CloseCode code, const std::string& reason) {
  if (auto a = find(clusterId)) a->close(code, reason);
}

bool AgentRegistry::online(int64_t clusterId) { return find(clusterId) != nullptr; }

// --- AgentSession ----------------------------------------------------------------------------

AgentSession::AgentSession(PortalContext& ctx, std::string peerAddress, std::weak_ptr<LiveAgent> self,
                           bool groupCommit)
    : ctx_(ctx), peer_(std::move(peerAddress)), self_(std::move(self)), groupCommit_(groupCommit),
      rate_(ctx.settings.agentMessageBurst, ctx.settings.agentMessagesPerSecond) {}

void AgentSession::fail(SessionOutput& out, CloseCode code, std::string reason, const std::string& auditDetail) {
  if (!auditDetail.empty())
    (void)ctx_.store.audit(ctx_.now(), "agent:" + hello_.agentId, "agent-refused", cluster_.id, peer_, auditDetail);
  TF_LOG(Info, "agent %s from %s: closing %d (%s)", hello_.agentId.c_str(), peer_.c_str(), int(code), reason.c_str());
  out.close = protocol::ProtocolError{code, std::move(reason)};
  onClosed();
}

void AgentSession::storeFailed(SessionOutput& out, const Status& s) {
  TF_LOG(Error, "agent %s: store: %s", hello_.agentId.c_str(), s.toString().c_str());
  fail(out, CloseCode::TryAgainLater, "portal storage error");
}

void AgentSession::onClosed() {
  if (state_ == State::Live) ctx_.registry.detach(cluster_.id, self_.lock().get());
  state_ = State::Closed;
}

SessionOutput AgentSession::onText(std::string_view text) {
  SessionOutput out;
  if (state_ == State::Closed) return out;
  if (!rate_.take(ctx_.now())) {
    fail(out, CloseCode::Policy, "message rate limit exceeded");
    return out;
  }
  auto parsed = protocol::parseMessage(text);
  if (!parsed) {
    fail(out, parsed.error().code, parsed.error().reason);
    return out;
  }
  const protocol::Message& m = *parsed;
  if (protocol::senderOf(m) == protocol::Sender::Portal) {
    fail(out, CloseCode::Policy, std::string(protocol::typeName(m)) + " is sent by the portal only");
    return out;
  }
  // Each state admits its own types; anything else is a policy violation.
  const bool live = state_ == State::Live;
  std::visit(
      [&](const auto& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, protocol::Hello>) {
          if (state_ == State::AwaitHello) return handle(msg, out);
        } else if constexpr (std::is_same_v<T, protocol::Auth>) {
          if (state_ == State::AwaitAuth) return handle(msg, out);
        } else if constexpr (std::is_same_v<T, protocol::Snapshot> || std::is_same_v<T, protocol::Delta> ||
                             std::is_same_v<T, protocol::Metrics> || std::is_same_v<T, protocol::Heartbeat> ||
                             std::is_same_v<T, protocol::CommandResult>) {
          if (live) return handle(msg, out);
        }
        fail(out, CloseCode::Policy, "unexpected " + std::string(protocol::typeName(m)));
      },
      m);
  return out;
}

void AgentSession::handle(const protocol::Hello& m, SessionOutput& out) {
  hello_ = m;
  auto cluster = ctx_.store.clusterByAgentId(m.agentId);
  if (!cluster) {
    if (cluster.status().code() != Code::NotFound) return storeFailed(out, cluster.status());
    return fail(out, CloseCode::BadAuth, "authentication failed", "unknown agent id");
  }
  cluster_ = *cluster;
  if (!m.enroll && cluster_.publicKey.empty()) {
    if (cluster_.revokedAt != 0) return fail(out, CloseCode::Revoked, "agent revoked", "revoked agent reconnecting");
    return fail(out, CloseCode::BadAuth, "authentication failed", "agent not enrolled");
  }
  auto nonce = protocol::randomBytes(32);
  if (!nonce) return storeFailed(out, nonce.status());
  nonce_ = *nonce;
  state_ = State::AwaitAuth;
  out.frames.push_back(
      protocol::serialize(protocol::Challenge{protocol::base64UrlEncode(nonce_), ctx_.now(), {protocol::kVersion}}));
}

void AgentSession::handle(const protocol::Auth& m, SessionOutput& out) {
  const std::string key = hello_.enroll ? hello_.enroll->publicKey : cluster_.publicKey;
  const Status sig = protocol::verifyEd25519(key, protocol::authPayload(nonce_, hello_.agentId, ctx_.pin), m.signature);
  if (!sig) return fail(out, CloseCode::BadAuth, "authentication failed", "signature: " + sig.message());
  const int64_t now = ctx_.now();
  if (hello_.enroll) {
    const Status redeemed = ctx_.store.redeemEnrollToken(
        cluster_.id, protocol::hexEncode(protocol::sha256(hello_.enroll->token)), key, now);
    if (!redeemed) {
      if (redeemed.code() != Code::PermissionDenied) return storeFailed(out, redeemed);
      return fail(out, CloseCode::BadAuth, "authentication failed", "enroll token refused");
    }
    (void)ctx_.store.audit(now, "agent:" + hello_.agentId, "agent-enrolled", cluster_.id, peer_,
                           "key " + key.substr(0, 12));
  }
  auto attachIfCurrent = [&]() -> bool {
    auto fresh = ctx_.store.clusterById(cluster_.id);
    if (!fresh) return false;
    cluster_ = *fresh;
    return cluster_.publicKey == key;
  };
  // The key must still be the cluster's after we are registered, so a revoke that raced this
  // handshake either finds us in the registry or is seen here.
  if (!attachIfCurrent()) return fail(out, CloseCode::Revoked, "agent revoked", "key revoked during handshake");
  state_ = State::Live;
  epoch_ = m.epoch;
  if (auto previous = ctx_.registry.attach(cluster_.id, self_.lock()))
    previous->close(CloseCode::Superseded, "superseded by a newer session");
  if (!attachIfCurrent()) return fail(out, CloseCode::Revoked, "agent revoked", "key revoked during handshake");
  (void)ctx_.store.touchCluster(cluster_.id, now, hello_.agentVersion);

  protocol::Welcome w;
  auto sid = protocol::randomToken(16);
  w.sessionId = sid ? *sid : "";
  w.needSnapshot = !(cluster_.hasState && cluster_.epoch == m.epoch && m.lastSeq >= cluster_.lastSeq);
  w.resumeFromSeq = w.needSnapshot ? 0 : cluster_.lastSeq + 1;
  w.messagesPerSecond = uint64_t(ctx_.settings.agentMessagesPerSecond);
  w.heartbeatSeconds = uint64_t(ctx_.settings.heartbeatSeconds);
  out.frames.push_back(protocol::serialize(w));
  // Commands queued while the agent was away (the agent dedupes by id).
  auto pending = ctx_.store.pendingCommands(cluster_.id, now);
  if (!pending) return storeFailed(out, pending.status());
  for (const auto& c : *pending) {
    protocol::Command cmd{std::to_string(c.id), c.verb, nlohmann::json::parse(c.argsJson, nullptr, false), c.deadline};
    if (cmd.args.is_discarded()) cmd.args = nlohmann::json::object();
    out.frames.push_back(protocol::serialize(cmd));
    (void)ctx_.store.setCommandState(cluster_.id, c.id, "sent", "", "{}", now);
  }
}

void AgentSession::handle(const protocol::Snapshot& m, SessionOutput& out) {
  if (m.epoch != epoch_) return fail(out, CloseCode::Policy, "epoch changed within a session");
  if (staged_ ? m.seq != staged_->seq || m.part != staged_->nextPart : m.part != 0)
    return fail(out, CloseCode::Policy, "snapshot part out of order");
  const protocol::Snapshot* whole = &m;
  protocol::Snapshot assembled;
  if (staged_ || m.more) {
    if (!staged_) staged_ = StagedSnapshot{m.seq, 0, {}};
    if (staged_->objects.size() + m.objects.size() > ctx_.settings.maxSnapshotObjects) {
      staged_.reset();
      return fail(out, CloseCode::TooBig,
                  "snapshot over " + std::to_string(ctx_.settings.maxSnapshotObjects) + " objects");
    }
    staged_->objects.insert(staged_->objects.end(), m.objects.begin(), m.objects.end());
    ++staged_->nextPart;
    if (m.more) return;  // acked with the last part
    assembled = protocol::Snapshot{m.epoch, m.seq, std::move(staged_->objects), 0, false};
    staged_.reset();
    whole = &assembled;
  }
  if (Status s = ctx_.store.applySnapshot(cluster_.id, *whole); !s) return storeFailed(out, s);
  resyncAsked_ = false;
  out.frames.push_back(protocol::serialize(protocol::Ack{m.seq}));
}

void AgentSession::handle(const protocol::Delta& m, SessionOutput& out) {
  if (m.epoch != epoch_) return fail(out, CloseCode::Policy, "epoch changed within a session");
  if (staged_) return fail(out, CloseCode::Policy, "delta between the parts of a snapshot");
  if (groupCommit_) {
    out.deltaToCommit = m;
    return;
  }
  answerDelta(m.seq, ctx_.store.applyDelta(cluster_.id, m), out);
}

SessionOutput AgentSession::deltaCommitted(uint64_t seq, const Result<DeltaOutcome>& outcome) {
  SessionOutput out;
  if (state_ == State::Live) answerDelta(seq, outcome, out);
  return out;
}

void AgentSession::answerDelta(uint64_t seq, const Result<DeltaOutcome>& outcome, SessionOutput& out) {
  if (!outcome) return storeFailed(out, outcome.status());
  switch (*outcome) {
  case DeltaOutcome::Applied:
  case DeltaOutcome::Duplicate:  // already committed: ack again, apply nothing
    out.frames.push_back(protocol::serialize(protocol::Ack{seq}));
    return;
  case DeltaOutcome::Gap:
  case DeltaOutcome::WrongEpoch:
    if (!resyncAsked_)
      out.frames.push_back(protocol::serialize(
          protocol::Resync{*outcome == DeltaOutcome::Gap ? "sequence gap" : "no state for this epoch"}));
    resyncAsked_ = true;
    return;
  }
}

void AgentSession::handle(const protocol::Metrics& m, SessionOutput& out) {
  const int64_t now = ctx_.now();
  if (Status s = ctx_.store.addMetrics(cluster_.id, m.points, now, ctx_.settings.metricsRetentionMs); !s)
    return storeFailed(out, s);
}

void AgentSession::handle(const protocol::Heartbeat&, SessionOutput& out) {
  if (Status s = ctx_.store.touchCluster(cluster_.id, ctx_.now(), hello_.agentVersion); !s) return storeFailed(out, s);
}

void AgentSession::handle(const protocol::CommandResult& m, SessionOutput& out) {
  int64_t id = 0;
  try {
    size_t used = 0;
    id = std::stoll(m.id, &used);
    if (used != m.id.size()) id = 0;
  } catch (const std::exception&) {
  }
  const Status s = ctx_.store.setCommandState(cluster_.id, id, m.ok ? "done" : "failed", m.detail, m.result.dump(),
                                              ctx_.now());
  // Another cluster's command (or none): this agent may not touch it.
  if (s.code() == Code::NotFound) return fail(out, CloseCode::Policy, "no such command for this agent", "foreign command id");
  if (!s) return storeFailed(out, s);
}

}  // namespace tf::portal
