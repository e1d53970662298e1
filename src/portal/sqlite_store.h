// The SQLite Store: one file (WAL), numbered schema migrations kept in PRAGMA user_version,
// one connection guarded by a mutex (the portal is one process).
//
//   auto store = SqliteStore::open(dataDir + "/portal.db");
#pragma once

#include <memory>
#include <string>

#include "portal/store.h"

namespace tf::portal {

class SqliteStore;
using SqliteStorePtr = std::unique_ptr<SqliteStore>;

class SqliteStore : public Store {
public:
  // Creates the file when absent and brings its schema up to date.
  static Result<SqliteStorePtr> open(const std::string& path);
  ~SqliteStore() override;
  int schemaVersion();
  static int latestSchemaVersion();

  Result<ClusterRecord> createCluster(const std::string& agentId, const std::string& name, int64_t now) override;
  Result<ClusterRecord> clusterById(int64_t id) override;
  Result<ClusterRecord> clusterByAgentId(const std::string& agentId) override;
  Result<std::vector<ClusterRecord>> listClusters() override;
  Status deleteCluster(int64_t id) override;
  Status revokeAgentKey(int64_t clusterId, int64_t now) override;
  Status touchCluster(int64_t clusterId, int64_t now, const std::string& agentVersion) override;
  Result<TokenRecord> addEnrollToken(int64_t clusterId, const std::string& tokenHash, int64_t expiresAt,
                                     int64_t now) override;
  Result<std::vector<TokenRecord>> listEnrollTokens(int64_t clusterId) override;
  Status revokeEnrollToken(int64_t clusterId, int64_t tokenId, int64_t now) override;
  Status redeemEnrollToken(int64_t clusterId, const std::string& tokenHash, const std::string& publicKey,
                           int64_t now) override;
  Status applySnapshot(int64_t clusterId, const protocol::Snapshot& snapshot) override;
  Result<DeltaOutcome> applyDelta(int64_t clusterId, const protocol::Delta& delta) override;
  std::vector<Result<DeltaOutcome>> applyDeltas(const std::vector<ClusterDelta>& deltas) override;
  Result<std::vector<protocol::SyncedObject>> listObjects(int64_t clusterId, const std::string& kind) override;
  Status addMetrics(int64_t clusterId, const std::vector<protocol::MetricPoint>& points, int64_t now,
                    int64_t retentionMs) override;
  Result<std::vector<protocol::MetricPoint>> metrics(int64_t clusterId, const std::string& series,
                                                     int64_t sinceMs) override;
  Result<CommandRecord> addCommand(int64_t clusterId, const std::string& verb, const std::string& argsJson,
                                   int64_t deadline, int64_t now) override;
  Result<CommandRecord> command(int64_t clusterId, int64_t id) override;
  Result<std::vector<CommandRecord>> pendingCommands(int64_t clusterId, int64_t now) override;
  Status setCommandState(int64_t clusterId, int64_t id, const std::string& state, const std::string& detail,
                         const std::string& resultJson, int64_t now) override;
  Result<UserRecord> createUser(const std::string& name, const std::string& passwordHash, bool admin,
                                int64_t now) override;
  Result<UserRecord> userByName(const std::string& name) override;
  Result<UserRecord> userById(int64_t id) override;
  Result<int64_t> countUsers() override;
  Status addSession(const SessionRecord& session) override;
  Result<SessionRecord> session(const std::string& idHash, int64_t now) override;
  Status deleteSession(const std::string& idHash) override;
  Status audit(int64_t now, const std::string& actor, const std::string& action, int64_t clusterId,
               const std::string& address, const std::string& detail) override;

  struct Impl;

private:
  explicit SqliteStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tf::portal
