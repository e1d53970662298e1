#include "portal/sqlite_store.h"

#include <mutex>

#include <sqlite3.h>

namespace tf::portal {
namespace {

using protocol::SyncedObject;

// Schema migrations, numbered by position: migration i brings user_version from i to i+1.
// Append only; never edit one that has shipped.
const char* const kMigrations[] = {
    // 1: clusters, enroll tokens, the synced object table, metrics, commands, users, sessions, audit
    R"sql(
CREATE TABLE clusters(
  id INTEGER PRIMARY KEY, agent_id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, created_at INTEGER NOT NULL,
  public_key TEXT NOT NULL DEFAULT '', revoked_at INTEGER NOT NULL DEFAULT 0, last_seen INTEGER NOT NULL DEFAULT 0,
  agent_version TEXT NOT NULL DEFAULT '', epoch INTEGER NOT NULL DEFAULT 0, last_seq INTEGER NOT NULL DEFAULT 0,
  has_state INTEGER NOT NULL DEFAULT 0);
CREATE TABLE enroll_tokens(
  id INTEGER PRIMARY KEY, cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
  token_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  used_at INTEGER NOT NULL DEFAULT 0, used_public_key TEXT NOT NULL DEFAULT '', revoked_at INTEGER NOT NULL DEFAULT 0);
CREATE TABLE objects(
  cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE, kind TEXT NOT NULL,
  namespace TEXT NOT NULL, name TEXT NOT NULL, resource_version TEXT NOT NULL, body TEXT NOT NULL,
  PRIMARY KEY(cluster_id, kind, namespace, name)) WITHOUT ROWID;
CREATE TABLE metrics(
  cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE, series TEXT NOT NULL, ts INTEGER NOT NULL,
  value REAL NOT NULL, PRIMARY KEY(cluster_id, series, ts)) WITHOUT ROWID;
CREATE INDEX metrics_by_time ON metrics(cluster_id, ts);
CREATE TABLE commands(
  id INTEGER PRIMARY KEY, cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
  verb TEXT NOT NULL, args TEXT NOT NULL, deadline INTEGER NOT NULL, state TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '', result TEXT NOT NULL DEFAULT '{}', created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL);
CREATE TABLE users(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL, admin INTEGER NOT NULL,
  created_at INTEGER NOT NULL);
CREATE TABLE sessions(
  id_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  csrf_token TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
CREATE TABLE audit(
  id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
  cluster_id INTEGER NOT NULL, address TEXT NOT NULL, detail TEXT NOT NULL);
)sql",
};

Status sqlError(sqlite3* db, const char* what) {
  const int rc = sqlite3_extended_errcode(db);
  const Code code = (rc & 0xff) == SQLITE_CONSTRAINT ? Code::AlreadyExists : Code::Internal;
  return {code, std::string(what) + ": " + sqlite3_errmsg(db)};
}

// One prepared statement with its parameters bound in order.
class Stmt {
public:
  template <typename... Args> Stmt(sqlite3* db, const char* sql, const Args&... args) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK) {
      status_ = sqlError(db, "prepare");
      return;
    }
    int i = 0;
    (bind(++i, args), ...);
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // True while a row is there; errors end the loop and land in status().
  bool step() {
    if (!status_) return false;
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) status_ = sqlError(db_, "step");
    return false;
  }
  Status run() {
    while (step()) {
    }
    return status_;
  }
  const Status& status() const { return status_; }
  int64_t i64(int col) { return sqlite3_column_int64(s_, col); }
  double dbl(int col) { return sqlite3_column_double(s_, col); }
  std::string text(int col) {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, size_t(sqlite3_column_bytes(s_, col))) : std::string();
  }

private:
  void bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void bind(int i, int v) { sqlite3_bind_int64(s_, i, v); }
  void bind(int i, uint64_t v) { sqlite3_bind_int64(s_, i, static_cast<int64_t>(v)); }  // bit pattern kept
  void bind(int i, double v) { sqlite3_bind_double(s_, i, v); }
  void bind(int i, const std::string& v) { sqlite3_bind_text(s_, i, v.data(), int(v.size()), SQLITE_TRANSIENT); }
  void bind(int i, const char* v) { sqlite3_bind_text(s_, i, v, -1, SQLITE_TRANSIENT); }

  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  Status status_;
};

