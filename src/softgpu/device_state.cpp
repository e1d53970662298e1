#include "softgpu/device_state.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/env.h"

#define TF_LOG_COMPONENT "softgpu-state"
#include "common/log.h"

namespace tf::softgpu {
namespace {

// This process's pid without a system call per kernel (glibc no longer caches getpid()): read
// once, and again in a child after fork().
std::atomic<pid_t> gSelfPid{0};
pid_t selfPid() {
  pid_t p = gSelfPid.load(std::memory_order_relaxed);
  if (p != 0) return p;
  static const bool registered = [] {
    pthread_atfork(nullptr, nullptr, [] { gSelfPid.store(0, std::memory_order_relaxed); });
    return true;
  }();
  (void)registered;
  p = getpid();
  gSelfPid.store(p, std::memory_order_relaxed);
  return p;
}

// The file layout. Everything a process changes is guarded by stateMutex; memory in use is the
// sum of the slots (never a separate counter), so a process killed half-way through an update
// leaves nothing inconsistent behind.
constexpr uint64_t kMagic = 0x5047544653465454ull; // "TTFSFTGP"
constexpr uint64_t kBucketNs = 100'000'000;        // utilization buckets of 100 ms
constexpr int kDeviceBuckets = 600;                // 60 s of device-wide history
constexpr int kSlotBuckets = 32;                   // 3.2 s per process

struct Bucket {
  uint64_t epoch;   // monotonic time / kBucketNs
  uint64_t busyNs;
};

struct Slot {
  int32_t pid;
  uint32_t holdsContext; // 1 once the process holds a context (NVML lists it from then on)
  uint64_t startTime; // /proc/<pid>/stat field 22: tells a reused pid from the original
  uint64_t memoryBytes;
  uint64_t busyNs;
  uint64_t lastSeenNs;
  Bucket recent[kSlotBuckets];
};

// What a process checks before it maps the file.
struct Header {
  uint64_t magic;
  uint32_t version;
  uint32_t layoutSize;
  uint64_t totalMemory;
  char uuid[64];
};

struct Layout : Header {
  pthread_mutex_t stateMutex;
  pthread_mutex_t execMutex;
  int32_t execSlot;     // slot running a kernel, -1 when none
  uint32_t unused;
  uint64_t execStartNs;
  Bucket buckets[kDeviceBuckets];
  Slot slots[DeviceState::kMaxProcesses];
};

uint64_t nowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}

std::string errnoText(const std::string& what, int err) { return what + ": " + strerror(err); }

struct ProcState {
  bool readable = false;
  bool zombie = false;
  uint64_t startTime = 0;
};

ProcState readProcState(pid_t pid) {
  ProcState st;
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", int(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return st;
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return st;
  buf[n] = 0;
  const char* p = strrchr(buf, ')'); // the command name may contain anything, even ')'
  if (!p) return st;
  ++p;
  // Fields after the name: state is field 3, starttime field 22.
  int field = 2;
  char state = 0;
  while (*p && field < 22) {
    while (*p == ' ') ++p;
    ++field;
    if (field == 3) state = *p;
    if (field == 22) {
      st.startTime = strtoull(p, nullptr, 10);
      st.readable = true;
      break;
    }
    while (*p && *p != ' ') ++p;
  }
  st.zombie = state == 'Z' || state == 'X';
  return st;
}

// A process holds an open-file-description lock on one byte per slot it owns, past the end of
// the file, for as long as it lives. The kernel drops it when the process dies, so liveness is
// known across pid namespaces: on a node, containers share the device state file but not their
// pids, and a pid read in another namespace (kill, /proc) says nothing about the owner.
constexpr off_t kSlotLockBase = off_t(1) << 40;

bool slotLock(int fd, int slot, short type, int cmd) {
  struct flock l {};
  l.l_type = type;
  l.l_whence = SEEK_SET;
  l.l_start = kSlotLockBase + slot;
  l.l_len = 1;
  if (fcntl(fd, cmd, &l) != 0) return false;
  return cmd != F_OFD_GETLK || l.l_type != F_UNLCK;  // GETLK: true when another holds it
}

// Locks a robust, process-shared mutex. A holder that died leaves EOWNERDEAD: the protected
// data is consistent by construction here, so mark the mutex consistent and go on.
int lockRobust(pthread_mutex_t* m, bool* ownerDied = nullptr) {
  int rc = pthread_mutex_lock(m);
  if (rc == EOWNERDEAD) {
    pthread_mutex_consistent(m);
    if (ownerDied) *ownerDied = true;
    return 0;
  }
  return rc;
}

class Guard {
public:
  explicit Guard(pthread_mutex_t* m) : m_(m), rc_(lockRobust(m)) {
    if (rc_ != 0) TF_LOG(Error, "device state lock failed: %s", strerror(rc_));
  }
  ~Guard() {
    if (rc_ == 0) pthread_mutex_unlock(m_);
  }
  bool locked() const { return rc_ == 0; }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

private:
  pthread_mutex_t* m_;
  int rc_;
};

void initMutex(pthread_mutex_t* m) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(m, &attr);
  pthread_mutexattr_destroy(&attr);
}

