#include "softgpu/driver/memory.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "cuda/softgpu_extensions.h"

namespace tf::softgpu {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kGuard = kPage; // uncommitted gap after each allocation: overruns fault

constexpr int kReserve = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;

uint64_t roundUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// The PTX engine gives shared, local, parameter and function addresses the range
// [0x1'0000'0000'0000, 0x6'0000'0000'0000) (src/ptx/ir.h): device memory must stay out of it.
constexpr uint64_t kEngineLo = 0x1'0000'0000'0000ull, kEngineHi = 0x6'0000'0000'0000ull;
bool clearOfEngine(uint64_t at, uint64_t bytes) { return at >= kEngineHi || at + bytes <= kEngineLo; }

// Addresses [at, at+bytes) reserved exactly there, or MAP_FAILED (errno set) if any is taken.
void* reserveAt(uint64_t at, uint64_t bytes) {
  if (!clearOfEngine(at, bytes)) {
    errno = ERANGE;
    return MAP_FAILED;
  }
  void* p = mmap(reinterpret_cast<void*>(at), bytes, PROT_NONE, kReserve | MAP_FIXED_NOREPLACE, -1, 0);
  if (p != MAP_FAILED && reinterpret_cast<uint64_t>(p) != at) {
    munmap(p, bytes); // a kernel without MAP_FIXED_NOREPLACE took the address as a hint
    errno = EEXIST;
    return MAP_FAILED;
  }
  return p;
}

// Addresses reserved wherever the kernel puts them, out of the engine's range.
void* reserveAnywhere(uint64_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_NONE, kReserve, -1, 0);
  if (p == MAP_FAILED || clearOfEngine(reinterpret_cast<uint64_t>(p), bytes)) return p;
  munmap(p, bytes);
  p = mmap(reinterpret_cast<void*>(kEngineHi), bytes, PROT_NONE, kReserve, -1, 0);
  if (p != MAP_FAILED && !clearOfEngine(reinterpret_cast<uint64_t>(p), bytes)) {
    munmap(p, bytes);
    errno = ENOMEM;
    return MAP_FAILED;
  }
  return p;
}

} // namespace

AddressSpace& addressSpace() {
  static auto* as = new AddressSpace();
  return *as;
}

Status AddressSpace::init(int deviceCount, uint64_t perDevice) {
  std::unique_lock lock(mu_);
  if (windowBase_) return Status::ok();
  const uint64_t stride = roundUp(std::max<uint64_t>(perDevice, 1), cuda::kWindowStride);
  const int windows = std::max(deviceCount, cuda::kMinWindows);
  const uint64_t window = stride * windows;
  void* p = reserveAt(cuda::kWindowBase, window);
  const bool fixed = p != MAP_FAILED;
  if (!fixed) {
    TF_LOG(Warn, "soft GPU: the device address range [0x%llx, 0x%llx) is not free (%s); device "
                 "addresses go elsewhere, where no other process can recreate them (migration "
                 "to or from this process will refuse)",
           static_cast<unsigned long long>(cuda::kWindowBase),
           static_cast<unsigned long long>(cuda::kWindowBase + window), strerror(errno));
    p = reserveAnywhere(window);
  }
  if (p == MAP_FAILED)
    return resourceExhausted(std::string("cannot reserve the device address space: ") +
                             strerror(errno));
  // The host pages behind the window, addresses one to one, wherever they fit.
  void* heap = mmap(nullptr, window, PROT_NONE, kReserve, -1, 0);
  if (heap == MAP_FAILED) {
    Status s = resourceExhausted(std::string("cannot reserve the device memory's host pages: ") +
                                 strerror(errno));
    munmap(p, window);
    return s;
  }
  windowBase_ = reinterpret_cast<uint64_t>(p);
  windowSize_ = window;
  heapBase_ = static_cast<uint8_t*>(heap);
  stride_ = stride;
  fixed_ = fixed;
  deviceCount_ = deviceCount;
  // Keep address 0 of each device's range unused so no allocation is at a "round" address
  // that looks like a small integer offset. This gap also keeps free stretches from running
  // from one device's window into the next.
  for (int d = 0; d < windows; ++d)
    free_[windowBase_ + d * stride + kPage * 16] = stride - kPage * 16;
  return Status::ok();
}

