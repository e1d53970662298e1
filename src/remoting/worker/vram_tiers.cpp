#include "remoting/worker/vram_tiers.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace tf::remoting {
namespace {

using cuda::FnId;
using Clock = std::chrono::steady_clock;

template <typename F> F driverFn(const DriverApi& api, FnId id) { return api.fn<F>(id); }
#define TF_DRIVER(name) driverFn<decltype(&::name)>(api_, FnId::name)

size_t roundUp(size_t v, size_t g) { return (v + g - 1) / g * g; }

bool allZero(const char* p, size_t n) { return p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0; }

}  // namespace

VramTiers::HostPages& VramTiers::HostPages::operator=(HostPages&& o) noexcept {
  if (this != &o) {
    reset();
    p_ = std::exchange(o.p_, nullptr);
    n_ = std::exchange(o.n_, 0);
  }
  return *this;
}

bool VramTiers::HostPages::reserve(size_t n) {
  reset();
  void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return false;
  p_ = p;
  n_ = n;
  return true;
}

void VramTiers::HostPages::reset() {
  if (p_) munmap(p_, n_);
  p_ = nullptr;
  n_ = 0;
}

VramTiers::VramTiers(const DriverApi& api, int device, Options options)
    : api_(api), device_(device), options_(std::move(options)) {
  size_t chunk = 4096;
  while (chunk < options_.chunkBytes && chunk < (2u << 20)) chunk *= 2;
  options_.chunkBytes = chunk;  // divides every granularity (2 MiB on current GPUs)
  options_.stagingBytes = roundUp(std::max<size_t>(options_.stagingBytes, 1u << 20), chunk);
}

VramTiers::~VramTiers() {
  while (!allocations_.empty()) (void)free(allocations_.begin()->first);  // cannot fail: it starts there
  if (coldFd_ >= 0) close(coldFd_);
}

Status VramTiers::driverError(const char* what, CUresult r) const {
  const char* name = nullptr;
  if (auto errorName = TF_DRIVER(cuGetErrorName)) errorName(r, &name);
  std::string m = std::string(what) + ": " + (name ? name : "CUresult " + std::to_string(r));
  return r == CUDA_ERROR_OUT_OF_MEMORY ? resourceExhausted(m) : unavailable(m);
}

CUresult VramTiers::mapNew(CUdeviceptr base, Allocation& a) {
  auto create = TF_DRIVER(cuMemCreate);
  auto map = TF_DRIVER(cuMemMap);
  auto access = TF_DRIVER(cuMemSetAccess);
  auto release = TF_DRIVER(cuMemRelease);
  auto unmapFn = TF_DRIVER(cuMemUnmap);
  if (!create || !map || !access || !release || !unmapFn) return CUDA_ERROR_NOT_SUPPORTED;
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = device_;
  CUmemGenericAllocationHandle h = 0;
  if (CUresult r = create(&h, a.size, &prop, 0); r != CUDA_SUCCESS) return r;
  if (CUresult r = map(base, a.size, 0, h, 0); r != CUDA_SUCCESS) {
    release(h);
    return r;
  }
  CUmemAccessDesc desc{};
  desc.location = prop.location;
  desc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  if (CUresult r = access(base, a.size, &desc, 1); r != CUDA_SUCCESS) {
    unmapFn(base, a.size);
    release(h);
    return r;
  }
  a.handle = h;
  return CUDA_SUCCESS;
}

void VramTiers::unmap(CUdeviceptr base, Allocation& a) {
  TF_DRIVER(cuMemUnmap)(base, a.size);
  TF_DRIVER(cuMemRelease)(a.handle);  // the device memory goes with its last mapping
  a.handle = 0;
}

Result<CUdeviceptr> VramTiers::allocate(size_t size, CUdeviceptr at) {
  if (size == 0) return invalidArgument("a zero-byte allocation");
  auto reserve = TF_DRIVER(cuMemAddressReserve);
  auto freeRange = TF_DRIVER(cuMemAddressFree);
  auto granularity = TF_DRIVER(cuMemGetAllocationGranularity);
  if (!reserve || !freeRange || !granularity) return unimplemented("the driver has no virtual memory management");
  if (granularity_ == 0) {
    CUmemAllocationProp prop{};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = device_;
    if (CUresult r = granularity(&granularity_, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED); r != CUDA_SUCCESS)
      return driverError("cuMemGetAllocationGranularity", r);
  }
  Allocation a;
  a.size = roundUp(size, granularity_);
  CUdeviceptr base = 0;
  if (CUresult r = reserve(&base, a.size, granularity_, at, 0); r != CUDA_SUCCESS)
    return driverError("cuMemAddressReserve", r);
  if (at && base != at) {
    freeRange(base, a.size);
    char range[64];
    snprintf(range, sizeof range, "0x%llx+%zu", static_cast<unsigned long long>(at), a.size);
    return failedPrecondition(std::string("the device addresses ") + range + " are taken here");
  }
  if (CUresult r = mapNew(base, a); r != CUDA_SUCCESS) {
    freeRange(base, a.size);
    return driverError("cuMemCreate/cuMemMap", r);
  }
  allocations_.emplace(base, std::move(a));
  return base;
}