void addToBucket(Bucket* ring, int size, uint64_t epoch, uint64_t ns) {
  Bucket& b = ring[epoch % size];
  if (b.epoch > epoch) return; // already reused for a later period
  if (b.epoch != epoch) b = Bucket{epoch, 0};
  b.busyNs = std::min(b.busyNs + ns, kBucketNs);
}

// Busy time in the ring within [from, to); `ongoingStart` is a still-running interval (or 0).
uint64_t busyBetween(const Bucket* ring, int size, uint64_t from, uint64_t to) {
  uint64_t busy = 0;
  for (int i = 0; i < size; ++i)
    if (ring[i].epoch * kBucketNs >= from && ring[i].epoch * kBucketNs < to) busy += ring[i].busyNs;
  return busy;
}

std::string stateDir() { return env::getOr("TF_SOFTGPU_STATE_DIR", "/dev/shm"); }

class ShmDeviceState final : public DeviceState {
public:
  // `fd`: this process's own open file description of the state file (slot locks live on it).
  ShmDeviceState(std::string path, Layout* layout, int fd) : path_(std::move(path)), l_(layout), fd_(fd) {}
  ~ShmDeviceState() override {
    munmap(l_, sizeof(Layout));
    ::close(fd_);
  }

  Result<int> attach() override {
    Guard g(&l_->stateMutex);
    if (!g.locked()) return internalError("device state " + path_ + " cannot be locked");
    uint64_t start = selfStartTime();
    pid_t me = selfPid();
    for (int i = 0; i < kMaxProcesses; ++i)
      if (l_->slots[i].pid == me && l_->slots[i].startTime == start) return i;
    for (int pass = 0; pass < 2; ++pass) {
      for (int i = 0; i < kMaxProcesses; ++i) {
        Slot& s = l_->slots[i];
        if (s.pid != 0) continue;
        if (!slotLock(fd_, i, F_WRLCK, F_OFD_SETLK)) continue;  // a live owner: not free after all
        memset(&s, 0, sizeof s);
        s.startTime = start;
        s.pid = me;
        return i;
      }
      reapLocked();
    }
    return resourceExhausted("all " + std::to_string(kMaxProcesses) +
                             " process slots of soft GPU " + l_->uuid + " are in use");
  }

  void detach(int slot) override {
    Guard g(&l_->stateMutex);
    if (g.locked() && ownedLocked(slot)) memset(&l_->slots[slot], 0, sizeof(Slot));
  }

  void setHoldsContext(int slot, bool holds) override {
    Guard g(&l_->stateMutex);
    if (g.locked() && ownedLocked(slot)) l_->slots[slot].holdsContext = holds ? 1 : 0;
  }

  Status reserveMemory(int slot, uint64_t bytes) override {
    Guard g(&l_->stateMutex);
    if (!g.locked()) return internalError("device state " + path_ + " cannot be locked");
    if (!ownedLocked(slot)) return failedPrecondition("slot " + std::to_string(slot) + " is not this process's");
    uint64_t used = usedLocked();
    if (bytes > l_->totalMemory - std::min(used, l_->totalMemory)) {
      reapLocked();
      used = usedLocked();
    }
    if (bytes > l_->totalMemory - std::min(used, l_->totalMemory))
      return resourceExhausted("out of device memory: " + std::to_string(bytes) + " bytes requested, " +
                               std::to_string(l_->totalMemory - std::min(used, l_->totalMemory)) +
                               " of " + std::to_string(l_->totalMemory) + " free");
    l_->slots[slot].memoryBytes += bytes;
    return Status::ok();
  }