int AddressSpace::deviceOfWindowAddress(uint64_t addr) const {
  if (!isDeviceWindow(addr) || stride_ == 0) return -1;
  return static_cast<int>((addr - windowBase_) / stride_);
}

bool AddressSpace::window(int device, uint64_t* base, uint64_t* bytes, bool* fixed) const {
  std::shared_lock lock(mu_);
  if (device < 0 || device >= deviceCount_) return false;
  *base = windowBase_ + device * stride_;
  *bytes = stride_;
  *fixed = fixed_;
  return true;
}

bool AddressSpace::takeExact(uint64_t start, uint64_t span) {
  auto it = free_.upper_bound(start);
  if (it == free_.begin()) return false;
  --it;
  const uint64_t fStart = it->first, fLen = it->second;
  if (start + span > fStart + fLen) return false;
  free_.erase(it);
  if (start > fStart) free_[fStart] = start - fStart;
  if (start + span < fStart + fLen) free_[start + span] = fStart + fLen - (start + span);
  return true;
}

Result<uint64_t> AddressSpace::takeRange(int device, uint64_t span, uint64_t alignment,
                                         uint64_t hint) {
  if (device < 0 || device >= deviceCount_) return invalidArgument("no such device");
  alignment = std::max<uint64_t>(alignment, kPage);
  // A hint is taken anywhere in the window (one address space for all devices).
  if (hint && isDeviceWindow(hint) && hint % alignment == 0 && takeExact(hint, span)) return hint;
  const uint64_t lo = windowBase_ + device * stride_, hi = lo + stride_;
  for (auto it = free_.lower_bound(lo); it != free_.end() && it->first < hi; ++it) {
    uint64_t start = roundUp(it->first, alignment);
    if (start + span <= it->first + it->second && takeExact(start, span)) return start;
  }
  return resourceExhausted("device address space exhausted");
}

void AddressSpace::giveRange(uint64_t start, uint64_t span) {
  auto next = free_.lower_bound(start);
  if (next != free_.end() && next->first == start + span) {
    span += next->second;
    free_.erase(next);
  }
  auto prev = free_.lower_bound(start);
  if (prev != free_.begin()) {
    --prev;
    if (prev->first + prev->second == start) {
      prev->second += span;
      return;
    }
  }
  free_[start] = span;
}

Result<uint64_t> AddressSpace::allocate(int device, uint64_t size, AllocKind kind, Context* ctx,
                                        uint64_t alignment) {
  if (size == 0) return invalidArgument("zero-byte allocation");
  std::unique_lock lock(mu_);
  auto start = takeRange(device, roundUp(size, kPage) + kGuard, alignment, 0);
  if (!start) return start.status();
  return commitDevice(*start, size, kind, device, ctx);
}

Result<uint64_t> AddressSpace::allocateAt(int device, uint64_t address, uint64_t size,
                                          AllocKind kind, Context* ctx, uint64_t alignment) {
  if (size == 0) return invalidArgument("zero-byte allocation");
  std::unique_lock lock(mu_);
  char where[64];
  snprintf(where, sizeof where, "0x%llx", static_cast<unsigned long long>(address));
  const uint64_t span = roundUp(size, kPage) + kGuard;
  const int device0 = deviceOfWindowAddress(address);
  if (device0 < 0 || deviceOfWindowAddress(address + span - 1) != device0)
    return outOfRange(std::string(where) + " (" + std::to_string(size) +
                      " bytes and a guard page) is not inside one device's window");
  const uint64_t need = std::max<uint64_t>(alignment, kPage);
  if (address % need)
    return invalidArgument(std::string(where) + " is not aligned to " + std::to_string(need) +
                           " bytes");
  if (!takeExact(address, span))
    return Status(Code::AlreadyExists, std::string(where) + " (" + std::to_string(size) +
                                           " bytes and a guard page) is not free");
  return commitDevice(address, size, kind, device, ctx);
}

