#include "limiter/quota_region.h"

#include <atomic>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tf::limiter {
namespace {

constexpr uint64_t kMagic = 0x5446564750555251ull; // "TFVGPURQ"
constexpr int32_t kReclaiming = -1;

uint64_t nowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

// Field 22 of /proc/<pid>/stat: the process's start time, to tell a reused pid apart.
uint64_t processStartTime(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(s.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i)
    if (i == 22) return std::strtoull(field.c_str(), nullptr, 10);
  return 0;
}

struct RegionDevice {
  uint8_t uuid[16];
  uint64_t vramLimit;
  uint64_t hostAllowance;
  std::atomic<uint32_t> computeBasisPoints;
  uint32_t reserved0;
  double fp16Tflops;
  std::atomic<int64_t> tokens;         // GPU-ns the vGPU may still use now
  std::atomic<uint64_t> lastRefillNs;
  std::atomic<uint64_t> busyNs;
  std::atomic<uint64_t> throttledNs;
  std::atomic<uint64_t> launches;
  std::atomic<uint64_t> longestKernelNs; // the longest single kernel charged (was reserved: 0)
  uint64_t reserved1[3];
};

struct RegionSlot {
  std::atomic<int32_t> pid;
  uint32_t reserved0;
  std::atomic<uint64_t> startTime;
  std::atomic<uint64_t> committed[2][kMaxDevices]; // [Pool][device]: memory the process holds
  std::atomic<uint64_t> pending[2][kMaxDevices];   // a reservation being decided
};

struct RegionLayout {
  std::atomic<uint64_t> magic; // written last by the creator: a half-made region is not valid
  uint32_t version;
  uint32_t size;
  char name[64];
  uint32_t deviceCount;
  uint32_t slotCount;
  uint64_t windowNs;
  std::atomic<uint32_t> slotsInUse; // high-water mark of claimed slots: sums stop there
  uint32_t reserved0;
  RegionDevice devices[kMaxDevices];
  RegionSlot slots[kMaxProcesses];
};
static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<int32_t>::is_always_lock_free,
              "the region relies on lock-free atomics across processes");

class QuotaRegionImpl final : public QuotaRegion {
public:
  QuotaRegionImpl(std::string path, RegionLayout* r) : path_(std::move(path)), r_(r) {}
  ~QuotaRegionImpl() override { munmap(r_, sizeof(RegionLayout)); }

  const std::string& path() const override { return path_; }
  std::string name() const override { return std::string(r_->name, strnlen(r_->name, 64)); }
  int deviceCount() const override { return static_cast<int>(r_->deviceCount); }
  uint64_t windowNs() const override { return r_->windowNs; }

  DeviceLimits limits(int d) const override {
    DeviceLimits l;
    const RegionDevice& rd = r_->devices[d];
    memcpy(l.uuid.data(), rd.uuid, 16);
    l.vramLimit = rd.vramLimit;
    l.hostAllowance = rd.hostAllowance;
    l.computeBasisPoints = rd.computeBasisPoints.load();
    l.fp16Tflops = rd.fp16Tflops;
    return l;
  }

  uint64_t vramLimit(int d) const override { return r_->devices[d].vramLimit; }
  uint32_t computeBasisPoints(int d) const override {
    return r_->devices[d].computeBasisPoints.load(std::memory_order_relaxed);
  }

  Status setComputeBasisPoints(int d, uint32_t bp) override {
    if (d < 0 || d >= deviceCount()) return invalidArgument("no such device in the vGPU");
    if (bp == 0 || bp > 10000) return invalidArgument("compute share must be in (0, 100%]");
    RegionDevice& rd = r_->devices[d];
    refill(rd, rd.computeBasisPoints.load()); // time until now is credited at the old share
    rd.computeBasisPoints.store(bp);
    return Status::ok();
  }

  Result<int> attach() override {
    const int32_t me = getpid();
    return attachAs(me, processStartTime(me));
  }
  Result<int> attachForTest(int32_t pid, uint64_t startTime) override { return attachAs(pid, startTime); }

