// The agent <-> portal wire protocol: message types, envelope, limits and close codes, written
// once (message_types.inc) and used by the portal and the agent. No I/O here.
//
//   auto m = protocol::parseMessage(text);          // validates every field
//   if (!m) closeWith(m.error().code, m.error().reason);
//   if (auto* d = std::get_if<protocol::Delta>(&*m)) apply(*d);
//   send(protocol::serialize(protocol::Ack{.seq = 7}));
//
// Envelope: one UTF-8 JSON object per WebSocket text frame, {"v":1,"type":"<name>","body":{...}}.
// See README.md for the session flow.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace tf::protocol {

inline constexpr int kVersion = 1;
inline constexpr size_t kMaxMessageBytes = 1 << 20;      // larger frames close with 1009
inline constexpr size_t kMaxObjectsPerMessage = 10000;
inline constexpr size_t kMaxPointsPerMessage = 10000;
inline constexpr size_t kMaxNameBytes = 253;             // Kubernetes object names
inline constexpr size_t kMaxTextBytes = 4096;            // any other string field
inline constexpr size_t kMaxTokenBytes = 256;            // enroll tokens, keys, signatures

// WebSocket close codes the portal uses (RFC 6455 and private 4xxx).
enum class CloseCode : uint16_t {
  Normal = 1000,
  UnsupportedData = 1003,  // a binary frame
  InvalidPayload = 1007,   // not JSON, not an object, a missing or ill-typed field
  Policy = 1008,           // unknown type, a type not allowed now, rate limit, timeout
  TooBig = 1009,           // a frame over kMaxMessageBytes
  TryAgainLater = 1013,    // overload
  BadVersion = 4400,       // unsupported "v"
  BadAuth = 4401,          // unknown agent, bad token, bad signature (no hint which)
  Revoked = 4403,          // the agent's key was revoked
  Superseded = 4409,       // a newer session of the same agent took over
};

struct ProtocolError {
  CloseCode code;
  std::string reason;  // short, safe to send in a close frame (<= 123 bytes)
};

// --- message bodies -------------------------------------------------------------------------

struct EnrollRequest {
  std::string token;      // the one-time EnrollToken (base64url)
  std::string publicKey;  // the agent's Ed25519 public key, raw 32 bytes, base64url
};
struct Hello {
  std::string agentId;  // "org:env"
  std::string agentVersion;
  std::string instanceId;                // one per agent process
  std::optional<EnrollRequest> enroll;   // first connection only
};
struct Challenge {
  std::string nonce;  // 32 random bytes, base64url
  int64_t portalTimeMs = 0;
  std::vector<int> protoVersions{kVersion};
};
struct Auth {
  std::string signature;  // Ed25519 over authPayload(nonce, agentId, pin), base64url
  uint64_t epoch = 0;     // drawn at agent start
  uint64_t lastSeq = 0;   // the agent's last sequenced message
};
struct Welcome {
  std::string sessionId;
  bool needSnapshot = true;
  uint64_t resumeFromSeq = 0;  // when !needSnapshot: resend from here
  uint64_t maxMessageBytes = kMaxMessageBytes;
  uint64_t messagesPerSecond = 0;
  uint64_t heartbeatSeconds = 15;
};

// One object of the cluster (pool, node, GPU, worker, workload, connection...).
struct SyncedObject {
  std::string kind, ns, name, resourceVersion;
  nlohmann::json body = nlohmann::json::object();
};
struct ObjectKey {
  std::string kind, ns, name;
};
// A snapshot larger than one frame goes in parts: each a Snapshot with the same epoch and seq,
// `part` counting from 0, `more` true on every part but the last. The portal applies (and
// acks) the whole once the last part is in; nothing else may come between the parts.
struct Snapshot {
  uint64_t epoch = 0, seq = 0;
  std::vector<SyncedObject> objects;
  uint64_t part = 0;
  bool more = false;
};
struct Delta {
  uint64_t epoch = 0, seq = 0;
  std::vector<SyncedObject> upserts;
  std::vector<ObjectKey> deletes;
};
struct Ack {
  uint64_t seq = 0;
};
struct Resync {
  std::string reason;
};
struct MetricPoint {
  std::string series;  // e.g. "gpu/<uuid>/util"
  int64_t tsMs = 0;
  double value = 0;
};
struct Metrics {
  std::vector<MetricPoint> points;
};
struct Heartbeat {
  uint64_t ackedSeq = 0, outboxDepth = 0, droppedMetrics = 0;
};

// The command verbs an agent executes (an allow-list; anything else is refused on both sides).
#define TF_COMMAND_VERBS(X) X(applyPoolSpec) X(scaleWorkload) X(cordonGpu)
bool isAllowedVerb(std::string_view verb);

struct Command {
  std::string id;
  std::string verb;
  nlohmann::json args = nlohmann::json::object();
  int64_t deadlineMs = 0;  // portal time; not run after it
};
struct CommandResult {
  std::string id;
  bool ok = false;
  std::string detail;
  nlohmann::json result = nlohmann::json::object();
};
struct Error {
  std::string message;
};

#define TF_MESSAGE(S, name, sender) S,
using Message = std::variant<
#include "control_protocol/message_types.inc"
    std::monostate>;
#undef TF_MESSAGE

enum class Sender { Agent, Portal, Both };

// The wire name of a message, and who may send it.
std::string_view typeName(const Message& m);
Sender senderOf(const Message& m);

class [[nodiscard]] ParseResult : public Expected<Message, ProtocolError> {
public:
  using Expected::Expected;
  const ProtocolError& error() const { return errorValue(); }
};
// Parses and validates one frame's text. Errors carry the close code to use.
ParseResult parseMessage(std::string_view text);
std::string serialize(const Message& m);

}  // namespace tf::protocol
