// TCP: no Nagle, large socket buffers, vectored writes, keep-alive and TCP_USER_TIMEOUT so a
// peer that vanishes without closing is noticed within about two seconds. With TlsOptions the
// same sockets carry TLS (tls_transport.cpp).
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <vector>

#include "remoting/tls.h"
#include "remoting/transport.h"

namespace tf::remoting {
namespace {

constexpr int kSocketBuffer = 8 << 20;

void tune(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  int buf = kSocketBuffer;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  int idle = 1, interval = 1, count = 2;
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
  unsigned userTimeoutMs = 2000;
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &userTimeoutMs, sizeof(userTimeoutMs));
}

std::string errnoText(const char* what) { return std::string(what) + ": " + strerror(errno); }

// The numeric host and port of a socket address.
std::pair<std::string, std::string> numericName(const sockaddr_storage& sa, socklen_t len) {
  char host[NI_MAXHOST] = "?", port[NI_MAXSERV] = "?";
  getnameinfo(reinterpret_cast<const sockaddr*>(&sa), len, host, sizeof(host), port, sizeof(port),
              NI_NUMERICHOST | NI_NUMERICSERV);
  return {host, port};
}

class TcpTransport : public Transport {
public:
  TcpTransport(int fd, std::string peer, std::string peerKey)
      : fd_(fd), peer_(std::move(peer)), peerKey_(std::move(peerKey)) {
    tune(fd_);
  }
  ~TcpTransport() override { ::close(fd_); }

  Status writeV(const iovec* iov, int count) override {
    iovec v[16];
    if (count > 16) return invalidArgument("too many pieces");
    std::memcpy(v, iov, count * sizeof(iovec));
    int at = 0;
    while (at < count) {
      msghdr m{};
      m.msg_iov = v + at;
      m.msg_iovlen = count - at;
      ssize_t w = ::sendmsg(fd_, &m, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR) continue;
        return unavailable(errnoText("send"));
      }
      size_t left = static_cast<size_t>(w);
      while (at < count && left >= v[at].iov_len) left -= v[at++].iov_len;
      if (at < count) {
        v[at].iov_base = static_cast<char*>(v[at].iov_base) + left;
        v[at].iov_len -= left;
      }
    }
    return Status::ok();
  }

  // Small reads (headers, args) come out of a buffer filled by one recv; large ones (bulk) go
  // straight to their destination.
  Status readExact(void* dst, size_t n) override {
    auto* p = static_cast<char*>(dst);
    if (buf_.empty()) buf_.resize(kReadBuffer); // not before the first read: idle peers cost no buffer
    size_t have = end_ - begin_;
    if (have) {
      size_t k = std::min(have, n);
      std::memcpy(p, buf_.data() + begin_, k);
      begin_ += k;
      p += k;
      n -= k;
    }
    while (n) {
      bool direct = n >= kReadBuffer / 2;
      char* into = direct ? p : buf_.data();
      size_t want = direct ? n : kReadBuffer;
      ssize_t r = ::recv(fd_, into, want, 0);
      if (r == 0) return unavailable("connection closed by " + peer_);
      if (r < 0) {
        if (errno == EINTR) continue;
        return unavailable(errnoText("recv"));
      }
      size_t got = static_cast<size_t>(r);
      if (direct) {
        p += got;
        n -= got;
        continue;
      }
      size_t k = std::min(got, n);
      std::memcpy(p, buf_.data(), k);
      p += k;
      n -= k;
      begin_ = k;
      end_ = got;
    }
    return Status::ok();
  }