  void releaseMemory(int slot, uint64_t bytes) override {
    Guard g(&l_->stateMutex);
    if (!g.locked() || !ownedLocked(slot)) return;
    Slot& s = l_->slots[slot];
    s.memoryBytes -= std::min(bytes, s.memoryBytes);
  }

  uint64_t totalMemory() const override { return l_->totalMemory; }

  uint64_t usedMemory() override {
    Guard g(&l_->stateMutex);
    if (!g.locked()) return 0;
    reapLocked();  // a dead process's memory is free at once
    return usedLocked();
  }

  std::unique_ptr<ExecutionLock> lockExecution(int slot) override;

  void addBusyTime(int slot, uint64_t ns) override {
    Guard g(&l_->stateMutex);
    if (!g.locked() || !ownedLocked(slot)) return;
    uint64_t now = nowNs();
    recordBusyLocked(slot, now - std::min(ns, now), now);
  }

  std::vector<ProcessUsage> processes() override {
    std::vector<ProcessUsage> out;
    Guard g(&l_->stateMutex);
    if (!g.locked()) return out;
    reapLocked();
    for (const Slot& s : l_->slots)
      if (s.pid > 0) out.push_back({s.pid, s.memoryBytes, s.busyNs, s.lastSeenNs, s.holdsContext != 0});
    return out;
  }

  unsigned utilizationPercent(unsigned windowMs) override {
    Guard g(&l_->stateMutex);
    if (!g.locked()) return 0;
    auto [from, now] = windowLocked(windowMs, kDeviceBuckets);
    uint64_t busy = busyBetween(l_->buckets, kDeviceBuckets, from, now);
    if (l_->execSlot >= 0) busy += now - std::clamp(l_->execStartNs, from, now);
    return percent(busy, now - from);
  }

  std::vector<ProcessUsage> recentProcessUsage(unsigned windowMs) override {
    std::vector<ProcessUsage> out;
    Guard g(&l_->stateMutex);
    if (!g.locked()) return out;
    reapLocked();
    auto [from, now] = windowLocked(windowMs, kSlotBuckets);
    for (int i = 0; i < kMaxProcesses; ++i) {
      const Slot& s = l_->slots[i];
      if (s.pid <= 0) continue;
      uint64_t busy = busyBetween(s.recent, kSlotBuckets, from, now);
      if (l_->execSlot == i) busy += now - std::clamp(l_->execStartNs, from, now);
      out.push_back({s.pid, s.memoryBytes, std::min(busy, now - from), s.lastSeenNs});
    }
    return out;
  }

  void reapDeadProcesses() override {
    Guard g(&l_->stateMutex);
    if (g.locked()) reapLocked();
  }

  const std::string& path() const override { return path_; }

  // Called with the execution mutex held.
  uint64_t beginExecution(int slot, bool previousOwnerDied) {
    Guard g(&l_->stateMutex);
    uint64_t start = nowNs();
    if (previousOwnerDied) TF_LOG(Info, "%s: execution lock holder died; lock recovered", path_.c_str());
    l_->execSlot = validSlot(slot) ? slot : kMaxProcesses; // out of range: counted, not per slot
    l_->execStartNs = start;
    return start;
  }

  void endExecution(int slot, uint64_t start) {
    {
      Guard g(&l_->stateMutex);
      if (g.locked()) {
        recordBusyLocked(ownedLocked(slot) ? slot : -1, start, nowNs());
        l_->execSlot = -1;
      }
    }
    pthread_mutex_unlock(&l_->execMutex);
  }

  pthread_mutex_t* execMutex() { return &l_->execMutex; }

private:
  static bool validSlot(int slot) { return slot >= 0 && slot < kMaxProcesses; }

  bool ownedLocked(int slot) {
    return validSlot(slot) && l_->slots[slot].pid == selfPid() && l_->slots[slot].startTime == selfStartTime();
  }

  // Ours, or another process still holds the slot's lock.
  bool slotAliveLocked(int i) {
    const Slot& s = l_->slots[i];
    if (s.pid <= 0) return false;
    if (s.pid == selfPid() && s.startTime == selfStartTime()) return true;
    return slotLock(fd_, i, F_WRLCK, F_OFD_GETLK);
  }

  uint64_t usedLocked() const {
    uint64_t used = 0;
    for (const Slot& s : l_->slots)
      if (s.pid > 0) used += s.memoryBytes;
    return used;
  }

