// The portal's one HTTPS port (Boost.Beast + Asio, OpenSSL): the REST API under /api/v1/, a
// placeholder page at /, and the agents' WebSocket endpoint at /_ws. The only file that sees
// Beast. Each connection runs on its own strand as C++20 coroutines.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "portal/context.h"
#include "portal/tls_identity.h"

namespace tf::portal {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;               // 0: any free port
  int threads = 2;
  int handshakeSeconds = 10;  // TLS handshake and the WebSocket upgrade must finish in this
  int authSeconds = 10;       // an agent's hello + auth must be done this long after the upgrade
  int idleSeconds = 60;       // WebSocket idle timeout (pings at half of it)
  bool insecureHttp = false;  // plain HTTP/WS, tests only
  bool groupCommit = true;    // agents' deltas committed together (DeltaCommitter); false: one transaction each
};

class Server {
public:
  static Result<std::unique_ptr<Server>> start(PortalContext& ctx, const TlsIdentity& tls, const ServerOptions& opts);
  ~Server();  // stops: closes the port and every connection
  int port() const;

  class Impl;

private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tf::portal
