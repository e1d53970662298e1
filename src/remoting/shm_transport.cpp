// Shared memory: two single-producer/single-consumer byte rings (client->worker and back) in a
// memfd that the worker creates per connection and hands over a Unix socket: an abstract name
// "tf-remoting/<name>" (one network namespace), or, for a name that is an absolute path
// ("shm:///run/tensor-fusion/vgpu/worker.sock"), a socket file, which containers that share the
// directory but not a network namespace can reach (a cluster's hard-isolated pods). The socket
// stays open beside the rings: it is how either side learns that the other died. Waits spin briefly, then sleep on a futex in the ring with a short
// timeout, checking the socket between sleeps.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "remoting/transport.h"

namespace tf::remoting {
namespace {

constexpr size_t kRingBytes = size_t(8) << 20; // power of two
// Spin briefly (the answer to a small call comes in a microsecond or two): pure spinning for
// the first few microseconds, then spinning that yields the core (a peer sharing it gets to
// run), then sleep on the futex.
constexpr int64_t kPureSpinNs = 1000;
constexpr int64_t kSpinNs = 30000;
constexpr int kSleepMs = 10;

int64_t monoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Calls ready() until it is true or the spin budget is spent.
template <typename F> bool spinUntil(F&& ready) {
  int64_t start = monoNs();
  for (int i = 0;; ++i) {
    if (ready()) return true;
    if ((i & 15) != 15) {
      __builtin_ia32_pause();
      continue;
    }
    int64_t spent = monoNs() - start;
    if (spent > kSpinNs) return false;
    if (spent > kPureSpinNs) sched_yield();
  }
}

struct alignas(64) RingHeader {
  alignas(64) std::atomic<uint64_t> head; // bytes written (producer)
  alignas(64) std::atomic<uint64_t> tail; // bytes read (consumer)
  alignas(64) std::atomic<uint32_t> dataSeq;
  std::atomic<uint32_t> readerSleeping;
  alignas(64) std::atomic<uint32_t> spaceSeq;
  std::atomic<uint32_t> writerSleeping;
};
constexpr size_t kRingStride = sizeof(RingHeader) + kRingBytes;
constexpr size_t kSegmentBytes = 2 * kRingStride;

void futexWait(std::atomic<uint32_t>* word, uint32_t expected, int ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}
void futexWake(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

// The socket address of a shm:// name. A path too long for sun_path is reached through an
// O_PATH descriptor of its directory ("/proc/self/fd/N/<file>"), held while this lives.
class UnixAddress {
public:
  explicit UnixAddress(const std::string& name) {
    sa_.sun_family = AF_UNIX;
    if (!isPath(name)) {
      std::string path = "tf-remoting/" + name;
      size_t n = std::min(path.size(), sizeof(sa_.sun_path) - 1);
      std::memcpy(sa_.sun_path + 1, path.data(), n); // leading NUL: abstract namespace
      len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
      return;
    }
    std::string path = name;
    if (path.size() >= sizeof(sa_.sun_path)) {
      const size_t slash = path.rfind('/');
      dirFd_ = ::open(path.substr(0, slash).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (dirFd_ < 0) {
        error_ = errno;
        return;
      }
      path = "/proc/self/fd/" + std::to_string(dirFd_) + path.substr(slash);
      if (path.size() >= sizeof(sa_.sun_path)) {
        error_ = ENAMETOOLONG;
        return;
      }
    }
    std::memcpy(sa_.sun_path, path.data(), path.size());
    len_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  }
  ~UnixAddress() {
    if (dirFd_ >= 0) ::close(dirFd_);
  }
  UnixAddress(const UnixAddress&) = delete;
  UnixAddress& operator=(const UnixAddress&) = delete;

  static bool isPath(const std::string& name) { return !name.empty() && name[0] == '/'; }
  int error() const { return error_; }  // errno of a path that cannot be addressed, or 0
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&sa_); }
  socklen_t size() const { return len_; }

private:
  sockaddr_un sa_{};
  socklen_t len_ = 0;
  int dirFd_ = -1;
  int error_ = 0;
};

// One byte of payload carrying a descriptor over the Unix socket: the message both ends build.
struct FdMessage {
  char byte = 'S';
  iovec v{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr m{};
  FdMessage() {
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof(control);
  }
  FdMessage(const FdMessage&) = delete;
  FdMessage& operator=(const FdMessage&) = delete;
};

bool sendFdOver(int sock, int fd) {
  FdMessage msg;
  cmsghdr* c = CMSG_FIRSTHDR(&msg.m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  return ::sendmsg(sock, &msg.m, MSG_NOSIGNAL) == 1;
}
// The descriptor of one such message, or -1 (nothing within timeoutMs, or not a descriptor).
int receiveFdFrom(int sock, int timeoutMs) {
  pollfd pfd{sock, POLLIN, 0};
  if (::poll(&pfd, 1, timeoutMs) != 1) return -1;
  FdMessage msg;
  ssize_t r = ::recvmsg(sock, &msg.m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  cmsghdr* c = CMSG_FIRSTHDR(&msg.m);
  if (r != 1 || !c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) return -1;
  int fd;
  std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
  return fd;
}

class ShmTransport : public Transport {
public:
  ShmTransport(int sock, void* segment, bool isWorker, std::string name)
      : sock_(sock), segment_(segment), name_(std::move(name)) {
    auto* base = static_cast<uint8_t*>(segment);
    RingHeader* c2s = reinterpret_cast<RingHeader*>(base);
    RingHeader* s2c = reinterpret_cast<RingHeader*>(base + kRingStride);
    out_ = isWorker ? s2c : c2s;
    in_ = isWorker ? c2s : s2c;
  }
  ~ShmTransport() override {
    munmap(segment_, kSegmentBytes);
    ::close(sock_);
  }

  Status writeV(const iovec* iov, int count) override {
    for (int i = 0; i < count; ++i) {
      const auto* p = static_cast<const uint8_t*>(iov[i].iov_base);
      size_t n = iov[i].iov_len;
      while (n) {
        uint64_t head = out_->head.load(std::memory_order_relaxed);
        uint64_t space = kRingBytes - (head - out_->tail.load(std::memory_order_acquire));
        if (space == 0) {
          TF_RETURN_IF_ERROR(waitForSpace(head));
          continue;
        }
        size_t k = std::min<uint64_t>(n, space);
        size_t at = head & (kRingBytes - 1);
        size_t first = std::min(k, kRingBytes - at);
        std::memcpy(data(out_) + at, p, first);
        if (k > first) std::memcpy(data(out_), p + first, k - first);
        out_->head.store(head + k, std::memory_order_release);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (out_->readerSleeping.load(std::memory_order_relaxed)) {
          out_->dataSeq.fetch_add(1);
          futexWake(&out_->dataSeq);
        }
        p += k;
        n -= k;
      }
    }
    return Status::ok();
  }

  Status readExact(void* dst, size_t n) override {
    auto* p = static_cast<uint8_t*>(dst);
    while (n) {
      uint64_t tail = in_->tail.load(std::memory_order_relaxed);
      uint64_t avail = in_->head.load(std::memory_order_acquire) - tail;
      if (avail == 0) {
        TF_RETURN_IF_ERROR(waitForData(tail));
        continue;
      }
      size_t k = std::min<uint64_t>(n, avail);
      size_t at = tail & (kRingBytes - 1);
      size_t first = std::min(k, kRingBytes - at);
      std::memcpy(p, data(in_) + at, first);
      if (k > first) std::memcpy(p + first, data(in_), k - first);
      in_->tail.store(tail + k, std::memory_order_release);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (in_->writerSleeping.load(std::memory_order_relaxed)) {
        in_->spaceSeq.fetch_add(1);
        futexWake(&in_->spaceSeq);
      }
      p += k;
      n -= k;
    }
    return Status::ok();
  }

  Result<size_t> readAvailable(void* dst, size_t max) override {
    uint64_t tail = in_->tail.load(std::memory_order_relaxed);
    uint64_t avail = in_->head.load(std::memory_order_acquire) - tail;
    if (avail == 0) {
      // The gate asks every millisecond; the socket (two system calls) is looked at less often.
      int64_t now = monoNs();
      if (now - lastGoneCheckNs_ < kGoneCheckNs) return size_t(0);
      lastGoneCheckNs_ = now;
      if (peerGone()) return unavailable("shared-memory peer " + name_ + " is gone");
      return size_t(0);
    }
    size_t k = static_cast<size_t>(std::min<uint64_t>(avail, max));
    TF_RETURN_IF_ERROR(readExact(dst, k));
    return k;
  }
  // The rings have no descriptor: pollDescriptor() stays -1 and the gate looks every tick.
  std::string peerKey() const override {
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (getsockopt(sock_, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return "uid ?";
    return "uid " + std::to_string(cred.uid);
  }

  bool supportsViews() const override { return true; }

  Status peekRead(size_t max, const uint8_t** p, size_t* n) override {
    for (;;) {
      uint64_t tail = in_->tail.load(std::memory_order_relaxed);
      uint64_t avail = in_->head.load(std::memory_order_acquire) - tail;
      if (avail == 0) {
        TF_RETURN_IF_ERROR(waitForData(tail));
        continue;
      }
      size_t at = tail & (kRingBytes - 1);
      *p = data(in_) + at;
      *n = static_cast<size_t>(std::min<uint64_t>({avail, uint64_t(kRingBytes - at), uint64_t(max)}));
      return Status::ok();
    }
  }
  void consumeRead(size_t n) override {
    in_->tail.fetch_add(n, std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (in_->writerSleeping.load(std::memory_order_relaxed)) {
      in_->spaceSeq.fetch_add(1);
      futexWake(&in_->spaceSeq);
    }
  }
  Status reserveWrite(size_t max, uint8_t** p, size_t* n) override {
    for (;;) {
      uint64_t head = out_->head.load(std::memory_order_relaxed);
      uint64_t space = kRingBytes - (head - out_->tail.load(std::memory_order_acquire));
      if (space == 0) {
        TF_RETURN_IF_ERROR(waitForSpace(head));
        continue;
      }
      size_t at = head & (kRingBytes - 1);
      *p = data(out_) + at;
      *n = static_cast<size_t>(std::min<uint64_t>({space, uint64_t(kRingBytes - at), uint64_t(max)}));
      return Status::ok();
    }
  }
  void commitWrite(size_t n) override {
    out_->head.fetch_add(n, std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (out_->readerSleeping.load(std::memory_order_relaxed)) {
      out_->dataSeq.fetch_add(1);
      futexWake(&out_->dataSeq);
    }
  }

  // As waitForData (spin, then sleep on the futex the writer wakes), with a deadline: a
  // reader that waits here sees a frame as soon as a blocking read would.
  bool waitReadable(int timeoutMs) override {
    const uint64_t tail = in_->tail.load(std::memory_order_relaxed);
    const auto ready = [&] { return in_->head.load(std::memory_order_acquire) != tail; };
    if (spinUntil(ready)) return true;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
    for (;;) {
      uint32_t seq = in_->dataSeq.load();
      in_->readerSleeping.store(1);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (ready() || peerGone() || left.count() <= 0) {
        in_->readerSleeping.store(0);
        return left.count() > 0 || ready() || peerGone();
      }
      futexWait(&in_->dataSeq, seq, static_cast<int>(std::min<int64_t>(left.count(), kSleepMs)));
      in_->readerSleeping.store(0);
      if (ready()) return true;
    }
  }

  void shutdown() override {
    closed_.store(true);
    ::shutdown(sock_, SHUT_RDWR);
    futexWake(&in_->dataSeq);
    futexWake(&out_->spaceSeq);
  }
  std::string describe() const override { return "shm " + name_; }

  Status sendFd(int fd) override {
    return sendFdOver(sock_, fd) ? Status::ok() : unavailable("cannot pass a descriptor");
  }
  Result<int> receiveFd(int timeoutMs) override {
    int fd = receiveFdFrom(sock_, timeoutMs);
    if (fd < 0) return dataLoss("no descriptor where one was announced");
    return fd;
  }

private:
  static uint8_t* data(RingHeader* r) { return reinterpret_cast<uint8_t*>(r) + sizeof(RingHeader); }

  // The peer is gone when its end of the socket is closed (it exited or was killed).
  bool peerGone() {
    if (closed_.load(std::memory_order_relaxed)) return true;
    pollfd pfd{sock_, POLLIN, 0};
    if (::poll(&pfd, 1, 0) <= 0) return false;
    if (pfd.revents & (POLLHUP | POLLERR)) return true;
    char c;
    return ::recv(sock_, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
  }

  Status waitForData(uint64_t tail) {
    if (spinUntil([&] { return in_->head.load(std::memory_order_acquire) != tail; }))
      return Status::ok();
    for (;;) {
      uint32_t seq = in_->dataSeq.load();
      in_->readerSleeping.store(1);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (in_->head.load(std::memory_order_acquire) != tail) {
        in_->readerSleeping.store(0);
        return Status::ok();
      }
      if (peerGone()) {
        in_->readerSleeping.store(0);
        return unavailable("shared-memory peer " + name_ + " is gone");
      }
      futexWait(&in_->dataSeq, seq, kSleepMs);
      in_->readerSleeping.store(0);
      if (in_->head.load(std::memory_order_acquire) != tail) return Status::ok();
    }
  }

  Status waitForSpace(uint64_t head) {
    auto full = [&] { return head - out_->tail.load(std::memory_order_acquire) >= kRingBytes; };
    if (spinUntil([&] { return !full(); })) return Status::ok();
    for (;;) {
      uint32_t seq = out_->spaceSeq.load();
      out_->writerSleeping.store(1);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (!full()) {
        out_->writerSleeping.store(0);
        return Status::ok();
      }
      if (peerGone()) {
        out_->writerSleeping.store(0);
        return unavailable("shared-memory peer " + name_ + " is gone");
      }
      futexWait(&out_->spaceSeq, seq, kSleepMs);
      out_->writerSleeping.store(0);
      if (!full()) return Status::ok();
    }
  }

  int sock_;
  void* segment_;
  std::string name_;
  RingHeader* out_;
  RingHeader* in_;
  std::atomic<bool> closed_{false};
  static constexpr int64_t kGoneCheckNs = 50'000'000;
  int64_t lastGoneCheckNs_ = 0;
};

class ShmListener : public Listener {
public:
  ShmListener(int fd, std::string name) : fd_(fd), name_(std::move(name)) {
    struct stat st {};
    if (UnixAddress::isPath(name_) && ::lstat(name_.c_str(), &st) == 0) socketInode_ = st.st_ino;
  }
  ~ShmListener() override { close(); }

  Result<TransportPtr> accept() override {
    int sock;
    for (;;) {
      sock = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (sock >= 0) break;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return unavailable(std::string("accept: ") + strerror(errno));
    }
    int mfd = memfd_create("tf-remoting-rings", MFD_CLOEXEC);
    if (mfd < 0 || ftruncate(mfd, kSegmentBytes) != 0) {
      if (mfd >= 0) ::close(mfd);
      ::close(sock);
      return resourceExhausted("cannot create the shared-memory segment");
    }
    void* seg = mmap(nullptr, kSegmentBytes, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    if (seg == MAP_FAILED) {
      ::close(mfd);
      ::close(sock);
      return resourceExhausted("cannot map the shared-memory segment");
    }
    new (seg) RingHeader();
    new (static_cast<uint8_t*>(seg) + kRingStride) RingHeader();
    // Hand the segment over.
    bool sent = sendFdOver(sock, mfd);
    ::close(mfd);
    if (!sent) {
      munmap(seg, kSegmentBytes);
      ::close(sock);
      return unavailable("client left during the shared-memory handshake");
    }
    return TransportPtr(new ShmTransport(sock, seg, true, name_));
  }
  std::string address() const override { return "shm://" + name_; }
  void close() override {
    if (fd_ >= 0) {
      ::shutdown(fd_, SHUT_RDWR);
      ::close(fd_);
      fd_ = -1;
      // Our socket file, unless another listener has bound the path since.
      struct stat st {};
      if (socketInode_ && ::lstat(name_.c_str(), &st) == 0 && st.st_ino == socketInode_) ::unlink(name_.c_str());
    }
  }

private:
  int fd_;
  std::string name_;
  ino_t socketInode_ = 0;
};

} // namespace

Result<ListenerPtr> listenShm(const std::string& name) {
  const bool path = UnixAddress::isPath(name);
  if (name.empty() || (!path && name.size() > 90) || (path && (name.size() > 4000 || name.back() == '/')))
    return invalidArgument("bad shm name: " + name);
  UnixAddress address(name);
  if (address.error()) return unavailable("cannot listen on shm://" + name + ": " + strerror(address.error()));
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return unavailable(std::string("socket: ") + strerror(errno));
  // A socket file left by a worker that died (a restart listens on the same path); anything
  // else at the path is not ours to remove.
  if (struct stat st {}; path && ::lstat(name.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(name.c_str());
  // The clients of a socket file may be any user of the pod that shares its directory.
  if (::bind(fd, address.get(), address.size()) != 0 || (path && ::chmod(name.c_str(), 0666) != 0) ||
      ::listen(fd, 128) != 0) {
    Status s = unavailable("cannot listen on shm://" + name + ": " + strerror(errno));
    ::close(fd);
    return s;
  }
  return ListenerPtr(new ShmListener(fd, name));
}

std::string movedAddressFrom(const std::string& moved, const std::string& current) {
  const std::string scheme = "shm://";
  if (moved.rfind(scheme, 0) != 0 || current.rfind(scheme, 0) != 0) return moved;
  const std::string path = moved.substr(scheme.size()), here = current.substr(scheme.size());
  if (!UnixAddress::isPath(path) || !UnixAddress::isPath(here)) return moved;
  if (struct stat st {}; ::stat(path.c_str(), &st) == 0) return moved;
  return scheme + here.substr(0, here.rfind('/') + 1) + path.substr(path.rfind('/') + 1);
}

Result<TransportPtr> connectShm(const std::string& name, int timeoutMs) {
  UnixAddress address(name);
  if (address.error()) return unavailable("cannot connect to shm://" + name + ": " + strerror(address.error()));
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return unavailable(std::string("socket: ") + strerror(errno));
  if (::connect(fd, address.get(), address.size()) != 0) {
    Status s = unavailable("cannot connect to shm://" + name + ": " + strerror(errno));
    ::close(fd);
    return s;
  }
  int mfd = receiveFdFrom(fd, timeoutMs);
  if (mfd < 0) {
    ::close(fd);
    return unavailable("no shared-memory segment from shm://" + name);
  }
  struct stat st {};
  void* seg = MAP_FAILED;
  if (fstat(mfd, &st) == 0 && static_cast<size_t>(st.st_size) == kSegmentBytes)
    seg = mmap(nullptr, kSegmentBytes, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  ::close(mfd);
  if (seg == MAP_FAILED) {
    ::close(fd);
    return unavailable("cannot map the segment of shm://" + name);
  }
  return TransportPtr(new ShmTransport(fd, seg, false, name));
}

} // namespace tf::remoting