Status exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) == SQLITE_OK) return Status::ok();
  Status s = internalError(std::string("exec: ") + (err ? err : "?"));
  sqlite3_free(err);
  return s;
}

// BEGIN IMMEDIATE .. COMMIT; rolls back unless committed.
class Tx {
public:
  explicit Tx(sqlite3* db) : db_(db), status_(exec(db, "BEGIN IMMEDIATE")) {}
  ~Tx() {
    if (status_ && !done_) (void)exec(db_, "ROLLBACK");
  }
  const Status& status() const { return status_; }
  Status commit() {
    done_ = true;
    return exec(db_, "COMMIT");
  }

private:
  sqlite3* db_;
  Status status_;
  bool done_ = false;
};

#define TF_CHECK_TX(tx) \
  if (!(tx).status()) return (tx).status()

constexpr const char* kClusterColumns =
    "id, agent_id, name, created_at, public_key, revoked_at, last_seen, agent_version, epoch, last_seq, has_state";

ClusterRecord readCluster(Stmt& q) {
  return {q.i64(0), q.text(1), q.text(2), q.i64(3), q.text(4), q.i64(5), q.i64(6), q.text(7),
          static_cast<uint64_t>(q.i64(8)), static_cast<uint64_t>(q.i64(9)), q.i64(10) != 0};
}

constexpr const char* kCommandColumns =
    "id, cluster_id, verb, args, deadline, state, detail, result, created_at, updated_at";
CommandRecord readCommand(Stmt& q) {
  return {q.i64(0), q.i64(1), q.text(2), q.text(3), q.i64(4), q.text(5), q.text(6), q.text(7), q.i64(8), q.i64(9)};
}

Status upsertObject(sqlite3* db, int64_t clusterId, const SyncedObject& o) {
  return Stmt(db,
              "INSERT INTO objects(cluster_id, kind, namespace, name, resource_version, body) VALUES(?,?,?,?,?,?) "
              "ON CONFLICT(cluster_id, kind, namespace, name) DO UPDATE SET "
              "resource_version=excluded.resource_version, body=excluded.body",
              clusterId, o.kind, o.ns, o.name, o.resourceVersion, o.body.dump())
      .run();
}

}  // namespace

struct SqliteStore::Impl {
  sqlite3* db = nullptr;
  std::mutex mu;
  ~Impl() { sqlite3_close(db); }

  template <typename T, typename F> Result<T> one(const char* sql, F read, const auto&... args) {
    Stmt q(db, sql, args...);
    if (q.step()) return read(q);
    if (!q.status()) return q.status();
    return notFound("no such record");
  }
  template <typename T, typename F> Result<std::vector<T>> all(const char* sql, F read, const auto&... args) {
    Stmt q(db, sql, args...);
    std::vector<T> out;
    while (q.step()) out.push_back(read(q));
    if (!q.status()) return q.status();
    return out;
  }
};

#define LOCK std::lock_guard<std::mutex> lock(impl_->mu)

int SqliteStore::latestSchemaVersion() { return int(std::size(kMigrations)); }