  Result<int> attachAs(int32_t me, uint64_t start) {
    for (int pass = 0; pass < 2; ++pass) {
      for (int i = 0; i < kMaxProcesses; ++i) {
        RegionSlot& s = r_->slots[i];
        if (s.pid.load() == me && s.startTime.load() == start) return i;
      }
      for (int i = 0; i < kMaxProcesses; ++i) {
        RegionSlot& s = r_->slots[i];
        int32_t expected = 0;
        if (s.pid.compare_exchange_strong(expected, me)) {
          s.startTime.store(start);
          // Publish the high-water mark before this slot can hold anything, so every sum that
          // could see this slot's memory reads it.
          uint32_t hw = r_->slotsInUse.load();
          while (hw < static_cast<uint32_t>(i + 1) && !r_->slotsInUse.compare_exchange_weak(hw, i + 1)) {
          }
          return i;
        }
      }
      reapDead();
    }
    return resourceExhausted("all " + std::to_string(kMaxProcesses) +
                             " process slots of the vGPU are in use by live processes");
  }

  void detach(int slot) override {
    if (slot < 0 || slot >= kMaxProcesses) return;
    clearSlot(r_->slots[slot]);
  }

  Status reserve(int slot, int d, uint64_t bytes, Pool pool) override {
    if (d < 0 || d >= deviceCount() || slot < 0 || slot >= kMaxProcesses)
      return invalidArgument("bad device or slot");
    const RegionDevice& rd = r_->devices[d];
    const uint64_t limit = pool == Pool::Device ? rd.vramLimit : rd.hostAllowance;
    if (bytes > limit) return resourceExhausted("larger than the vGPU's limit");
    RegionSlot& mine = r_->slots[slot];
    const int p = static_cast<int>(pool);
    // Announce, then look: of two racing reservations at least one sees the other, so both
    // cannot pass together. A reservation that lost only to other pending ones retries.
    for (int attempt = 0;; ++attempt) {
      mine.pending[p][d].fetch_add(bytes);
      if (sum(d, pool, true) <= limit) {
        mine.committed[p][d].fetch_add(bytes);
        mine.pending[p][d].fetch_sub(bytes);
        return Status::ok();
      }
      mine.pending[p][d].fetch_sub(bytes);
      if (sum(d, pool, false) + bytes > limit || attempt >= 1000)
        return resourceExhausted(std::string("the vGPU's ") +
                                 (pool == Pool::Device ? "VRAM" : "host allowance") +
                                 " limit would be passed");
      struct timespec pause{0, 1000L * (1 + attempt % 50)};
      nanosleep(&pause, nullptr);
    }
  }

  void release(int slot, int d, uint64_t bytes, Pool pool) override {
    if (d < 0 || d >= deviceCount() || slot < 0 || slot >= kMaxProcesses) return;
    auto& mine = r_->slots[slot].committed[static_cast<int>(pool)][d];
    uint64_t cur = mine.load();
    while (!mine.compare_exchange_weak(cur, cur >= bytes ? cur - bytes : 0)) {
    }
  }

  uint64_t used(int d, Pool pool) override { return sum(d, pool, false); }

  void charge(int d, uint64_t ns, uint64_t kernels) override {
    if (d < 0 || d >= deviceCount() || ns == 0) return;
    RegionDevice& rd = r_->devices[d];
    rd.busyNs.fetch_add(ns);
    // The longest kernel: a lower bound when one charge covers several (their average).
    const uint64_t kernel = ns / std::max<uint64_t>(kernels, 1);
    uint64_t longest = rd.longestKernelNs.load();
    while (kernel > longest && !rd.longestKernelNs.compare_exchange_weak(longest, kernel)) {}
    // Debt is paid back in full, however long the kernel. Time used while the quota controller
    // lent a larger share is not debt at the smaller one: setComputeBasisPoints credits the
    // time until the change at the old share first.
    rd.tokens.fetch_sub(static_cast<int64_t>(ns));
  }

