// `tensor-fusion portal`: the web console's server (src/portal): REST, the agents' WebSocket.
#include <cstdio>
#include <fstream>

#include "cli/commands.h"
#include "cli/stop_signals.h"
#include "portal/portal.h"

namespace tf::cli {
namespace {

// The first line of a file, without its newline.
bool readFirstLine(const std::string& path, std::string& out) {
  std::ifstream in(path);
  if (!in) return false;
  std::getline(in, out);
  while (!out.empty() && (out.back() == '\r' || out.back() == ' ')) out.pop_back();
  return true;
}

}  // namespace

void addPortalCommand(CLI::App& app, int& exitCode) {
  static portal::PortalOptions o;
  static std::string listen = "0.0.0.0:8443", passwordFile;
  auto* cmd = app.add_subcommand("portal", "Run the portal: console REST API and the cluster agents' WebSocket");
  cmd->add_option("--listen", listen, "HOST:PORT of the HTTPS port (port 0: any)");
  cmd->add_option("--data-dir", o.dataDir, "Directory of portal.db and the generated certificate")->required();
  cmd->add_option("--tls-cert", o.tlsCert, "PEM certificate (default: DATA_DIR/portal.crt, generated when absent)");
  cmd->add_option("--tls-key", o.tlsKey, "PEM private key (default: DATA_DIR/portal.key, generated when absent)");
  cmd->add_option("--host-name", o.hostNames, "Names in a generated certificate (repeatable)");
  cmd->add_option("--admin-password-file", passwordFile, "The first admin's password (first line); else one is generated and printed once");
  cmd->add_option("--agent-endpoint", o.agentEndpoint, "wss:// URL agents dial, for install commands");
  cmd->add_flag("--insecure-http", o.server.insecureHttp, "Plain HTTP and ws:// (tests only; never in production)");
  cmd->callback([&exitCode] {
    const auto colon = listen.rfind(':');
    try {
      o.server.host = colon == std::string::npos || colon == 0 ? "0.0.0.0" : listen.substr(0, colon);
      o.server.port = std::stoi(colon == std::string::npos ? listen : listen.substr(colon + 1));
    } catch (const std::exception&) {
      std::fprintf(stderr, "tensor-fusion portal: --listen %s: expected HOST:PORT\n", listen.c_str());
      exitCode = 2;
      return;
    }
    if (!passwordFile.empty() && (!readFirstLine(passwordFile, o.adminPassword) || o.adminPassword.empty())) {
      std::fprintf(stderr, "tensor-fusion portal: --admin-password-file %s: unreadable or empty\n", passwordFile.c_str());
      exitCode = 2;
      return;
    }
    // SIGINT/SIGTERM: stop serving and close the store cleanly.
    const sigset_t sigs = blockStopSignals();
    auto p = portal::Portal::start(o);
    if (!p) {
      std::fprintf(stderr, "tensor-fusion portal: %s\n", p.status().toString().c_str());
      exitCode = 1;
      return;
    }
    auto& portal = *p;
    std::printf("portal listening on %s:%d (%s)\ncertificate pin %s\n", o.server.host.c_str(), portal->port(),
                o.server.insecureHttp ? "plain HTTP: tests only" : "TLS", portal->pin().c_str());
    if (!portal->initialAdminPassword().empty())
      std::printf("first admin: user \"admin\", password %s (shown once)\n", portal->initialAdminPassword().c_str());
    std::fflush(stdout);
    awaitStopSignal(sigs);
    portal.reset();
    std::printf("portal stopped\n");
  });
}

}  // namespace tf::cli
