#include "remoting/operator_connection.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

namespace tf::remoting {
namespace {

using Clock = std::chrono::steady_clock;

struct Url {
  std::string host, port, target;
};

Result<Url> parseHttpUrl(const std::string& url) {
  static const std::string kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) return invalidArgument("only http:// operator URLs are supported: " + url);
  std::string rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  Url u;
  u.target = slash == std::string::npos ? "/" : rest.substr(slash);
  const size_t colon = authority.rfind(':');
  if (colon != std::string::npos && authority.find(']') == std::string::npos) {
    u.host = authority.substr(0, colon);
    u.port = authority.substr(colon + 1);
  } else {
    u.host = authority;
    u.port = "80";
  }
  if (u.host.empty() || u.port.empty() || u.port.find_first_not_of("0123456789") != std::string::npos)
    return invalidArgument("malformed URL: " + url);
  return u;
}

int remainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

Result<int> dial(const Url& u, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* ai = nullptr;
  if (int rc = getaddrinfo(u.host.c_str(), u.port.c_str(), &hints, &ai); rc != 0)
    return unavailable("cannot resolve " + u.host + ": " + gai_strerror(rc));
  std::string why = "no address";
  for (addrinfo* a = ai; a; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, remainingMs(deadline)) == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        rc = err == 0 ? 0 : -1;
        errno = err ? err : ETIMEDOUT;
      } else {
        errno = ETIMEDOUT;
      }
    }
    if (rc == 0) {
      freeaddrinfo(ai);
      return fd;
    }
    why = std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(ai);
  return unavailable("cannot connect to " + u.host + ":" + u.port + ": " + why);
}

Status sendAll(int fd, const std::string& data, Clock::time_point deadline) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, remainingMs(deadline)) <= 0) return unavailable("timed out sending the request");
      continue;
    }
    return unavailable(std::string("send: ") + std::strerror(errno));
  }
  return Status::ok();
}

// The body of a chunked response.
Result<std::string> unchunk(const std::string& in) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    size_t eol = in.find("\r\n", pos);
    if (eol == std::string::npos) return dataLoss("truncated chunked body");
    const unsigned long size = std::strtoul(in.substr(pos, eol - pos).c_str(), nullptr, 16);
    pos = eol + 2;
    if (size == 0) return out;
    if (pos + size > in.size()) return dataLoss("truncated chunk");
    out.append(in, pos, size);
    pos += size + 2;
  }
}

}  // namespace

Result<std::string> workerAddressFromConnectionUrl(std::string_view s) {
  // native+<ip>+<port>+<rest>
  static constexpr std::string_view kNative = "native+";
  if (s.substr(0, kNative.size()) != kNative) return invalidArgument("not a native+ connection URL: " + std::string(s));
  std::string_view rest = s.substr(kNative.size());
  const size_t a = rest.find('+');
  if (a == std::string_view::npos || a == 0) return invalidArgument("connection URL without a host: " + std::string(s));
  const size_t b = rest.find('+', a + 1);
  std::string_view port = rest.substr(a + 1, b == std::string_view::npos ? std::string_view::npos : b - a - 1);
  if (port.empty() || port.find_first_not_of("0123456789") != std::string_view::npos || port.size() > 5)
    return invalidArgument("connection URL without a port: " + std::string(s));
  std::string host(rest.substr(0, a));
  if (host.find(':') != std::string::npos) host = "[" + host + "]";  // IPv6
  return "tcp://" + host + ":" + std::string(port);
}

Result<HttpAnswer> httpGet(const std::string& url, const std::string& token, std::chrono::milliseconds timeout) {
  auto u = parseHttpUrl(url);
  if (!u) return u.status();
  const auto deadline = Clock::now() + timeout;
  auto fd = dial(*u, deadline);
  if (!fd) return fd.status();
  std::string req = "GET " + u->target + " HTTP/1.1\r\nHost: " + u->host + ":" + u->port +
                    "\r\nAccept: application/json\r\nConnection: close\r\n";
  if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
  req += "\r\n";
  if (Status s = sendAll(*fd, req, deadline); !s) {
    close(*fd);
    return s;
  }
  std::string in;
  char buf[4096];
  for (;;) {
    pollfd p{*fd, POLLIN, 0};
    const int r = poll(&p, 1, remainingMs(deadline));
    if (r == 0) {
      close(*fd);
      return unavailable("no answer from " + u->host + ":" + u->port + " in time");
    }
    ssize_t n = recv(*fd, buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      const std::string why = std::strerror(errno);
      close(*fd);
      return unavailable("recv: " + why);
    }
    in.append(buf, static_cast<size_t>(n));
    if (in.size() > (1u << 20)) {
      close(*fd);
      return dataLoss("answer larger than 1 MiB");
    }
  }
  close(*fd);
  const size_t headEnd = in.find("\r\n\r\n");
  if (in.rfind("HTTP/1.", 0) != 0 || headEnd == std::string::npos || in.size() < 12)
    return dataLoss("not an HTTP answer from " + u->host + ":" + u->port);
  HttpAnswer a;
  a.status = std::atoi(in.c_str() + 9);
  std::string head = in.substr(0, headEnd);
  for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  a.body = in.substr(headEnd + 4);
  if (head.find("transfer-encoding: chunked") != std::string::npos) {
    auto body = unchunk(a.body);
    if (!body) return body.status();
    a.body = std::move(*body);
  }
  return a;
}

Result<std::string> resolveWorker(const std::string& url, const std::string& token, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string last = "no answer";
  while (Clock::now() < deadline) {
    // The operator holds each request until the connection is ready; ask for what is left.
    const auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline - Clock::now());
    const std::string ask = url + (url.find('?') == std::string::npos ? "?" : "&") +
                            "timeout=" + std::to_string(std::max<long>(1, left.count()));
    auto a = httpGet(ask, token, std::chrono::duration_cast<std::chrono::milliseconds>(left) + std::chrono::seconds(5));
    if (a && a->status == 200) {
      auto j = nlohmann::json::parse(a->body, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("connectionURL") || !j["connectionURL"].is_string())
        return dataLoss("the operator's answer has no connectionURL: " + a->body.substr(0, 200));
      return workerAddressFromConnectionUrl(j["connectionURL"].get<std::string>());
    }
    if (a) {
      auto j = nlohmann::json::parse(a->body, nullptr, false);
      last = "HTTP " + std::to_string(a->status) + ": " +
             (j.is_object() && j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>()
                                                                              : a->body.substr(0, 200));
      if (a->status == 400 || a->status == 401 || a->status == 403 || a->status == 404)
        return Status(Code::PermissionDenied, "the operator refused: " + last);
    } else {
      last = a.status().message();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(1000, remainingMs(deadline))));
  }
  return unavailable("no worker within " + std::to_string(timeout.count() / 1000) + "s: " + last);
}

std::string serviceAccountToken() {
  const char* file = std::getenv("TF_SERVICE_ACCOUNT_TOKEN_FILE");
  std::ifstream in(file && *file ? file : "/var/run/secrets/kubernetes.io/serviceaccount/token");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string t = ss.str();
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  return t;
}

}  // namespace tf::remoting