  // One fcntl(2) per used slot, no /proc reads.
  void reapLocked() {
    for (int i = 0; i < kMaxProcesses; ++i) {
      Slot& s = l_->slots[i];
      if (s.pid == 0) continue;
      if (slotAliveLocked(i)) continue;
      TF_LOG(Info, "%s: reclaiming slot %d of exited pid %d (%llu bytes)", path_.c_str(), i,
             int(s.pid), (unsigned long long)s.memoryBytes);
      memset(&s, 0, sizeof s);
      if (l_->execSlot == i) l_->execSlot = -1;
    }
  }

  void recordBusyLocked(int slot, uint64_t start, uint64_t end) {
    if (end <= start) return;
    if (validSlot(slot)) {
      l_->slots[slot].busyNs += end - start;
      l_->slots[slot].lastSeenNs = end;
    }
    // Older time than the ring holds is dropped: bounded work for any interval.
    start = std::max(start, end - std::min(end, uint64_t(kDeviceBuckets) * kBucketNs));
    for (uint64_t t = start; t < end;) {
      uint64_t epoch = t / kBucketNs;
      uint64_t until = std::min(end, (epoch + 1) * kBucketNs);
      addToBucket(l_->buckets, kDeviceBuckets, epoch, until - t);
      if (validSlot(slot)) addToBucket(l_->slots[slot].recent, kSlotBuckets, epoch, until - t);
      t = until;
    }
  }

  // The window ends now and starts at a bucket boundary: [from, now).
  static std::pair<uint64_t, uint64_t> windowLocked(unsigned windowMs, int ringSize) {
    uint64_t now = nowNs();
    uint64_t buckets = std::clamp<uint64_t>((uint64_t(windowMs) * 1'000'000 + kBucketNs - 1) / kBucketNs,
                                            1, uint64_t(ringSize - 1));
    uint64_t nowEpoch = now / kBucketNs;
    uint64_t first = nowEpoch >= buckets - 1 ? nowEpoch - (buckets - 1) : 0;
    return {first * kBucketNs, now};
  }

  static unsigned percent(uint64_t busy, uint64_t span) {
    if (span == 0) return 0;
    return unsigned(std::min<uint64_t>(100, (busy * 100 + span / 2) / span));
  }

  uint64_t selfStartTime() {
    pid_t me = selfPid();
    if (me != selfPid_) {
      selfPid_ = me;
      selfStart_ = readProcState(me).startTime;
    }
    return selfStart_;
  }

  std::string path_;
  Layout* l_;
  int fd_;
  pid_t selfPid_ = 0;
  uint64_t selfStart_ = 0;
};

class ExecutionLockImpl final : public DeviceState::ExecutionLock {
public:
  ExecutionLockImpl(ShmDeviceState* state, int slot, uint64_t start)
      : state_(state), slot_(slot), start_(start) {}
  ~ExecutionLockImpl() override { state_->endExecution(slot_, start_); }

private:
  ShmDeviceState* state_;
  int slot_;
  uint64_t start_;
};

class NoLock final : public DeviceState::ExecutionLock {};

std::unique_ptr<DeviceState::ExecutionLock> ShmDeviceState::lockExecution(int slot) {
  bool ownerDied = false;
  int rc = lockRobust(execMutex(), &ownerDied);
  if (rc != 0) {
    TF_LOG(Error, "%s: execution lock failed: %s; running unserialised", path_.c_str(), strerror(rc));
    return std::make_unique<NoLock>();
  }
  uint64_t start = beginExecution(slot, ownerDied);
  return std::make_unique<ExecutionLockImpl>(this, slot, start);
}

void initialise(Layout* l, const DeviceConfig& device) {
  memset(l, 0, sizeof *l);
  l->version = DeviceState::kVersion;
  l->layoutSize = sizeof(Layout);
  l->totalMemory = device.memoryBytes;
  snprintf(l->uuid, sizeof l->uuid, "%s", device.uuidString.c_str());
  initMutex(&l->stateMutex);
  initMutex(&l->execMutex);
  l->execSlot = -1;
  l->magic = kMagic;
}