Result<SqliteStorePtr> SqliteStore::open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  if (sqlite3_open_v2(path.c_str(), &impl->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK)
    return unavailable("opening " + path + ": " + (impl->db ? sqlite3_errmsg(impl->db) : "out of memory"));
  sqlite3_busy_timeout(impl->db, 5000);
  // WAL + synchronous=FULL: a commit is durable when it returns, so an ack never outruns the disk.
  TF_RETURN_IF_ERROR(exec(impl->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"));
  SqliteStorePtr store(new SqliteStore(std::move(impl)));
  const int have = store->schemaVersion();
  if (have > latestSchemaVersion())
    return failedPrecondition(path + ": schema version " + std::to_string(have) + " is newer than this portal's " +
                              std::to_string(latestSchemaVersion()));
  for (int v = have; v < latestSchemaVersion(); ++v) {
    Tx tx(store->impl_->db);
    TF_CHECK_TX(tx);
    TF_RETURN_IF_ERROR(exec(store->impl_->db, kMigrations[v]).withContext("migration " + std::to_string(v + 1)));
    TF_RETURN_IF_ERROR(exec(store->impl_->db, ("PRAGMA user_version=" + std::to_string(v + 1)).c_str()));
    TF_RETURN_IF_ERROR(tx.commit());
  }
  return store;
}

SqliteStore::SqliteStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteStore::~SqliteStore() = default;

int SqliteStore::schemaVersion() {
  LOCK;
  Stmt q(impl_->db, "PRAGMA user_version");
  return q.step() ? int(q.i64(0)) : -1;
}

Result<ClusterRecord> SqliteStore::createCluster(const std::string& agentId, const std::string& name, int64_t now) {
  LOCK;
  Stmt q(impl_->db, "INSERT INTO clusters(agent_id, name, created_at) VALUES(?,?,?)", agentId, name, now);
  if (Status s = q.run(); !s) return s.code() == Code::AlreadyExists ? Status(Code::AlreadyExists, "agent id " + agentId + " exists") : s;
  const int64_t id = sqlite3_last_insert_rowid(impl_->db);
  return impl_->one<ClusterRecord>((std::string("SELECT ") + kClusterColumns + " FROM clusters WHERE id=?").c_str(),
                                   readCluster, id);
}

Result<ClusterRecord> SqliteStore::clusterById(int64_t id) {
  LOCK;
  return impl_->one<ClusterRecord>((std::string("SELECT ") + kClusterColumns + " FROM clusters WHERE id=?").c_str(),
                                   readCluster, id);
}

Result<ClusterRecord> SqliteStore::clusterByAgentId(const std::string& agentId) {
  LOCK;
  return impl_->one<ClusterRecord>(
      (std::string("SELECT ") + kClusterColumns + " FROM clusters WHERE agent_id=?").c_str(), readCluster, agentId);
}

Result<std::vector<ClusterRecord>> SqliteStore::listClusters() {
  LOCK;
  return impl_->all<ClusterRecord>((std::string("SELECT ") + kClusterColumns + " FROM clusters ORDER BY id").c_str(),
                                   readCluster);
}

Status SqliteStore::deleteCluster(int64_t id) {
  LOCK;
  Stmt q(impl_->db, "DELETE FROM clusters WHERE id=?", id);
  TF_RETURN_IF_ERROR(q.run());
  return sqlite3_changes(impl_->db) == 1 ? Status::ok() : notFound("no such cluster");
}

Status SqliteStore::revokeAgentKey(int64_t clusterId, int64_t now) {
  LOCK;
  Tx tx(impl_->db);
  TF_CHECK_TX(tx);
  TF_RETURN_IF_ERROR(Stmt(impl_->db, "UPDATE clusters SET public_key='', revoked_at=? WHERE id=?", now, clusterId).run());
  if (sqlite3_changes(impl_->db) != 1) return notFound("no such cluster");
  TF_RETURN_IF_ERROR(Stmt(impl_->db,
                          "UPDATE commands SET state='failed', detail='agent revoked', updated_at=? "
                          "WHERE cluster_id=? AND state IN ('queued','sent')",
                          now, clusterId)
                         .run());
  return tx.commit();
}

Status SqliteStore::touchCluster(int64_t clusterId, int64_t now, const std::string& agentVersion) {
  LOCK;
  return Stmt(impl_->db, "UPDATE clusters SET last_seen=?, agent_version=? WHERE id=?", now, agentVersion, clusterId)
      .run();
}

Result<TokenRecord> SqliteStore::addEnrollToken(int64_t clusterId, const std::string& tokenHash, int64_t expiresAt,
                                                int64_t now) {
  LOCK;
  TF_RETURN_IF_ERROR(Stmt(impl_->db,
                          "INSERT INTO enroll_tokens(cluster_id, token_hash, created_at, expires_at) VALUES(?,?,?,?)",
                          clusterId, tokenHash, now, expiresAt)
                         .run());
  return TokenRecord{sqlite3_last_insert_rowid(impl_->db), clusterId, now, expiresAt, 0, 0};
}

Result<std::vector<TokenRecord>> SqliteStore::listEnrollTokens(int64_t clusterId) {
  LOCK;
  return impl_->all<TokenRecord>(
      "SELECT id, cluster_id, created_at, expires_at, used_at, revoked_at FROM enroll_tokens WHERE cluster_id=? "
      "ORDER BY id",
      [](Stmt& q) { return TokenRecord{q.i64(0), q.i64(1), q.i64(2), q.i64(3), q.i64(4), q.i64(5)}; }, clusterId);
}

Status SqliteStore::revokeEnrollToken(int64_t clusterId, int64_t tokenId, int64_t now) {
  LOCK;
  TF_RETURN_IF_ERROR(Stmt(impl_->db, "UPDATE enroll_tokens SET revoked_at=? WHERE id=? AND cluster_id=?", now,
                          tokenId, clusterId)
                         .run());
  return sqlite3_changes(impl_->db) == 1 ? Status::ok() : notFound("no such token");
}

Status SqliteStore::redeemEnrollToken(int64_t clusterId, const std::string& tokenHash, const std::string& publicKey,
                                      int64_t now) {
  LOCK;
  Tx tx(impl_->db);
  TF_CHECK_TX(tx);
  // The single statement that makes a token single-use: only an unused, unrevoked, unexpired
  // token of this cluster changes.
  TF_RETURN_IF_ERROR(Stmt(impl_->db,
                          "UPDATE enroll_tokens SET used_at=?, used_public_key=? WHERE token_hash=? AND cluster_id=? "
                          "AND used_at=0 AND revoked_at=0 AND expires_at>?",
                          now, publicKey, tokenHash, clusterId, now)
                         .run());
  if (sqlite3_changes(impl_->db) != 1) {
    // An idempotent retry: this very key already redeemed this token and is still the cluster's.
    Stmt retry(impl_->db,
               "SELECT 1 FROM enroll_tokens t JOIN clusters c ON c.id=t.cluster_id WHERE t.token_hash=? "
               "AND t.cluster_id=? AND t.used_public_key=? AND c.public_key=? AND t.revoked_at=0",
               tokenHash, clusterId, publicKey, publicKey);
    if (retry.step()) return Status::ok();
    TF_RETURN_IF_ERROR(retry.status());
    return {Code::PermissionDenied, "enroll token unknown, used, revoked or expired"};
  }
  TF_RETURN_IF_ERROR(
      Stmt(impl_->db, "UPDATE clusters SET public_key=?, revoked_at=0 WHERE id=?", publicKey, clusterId).run());
  return tx.commit();
}

Status SqliteStore::applySnapshot(int64_t clusterId, const protocol::Snapshot& snapshot) {
  LOCK;
  Tx tx(impl_->db);
  TF_CHECK_TX(tx);
  TF_RETURN_IF_ERROR(Stmt(impl_->db, "DELETE FROM objects WHERE cluster_id=?", clusterId).run());
  for (const auto& o : snapshot.objects) TF_RETURN_IF_ERROR(upsertObject(impl_->db, clusterId, o));
  TF_RETURN_IF_ERROR(Stmt(impl_->db, "UPDATE clusters SET epoch=?, last_seq=?, has_state=1 WHERE id=?",
                          snapshot.epoch, snapshot.seq, clusterId)
                         .run());
  return tx.commit();
}

namespace {

// One delta's checks and writes, inside the caller's transaction.
Result<DeltaOutcome> applyDeltaIn(sqlite3* db, int64_t clusterId, const protocol::Delta& delta) {
  Stmt q(db, "SELECT epoch, last_seq, has_state FROM clusters WHERE id=?", clusterId);
  if (!q.step()) return q.status() ? notFound("no such cluster") : q.status();
  const auto epoch = static_cast<uint64_t>(q.i64(0)), last = static_cast<uint64_t>(q.i64(1));
  if (q.i64(2) == 0 || epoch != delta.epoch) return DeltaOutcome::WrongEpoch;
  if (delta.seq <= last) return DeltaOutcome::Duplicate;
  if (delta.seq != last + 1) return DeltaOutcome::Gap;
  for (const auto& o : delta.upserts) TF_RETURN_IF_ERROR(upsertObject(db, clusterId, o));
  for (const auto& k : delta.deletes)
    TF_RETURN_IF_ERROR(Stmt(db, "DELETE FROM objects WHERE cluster_id=? AND kind=? AND namespace=? AND name=?",
                            clusterId, k.kind, k.ns, k.name)
                           .run());
  TF_RETURN_IF_ERROR(Stmt(db, "UPDATE clusters SET last_seq=? WHERE id=?", delta.seq, clusterId).run());
  return DeltaOutcome::Applied;
}

}  // namespace

Result<DeltaOutcome> SqliteStore::applyDelta(int64_t clusterId, const protocol::Delta& delta) {
  return applyDeltas({{clusterId, &delta}}).front();
}

std::vector<Result<DeltaOutcome>> SqliteStore::applyDeltas(const std::vector<ClusterDelta>& deltas) {
  LOCK;
  std::vector<Result<DeltaOutcome>> out;
  out.reserve(deltas.size());
  Tx tx(impl_->db);
  if (!tx.status()) return std::vector<Result<DeltaOutcome>>(deltas.size(), tx.status());
  for (const auto& d : deltas) {
    if (Status s = exec(impl_->db, "SAVEPOINT delta"); !s) return std::vector<Result<DeltaOutcome>>(deltas.size(), s);
    out.push_back(applyDeltaIn(impl_->db, d.clusterId, *d.delta));
    // A failed delta leaves nothing behind; the others stay.
    if (!out.back()) (void)exec(impl_->db, "ROLLBACK TO delta");
    if (Status s = exec(impl_->db, "RELEASE delta"); !s) return std::vector<Result<DeltaOutcome>>(deltas.size(), s);
  }
  if (Status s = tx.commit(); !s) return std::vector<Result<DeltaOutcome>>(deltas.size(), s);
  return out;
}

Result<std::vector<SyncedObject>> SqliteStore::listObjects(int64_t clusterId, const std::string& kind) {
  LOCK;
  auto read = [](Stmt& q) {
    SyncedObject o{q.text(0), q.text(1), q.text(2), q.text(3)};
    o.body = nlohmann::json::parse(q.text(4), nullptr, false);
    return o;
  };
  if (kind.empty())
    return impl_->all<SyncedObject>(
        "SELECT kind, namespace, name, resource_version, body FROM objects WHERE cluster_id=? "
        "ORDER BY kind, namespace, name",
        read, clusterId);
  return impl_->all<SyncedObject>(
      "SELECT kind, namespace, name, resource_version, body FROM objects WHERE cluster_id=? AND kind=? "
      "ORDER BY namespace, name",
      read, clusterId, kind);
}

Status SqliteStore::addMetrics(int64_t clusterId, const std::vector<protocol::MetricPoint>& points, int64_t now,
                               int64_t retentionMs) {
  LOCK;
  Tx tx(impl_->db);
  TF_CHECK_TX(tx);
  const int64_t oldest = now - retentionMs;
  for (const auto& p : points) {
    if (p.tsMs < oldest) continue;
    TF_RETURN_IF_ERROR(Stmt(impl_->db, "INSERT OR REPLACE INTO metrics(cluster_id, series, ts, value) VALUES(?,?,?,?)",
                            clusterId, p.series, p.tsMs, p.value)
                           .run());
  }
  TF_RETURN_IF_ERROR(Stmt(impl_->db, "DELETE FROM metrics WHERE cluster_id=? AND ts<?", clusterId, oldest).run());
  return tx.commit();
}

Result<std::vector<protocol::MetricPoint>> SqliteStore::metrics(int64_t clusterId, const std::string& series,
                                                                int64_t sinceMs) {
  LOCK;
  return impl_->all<protocol::MetricPoint>(
      "SELECT series, ts, value FROM metrics WHERE cluster_id=? AND (?='' OR series=?) AND ts>=? ORDER BY series, ts",
      [](Stmt& q) { return protocol::MetricPoint{q.text(0), q.i64(1), q.dbl(2)}; }, clusterId, series, series,
      sinceMs);
}

Result<CommandRecord> SqliteStore::addCommand(int64_t clusterId, const std::string& verb, const std::string& argsJson,
                                              int64_t deadline, int64_t now) {
  LOCK;
  TF_RETURN_IF_ERROR(Stmt(impl_->db,
                          "INSERT INTO commands(cluster_id, verb, args, deadline, state, created_at, updated_at) "
                          "VALUES(?,?,?,?,'queued',?,?)",
                          clusterId, verb, argsJson, deadline, now, now)
                         .run());
  const int64_t id = sqlite3_last_insert_rowid(impl_->db);
  return impl_->one<CommandRecord>((std::string("SELECT ") + kCommandColumns + " FROM commands WHERE id=?").c_str(),
                                   readCommand, id);
}

Result<CommandRecord> SqliteStore::command(int64_t clusterId, int64_t id) {
  LOCK;
  return impl_->one<CommandRecord>(
      (std::string("SELECT ") + kCommandColumns + " FROM commands WHERE id=? AND cluster_id=?").c_str(), readCommand,
      id, clusterId);
}

Result<std::vector<CommandRecord>> SqliteStore::pendingCommands(int64_t clusterId, int64_t now) {
  LOCK;
  TF_RETURN_IF_ERROR(Stmt(impl_->db,
                          "UPDATE commands SET state='expired', updated_at=? WHERE cluster_id=? "
                          "AND state IN ('queued','sent') AND deadline<=?",
                          now, clusterId, now)
                         .run());
  return impl_->all<CommandRecord>(
      (std::string("SELECT ") + kCommandColumns +
       " FROM commands WHERE cluster_id=? AND state IN ('queued','sent') ORDER BY id")
          .c_str(),
      readCommand, clusterId);
}

Status SqliteStore::setCommandState(int64_t clusterId, int64_t id, const std::string& state,
                                    const std::string& detail, const std::string& resultJson, int64_t now) {
  LOCK;
  TF_RETURN_IF_ERROR(Stmt(impl_->db,
                          "UPDATE commands SET state=?, detail=?, result=?, updated_at=? WHERE id=? AND cluster_id=?",
                          state, detail, resultJson, now, id, clusterId)
                         .run());
  return sqlite3_changes(impl_->db) == 1 ? Status::ok() : notFound("no such command for this cluster");
}

Result<UserRecord> SqliteStore::createUser(const std::string& name, const std::string& passwordHash, bool admin,
                                           int64_t now) {
  LOCK;
  TF_RETURN_IF_ERROR(Stmt(impl_->db, "INSERT INTO users(name, password_hash, admin, created_at) VALUES(?,?,?,?)",
                          name, passwordHash, admin ? 1 : 0, now)
                         .run());
  return UserRecord{sqlite3_last_insert_rowid(impl_->db), name, passwordHash, admin};
}

namespace {
UserRecord readUser(Stmt& q) { return {q.i64(0), q.text(1), q.text(2), q.i64(3) != 0}; }
}  // namespace

Result<UserRecord> SqliteStore::userByName(const std::string& name) {
  LOCK;
  return impl_->one<UserRecord>("SELECT id, name, password_hash, admin FROM users WHERE name=?", readUser, name);
}

Result<UserRecord> SqliteStore::userById(int64_t id) {
  LOCK;
  return impl_->one<UserRecord>("SELECT id, name, password_hash, admin FROM users WHERE id=?", readUser, id);
}

Result<int64_t> SqliteStore::countUsers() {
  LOCK;
  return impl_->one<int64_t>("SELECT COUNT(*) FROM users", [](Stmt& q) { return q.i64(0); });
}

Status SqliteStore::addSession(const SessionRecord& s) {
  LOCK;
  TF_RETURN_IF_ERROR(Stmt(impl_->db, "DELETE FROM sessions WHERE expires_at<=?", s.createdAt).run());
  return Stmt(impl_->db, "INSERT INTO sessions(id_hash, user_id, csrf_token, created_at, expires_at) VALUES(?,?,?,?,?)",
              s.idHash, s.userId, s.csrfToken, s.createdAt, s.expiresAt)
      .run();
}

Result<SessionRecord> SqliteStore::session(const std::string& idHash, int64_t now) {
  LOCK;
  return impl_->one<SessionRecord>(
      "SELECT id_hash, user_id, csrf_token, created_at, expires_at FROM sessions WHERE id_hash=? AND expires_at>?",
      [](Stmt& q) { return SessionRecord{q.text(0), q.i64(1), q.text(2), q.i64(3), q.i64(4)}; }, idHash, now);
}

Status SqliteStore::deleteSession(const std::string& idHash) {
  LOCK;
  return Stmt(impl_->db, "DELETE FROM sessions WHERE id_hash=?", idHash).run();
}

Status SqliteStore::audit(int64_t now, const std::string& actor, const std::string& action, int64_t clusterId,
                          const std::string& address, const std::string& detail) {
  LOCK;
  return Stmt(impl_->db, "INSERT INTO audit(ts, actor, action, cluster_id, address, detail) VALUES(?,?,?,?,?,?)", now,
              actor, action, clusterId, address, detail)
      .run();
}

}  // namespace tf::portal
