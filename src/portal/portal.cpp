#include "portal/portal.h"

#include <chrono>
#include <filesystem>
#include <unistd.h>

#include "portal/rest.h"

namespace tf::portal {

int64_t systemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::unique_ptr<Portal>> Portal::start(const PortalOptions& o) {
  if (o.dataDir.empty()) return invalidArgument("a data directory is required");
  std::error_code ec;
  std::filesystem::create_directories(o.dataDir, ec);
  if (ec) return unavailable("creating " + o.dataDir + ": " + ec.message());
  std::unique_ptr<Portal> p(new Portal());
  auto store = SqliteStore::open(o.dataDir + "/portal.db");
  if (!store) return store.status();
  p->store_ = std::move(*store);

  std::vector<std::string> names = o.hostNames;
  if (names.empty()) {
    names = {"localhost", "127.0.0.1"};
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) == 0 && host[0] && std::string(host) != "localhost") names.push_back(host);
  }
  auto tls = loadOrCreateTlsIdentity(o.tlsCert.empty() ? o.dataDir + "/portal.crt" : o.tlsCert,
                                     o.tlsKey.empty() ? o.dataDir + "/portal.key" : o.tlsKey, names);
  if (!tls) return tls.status();
  p->tls_ = *tls;

  Clock clock = o.clock ? o.clock : Clock(systemNowMs);
  auto admin = ensureAdmin(*p->store_, o.adminPassword, clock());
  if (!admin) return admin.status();
  p->adminPassword_ = *admin;

  p->ctx_.reset(new PortalContext{*p->store_, p->registry_, clock, o.settings, p->tls_.pin, ""});
  auto server = Server::start(*p->ctx_, p->tls_, o.server);
  if (!server) return server.status();
  p->server_ = std::move(*server);
  p->ctx_->agentEndpoint = !o.agentEndpoint.empty() ? o.agentEndpoint
                           : std::string(o.server.insecureHttp ? "ws://" : "wss://") + names.front() + ":" +
                                 std::to_string(p->server_->port()) + "/_ws";
  return p;
}

Portal::~Portal() { server_.reset(); }

}  // namespace tf::portal