Result<Layout*> mapLayout(int fd, const std::string& path) {
  void* p = mmap(nullptr, sizeof(Layout), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return unavailable(errnoText("mapping " + path, errno));
  return static_cast<Layout*>(p);
}

// A new, fully initialised file appears under its final name in one step (link), so a process
// that finds the file never sees it half-written.
Result<bool> createState(const std::string& path, const DeviceConfig& device) {
  char suffix[64];
  snprintf(suffix, sizeof suffix, ".init.%d.%llx", int(getpid()), (unsigned long long)nowNs());
  std::string tmp = path + suffix;
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) return unavailable(errnoText("creating soft GPU state " + tmp, errno));
  fchmod(fd, 0666); // every process of the node shares the device, as /dev/nvidia* does
  Status status;
  if (ftruncate(fd, sizeof(Layout)) != 0) {
    status = unavailable(errnoText("sizing " + tmp, errno));
  } else if (auto l = mapLayout(fd, tmp); !l) {
    status = l.status();
  } else {
    initialise(*l, device);
    munmap(*l, sizeof(Layout));
  }
  ::close(fd);
  bool created = false;
  if (status) {
    if (::link(tmp.c_str(), path.c_str()) == 0) created = true;
    else if (errno != EEXIST) status = unavailable(errnoText("publishing " + path, errno));
  }
  ::unlink(tmp.c_str());
  if (!status) return status;
  return created;
}

Status validate(const Header& l, const std::string& path, const DeviceConfig& device) {
  if (l.magic != kMagic) return dataLoss(path + " is not a soft GPU device state (bad magic); remove it");
  if (l.version != DeviceState::kVersion)
    return failedPrecondition(path + " has device state version " + std::to_string(l.version) +
                              ", this library uses " + std::to_string(DeviceState::kVersion) +
                              "; stop the processes using it and remove the file");
  if (l.layoutSize != sizeof(Layout))
    return failedPrecondition(path + " has a layout of " + std::to_string(l.layoutSize) +
                              " bytes, this library uses " + std::to_string(sizeof(Layout)));
  if (strncmp(l.uuid, device.uuidString.c_str(), sizeof l.uuid) != 0)
    return dataLoss(path + " belongs to device " + std::string(l.uuid, strnlen(l.uuid, sizeof l.uuid)));
  return Status::ok();
}

Result<std::unique_ptr<DeviceState>> attachState(int fd, const std::string& path,
                                                 const DeviceConfig& device) {
  struct stat st;
  if (fstat(fd, &st) != 0) return unavailable(errnoText("stat " + path, errno));
  if (st.st_size != off_t(sizeof(Layout)))
    return failedPrecondition(path + " is " + std::to_string(st.st_size) + " bytes, expected " +
                              std::to_string(sizeof(Layout)) +
                              " (another version or a corrupt file); remove it");
  Header header;
  if (pread(fd, &header, sizeof header, 0) != ssize_t(sizeof header))
    return unavailable(errnoText("reading " + path, errno));
  TF_RETURN_IF_ERROR(validate(header, path, device));
  auto l = mapLayout(fd, path);
  if (!l) return l.status();
  // Our own descriptor, kept for the slot locks (the caller closes the one it opened).
  int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (own < 0) {
    munmap(*l, sizeof(Layout));
    return unavailable(errnoText("dup " + path, errno));
  }
  auto state = std::make_unique<ShmDeviceState>(path, *l, own);
  if ((*l)->totalMemory != device.memoryBytes) {
    // The configuration changed since the file was made: adopt it when nobody uses the device.
    auto live = state->processes();
    if (!live.empty())
      return failedPrecondition(path + " has " + std::to_string((*l)->totalMemory) +
                                " bytes of memory but the configuration says " +
                                std::to_string(device.memoryBytes) + ", and " +
                                std::to_string(live.size()) + " processes use it");
    Guard g(&(*l)->stateMutex);
    (*l)->totalMemory = device.memoryBytes;
  }
  return std::unique_ptr<DeviceState>(std::move(state));
}

} // namespace

Result<std::unique_ptr<DeviceState>> DeviceState::open(const DeviceConfig& device) {
  if (device.uuidString.empty() || device.memoryBytes == 0)
    return invalidArgument("device state needs a configured device (uuid and memory)");
  std::string path = stateDir() + "/tf-softgpu-" + device.uuidString;
  for (int attempt = 0; attempt < 3; ++attempt) {
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
      auto state = attachState(fd, path, device);
      ::close(fd);
      return state;
    }
    if (errno != ENOENT) return unavailable(errnoText("opening soft GPU state " + path, errno));
    auto created = createState(path, device);
    if (!created) return created.status();
    // Created or lost the race to another process: either way the file is there now.
  }
  return unavailable("soft GPU state " + path + " keeps disappearing");
}

} // namespace tf::softgpu