Result<uint64_t> AddressSpace::commitDevice(uint64_t start, uint64_t size, AllocKind kind,
                                            int device, Context* ctx) {
  const uint64_t committed = roundUp(size, kPage);
  if (mprotect(heapOf(start), committed, PROT_READ | PROT_WRITE) != 0) {
    giveRange(start, committed + kGuard);
    return resourceExhausted(std::string("cannot commit device memory: ") + strerror(errno));
  }
  return addDeviceAllocation(start, size, committed + kGuard, kind, device, ctx, false);
}

uint64_t AddressSpace::addDeviceAllocation(uint64_t base, uint64_t size, uint64_t span,
                                           AllocKind kind, int device, Context* ctx,
                                           bool imported) {
  Allocation a;
  a.base = base;
  a.size = size;
  a.span = span;
  a.kind = kind;
  a.device = device;
  a.context = ctx;
  a.host = heapOf(base);
  a.imported = imported;
  a.bufferId = nextBufferId_++;
  allocations_[a.base] = a;
  return a.base;
}

Result<uint64_t> AddressSpace::allocateHostVisible(int device, uint64_t size, AllocKind kind,
                                                   Context* ctx, unsigned flags) {
  if (size == 0) return invalidArgument("zero-byte allocation");
  const uint64_t span = roundUp(size, kPage);
  void* p = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return resourceExhausted("cannot allocate host memory");
  std::unique_lock lock(mu_);
  Allocation a;
  a.base = reinterpret_cast<uint64_t>(p);
  a.size = size;
  a.span = span;
  a.kind = kind;
  a.device = device;
  a.context = ctx;
  a.host = static_cast<uint8_t*>(p);
  a.flags = flags;
  a.bufferId = nextBufferId_++;
  allocations_[a.base] = a;
  return a.base;
}

Status AddressSpace::registerHost(void* ptr, uint64_t size, Context* ctx, unsigned flags) {
  if (!ptr || size == 0) return invalidArgument("null or empty host range");
  std::unique_lock lock(mu_);
  uint64_t base = reinterpret_cast<uint64_t>(ptr);
  auto it = allocations_.upper_bound(base + size - 1);
  if (it != allocations_.begin()) {
    --it;
    if (it->second.base + it->second.size > base)
      return {Code::AlreadyExists, "host range overlaps memory already known to the driver"};
  }
  Allocation a;
  a.base = base;
  a.size = size;
  a.span = size;
  a.kind = AllocKind::HostRegistered;
  a.context = ctx;
  a.host = static_cast<uint8_t*>(ptr);
  a.flags = flags;
  a.bufferId = nextBufferId_++;
  allocations_[base] = a;
  return Status::ok();
}

Result<uint64_t> AddressSpace::reserveRange(int device, uint64_t size, uint64_t alignment,
                                            uint64_t hint) {
  if (size == 0) return invalidArgument("zero-byte reservation");
  std::unique_lock lock(mu_);
  auto start = takeRange(device, size, alignment, hint);
  if (!start) return start.status();
  Allocation a;
  a.base = *start;
  a.size = size;
  a.span = size;
  a.kind = AllocKind::VmmReserved;
  a.device = device;
  a.host = heapOf(*start);
  a.bufferId = nextBufferId_++;
  allocations_[a.base] = a;
  return a.base;
}

Status AddressSpace::mapShared(uint64_t address, uint64_t size, int fd, uint64_t offset,
                               int device, uint64_t bufferId) {
  std::unique_lock lock(mu_);
  // Must lie inside one reservation and overlap no other mapping.
  auto it = allocations_.upper_bound(address);
  if (it == allocations_.begin()) return invalidArgument("address is not in a reserved range");
  --it;
  Allocation& r = it->second;
  if (r.kind != AllocKind::VmmReserved || address + size > r.base + r.size)
    return invalidArgument("mapping does not lie inside one reserved range");
  for (auto& [b, m] : mappings_)
    if (b < address + size && address < b + m.size)
      return invalidArgument("range is already mapped");
  void* p = mmap(heapOf(address), size, PROT_NONE, MAP_SHARED | MAP_FIXED, fd, offset);
  if (p == MAP_FAILED) return resourceExhausted(std::string("mmap: ") + strerror(errno));
  Allocation m;
  m.base = address;
  m.size = size;
  m.span = size;
  m.kind = AllocKind::VmmMapped;
  m.device = device;
  m.host = heapOf(address);
  m.bufferId = bufferId;
  m.flags = 0; // no access until cuMemSetAccess
  mappings_[address] = m;
  return Status::ok();
}