  bool waitReadable(int timeoutMs) override {
    if (end_ > begin_) return true;
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, timeoutMs) == 1;
  }

  Result<size_t> readAvailable(void* dst, size_t max) override {
    size_t have = std::min(end_ - begin_, max);
    if (have) {
      std::memcpy(dst, buf_.data() + begin_, have);
      begin_ += have;
      return have;
    }
    for (;;) {
      ssize_t r = ::recv(fd_, dst, max, MSG_DONTWAIT);
      if (r > 0) return static_cast<size_t>(r);
      if (r == 0) return unavailable("connection closed by " + peer_);
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return size_t(0);
      return unavailable(errnoText("recv"));
    }
  }
  int pollDescriptor() const override { return fd_; }
  std::string peerKey() const override { return peerKey_; }

  void shutdown() override { ::shutdown(fd_, SHUT_RDWR); }
  std::string describe() const override { return "tcp " + peer_; }
  bool prefersBatching() const override { return true; }

private:
  static constexpr size_t kReadBuffer = 256 << 10;
  int fd_;
  std::string peer_;
  std::string peerKey_;
  std::vector<char> buf_;
  size_t begin_ = 0, end_ = 0;
};

// A TLS listener's certificate and the TLS that made it.
struct ListenerTls {
  const TlsBackend* backend = nullptr;
  std::shared_ptr<TlsContext> context;
};

class TcpListener : public Listener {
public:
  TcpListener(int fd, std::string address, ListenerTls tls)
      : fd_(fd), address_(std::move(address)), tls_(std::move(tls)) {}
  ~TcpListener() override { close(); }

  Result<TransportPtr> accept() override {
    for (;;) {
      sockaddr_storage sa{};
      socklen_t len = sizeof(sa);
      int fd = ::accept4(fd_, reinterpret_cast<sockaddr*>(&sa), &len, SOCK_CLOEXEC);
      if (fd >= 0) {
        auto [host, port] = numericName(sa, len);
        // TLS: the handshake happens later, without blocking (readAvailable), on the gate.
        if (tls_.context) {
          tune(fd);
          return tls_.backend->serverTransport(fd, host + ":" + port, host, tls_.context);
        }
        return TransportPtr(new TcpTransport(fd, host + ":" + port, host));
      }
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return unavailable(errnoText("accept"));
    }
  }
  std::string address() const override { return address_; }
  void close() override {
    if (fd_ >= 0) {
      ::shutdown(fd_, SHUT_RDWR);
      ::close(fd_);
      fd_ = -1;
    }
  }

private:
  int fd_;
  std::string address_;
  ListenerTls tls_;
};

Result<addrinfo*> resolve(const std::string& host, int port, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* res = nullptr;
  std::string p = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), p.c_str(), &hints, &res);
  if (rc != 0 || !res) return invalidArgument("cannot resolve " + host + ": " + gai_strerror(rc));
  return res;
}

} // namespace

Result<ListenerPtr> listenTcp(const std::string& host, int port, const TlsOptions* tls) {
  ListenerTls context;
  if (tls && tls->any()) {
    auto backend = tlsBackend();
    if (!backend) return backend.status();
    auto c = (*backend)->serverContext(*tls);
    if (!c) return c.status();
    context = {*backend, std::move(*c)};
  }
  auto res = resolve(host, port, true);
  if (!res) return res.status();
  addrinfo* ai = *res;
  int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(ai);
    return unavailable(errnoText("socket"));
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd, 128) != 0) {
    Status s = unavailable(errnoText(("binding " + host + ":" + std::to_string(port)).c_str()));
    freeaddrinfo(ai);
    ::close(fd);
    return s;
  }
  freeaddrinfo(ai);
  sockaddr_storage sa{};
  socklen_t len = sizeof(sa);
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  auto [h, p] = numericName(sa, len);
  std::string shown = sa.ss_family == AF_INET6 ? "[" + h + "]" : h;
  const char* scheme = context.context ? "tls://" : "tcp://";
  return ListenerPtr(new TcpListener(fd, scheme + shown + ":" + p, std::move(context)));
}

