// The portal's storage, behind one interface (SQLite now: sqlite_store.h; PostgreSQL later).
// Every method is one transaction; the sync methods check the sequence inside it, so state and
// (epoch, lastSeq) always commit together and the portal acks only what is committed.
// Times are milliseconds since the Unix epoch, passed in by the caller (tests inject a clock).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "control_protocol/messages.h"

namespace tf::portal {

struct ClusterRecord {
  int64_t id = 0;           // internal id
  std::string agentId;      // "org:env", named by the admin
  std::string name;
  int64_t createdAt = 0;
  std::string publicKey;    // the enrolled agent's Ed25519 key (base64url); empty: none
  int64_t revokedAt = 0;    // when the key was last revoked (0: never)
  int64_t lastSeen = 0;
  std::string agentVersion;
  uint64_t epoch = 0;       // the agent epoch the object table belongs to
  uint64_t lastSeq = 0;     // last applied sequenced message of that epoch
  bool hasState = false;    // a snapshot was applied
};

struct TokenRecord {
  int64_t id = 0, clusterId = 0;
  int64_t createdAt = 0, expiresAt = 0, usedAt = 0, revokedAt = 0;
};

enum class DeltaOutcome { Applied, Duplicate, Gap, WrongEpoch };

struct CommandRecord {
  int64_t id = 0, clusterId = 0;
  std::string verb;
  std::string argsJson;
  int64_t deadline = 0;
  std::string state;  // queued, sent, done, failed, expired
  std::string detail, resultJson;
  int64_t createdAt = 0, updatedAt = 0;
};

struct UserRecord {
  int64_t id = 0;
  std::string name, passwordHash;
  bool admin = false;
};

struct SessionRecord {
  std::string idHash;  // hex sha256 of the cookie's value
  int64_t userId = 0;
  std::string csrfToken;
  int64_t createdAt = 0, expiresAt = 0;
};

class Store {
public:
  virtual ~Store() = default;

  // clusters
  virtual Result<ClusterRecord> createCluster(const std::string& agentId, const std::string& name, int64_t now) = 0;
  virtual Result<ClusterRecord> clusterById(int64_t id) = 0;
  virtual Result<ClusterRecord> clusterByAgentId(const std::string& agentId) = 0;
  virtual Result<std::vector<ClusterRecord>> listClusters() = 0;
  virtual Status deleteCluster(int64_t id) = 0;  // and everything it owns
  // Clears the key (a revoked key is never accepted again) and cancels queued commands.
  virtual Status revokeAgentKey(int64_t clusterId, int64_t now) = 0;
  virtual Status touchCluster(int64_t clusterId, int64_t now, const std::string& agentVersion) = 0;

  // enroll tokens (only their SHA-256 is stored)
  virtual Result<TokenRecord> addEnrollToken(int64_t clusterId, const std::string& tokenHash, int64_t expiresAt,
                                             int64_t now) = 0;
  virtual Result<std::vector<TokenRecord>> listEnrollTokens(int64_t clusterId) = 0;
  virtual Status revokeEnrollToken(int64_t clusterId, int64_t tokenId, int64_t now) = 0;
  // Marks the token used and installs `publicKey` as the cluster's key, atomically: exactly one
  // of racing redemptions wins. Retrying with the same key after a win is accepted (a crash
  // between enrolling and saving must not strand the agent). PermissionDenied otherwise.
  virtual Status redeemEnrollToken(int64_t clusterId, const std::string& tokenHash, const std::string& publicKey,
                                   int64_t now) = 0;

  // the synced object table
  virtual Status applySnapshot(int64_t clusterId, const protocol::Snapshot& snapshot) = 0;
  virtual Result<DeltaOutcome> applyDelta(int64_t clusterId, const protocol::Delta& delta) = 0;
  // Group commit: many agents' deltas in one transaction (one fsync), each checked and applied
  // as applyDelta would, in order; one delta's failure undoes only that delta. Answers in order.
  struct ClusterDelta {
    int64_t clusterId = 0;
    const protocol::Delta* delta = nullptr;
  };
  virtual std::vector<Result<DeltaOutcome>> applyDeltas(const std::vector<ClusterDelta>& deltas) = 0;
  virtual Result<std::vector<protocol::SyncedObject>> listObjects(int64_t clusterId, const std::string& kind) = 0;

  // metrics: points older than now - retentionMs are dropped on insert
  virtual Status addMetrics(int64_t clusterId, const std::vector<protocol::MetricPoint>& points, int64_t now,
                            int64_t retentionMs) = 0;
  virtual Result<std::vector<protocol::MetricPoint>> metrics(int64_t clusterId, const std::string& series,
                                                             int64_t sinceMs) = 0;

  // commands
  virtual Result<CommandRecord> addCommand(int64_t clusterId, const std::string& verb, const std::string& argsJson,
                                           int64_t deadline, int64_t now) = 0;
  virtual Result<CommandRecord> command(int64_t clusterId, int64_t id) = 0;
  // Queued or sent and not past the deadline; the ones past it become "expired".
  virtual Result<std::vector<CommandRecord>> pendingCommands(int64_t clusterId, int64_t now) = 0;
  virtual Status setCommandState(int64_t clusterId, int64_t id, const std::string& state, const std::string& detail,
                                 const std::string& resultJson, int64_t now) = 0;

  // users and sessions
  virtual Result<UserRecord> createUser(const std::string& name, const std::string& passwordHash, bool admin,
                                        int64_t now) = 0;
  virtual Result<UserRecord> userByName(const std::string& name) = 0;
  virtual Result<UserRecord> userById(int64_t id) = 0;
  virtual Result<int64_t> countUsers() = 0;
  virtual Status addSession(const SessionRecord& session) = 0;
  virtual Result<SessionRecord> session(const std::string& idHash, int64_t now) = 0;  // unexpired only
  virtual Status deleteSession(const std::string& idHash) = 0;

  virtual Status audit(int64_t now, const std::string& actor, const std::string& action, int64_t clusterId,
                       const std::string& address, const std::string& detail) = 0;
};

}  // namespace tf::portal
