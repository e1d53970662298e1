// TLS on the TCP transport. The socket is non-blocking underneath; every OpenSSL call on a
// connection runs under one mutex and waits for the socket with poll() outside it, so the
// stub's reader thread and its writer threads share one SSL object safely (the contract of
// Transport: one reader and one writer at a time).
#include "remoting/tls.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <vector>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace tf::remoting {

class TlsContext {
public:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  ~TlsContext() { SSL_CTX_free(ctx_); }
  SSL_CTX* get() const { return ctx_; }
  std::string pin; // client: the expected certificate digest (lower-case hex), or empty
  bool verifyChain = false;

private:
  SSL_CTX* ctx_;
};

namespace {

using Clock = std::chrono::steady_clock;

std::string sslErrors(const char* what) {
  std::string out = what;
  for (unsigned long e; (e = ERR_get_error()) != 0;) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    out += std::string(out == what ? ": " : "; ") + buf;
  }
  return out;
}

std::string hex(const unsigned char* p, unsigned n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < n; ++i) {
    s += kDigits[p[i] >> 4];
    s += kDigits[p[i] & 15];
  }
  return s;
}

// "sha256:AB:CD..." or "abcd...": lower-case hex digits only.
std::string normalizePin(const std::string& pin) {
  std::string s = pin.rfind("sha256:", 0) == 0 ? pin.substr(7) : pin;
  std::string out;
  for (char c : s)
    if (isxdigit(static_cast<unsigned char>(c))) out += static_cast<char>(tolower(c));
  return out;
}

std::string certificateDigest(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  if (!cert || X509_digest(cert, EVP_sha256(), md, &n) != 1) return "";
  return hex(md, n);
}

constexpr size_t kReadAhead = 256 << 10;

Result<SSL_CTX*> newContext(bool server) {
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (!ctx) return internalError(sslErrors("SSL_CTX_new"));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Kernel TLS where the kernel has it: records are then sealed by the kernel. No session
  // tickets: nothing is written after the handshake but our own frames.
  SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS | SSL_OP_NO_RENEGOTIATION);
  // Read ahead into a large buffer: one read(2) brings many records, not two per record.
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_default_read_buffer_len(ctx, kReadAhead);
  if (server) SSL_CTX_set_num_tickets(ctx, 0);
  return ctx;
}

