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

}  // namespace

VramTiers::HostPages& VramTiers::HostPages::operator=(HostPages&& o) noexcept {
  if (this != &o) {
    reset();
    p_ = std::exchange(o.p_, nullptr);
    n_ = std::exchange(o.n_, 0);
  }
  return *this;
}

bool VramTiers::HostPages::allocate(size_t n) {
  reset();
  void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
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
  options_.stagingBytes = std::max<size_t>(options_.stagingBytes, 1u << 20);
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
  if (a.tier == Tier::Cold) coldFree_.emplace(a.size, a.coldOffset);
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

Status VramTiers::toHost(CUdeviceptr base, Allocation& a, Tier to) {
  auto dtoh = TF_DRIVER(cuMemcpyDtoH_v2);
  if (to == Tier::Warm) {
    if (!a.warm.allocate(a.size))
      return resourceExhausted("no host memory for the warm tier (" + std::to_string(a.size) + " bytes): " +
                               strerror(errno));
    if (CUresult r = dtoh(a.warm.data(), base, a.size); r != CUDA_SUCCESS) {
      a.warm.reset();
      return driverError("copying to the warm tier", r);
    }
  } else {
    auto slot = coldSlot(a.size);
    if (!slot) return slot.status();
    std::vector<char> staging(std::min(options_.stagingBytes, a.size));
    for (size_t off = 0; off < a.size; off += staging.size()) {
      const size_t n = std::min(staging.size(), a.size - off);
      CUresult r = dtoh(staging.data(), base + off, n);
      if (r != CUDA_SUCCESS || !writeAll(coldFd_, staging.data(), n, *slot + static_cast<int64_t>(off))) {
        coldFree_.emplace(a.size, *slot);
        return r != CUDA_SUCCESS ? driverError("copying to the cold tier", r)
                                 : unavailable(std::string("writing the cold tier: ") + strerror(errno));
      }
    }
    a.coldOffset = *slot;
  }
  unmap(base, a);
  a.tier = to;
  return Status::ok();
}

Status VramTiers::warmToCold(Allocation& a) {
  auto slot = coldSlot(a.size);
  if (!slot) return slot.status();
  if (!writeAll(coldFd_, a.warm.data(), a.size, *slot)) {
    coldFree_.emplace(a.size, *slot);
    return unavailable(std::string("writing the cold tier: ") + strerror(errno));
  }
  a.warm.reset();
  a.coldOffset = *slot;
  a.tier = Tier::Cold;
  return Status::ok();
}

Status VramTiers::toDevice(CUdeviceptr base, Allocation& a) {
  if (CUresult r = mapNew(base, a); r != CUDA_SUCCESS) return driverError("thawing: cuMemCreate/cuMemMap", r);
  auto htod = TF_DRIVER(cuMemcpyHtoD_v2);
  CUresult r = CUDA_SUCCESS;
  bool readFailed = false;
  if (a.tier == Tier::Warm) {
    r = htod(base, a.warm.data(), a.size);
  } else {
    std::vector<char> staging(std::min(options_.stagingBytes, a.size));
    for (size_t off = 0; off < a.size && r == CUDA_SUCCESS && !readFailed; off += staging.size()) {
      const size_t n = std::min(staging.size(), a.size - off);
      readFailed = !readAll(coldFd_, staging.data(), n, a.coldOffset + static_cast<int64_t>(off));
      if (!readFailed) r = htod(base + off, staging.data(), n);
    }
  }
  if (r != CUDA_SUCCESS || readFailed) {
    unmap(base, a);  // the contents stay where they were
    return readFailed ? unavailable(std::string("reading the cold tier: ") + strerror(errno))
                      : driverError("thawing: copying back", r);
  }
  if (a.tier == Tier::Warm) a.warm.reset();
  else coldFree_.emplace(a.size, a.coldOffset);
  a.coldOffset = -1;
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
  for (const auto& [base, a] : allocations_)
    (a.tier == Tier::Hot ? u.hotBytes : a.tier == Tier::Warm ? u.warmBytes : u.coldBytes) += a.size;
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
    std::memcpy(dst, a.warm.data() + offset, n);
    return Status::ok();
  case Tier::Cold:
    for (size_t done = 0; done < n;) {
      ssize_t k = pread(coldFd_, static_cast<char*>(dst) + done, n - done, a.coldOffset + static_cast<off_t>(offset + done));
      if (k <= 0) return unavailable(std::string("reading the cold tier: ") + (k < 0 ? strerror(errno) : "end of file"));
      done += static_cast<size_t>(k);
    }
    return Status::ok();
  }
  return internalError("unknown tier");
}

}  // namespace tf::remoting
