// The portal, assembled: the SQLite store in the data directory, the TLS identity (given or
// generated there), the first admin, and the HTTPS server.
//
//   PortalOptions o;
//   o.dataDir = "/var/lib/tensor-fusion-portal";
//   auto portal = Portal::start(o);   // serving until destroyed
//   printf("pin %s, port %d\n", (*portal)->pin().c_str(), (*portal)->port());
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "portal/context.h"
#include "portal/server.h"
#include "portal/sqlite_store.h"

namespace tf::portal {

struct PortalOptions {
  std::string dataDir;                 // portal.db (+ portal.crt/portal.key when generated)
  std::string tlsCert, tlsKey;         // default: dataDir/portal.crt, dataDir/portal.key
  std::vector<std::string> hostNames;  // names in a generated certificate (default: localhost, 127.0.0.1, hostname)
  std::string adminPassword;           // the first admin's; empty: generated (initialAdminPassword())
  std::string agentEndpoint;           // for install commands; default wss://<first host name>:<port>/_ws
  ServerOptions server;
  Settings settings;
  Clock clock;                         // default: the system clock
};

class Portal {
public:
  static Result<std::unique_ptr<Portal>> start(const PortalOptions& options);
  ~Portal();
  int port() const { return server_->port(); }
  const std::string& pin() const { return tls_.pin; }
  const std::string& certPem() const { return tls_.certPem; }
  // The generated first-admin password, once (empty when given, or when users existed).
  const std::string& initialAdminPassword() const { return adminPassword_; }
  Store& store() { return *store_; }
  AgentRegistry& registry() { return registry_; }

private:
  Portal() = default;
  SqliteStorePtr store_;
  AgentRegistry registry_;
  TlsIdentity tls_;
  std::string adminPassword_;
  std::unique_ptr<PortalContext> ctx_;
  std::unique_ptr<Server> server_;
};

}  // namespace tf::portal
