// A TCP proxy on loopback that injects faults between a client and a server: cut the link
// (every connection reset, new ones refused) and restore it, or delay every chunk it forwards.
// Plain sockets and a thread per connection: test scale only.
//
//   FaultProxy proxy(portalPort);           // listens on 127.0.0.1:proxy.port()
//   proxy.cut();  ...  proxy.restore();
//   proxy.setDelay(std::chrono::milliseconds(300));
#pragma once

#include <atomic>
#include <chrono>
#include <list>
#include <mutex>
#include <set>
#include <thread>

namespace tf::agent::testing {

class FaultProxy {
public:
  explicit FaultProxy(int targetPort);
  ~FaultProxy();
  int port() const { return port_; }
  // Resets every open connection; until restore(), new ones are accepted and closed at once.
  void cut();
  void restore();
  void setDelay(std::chrono::milliseconds delay) { delayMs_ = delay.count(); }
  int accepted() const { return accepted_.load(); }

private:
  void acceptLoop();
  void pump(int client);
  void closeAll();

  int targetPort_;
  int listenFd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false}, down_{false};
  std::atomic<long long> delayMs_{0};
  std::atomic<int> accepted_{0};
  std::mutex mu_;
  std::set<int> fds_;  // open sockets, both sides
  std::list<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace tf::agent::testing
