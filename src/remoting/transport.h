// One byte-stream interface over TCP (plain or TLS) and shared memory; frames (protocol.h)
// ride on it.
//
//   auto listener = listen("tcp://127.0.0.1:0");      // or "shm://name", "tls://..." + TlsOptions
//   std::string where = (*listener)->address();       // "tcp://127.0.0.1:40123"
//   auto server = (*listener)->accept();               // blocks
//   auto client = connect(where, 2000);                // in another thread or process
//   iovec v{buf, n}; (*client)->writeV(&v, 1);  (*server)->readExact(buf, n);
//
// A transport is used by one reader thread and one writer thread at a time. A peer that dies
// or is cut off makes readExact/writeV return Unavailable (never block forever): TCP through
// EOF, keep-alive and TCP_USER_TIMEOUT; shared memory through a Unix socket held beside the
// rings, checked whenever a wait sleeps.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include <sys/uio.h>

#include "common/status.h"

namespace tf::remoting {

class Transport {
public:
  virtual ~Transport() = default;
  // Writes every byte of the pieces, in order.
  virtual Status writeV(const iovec* iov, int count) = 0;
  // Reads exactly n bytes.
  virtual Status readExact(void* dst, size_t n) = 0;
  // True when a read would find data within timeoutMs (or the peer is gone: the read then
  // reports it). For a helper that must not block inside a read while others want to.
  virtual bool waitReadable(int timeoutMs) = 0;
  // Wakes blocked readers and writers with Unavailable; the peer sees the connection close.
  virtual void shutdown() = 0;
  virtual std::string describe() const = 0;
  // Zero-copy views, where the bytes live in memory both sides map (shared memory): the
  // worker hands ring memory straight to the driver's copies, so bulk data is written once
  // into the segment and not copied again. Others answer supportsViews() == false.
  virtual bool supportsViews() const { return false; }
  // Up to `max` contiguous readable bytes (waits for at least one); consumeRead releases them.
  virtual Status peekRead(size_t max, const uint8_t** p, size_t* n) {
    return unimplemented("no views");
  }
  virtual void consumeRead(size_t n) {}
  // Up to `max` contiguous writable bytes (waits for room); commitWrite publishes them.
  virtual Status reserveWrite(size_t max, uint8_t** p, size_t* n) {
    return unimplemented("no views");
  }
  virtual void commitWrite(size_t n) {}
  // Descriptors beside the byte stream (shared memory: over its Unix socket), so that both
  // processes can map the same pages. Others answer Unimplemented.
  virtual Status sendFd(int fd) { return unimplemented("no descriptor passing"); }
  virtual Result<int> receiveFd(int timeoutMs) { return unimplemented("no descriptor passing"); }
  // Whether small fire-and-forget frames should be gathered into one write (each write is a
  // system call on TCP; on shared memory it is a ring copy, cheaper than gathering).
  virtual bool prefersBatching() const { return false; }

  // Before a connection is authenticated the worker gives it no thread: one gate thread waits
  // on every pending connection and reads what has arrived without blocking.
  // readAvailable: up to `max` bytes that are already here (0 if none yet); a TLS transport
  // first finishes its handshake this way. Unavailable when the peer is gone or broke TLS.
  virtual Result<size_t> readAvailable(void* dst, size_t max) = 0;
  // A descriptor that polls readable when readAvailable may make progress, or -1: ask again
  // every millisecond or so (shared-memory rings have no descriptor for their data).
  virtual int pollDescriptor() const { return -1; }
  // Who is at the other end, for per-peer limits: the IP address (TCP), "uid N" (shm).
  virtual std::string peerKey() const = 0;
};
using TransportPtr = std::unique_ptr<Transport>;

class Listener {
public:
  virtual ~Listener() = default;
  virtual Result<TransportPtr> accept() = 0;
  // Where clients connect: "tcp://127.0.0.1:40123" (the real port when asked for 0).
  virtual std::string address() const = 0;
  virtual void close() = 0;
};
using ListenerPtr = std::unique_ptr<Listener>;

// TLS on the TCP transport ("tls://host:port"): the worker presents certFile/keyFile; the
// client verifies the worker's certificate against caFile (and the address's host, or
// serverName), or accepts exactly the certificate whose DER SHA-256 is pinSha256 (hex).
// The token is sent only inside the verified TLS session.
struct TlsOptions {
  std::string certFile, keyFile; // worker
  std::string caFile;            // client
  std::string pinSha256;         // client
  std::string serverName;        // client: the name to check; default: the address's host
  bool any() const { return !certFile.empty() || !caFile.empty() || !pinSha256.empty(); }
};
// The client's TLS options from TF_REMOTE_TLS_CA, TF_REMOTE_TLS_PIN, TF_REMOTE_TLS_NAME.
TlsOptions tlsOptionsFromEnvironment();

// "tcp://host:port", "tls://host:port" or "shm://name".
Result<ListenerPtr> listen(const std::string& address, const TlsOptions& tls = {});
Result<TransportPtr> connect(const std::string& address, int timeoutMs, const TlsOptions& tls = {});

// Where a client reaches the worker its session moved to (a Moved reply's address) from where
// it is: the address as given, except a shm:// socket file it cannot see while the one it
// uses now is a file: a pod's worker moves to a socket beside its old one, in the pod's
// directory, which the container mounts elsewhere; the same name in its own directory, then.
std::string movedAddressFrom(const std::string& moved, const std::string& current);

// Per scheme. With tls set (worker: certificate and key; client: CA or pin), TCP carries TLS.
Result<ListenerPtr> listenTcp(const std::string& host, int port, const TlsOptions* tls = nullptr);
Result<TransportPtr> connectTcp(const std::string& host, int port, int timeoutMs,
                                const TlsOptions* tls = nullptr);
Result<ListenerPtr> listenShm(const std::string& name);
Result<TransportPtr> connectShm(const std::string& name, int timeoutMs);

} // namespace tf::remoting