  uint64_t throttleNs(int d) override {
    if (d < 0 || d >= deviceCount()) return 0;
    RegionDevice& rd = r_->devices[d];
    const uint32_t bp = rd.computeBasisPoints.load(std::memory_order_relaxed);
    refill(rd, bp); // also at 100%, so the bucket is full, not in debt, when the share shrinks
    if (bp >= 10000) return 0;
    int64_t t = rd.tokens.load();
    if (t > 0) return 0;
    // Wait for the deficit to refill, in small steps so a changed limit is seen quickly.
    uint64_t wait = static_cast<uint64_t>((-t + 1) * 10000.0 / bp);
    return std::min<uint64_t>(std::max<uint64_t>(wait, 50'000), 5'000'000);
  }

  void noteThrottled(int d, uint64_t ns) override {
    if (d >= 0 && d < deviceCount()) r_->devices[d].throttledNs.fetch_add(ns);
  }
  void noteLaunch(int d) override {
    if (d >= 0 && d < deviceCount()) r_->devices[d].launches.fetch_add(1, std::memory_order_relaxed);
  }

  DeviceUsage usage(int d) override {
    DeviceUsage u;
    if (d < 0 || d >= deviceCount()) return u;
    const RegionDevice& rd = r_->devices[d];
    u.vramUsed = sum(d, Pool::Device, false);
    u.hostUsed = sum(d, Pool::Host, false);
    u.busyNs = rd.busyNs.load();
    u.throttledNs = rd.throttledNs.load();
    u.launches = rd.launches.load();
    return u;
  }

  std::vector<SlotUsage> processes() override {
    reapDead();
    std::vector<SlotUsage> out;
    for (auto& s : r_->slots) {
      int32_t pid = s.pid.load();
      if (pid <= 0) continue;
      SlotUsage u;
      u.pid = pid;
      for (int d = 0; d < kMaxDevices; ++d) {
        u.vram[d] = s.committed[0][d].load();
        u.host[d] = s.committed[1][d].load();
      }
      out.push_back(u);
    }
    return out;
  }

  int reapDead() override {
    int reaped = 0;
    for (auto& s : r_->slots) {
      int32_t pid = s.pid.load();
      if (pid <= 0) continue;
      bool dead = kill(pid, 0) != 0 && errno == ESRCH;
      if (!dead) {
        uint64_t st = s.startTime.load();
        uint64_t actual = processStartTime(pid);
        dead = st != 0 && actual != 0 && actual != st; // the pid was reused
      }
      if (!dead) continue;
      // Claim it so that only one reaper clears it, then give it back empty.
      if (s.pid.compare_exchange_strong(pid, kReclaiming)) {
        clearCounters(s);
        s.pid.store(0);
        ++reaped;
      }
    }
    return reaped;
  }

private:
  // Memory held by every process (and, with pending, memory being reserved right now).
  uint64_t sum(int d, Pool pool, bool withPending) {
    const int p = static_cast<int>(pool);
    const uint32_t n = std::min<uint32_t>(r_->slotsInUse.load(), kMaxProcesses);
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; ++i) {
      total += r_->slots[i].committed[p][d].load();
      if (withPending) total += r_->slots[i].pending[p][d].load();
    }
    return total;
  }
  static void clearCounters(RegionSlot& s) {
    for (int p = 0; p < 2; ++p)
      for (int d = 0; d < kMaxDevices; ++d) {
        s.committed[p][d].store(0);
        s.pending[p][d].store(0);
      }
    s.startTime.store(0);
  }
  static void clearSlot(RegionSlot& s) {
    int32_t pid = s.pid.load();
    if (pid <= 0 || !s.pid.compare_exchange_strong(pid, kReclaiming)) return;
    clearCounters(s);
    s.pid.store(0);
  }
  void refill(RegionDevice& rd, uint32_t bp) {
    const uint64_t now = nowNs();
    uint64_t last = rd.lastRefillNs.load();
    if (now <= last) return;
    if (!rd.lastRefillNs.compare_exchange_strong(last, now)) return; // another process refilled
    // A window's worth, plus the longest kernel's: time that refills while a kernel runs is
    // not lost to the cap before the kernel is charged (it is charged when it completes).
    const int64_t cap = static_cast<int64_t>(
        static_cast<double>(r_->windowNs + rd.longestKernelNs.load(std::memory_order_relaxed)) * bp / 10000.0);
    const int64_t add = static_cast<int64_t>(static_cast<double>(now - last) * bp / 10000.0);
    int64_t cur = rd.tokens.load();
    int64_t next;
    do {
      next = std::min(cur + add, cap);
    } while (!rd.tokens.compare_exchange_weak(cur, next));
  }

  std::string path_;
  RegionLayout* r_;
};

Result<RegionLayout*> mapFile(int fd) {
  void* p = mmap(nullptr, sizeof(RegionLayout), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return internalError(std::string("mmap: ") + strerror(errno));
  return static_cast<RegionLayout*>(p);
}

} // namespace

Result<std::unique_ptr<QuotaRegion>> QuotaRegion::create(const std::string& path, const VgpuSpec& spec) {
  if (spec.devices.empty() || spec.devices.size() > kMaxDevices)
    return invalidArgument("a vGPU has 1 to " + std::to_string(kMaxDevices) + " devices");
  if (spec.name.empty() || spec.name.size() >= 64) return invalidArgument("vGPU name must be 1-63 characters");
  for (const auto& d : spec.devices) {
    if (d.vramLimit == 0) return invalidArgument("VRAM limit must be more than 0");
    if (d.computeBasisPoints == 0 || d.computeBasisPoints > 10000)
      return invalidArgument("compute share must be in (0, 100%]");
  }
  if (spec.windowNs < 10'000'000) return invalidArgument("compute window must be at least 10 ms");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0)
    return Status(errno == EEXIST ? Code::AlreadyExists : Code::Internal,
                  "cannot create quota region " + path + ": " + strerror(errno));
  fchmod(fd, 0666);
  if (ftruncate(fd, sizeof(RegionLayout)) != 0) {
    ::close(fd);
    unlink(path.c_str());
    return internalError("cannot size quota region " + path + ": " + strerror(errno));
  }
  auto mapped = mapFile(fd);
  ::close(fd);
  if (!mapped) return mapped.status();
  RegionLayout* r = *mapped;
  r->version = kRegionVersion;
  r->size = sizeof(RegionLayout);
  snprintf(r->name, sizeof r->name, "%s", spec.name.c_str());
  r->deviceCount = static_cast<uint32_t>(spec.devices.size());
  r->slotCount = kMaxProcesses;
  r->windowNs = spec.windowNs;
  const uint64_t now = nowNs();
  for (size_t i = 0; i < spec.devices.size(); ++i) {
    RegionDevice& rd = r->devices[i];
    memcpy(rd.uuid, spec.devices[i].uuid.data(), 16);
    rd.vramLimit = spec.devices[i].vramLimit;
    rd.hostAllowance = spec.devices[i].hostAllowance;
    rd.computeBasisPoints.store(spec.devices[i].computeBasisPoints);
    rd.fp16Tflops = spec.devices[i].fp16Tflops;
    rd.tokens.store(static_cast<int64_t>(spec.windowNs * spec.devices[i].computeBasisPoints / 10000));
    rd.lastRefillNs.store(now);
  }
  r->magic.store(kMagic, std::memory_order_release);
  return std::unique_ptr<QuotaRegion>(new QuotaRegionImpl(path, r));
}