Result<TransportPtr> connectTcp(const std::string& host, int port, int timeoutMs,
                                const TlsOptions* tls) {
  std::shared_ptr<TlsContext> context;
  const TlsBackend* backend = nullptr;
  if (tls) {
    auto b = tlsBackend();
    if (!b) return b.status();
    backend = *b;
    auto c = backend->clientContext(*tls);
    if (!c) return c.status();
    context = std::move(*c);
  }
  auto started = std::chrono::steady_clock::now();
  auto res = resolve(host, port, false);
  if (!res) return res.status();
  Status last = unavailable("no address for " + host);
  for (addrinfo* ai = *res; ai; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) continue;
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd pfd{fd, POLLOUT, 0};
      rc = ::poll(&pfd, 1, timeoutMs) == 1 ? 0 : -1;
      int err = 0;
      socklen_t len = sizeof(err);
      if (rc == 0 && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)) {
        errno = err ? err : ETIMEDOUT;
        rc = -1;
      } else if (rc != 0) {
        errno = ETIMEDOUT;
      }
    }
    if (rc == 0) {
      freeaddrinfo(*res);
      std::string peer = host + ":" + std::to_string(port);
      if (context) {
        tune(fd);
        int spent = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - started).count());
        return backend->clientTransport(fd, peer, tls->serverName.empty() ? host : tls->serverName,
                                        context, std::max(1, timeoutMs - spent));
      }
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
      return TransportPtr(new TcpTransport(fd, peer, host));
    }
    last = unavailable(errnoText(("connecting to " + host + ":" + std::to_string(port)).c_str()));
    ::close(fd);
  }
  freeaddrinfo(*res);
  return last;
}

namespace {

// "tcp://host:port" or "tls://host:port" (IPv6 hosts in brackets).
struct TcpAddress {
  std::string host;
  int port = 0;
  bool tls = false;
};
Result<TcpAddress> parseTcp(const std::string& address) {
  TcpAddress a;
  a.tls = address.rfind("tls://", 0) == 0;
  std::string rest = address.substr(6);
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos) return invalidArgument("tcp address needs a port: " + address);
  a.host = rest.substr(0, colon);
  if (a.host.size() > 2 && a.host.front() == '[') a.host = a.host.substr(1, a.host.size() - 2);
  a.port = atoi(rest.c_str() + colon + 1);
  return a;
}
bool isTcp(const std::string& a) { return a.rfind("tcp://", 0) == 0 || a.rfind("tls://", 0) == 0; }
const char kAddressForms[] = "(want tcp://host:port, tls://host:port or shm://name): ";

} // namespace

TlsOptions tlsOptionsFromEnvironment() {
  TlsOptions o;
  if (const char* v = getenv("TF_REMOTE_TLS_CA")) o.caFile = v;
  if (const char* v = getenv("TF_REMOTE_TLS_PIN")) o.pinSha256 = v;
  if (const char* v = getenv("TF_REMOTE_TLS_NAME")) o.serverName = v;
  return o;
}

Result<ListenerPtr> listen(const std::string& address, const TlsOptions& tls) {
  if (isTcp(address)) {
    auto a = parseTcp(address);
    if (!a) return a.status();
    if (a->tls && (tls.certFile.empty() || tls.keyFile.empty()))
      return invalidArgument("a tls:// listener needs a certificate and a key (--tls-cert, --tls-key)");
    if (!a->tls && tls.any())
      return invalidArgument("a certificate is given but the address is not tls://: " + address);
    return listenTcp(a->host, a->port, a->tls ? &tls : nullptr);
  }
  if (address.rfind("shm://", 0) == 0) return listenShm(address.substr(6));
  return invalidArgument(std::string("unknown address ") + kAddressForms + address);
}

Result<TransportPtr> connect(const std::string& address, int timeoutMs, const TlsOptions& tls) {
  if (isTcp(address)) {
    auto a = parseTcp(address);
    if (!a) return a.status();
    return connectTcp(a->host, a->port, timeoutMs, a->tls ? &tls : nullptr);
  }
  if (address.rfind("shm://", 0) == 0) return connectShm(address.substr(6), timeoutMs);
  return invalidArgument(std::string("unknown address ") + kAddressForms + address);
}

} // namespace tf::remoting