Status AddressSpace::setAccess(uint64_t address, uint64_t size, bool readWrite) {
  std::unique_lock lock(mu_);
  uint64_t covered = 0;
  for (auto& [b, m] : mappings_)
    if (b >= address && b + m.size <= address + size) {
      covered += m.size;
      mprotect(m.host, m.size, readWrite ? PROT_READ | PROT_WRITE : PROT_NONE);
      m.flags = readWrite ? 1 : 0;
    }
  if (covered != size) return invalidArgument("range is not entirely mapped");
  return Status::ok();
}

Status AddressSpace::unmap(uint64_t address, uint64_t size) {
  std::unique_lock lock(mu_);
  uint64_t covered = 0;
  for (auto it = mappings_.begin(); it != mappings_.end();) {
    if (it->first >= address && it->first + it->second.size <= address + size) {
      covered += it->second.size;
      mmap(it->second.host, it->second.size, PROT_NONE,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
      it = mappings_.erase(it);
    } else {
      ++it;
    }
  }
  if (covered != size) return invalidArgument("range was not entirely mapped");
  return Status::ok();
}

Result<int> AddressSpace::shareDevice(uint64_t base) {
  std::unique_lock lock(mu_);
  auto it = allocations_.find(base);
  if (it == allocations_.end() || it->second.kind != AllocKind::Device || it->second.imported)
    return invalidArgument("not the base of device memory allocated in this process");
  return moveIntoMemfd(it->second, it->second.span - kGuard);
}

Result<int> AddressSpace::shareManaged(uint64_t base) {
  std::unique_lock lock(mu_);
  auto it = allocations_.find(base);
  if (it == allocations_.end() || it->second.kind != AllocKind::Managed)
    return invalidArgument("not the base of managed memory");
  return moveIntoMemfd(it->second, it->second.span);
}

Result<int> AddressSpace::moveIntoMemfd(Allocation& a, uint64_t bytes) {
  if (a.shareFd >= 0) return a.shareFd;
  int fd = memfd_create("tf-softgpu-ipc", MFD_CLOEXEC);
  if (fd < 0) return resourceExhausted(std::string("memfd_create: ") + strerror(errno));
  // The contents so far, then the memfd in place of the private pages, at the same addresses.
  // Stretches that are all zero are left as the memfd's holes (they read zero and cost nothing
  // until written): fresh memory, as a managed allocation is when shared, copies nothing.
  constexpr uint64_t kStretch = 1 << 20;
  auto zero = [](const uint8_t* p, uint64_t n) { return p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0; };
  bool copied = ftruncate(fd, static_cast<off_t>(bytes)) == 0;
  for (uint64_t at = 0; copied && at < bytes; at += kStretch) {
    const uint64_t end = std::min(bytes, at + kStretch);
    if (zero(a.host + at, end - at)) continue;
    for (uint64_t done = at; copied && done < end;) {
      ssize_t n = pwrite(fd, a.host + done, end - done, static_cast<off_t>(done));
      if (n <= 0) copied = false;
      else done += static_cast<uint64_t>(n);
    }
  }
  if (!copied ||
      mmap(a.host, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
    Status s = resourceExhausted(std::string("cannot share device memory: ") + strerror(errno));
    close(fd);
    return s;
  }
  a.shareFd = fd;
  return fd;
}

Result<uint64_t> AddressSpace::importShared(int device, int fd, uint64_t size, Context* ctx) {
  if (size == 0) {
    close(fd);
    return invalidArgument("zero-byte IPC allocation");
  }
  std::unique_lock lock(mu_);
  const uint64_t committed = roundUp(size, kPage);
  auto start = takeRange(device, committed + kGuard, kPage, 0);
  if (!start) {
    close(fd);
    return start.status();
  }
  uint8_t* host = heapOf(*start);
  void* m = mmap(host, committed, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
  int mapErrno = errno;
  close(fd); // the mapping keeps the memfd alive
  if (m == MAP_FAILED) {
    giveRange(*start, committed + kGuard);
    return resourceExhausted(std::string("cannot map IPC memory: ") + strerror(mapErrno));
  }
  return addDeviceAllocation(*start, size, committed + kGuard, AllocKind::Device, device, ctx, true);
}

bool AddressSpace::texture(uint64_t handle, cuda::TextureView* out) const {
  return lookupTexture(handle, out);
}

Status AddressSpace::release(uint64_t base, std::optional<AllocKind> expected, Allocation* out) {
  std::unique_lock lock(mu_);
  auto it = allocations_.find(base);
  if (it == allocations_.end()) return invalidArgument("not the start of an allocation");
  Allocation a = it->second;
  if (expected && a.kind != *expected) return invalidArgument("allocation is of another kind");
  if (a.kind == AllocKind::VmmReserved)
    for (auto& [b, m] : mappings_)
      if (b >= a.base && b < a.base + a.size)
        return {Code::FailedPrecondition, "reserved range still has mappings"};
  allocations_.erase(it);
  switch (a.kind) {
  case AllocKind::Device:
    if (a.shareFd >= 0 || a.imported) {
      // Shared pages: back to plain reserved addresses here; the other process's mapping (if
      // any) keeps the memfd's pages alive.
      mmap(a.host, a.span - kGuard, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED,
           -1, 0);
      if (a.shareFd >= 0) close(a.shareFd);
    } else {
      madvise(a.host, a.span - kGuard, MADV_DONTNEED);
      mprotect(a.host, a.span - kGuard, PROT_NONE);
    }
    giveRange(a.base, a.span);
    break;
  case AllocKind::VmmReserved:
    giveRange(a.base, a.span);
    break;
  case AllocKind::Managed:
  case AllocKind::HostPinned:
    munmap(a.host, a.span);
    if (a.shareFd >= 0) close(a.shareFd); // another process's mapping keeps its pages
    break;
  case AllocKind::HostRegistered:
  case AllocKind::VmmMapped:
    break;
  }
  if (out) *out = a;
  return Status::ok();
}

std::optional<Allocation> AddressSpace::find(uint64_t addr, uint64_t len) const {
  std::shared_lock lock(mu_);
  auto inside = [&](const Allocation& a) {
    return addr >= a.base && len <= a.size && addr - a.base <= a.size - len;
  };
  auto m = mappings_.upper_bound(addr);
  if (m != mappings_.begin() && inside(std::prev(m)->second)) return std::prev(m)->second;
  auto it = allocations_.upper_bound(addr);
  if (it == allocations_.begin()) return std::nullopt;
  --it;
  if (!inside(it->second)) return std::nullopt;
  return it->second;
}

std::optional<Allocation> AddressSpace::findBase(uint64_t base) const {
  std::shared_lock lock(mu_);
  auto it = allocations_.find(base);
  if (it == allocations_.end()) return std::nullopt;
  return it->second;
}

uint8_t* AddressSpace::hostOf(uint64_t addr, uint64_t len) const {
  auto a = find(addr, len);
  if (!a || a->kind == AllocKind::VmmReserved) return nullptr;
  if (a->kind == AllocKind::VmmMapped && !a->flags) return nullptr;
  return a->host + (addr - a->base);
}

bool AddressSpace::lookup(uint64_t addr, cuda::MemoryRange* out) const {
  auto a = find(addr, 1);
  if (!a || a->kind == AllocKind::VmmReserved) return false;
  if (a->kind == AllocKind::VmmMapped && !a->flags) return false;
  out->base = a->base;
  out->size = a->size;
  out->host = a->host;
  return true;
}

void AddressSpace::setCharged(uint64_t base, uint64_t bytes) {
  std::unique_lock lock(mu_);
  auto it = allocations_.find(base);
  if (it != allocations_.end()) it->second.charged = bytes;
}

std::vector<Allocation> AddressSpace::allocationsOf(const Context* ctx) const {
  std::shared_lock lock(mu_);
  std::vector<Allocation> out;
  for (auto& [b, a] : allocations_)
    if (a.context == ctx) out.push_back(a);
  return out;
}

} // namespace tf::softgpu
