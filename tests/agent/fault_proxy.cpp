#include "fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace tf::agent::testing {
namespace {

void resetAndClose(int fd) {
  linger l{1, 0};  // an RST, as a broken link looks to both ends
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::shutdown(fd, SHUT_RDWR);
}

bool sendAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= size_t(w);
  }
  return true;
}

}  // namespace

FaultProxy::FaultProxy(int targetPort) : targetPort_(targetPort) {
  listenFd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listenFd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listenFd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listenFd_, 64) != 0)
    throw std::runtime_error(std::string("fault proxy: ") + std::strerror(errno));
  socklen_t len = sizeof a;
  getsockname(listenFd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { acceptLoop(); });
}

FaultProxy::~FaultProxy() {
  stopping_ = true;
  ::shutdown(listenFd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listenFd_);
  closeAll();
  for (auto& t : threads_) t.join();
}

void FaultProxy::closeAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (int fd : fds_) resetAndClose(fd);
}

void FaultProxy::cut() {
  down_ = true;
  closeAll();
}

void FaultProxy::restore() { down_ = false; }

void FaultProxy::acceptLoop() {
  while (!stopping_) {
    int c = ::accept(listenFd_, nullptr, nullptr);
    if (c < 0) {
      if (stopping_) return;
      continue;
    }
    if (down_) {
      resetAndClose(c);
      ::close(c);
      continue;
    }
    ++accepted_;
    std::lock_guard<std::mutex> lock(mu_);
    fds_.insert(c);
    threads_.emplace_back([this, c] { pump(c); });
  }
}

void FaultProxy::pump(int client) {
  int server = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(uint16_t(targetPort_));
  {
    std::lock_guard<std::mutex> lock(mu_);
    fds_.insert(server);
  }
  if (::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && !down_) {
    pollfd p[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    char buf[16384];
    bool open = true;
    while (open && !stopping_ && !down_) {
      if (::poll(p, 2, 200) < 0) break;
      for (int i = 0; i < 2 && open; ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t n = ::recv(p[i].fd, buf, sizeof buf, 0);
        if (n <= 0) {
          open = false;
          break;
        }
        if (long long d = delayMs_.load(); d > 0) std::this_thread::sleep_for(std::chrono::milliseconds(d));
        if (down_ || !sendAll(p[1 - i].fd, buf, size_t(n))) open = false;
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (int fd : {client, server}) {
    if (fds_.erase(fd)) resetAndClose(fd);
    ::close(fd);
  }
}

}  // namespace tf::agent::testing