Result<std::unique_ptr<QuotaRegion>> QuotaRegion::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return notFound("quota region " + path + " cannot be opened: " + strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) < sizeof(uint64_t) * 2) {
    ::close(fd);
    return dataLoss("quota region " + path + " is truncated or empty");
  }
  if (static_cast<size_t>(st.st_size) != sizeof(RegionLayout)) {
    ::close(fd);
    return dataLoss("quota region " + path + " has size " + std::to_string(st.st_size) +
                    ", expected " + std::to_string(sizeof(RegionLayout)) +
                    " (made by another version?)");
  }
  auto mapped = mapFile(fd);
  ::close(fd);
  if (!mapped) return mapped.status();
  RegionLayout* r = *mapped;
  auto fail = [&](std::string why) -> Status {
    munmap(r, sizeof(RegionLayout));
    return dataLoss("quota region " + path + ": " + why);
  };
  if (r->magic.load(std::memory_order_acquire) != kMagic) return fail("not a quota region (bad magic)");
  if (r->version != kRegionVersion)
    return fail("layout version " + std::to_string(r->version) + ", this library reads version " +
                std::to_string(kRegionVersion));
  if (r->size != sizeof(RegionLayout) || r->deviceCount == 0 || r->deviceCount > kMaxDevices ||
      r->slotCount != kMaxProcesses)
    return fail("corrupt header");
  return std::unique_ptr<QuotaRegion>(new QuotaRegionImpl(path, r));
}

Status QuotaRegion::remove(const std::string& path) {
  if (unlink(path.c_str()) != 0) return notFound("cannot remove " + path + ": " + strerror(errno));
  return Status::ok();
}

Result<uint32_t> parseComputeLimit(const std::string& text, double fp16Tflops) {
  std::string s = text;
  for (auto& c : s) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  char* end = nullptr;
  double v = strtod(s.c_str(), &end);
  if (end == s.c_str() || !std::isfinite(v) || v <= 0)
    return invalidArgument("compute limit '" + text + "' is not a positive number");
  std::string unit(end);
  double percent;
  if (unit.empty() || unit == "%") {
    percent = v;
  } else if (unit == "tflops" || unit == "t") {
    if (fp16Tflops <= 0) return invalidArgument("TFLOPS limit needs the device's FP16 rating");
    percent = v / fp16Tflops * 100.0;
  } else {
    return invalidArgument("compute limit '" + text + "' has an unknown unit (use % or tflops)");
  }
  if (percent > 100.0 + 1e-9) return invalidArgument("compute limit '" + text + "' is more than the whole device");
  return static_cast<uint32_t>(std::max(1.0, std::round(percent * 100.0)));
}

} // namespace tf::limiter
