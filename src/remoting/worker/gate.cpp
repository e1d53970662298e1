#include "remoting/worker/gate.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <map>

#include "common/log.h"

namespace tf::remoting {
namespace {

int64_t nowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Shared-memory rings have no descriptor: while one waits, the gate looks this often.
constexpr int kTickMs = 1;

} // namespace

Gate::Gate(const GateOptions& options, Ready ready)
    : options_(options), ready_(std::move(ready)) {
  options_.maxPending = std::max<size_t>(options_.maxPending, 1);
  options_.maxPendingPerPeer = std::max<size_t>(options_.maxPendingPerPeer, 1);
  wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  thread_ = std::thread([this] { loop(); });
}

Gate::~Gate() {
  stop();
  close(wake_); // only now: admit() may still be writing to it until stop() returned
}

void Gate::stop() {
  if (stopping_.exchange(true)) return;
  uint64_t one = 1;
  (void)!write(wake_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  incoming_.clear();
}

void Gate::admit(TransportPtr t) {
  if (stopping_.load()) return; // closed here
  Pending p;
  p.peer = t->peerKey();
  p.t = std::move(t);
  p.deadlineMs = nowMs() + options_.handshakeTimeoutMs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    incoming_.push_back(std::move(p));
    // The gate thread takes them at once; should it fall behind, the queue stays bounded too.
    while (incoming_.size() > options_.maxPending) {
      incoming_.pop_front();
      dropped_.fetch_add(1);
    }
  }
  uint64_t one = 1;
  (void)!write(wake_, &one, sizeof(one));
}

void Gate::drop(List::iterator it, const char* why) {
  std::string peer = it->t->describe();
  pending_.erase(it);
  uint64_t n = dropped_.fetch_add(1) + 1;
  int64_t now = nowMs();
  if (now - lastDropLogMs_ >= 1000) { // a flood is logged once a second, not per connection
    lastDropLogMs_ = now;
    TF_LOG(Info, "worker: closed unauthenticated connection %s (%s); %llu so far", peer.c_str(),
           why, static_cast<unsigned long long>(n));
  }
}

void Gate::take(std::deque<Pending>& incoming) {
  std::map<std::string, size_t> perPeer;
  for (auto& p : pending_) perPeer[p.peer]++;
  for (auto& p : incoming) {
    if (perPeer[p.peer] >= options_.maxPendingPerPeer) {
      auto oldest = std::find_if(pending_.begin(), pending_.end(),
                                 [&](const Pending& q) { return q.peer == p.peer; });
      if (oldest != pending_.end()) {
        drop(oldest, "too many waiting from one peer");
        perPeer[p.peer]--;
      }
    }
    if (pending_.size() >= options_.maxPending) {
      perPeer[pending_.front().peer]--;
      drop(pending_.begin(), "too many waiting");
    }
    perPeer[p.peer]++;
    pending_.push_back(std::move(p));
  }
  incoming.clear();
}

bool Gate::progress(Pending& p) {
  for (;;) {
    size_t want = p.haveHeader ? kHeaderSize + p.header.argsLen : kHeaderSize;
    size_t have = p.buf.size();
    if (have == want) break;
    p.buf.resize(want);
    auto r = p.t->readAvailable(p.buf.data() + have, want - have);
    if (!r) {
      if (r.status().code() != Code::Unavailable || r.status().message().find("closed") == std::string::npos)
        TF_LOG(Info, "worker: %s: %s", p.t->describe().c_str(), r.status().toString().c_str());
      return true; // gone, or not speaking TLS: dropped
    }
    p.buf.resize(have + *r);
    if (*r == 0) return false; // nothing more yet
    if (p.buf.size() != kHeaderSize || p.haveHeader) continue;
    Status framing = decodeHeader(p.buf.data(), &p.header);
    bool hello = framing.isOk() && p.header.kind == static_cast<uint16_t>(Kind::Hello) &&
                 !p.header.bulkLen && p.header.argsLen <= kMaxHelloArgs;
    if (!hello) { // refused on its header: the handshake answers why, no args are read
      std::vector<uint8_t> none;
      if (framing.isOk() && p.header.argsLen > kMaxHelloArgs && p.header.kind == static_cast<uint16_t>(Kind::Hello))
        framing = dataLoss("Hello too large");
      ready_(std::move(p.t), framing, p.header, none);
      return true;
    }
    p.haveHeader = true;
  }
  std::vector<uint8_t> args(p.buf.begin() + kHeaderSize, p.buf.end());
  ready_(std::move(p.t), Status::ok(), p.header, args);
  return true;
}

void Gate::loop() {
  std::deque<Pending> incoming;
  std::vector<pollfd> fds;
  std::vector<List::iterator> polled;
  while (!stopping_.load()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      incoming.swap(incoming_);
    }
    take(incoming);
    pendingCount_.store(pending_.size());
    fds.assign(1, pollfd{wake_, POLLIN, 0});
    polled.clear();
    int64_t now = nowMs();
    int64_t next = INT64_MAX;
    bool tick = false;
    for (auto it = pending_.begin(); it != pending_.end(); ++it) {
      next = std::min(next, it->deadlineMs);
      int fd = it->t->pollDescriptor();
      if (fd < 0) {
        tick = true;
        continue;
      }
      fds.push_back(pollfd{fd, POLLIN, 0});
      polled.push_back(it);
    }
    int timeout = next == INT64_MAX ? -1 : static_cast<int>(std::clamp<int64_t>(next - now, 0, INT_MAX));
    if (tick) timeout = timeout < 0 ? kTickMs : std::min(timeout, kTickMs);
    int n = ::poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) {
      TF_LOG(Warn, "worker gate: poll: %s", strerror(errno));
      continue;
    }
    if (fds[0].revents) {
      uint64_t v;
      (void)!read(wake_, &v, sizeof(v));
    }
    // Readable ones (and every descriptor-less one) make progress; then deadlines.
    for (size_t i = 0; i < polled.size(); ++i)
      if (fds[i + 1].revents && progress(*polled[i])) pending_.erase(polled[i]);
    if (tick) {
      for (auto it = pending_.begin(); it != pending_.end();) {
        auto cur = it++;
        if (cur->t->pollDescriptor() < 0 && progress(*cur)) pending_.erase(cur);
      }
    }
    now = nowMs();
    for (auto it = pending_.begin(); it != pending_.end();) {
      auto cur = it++;
      if (cur->deadlineMs <= now) drop(cur, "no handshake before the deadline");
    }
    pendingCount_.store(pending_.size());
  }
  pending_.clear();
}

} // namespace tf::remoting