class TlsTransport : public Transport {
public:
  TlsTransport(int fd, std::string peer, std::string peerKey, std::shared_ptr<TlsContext> context,
               bool server)
      : fd_(fd), peer_(std::move(peer)), peerKey_(std::move(peerKey)),
        context_(std::move(context)), server_(server) {
    fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);
    ssl_ = SSL_new(context_->get());
    if (!ssl_) return;
    SSL_set_fd(ssl_, fd_);
    if (server_) SSL_set_accept_state(ssl_);
    else SSL_set_connect_state(ssl_);
  }
  ~TlsTransport() override {
    if (ssl_) SSL_free(ssl_);
    ::close(fd_);
  }

  // Client: SNI and the name to verify.
  Status setServerName(const std::string& name) {
    if (!ssl_) return internalError(sslErrors("SSL_new"));
    in6_addr ip6;
    in_addr ip4;
    bool isIp = inet_pton(AF_INET, name.c_str(), &ip4) == 1 || inet_pton(AF_INET6, name.c_str(), &ip6) == 1;
    if (!isIp) SSL_set_tlsext_host_name(ssl_, name.c_str());
    if (context_->verifyChain) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
      int ok = isIp ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                    : X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
      if (ok != 1) return invalidArgument("cannot verify the worker's name " + name);
    }
    return Status::ok();
  }

  // Handshake (and, on the client, the pin) within timeoutMs (-1: no limit).
  Status handshake(int timeoutMs) {
    auto r = io([&](size_t*) { return SSL_do_handshake(ssl_); }, true, timeoutMs);
    if (!r) return r.status();
    return afterHandshake();
  }

  Status writeV(const iovec* iov, int count) override {
    if (!done_.load(std::memory_order_acquire)) TF_RETURN_IF_ERROR(handshake(-1));
    // Small pieces (header, args) go out in one record with what follows them.
    std::lock_guard<std::mutex> writers(writeMu_);
    gather_.clear();
    for (int i = 0; i < count; ++i) {
      const auto* p = static_cast<const uint8_t*>(iov[i].iov_base);
      size_t n = iov[i].iov_len;
      if (n < kGather) {
        gather_.insert(gather_.end(), p, p + n);
        continue;
      }
      TF_RETURN_IF_ERROR(writeAll(gather_.data(), gather_.size()));
      gather_.clear();
      TF_RETURN_IF_ERROR(writeAll(p, n));
    }
    return writeAll(gather_.data(), gather_.size());
  }

  Status readExact(void* dst, size_t n) override {
    if (!done_.load(std::memory_order_acquire)) TF_RETURN_IF_ERROR(handshake(-1));
    return all(static_cast<uint8_t*>(dst), n, [&](uint8_t* p, size_t k, size_t* got) {
      return SSL_read_ex(ssl_, p, k, got);
    });
  }

  Result<size_t> readAvailable(void* dst, size_t max) override {
    if (!done_.load(std::memory_order_acquire)) {
      if (server_ && !sniffed_) TF_RETURN_IF_ERROR(sniff());
      auto r = io([&](size_t*) { return SSL_do_handshake(ssl_); }, false, 0);
      if (!r) return r.status();
      if (!handshakeFinished()) return size_t(0);
      TF_RETURN_IF_ERROR(afterHandshake());
    }
    return io([&](size_t* got) { return SSL_read_ex(ssl_, dst, max, got); }, false, 0);
  }
  int pollDescriptor() const override { return fd_; }
  std::string peerKey() const override { return peerKey_; }

  bool waitReadable(int timeoutMs) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (SSL_has_pending(ssl_)) return true;
    }
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, timeoutMs) == 1;
  }

  void shutdown() override {
    closed_.store(true);
    ::shutdown(fd_, SHUT_RDWR);
  }
  std::string describe() const override {
    std::string k;
    if (done_.load()) {
      std::lock_guard<std::mutex> lock(mu_);
      bool tx = BIO_get_ktls_send(SSL_get_wbio(ssl_));
      bool rx = BIO_get_ktls_recv(SSL_get_rbio(ssl_));
      if (tx || rx) k = std::string(" kTLS") + (tx ? " send" : "") + (rx ? " recv" : "");
    }
    return "tls " + peer_ + k;
  }
  bool prefersBatching() const override { return true; }

