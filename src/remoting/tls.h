// TLS over a connected TCP socket (OpenSSL), behind the Transport interface; used by
// tcp_transport.cpp for "tls://" addresses. Kernel TLS is asked for (SSL_OP_ENABLE_KTLS) and
// used where the kernel offers it; describe() says whether it is on.
//
//   auto ctx = serverTlsContext(options);                  // certificate + key, loaded once
//   TransportPtr t = tlsServerTransport(fd, "10.0.0.7:5123", "10.0.0.7", *ctx);
//   // the handshake runs in readAvailable() (non-blocking) or the first read or write
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "remoting/transport.h"

namespace tf::remoting {

class TlsContext;

Result<std::shared_ptr<TlsContext>> serverTlsContext(const TlsOptions& options);
// Needs a CA file or a pin: a client never accepts a certificate it has not verified.
Result<std::shared_ptr<TlsContext>> clientTlsContext(const TlsOptions& options);

// The server side of an accepted socket; the handshake happens on first use.
TransportPtr tlsServerTransport(int fd, std::string peer, std::string peerKey,
                                std::shared_ptr<TlsContext> context);
// The client side of a connected socket: handshakes and verifies within timeoutMs.
Result<TransportPtr> tlsClientTransport(int fd, std::string peer, const std::string& serverName,
                                        std::shared_ptr<TlsContext> context, int timeoutMs);

// The four functions above, as the TCP transport reaches them: linked in (tls_linked.cpp, in
// tf_remoting: the worker, the CLI, tests, benchmarks) or loaded on the first tls:// address
// (stub/tls_loaded.cpp: the client stub dlopen()s libtensor-fusion-tls.so from its own folder),
// so a client process that uses tcp:// or shm:// never loads OpenSSL.
struct TlsBackend {
  uint32_t size; // sizeof(TlsBackend) of the build that made it: a mismatched module is refused
  Result<std::shared_ptr<TlsContext>> (*serverContext)(const TlsOptions& options);
  Result<std::shared_ptr<TlsContext>> (*clientContext)(const TlsOptions& options);
  TransportPtr (*serverTransport)(int fd, std::string peer, std::string peerKey,
                                  std::shared_ptr<TlsContext> context);
  Result<TransportPtr> (*clientTransport)(int fd, std::string peer, const std::string& serverName,
                                          std::shared_ptr<TlsContext> context, int timeoutMs);
};
// The table of tls_transport.cpp.
const TlsBackend& opensslTlsBackend();
// The process's TLS, or why there is none. Defined once per binary (see TlsBackend).
Result<const TlsBackend*> tlsBackend();

// Frees the calling thread's OpenSSL state (its error queue) now, not at its exit: a thread the
// process does not join calls it before it says it is done, so that a process ending right
// after leaves nothing behind (LeakSanitizer saw such a queue once). Binaries that link OpenSSL
// only (tls_linked.cpp).
void tlsThreadDone();

// Whether a and b are equal, in time that depends on neither (both are hashed first, so not
// even the length leaks). For tokens.
bool constantTimeEquals(const std::string& a, const std::string& b);

// For tests and benchmarks: a fresh self-signed P-256 certificate for "localhost" and
// 127.0.0.1, valid for a day, written as PEM; its DER SHA-256 in hex in *pinSha256.
Status writeSelfSignedCertificateForTest(const std::string& certPath, const std::string& keyPath,
                                         std::string* pinSha256 = nullptr);

} // namespace tf::remoting