Status VramTiers::free(CUdeviceptr p) {
  auto it = allocations_.find(p);
  if (it == allocations_.end()) return invalidArgument("no allocation starts at this address");
  Allocation& a = it->second;
  if (a.tier == Tier::Hot) unmap(p, a);
  if (a.tier == Tier::Cold) releaseColdSlot(a.coldOffset, a.size);
  TF_DRIVER(cuMemAddressFree)(p, a.size);
  allocations_.erase(it);
  return Status::ok();
}

std::optional<VramTiers::Range> VramTiers::find(CUdeviceptr p) const {
  auto it = allocations_.upper_bound(p);
  if (it == allocations_.begin()) return std::nullopt;
  --it;
  if (p >= it->first + it->second.size) return std::nullopt;
  return Range{it->first, it->second.size, it->second.tier};
}

Result<int64_t> VramTiers::coldSlot(size_t size) {
  if (coldFd_ < 0) {
    coldFd_ = open(options_.coldDir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (coldFd_ < 0) {  // a file system without O_TMPFILE: a named file, unlinked at once
      std::string path = options_.coldDir + "/tf-vram-cold-XXXXXX";
      coldFd_ = mkostemp(path.data(), O_CLOEXEC);
      if (coldFd_ >= 0) unlink(path.c_str());
    }
    if (coldFd_ < 0) return unavailable("cold tier in " + options_.coldDir + ": " + strerror(errno));
  }
  if (auto it = coldFree_.lower_bound(size); it != coldFree_.end()) {
    const int64_t at = it->second;
    coldFree_.erase(it);
    return at;
  }
  const int64_t at = coldEnd_;
  coldEnd_ += static_cast<int64_t>(size);
  return at;
}

void VramTiers::releaseColdSlot(int64_t at, size_t size) {
  // Only stored extents are ever read back, so what the slot holds does not matter; the hole
  // gives the disk space back where the file system can.
  (void)fallocate(coldFd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, at, static_cast<off_t>(size));
  coldFree_.emplace(size, at);
}

namespace {

// All `n` bytes through pread/pwrite, whatever short transfers and signals do.
template <typename Io, typename Ptr> bool transferAll(Io io, int fd, Ptr p, size_t n, int64_t at) {
  while (n > 0) {
    ssize_t done = io(fd, p, n, at);
    if (done < 0 && errno == EINTR) continue;
    if (done <= 0) return false;
    p += done;
    n -= static_cast<size_t>(done);
    at += done;
  }
  return true;
}
bool writeAll(int fd, const char* p, size_t n, int64_t at) { return transferAll(::pwrite, fd, p, n, at); }
bool readAll(int fd, char* p, size_t n, int64_t at) { return transferAll(::pread, fd, p, n, at); }

}  // namespace

std::vector<VramTiers::Extent> VramTiers::mayHoldData(const Allocation& a) const {
  const std::vector<Extent> all{{0, a.size}};
  auto exportFd = TF_DRIVER(cuMemExportToShareableHandle);
  int fd = -1;
  if (!api_.isSoftGpu() || !exportFd ||
      exportFd(&fd, a.handle, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0) != CUDA_SUCCESS)
    return all;
  const size_t chunk = options_.chunkBytes;
  std::vector<Extent> out;
  for (off_t pos = 0; pos < static_cast<off_t>(a.size);) {
    const off_t data = lseek(fd, pos, SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // holes to the end
    const off_t hole = data < 0 ? -1 : lseek(fd, data, SEEK_HOLE);
    if (hole < 0) {  // a descriptor that is no file with holes after all
      close(fd);
      return all;
    }
    const size_t from = static_cast<size_t>(data) / chunk * chunk;
    const size_t to = std::min(a.size, roundUp(static_cast<size_t>(hole), chunk));
    if (!out.empty() && out.back().offset + out.back().size >= from) out.back().size = to - out.back().offset;
    else if (from < to) out.push_back({from, to - from});
    pos = hole;
  }
  close(fd);
  return out;
}

template <typename Keep>
Status VramTiers::copyOutSparse(CUdeviceptr base, const Allocation& a, const char* where, char* inPlace, Keep keep,
                                std::vector<Extent>* stored) {
  auto dtoh = TF_DRIVER(cuMemcpyDtoH_v2);
  const size_t chunk = options_.chunkBytes;
  std::vector<char> staging(std::min(options_.stagingBytes, a.size));
  stored->clear();
  bool dense = true;  // the last piece had no chunk all zero: the next goes straight in place
  for (const Extent& range : mayHoldData(a)) {
    for (size_t off = range.offset; off < range.offset + range.size; off += staging.size()) {
      const size_t n = std::min(staging.size(), range.offset + range.size - off);
      const bool direct = inPlace && dense;
      char* piece = direct ? inPlace + off : staging.data();
      if (direct) (void)madvise(piece, n, MADV_POPULATE_WRITE);  // in one go, not a fault per page
      if (CUresult r = dtoh(piece, base + off, n); r != CUDA_SUCCESS)
        return driverError((std::string("copying to ") + where).c_str(), r);
      dense = true;
      const auto zero = [&](size_t at) { return allZero(piece + at, std::min(chunk, n - at)); };
      for (size_t at = 0; at < n;) {  // a run of chunks all zero, then one of chunks with data
        size_t end = at;
        while (end < n && zero(end)) end += chunk;
        end = std::min(end, n);
        if (end > at) {
          dense = false;
          if (direct) (void)madvise(piece + at, end - at, MADV_DONTNEED);  // back to no memory
        }
        at = end;
        while (end < n && !zero(end)) end += chunk;
        end = std::min(end, n);
        if (end == at) continue;
        if (!direct && !keep(off + at, piece + at, end - at))
          return unavailable(std::string("writing ") + where + ": " + strerror(errno));
        if (!stored->empty() && stored->back().offset + stored->back().size == off + at) stored->back().size += end - at;
        else stored->push_back({off + at, end - at});
        at = end;
      }
    }
  }
  return Status::ok();
}

Status VramTiers::toHost(CUdeviceptr base, Allocation& a, Tier to) {
  std::vector<Extent> stored;
  if (to == Tier::Warm) {
    if (!a.warm.reserve(a.size))
      return resourceExhausted("no host memory for the warm tier (" + std::to_string(a.size) + " bytes): " +
                               strerror(errno));
    char* warm = a.warm.data();
    Status s = copyOutSparse(base, a, "the warm tier", warm, [warm](size_t off, const char* p, size_t n) {
      (void)madvise(warm + off, n, MADV_POPULATE_WRITE);
      std::memcpy(warm + off, p, n);
      return true;
    }, &stored);
    if (!s) {
      a.warm.reset();
      return s;
    }
  } else {
    auto slot = coldSlot(a.size);
    if (!slot) return slot.status();
    const int fd = coldFd_;
    const int64_t at = *slot;
    Status s = copyOutSparse(base, a, "the cold tier", nullptr, [fd, at](size_t off, const char* p, size_t n) {
      return writeAll(fd, p, n, at + static_cast<int64_t>(off));
    }, &stored);
    if (!s) {
      releaseColdSlot(*slot, a.size);
      return s;
    }
    a.coldOffset = *slot;
  }
  a.stored = std::move(stored);
  unmap(base, a);
  a.tier = to;
  return Status::ok();
}

Status VramTiers::warmToCold(Allocation& a) {
  auto slot = coldSlot(a.size);
  if (!slot) return slot.status();
  for (const Extent& e : a.stored)
    if (!writeAll(coldFd_, a.warm.data() + e.offset, e.size, *slot + static_cast<int64_t>(e.offset))) {
      const int err = errno;
      releaseColdSlot(*slot, a.size);
      return unavailable(std::string("writing the cold tier: ") + strerror(err));
    }
  a.warm.reset();
  a.coldOffset = *slot;
  a.tier = Tier::Cold;
  return Status::ok();
}

Status VramTiers::toDevice(CUdeviceptr base, Allocation& a) {
  if (CUresult r = mapNew(base, a); r != CUDA_SUCCESS) return driverError("thawing: cuMemCreate/cuMemMap", r);
  auto htod = TF_DRIVER(cuMemcpyHtoD_v2);
  auto clear = TF_DRIVER(cuMemsetD8_v2);
  std::vector<char> staging;
  if (a.tier == Tier::Cold) staging.resize(std::min(options_.stagingBytes, a.size));
  int readError = 0;
  const auto copyBack = [&](const Extent& e) -> CUresult {
    if (a.tier == Tier::Warm) return htod(base + e.offset, a.warm.data() + e.offset, e.size);
    for (size_t off = e.offset; off < e.offset + e.size; off += staging.size()) {
      const size_t n = std::min(staging.size(), e.offset + e.size - off);
      errno = 0;
      if (!readAll(coldFd_, staging.data(), n, a.coldOffset + static_cast<int64_t>(off))) {
        readError = errno ? errno : EIO;
        return CUDA_ERROR_UNKNOWN;
      }
      if (CUresult r = htod(base + off, staging.data(), n); r != CUDA_SUCCESS) return r;
    }
    return CUDA_SUCCESS;
  };
  // The stored extents back, and the stretches between them (never stored: zero) cleared.
  CUresult r = CUDA_SUCCESS;
  size_t done = 0;
  for (size_t i = 0; i <= a.stored.size() && r == CUDA_SUCCESS; ++i) {
    const Extent e = i < a.stored.size() ? a.stored[i] : Extent{a.size, 0};
    if (e.offset > done) r = clear(base + done, 0, e.offset - done);
    if (r == CUDA_SUCCESS && e.size) r = copyBack(e);
    done = e.offset + e.size;
  }
  if (r != CUDA_SUCCESS) {
    unmap(base, a);  // the contents stay where they were
    return readError ? unavailable(std::string("reading the cold tier: ") + strerror(readError))
                     : driverError("thawing: copying back", r);
  }
  if (a.tier == Tier::Warm) a.warm.reset();
  else releaseColdSlot(a.coldOffset, a.size);
  a.coldOffset = -1;
  a.stored.clear();
  a.tier = Tier::Hot;
  return Status::ok();
}

Status VramTiers::freeze(Tier to) {
  if (to == Tier::Hot) return invalidArgument("freezing to the hot tier");
  for (auto& [base, a] : allocations_) {
    if (a.tier == to || a.tier == Tier::Cold) continue;
    const auto t0 = Clock::now();
    const bool leavesDevice = a.tier == Tier::Hot;  // else a warm one spilled to disk
    Status s = leavesDevice ? toHost(base, a, to) : warmToCold(a);
    if (!s) return s;
    if (leavesDevice) {
      ++counts_.freezes;
      counts_.freezeTime += Clock::now() - t0;
    }
  }
  return Status::ok();
}

Status VramTiers::thaw() {
  for (auto& [base, a] : allocations_) {
    if (a.tier == Tier::Hot) continue;
    const auto t0 = Clock::now();
    if (Status s = toDevice(base, a); !s) return s;
    ++counts_.thaws;
    counts_.thawTime += Clock::now() - t0;
  }
  return Status::ok();
}

bool VramTiers::frozen() const {
  return std::any_of(allocations_.begin(), allocations_.end(), [](const auto& e) { return e.second.tier != Tier::Hot; });
}

VramTiers::Usage VramTiers::usage() const {
  Usage u = counts_;
  for (const auto& [base, a] : allocations_) {
    (a.tier == Tier::Hot ? u.hotBytes : a.tier == Tier::Warm ? u.warmBytes : u.coldBytes) += a.size;
    if (a.tier == Tier::Hot) continue;
    uint64_t stored = 0;
    for (const Extent& e : a.stored) stored += e.size;
    (a.tier == Tier::Warm ? u.warmStoredBytes : u.coldStoredBytes) += stored;
  }
  return u;
}

std::vector<VramTiers::Range> VramTiers::ranges() const {
  std::vector<Range> out;
  out.reserve(allocations_.size());
  for (const auto& [base, a] : allocations_) out.push_back(Range{base, a.size, a.tier});
  return out;
}

Status VramTiers::read(CUdeviceptr base, size_t offset, void* dst, size_t n) const {
  auto it = allocations_.find(base);
  if (it == allocations_.end() || offset > it->second.size || n > it->second.size - offset)
    return invalidArgument("no such range of a tiered allocation");
  const Allocation& a = it->second;
  switch (a.tier) {
  case Tier::Hot:
    if (CUresult r = TF_DRIVER(cuMemcpyDtoH_v2)(dst, base + offset, n); r != CUDA_SUCCESS)
      return driverError("cuMemcpyDtoH", r);
    return Status::ok();
  case Tier::Warm:
  case Tier::Cold:
    // Only the stored extents hold anything (the cold slot may hold a former tenant's bytes
    // elsewhere, or end before the allocation does); the rest is zero.
    std::memset(dst, 0, n);
    for (const Extent& e : a.stored) {
      const size_t from = std::max(offset, e.offset), to = std::min(offset + n, e.offset + e.size);
      if (from >= to) continue;
      char* out = static_cast<char*>(dst) + (from - offset);
      if (a.tier == Tier::Warm) {
        std::memcpy(out, a.warm.data() + from, to - from);
      } else {
        errno = 0;
        if (!readAll(coldFd_, out, to - from, a.coldOffset + static_cast<int64_t>(from)))
          return unavailable(std::string("reading the cold tier: ") + (errno ? strerror(errno) : "end of file"));
      }
    }
    return Status::ok();
  }
  return internalError("unknown tier");
}

}  // namespace tf::remoting