private:
  static constexpr size_t kGather = 16 << 10;

  bool handshakeFinished() {
    std::lock_guard<std::mutex> lock(mu_);
    return SSL_is_init_finished(ssl_);
  }

  // A plaintext client at a TLS listener sends a frame header, not a TLS record: say so.
  Status sniff() {
    uint8_t b = 0;
    ssize_t r = ::recv(fd_, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r == 0) return unavailable("connection closed by " + peer_);
    if (r < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
                          ? Status::ok()
                          : unavailable(std::string("recv: ") + strerror(errno));
    sniffed_ = true;
    if (b != 0x16) // a TLS handshake record starts with 22
      return unavailable("not a TLS client (a plaintext tcp:// client at a tls:// worker?)");
    return Status::ok();
  }

  Status afterHandshake() {
    if (!server_ && !context_->pin.empty()) {
      X509* cert = SSL_get1_peer_certificate(ssl_);
      std::string got = certificateDigest(cert);
      X509_free(cert);
      if (got != context_->pin)
        return unavailable("the worker's certificate (sha256 " + got + ") is not the pinned one");
    }
    done_.store(true, std::memory_order_release);
    return Status::ok();
  }

  Status writeAll(const uint8_t* p, size_t n) {
    return all(const_cast<uint8_t*>(p), n, [&](uint8_t* q, size_t k, size_t* w) {
      return SSL_write_ex(ssl_, q, k, w);
    });
  }
  // Repeats op(p, n, &moved) (SSL_read_ex or SSL_write_ex), waiting as it asks, until all n
  // bytes have moved.
  template <typename F> Status all(uint8_t* p, size_t n, F op) {
    while (n) {
      auto r = io([&](size_t* moved) { return op(p, n, moved); }, true, -1);
      if (!r) return r.status();
      p += *r;
      n -= *r;
    }
    return Status::ok();
  }

  // Runs op (an OpenSSL call; for SSL_read_ex/SSL_write_ex it stores the bytes moved) under
  // the lock. When it wants the socket: with `block`, waits for it (up to timeoutMs, -1: no
  // limit) and tries again; without, answers 0.
  template <typename F> Result<size_t> io(F op, bool block, int timeoutMs) {
    if (!ssl_) return internalError("no TLS session");
    auto start = Clock::now();
    for (;;) {
      size_t moved = 0;
      int err;
      {
        std::lock_guard<std::mutex> lock(mu_);
        ERR_clear_error();
        int rc = op(&moved);
        err = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, rc);
        if (err == SSL_ERROR_SSL || err == SSL_ERROR_SYSCALL) {
          unsigned long e = ERR_peek_error();
          std::string what = e ? sslErrors("TLS") : std::string("TLS: connection lost");
          if (SSL_get_verify_result(ssl_) != X509_V_OK)
            what += std::string(" (certificate: ") +
                    X509_verify_cert_error_string(SSL_get_verify_result(ssl_)) + ")";
          return unavailable(what + " with " + peer_);
        }
      }
      if (err == SSL_ERROR_NONE) return moved;
      if (err == SSL_ERROR_ZERO_RETURN) return unavailable("connection closed by " + peer_);
      short events = err == SSL_ERROR_WANT_READ ? POLLIN : err == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
      if (!events) return unavailable("TLS error " + std::to_string(err) + " with " + peer_);
      if (!block) return size_t(0);
      if (closed_.load()) return unavailable("connection to " + peer_ + " shut down");
      int wait = -1;
      if (timeoutMs >= 0) {
        auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
        if (spent >= timeoutMs) return unavailable("TLS handshake with " + peer_ + " timed out");
        wait = static_cast<int>(timeoutMs - spent);
      }
      pollfd p{fd_, events, 0};
      if (::poll(&p, 1, wait) < 0 && errno != EINTR)
        return unavailable(std::string("poll: ") + strerror(errno));
      if (closed_.load()) return unavailable("connection to " + peer_ + " shut down");
    }
  }

  int fd_;
  std::string peer_, peerKey_;
  std::shared_ptr<TlsContext> context_;
  bool server_;
  SSL* ssl_ = nullptr;
  mutable std::mutex mu_;    // every OpenSSL call on ssl_
  std::mutex writeMu_;       // one writer's pieces stay together
  std::vector<uint8_t> gather_;
  std::atomic<bool> done_{false};
  std::atomic<bool> closed_{false};
  bool sniffed_ = false;
};

} // namespace

Result<std::shared_ptr<TlsContext>> serverTlsContext(const TlsOptions& o) {
  auto ctx = newContext(true);
  if (!ctx) return ctx.status();
  auto c = std::make_shared<TlsContext>(*ctx);
  if (SSL_CTX_use_certificate_chain_file(c->get(), o.certFile.c_str()) != 1)
    return invalidArgument(sslErrors(("cannot load the certificate " + o.certFile).c_str()));
  if (SSL_CTX_use_PrivateKey_file(c->get(), o.keyFile.c_str(), SSL_FILETYPE_PEM) != 1)
    return invalidArgument(sslErrors(("cannot load the key " + o.keyFile).c_str()));
  if (SSL_CTX_check_private_key(c->get()) != 1)
    return invalidArgument(sslErrors("the key does not match the certificate"));
  return c;
}

Result<std::shared_ptr<TlsContext>> clientTlsContext(const TlsOptions& o) {
  if (o.caFile.empty() && o.pinSha256.empty())
    return invalidArgument("a tls:// worker needs a CA file (TF_REMOTE_TLS_CA) or a certificate "
                           "pin (TF_REMOTE_TLS_PIN) to verify it");
  auto ctx = newContext(false);
  if (!ctx) return ctx.status();
  auto c = std::make_shared<TlsContext>(*ctx);
  if (!o.caFile.empty()) {
    if (SSL_CTX_load_verify_locations(c->get(), o.caFile.c_str(), nullptr) != 1)
      return invalidArgument(sslErrors(("cannot load the CA file " + o.caFile).c_str()));
    SSL_CTX_set_verify(c->get(), SSL_VERIFY_PEER, nullptr);
    c->verifyChain = true;
  }
  if (!o.pinSha256.empty()) {
    c->pin = normalizePin(o.pinSha256);
    if (c->pin.size() != 64) return invalidArgument("a certificate pin is 64 hex digits of SHA-256");
  }
  return c;
}

TransportPtr tlsServerTransport(int fd, std::string peer, std::string peerKey,
                                std::shared_ptr<TlsContext> context) {
  auto* t = new TlsTransport(fd, std::move(peer), std::move(peerKey), std::move(context), true);
  return TransportPtr(t);
}

Result<TransportPtr> tlsClientTransport(int fd, std::string peer, const std::string& serverName,
                                        std::shared_ptr<TlsContext> context, int timeoutMs) {
  std::string key = peer.substr(0, peer.rfind(':'));
  auto t = std::make_unique<TlsTransport>(fd, std::move(peer), key, std::move(context), false);
  TF_RETURN_IF_ERROR(t->setServerName(serverName));
  TF_RETURN_IF_ERROR(t->handshake(timeoutMs));
  return TransportPtr(std::move(t));
}

bool constantTimeEquals(const std::string& a, const std::string& b) {
  unsigned char da[32], db[32];
  unsigned n = 0;
  EVP_Digest(a.data(), a.size(), da, &n, EVP_sha256(), nullptr);
  EVP_Digest(b.data(), b.size(), db, &n, EVP_sha256(), nullptr);
  return CRYPTO_memcmp(da, db, sizeof(da)) == 0;
}

const TlsBackend& opensslTlsBackend() {
  static const TlsBackend backend{sizeof(TlsBackend), serverTlsContext, clientTlsContext,
                                  tlsServerTransport, tlsClientTransport};
  return backend;
}

Status writeSelfSignedCertificateForTest(const std::string& certPath, const std::string& keyPath,
                                         std::string* pinSha256) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  Status s = key && cert ? Status::ok() : internalError(sslErrors("key generation"));
  if (s.isOk()) {
    static std::atomic<long> serial{1};
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial.fetch_add(1) + time(nullptr));
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* san =
        X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    X509_EXTENSION* ca = X509V3_EXT_conf_nid(nullptr, &v3, NID_basic_constraints, "critical,CA:TRUE");
    if (!san || !ca || !X509_add_ext(cert, san, -1) || !X509_add_ext(cert, ca, -1) ||
        !X509_sign(cert, key, EVP_sha256()))
      s = internalError(sslErrors("signing the certificate"));
    X509_EXTENSION_free(san);
    X509_EXTENSION_free(ca);
  }
  if (s.isOk()) {
    FILE* c = fopen(certPath.c_str(), "w");
    FILE* k = fopen(keyPath.c_str(), "w");
    if (!c || !k || PEM_write_X509(c, cert) != 1 ||
        PEM_write_PrivateKey(k, key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
      s = unavailable("cannot write " + certPath + " and " + keyPath);
    if (c) fclose(c);
    if (k) fclose(k);
  }
  if (s.isOk() && pinSha256) *pinSha256 = certificateDigest(cert);
  X509_free(cert);
  EVP_PKEY_free(key);
  return s;
}

} // namespace tf::remoting
