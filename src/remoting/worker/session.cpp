#include "remoting/worker/session.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>

#include "common/log.h"
#include "cuda/catalog.h"
#include "remoting/tier_control.h"
#include "remoting/tls.h"

namespace tf::remoting {

using cuda::FnId;

std::shared_ptr<const std::vector<uint8_t>> WorkerShared::findImage(uint64_t hash) {
  std::lock_guard<std::mutex> lock(imagesMu);
  auto it = images.find(hash);
  return it == images.end() ? nullptr : it->second;
}

void WorkerShared::addImage(uint64_t hash, std::shared_ptr<const std::vector<uint8_t>> image) {
  constexpr uint64_t kCacheCap = uint64_t(2) << 30;
  std::lock_guard<std::mutex> lock(imagesMu);
  if (images.count(hash)) return;
  if (imageBytes + image->size() > kCacheCap) return; // still loaded, just not cached
  imageBytes += image->size();
  images.emplace(hash, std::move(image));
}

void HostChannel::run(uint64_t token) {
  std::shared_ptr<Transport> t;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (closing || !transport) return; // no one to ask: nothing runs
    t = transport;
  }
  FrameHeader h;
  h.kind = static_cast<uint16_t>(Kind::HostCall);
  // What the device wrote to mirrored memory so far goes with the call: the host function
  // may read it.
  std::vector<MirrorRun> runs;
  std::vector<uint8_t> bytes;
  if (mirrors && !mirrors->empty()) mirrors->collect(runs, bytes);
  Writer blob;
  if (!runs.empty()) encodeMirrorRuns(blob, runs);
  Writer w;
  encodeCall(w, &token, 1, blob.data(), blob.size());
  h.argsLen = static_cast<uint32_t>(w.size());
  h.bulkLen = bytes.size();
  iovec v{bytes.data(), bytes.size()};
  {
    std::lock_guard<std::mutex> lock(writeMu);
    if (!sendFrame(*t, h, w.data(), &v, bytes.empty() ? 0 : 1).isOk()) return;
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return closing || done.count(token) != 0; });
  done.erase(token);
}

void HostChannel::markDone(uint64_t token) {
  {
    std::lock_guard<std::mutex> lock(mu);
    done.insert(token);
  }
  cv.notify_all();
}

void HostChannel::expectBytes(uint64_t token, void* into, uint64_t n) {
  std::lock_guard<std::mutex> lock(mu);
  expected[token] = {into, n};
}

void HostChannel::close() {
  std::shared_ptr<Transport> t;
  {
    std::lock_guard<std::mutex> lock(mu);
    closing = true;
    t = transport;
  }
  cv.notify_all();
  if (t) t->shutdown();
}

namespace {
// Which tenant's token this is: every token is compared, in constant time, whatever matches.
bool tenantOf(const std::string& token, const std::vector<std::string>& tokens, uint32_t* tenant) {
  bool found = false;
  for (size_t i = 0; i < tokens.size(); ++i) {
    bool match = constantTimeEquals(token, tokens[i]);
    if (match && !found) *tenant = static_cast<uint32_t>(i);
    found |= match;
  }
  return found;
}

struct HostFunctionArg {
  std::shared_ptr<HostChannel> channel;
  uint64_t token;
  bool persistent;
};
} // namespace

uint64_t Session::hostFunctionToken(void* arg) {
  return arg ? static_cast<HostFunctionArg*>(arg)->token : 0;
}

void* Session::hostFunctionArg(uint64_t token, bool persistent) {
  auto* a = new HostFunctionArg{host_, token, persistent};
  if (persistent) persistentArgs_.push_back(a);
  return a;
}
void Session::expectHostBytes(uint64_t token, void* into, uint64_t n) {
  host_->expectBytes(token, into, n);
}
void Session::hostFunctionEntry(void* arg) {
  auto* a = static_cast<HostFunctionArg*>(arg);
  a->channel->run(a->token);
  if (!a->persistent) delete a;
}
void Session::dropHostFunctionArg(void* arg) {
  auto* a = static_cast<HostFunctionArg*>(arg);
  if (!a->persistent) delete a; // persistent ones go with the session
}

Session::Session(WorkerShared& shared, TransportPtr transport)
    : Session(shared, std::move(transport), shared.remapHandles) {}

Session::Session(WorkerShared& shared, TransportPtr transport, bool remapped)
    : shared_(shared), transport_(std::move(transport)),
      peer_(transport_ ? transport_->describe() : std::string("moved here")),
      handles_(remapped ? HandleTable::Mode::Remapped : HandleTable::Mode::Identity),
      mirrors_(std::make_shared<MirrorSet>(shared.driver && shared.driver->isSoftGpu(),
                                           shared.driver && shared.driver->isSoftGpu())) {
  host_->mirrors = mirrors_;
}

Session::~Session() {
  for (void* a : persistentArgs_) delete static_cast<HostFunctionArg*>(a);
}

CUresult Session::mapHostMirror(uint64_t addr, uint64_t size) {
  constexpr uint64_t kMaxMirror = uint64_t(1) << 40;
  if (!addr || !size || size > kMaxMirror || addr + size < addr) return CUDA_ERROR_INVALID_VALUE;
  if (allocationFor(addr, 0) || allocationFor(addr + size - 1, 0)) return CUDA_ERROR_INVALID_VALUE;
  uint64_t first = addr & ~(kMirrorPage - 1);
  uint64_t end = (addr + size + kMirrorPage - 1) & ~(kMirrorPage - 1);
  // Map the pages at the client's addresses (pages another range of this client already
  // mapped are shared); an address the worker itself uses cannot be mirrored.
  std::vector<uint64_t> mapped;
  for (uint64_t p = first; p < end; p += kMirrorPage) {
    if (hostPages_.count(p)) continue;
    void* m = mmap(reinterpret_cast<void*>(p), kMirrorPage, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (m == MAP_FAILED || m != reinterpret_cast<void*>(p)) {
      if (m != MAP_FAILED) munmap(m, kMirrorPage);
      for (uint64_t q : mapped) munmap(reinterpret_cast<void*>(q), kMirrorPage);
      TF_LOG(Info, "worker: cannot mirror host memory at 0x%llx: the address is taken here",
             static_cast<unsigned long long>(p));
      return CUDA_ERROR_NOT_SUPPORTED;
    }
    mapped.push_back(p);
  }
  auto reg = d().fn<decltype(&::cuMemHostRegister_v2)>(FnId::cuMemHostRegister_v2);
  CUresult r = reg ? reg(reinterpret_cast<void*>(addr), size,
                         CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP)
                   : CUDA_ERROR_NOT_SUPPORTED;
  if (r == CUDA_SUCCESS && !mirrors_->add(addr, size)) r = CUDA_ERROR_OUT_OF_MEMORY;
  if (r != CUDA_SUCCESS) {
    if (auto unreg = d().fn<decltype(&::cuMemHostUnregister)>(FnId::cuMemHostUnregister))
      unreg(reinterpret_cast<void*>(addr));
    for (uint64_t q : mapped) munmap(reinterpret_cast<void*>(q), kMirrorPage);
    return r;
  }
  for (uint64_t p = first; p < end; p += kMirrorPage) hostPages_[p]++;
  hostMirrors_[addr] = HostRange{size, false};
  addAllocation(addr, size, false);
  return CUDA_SUCCESS;
}

CUresult Session::mapSharedHost(uint64_t addr, uint64_t size) {
  // The descriptor comes first, whatever happens next, so the socket stays in step.
  auto fd = transport_->receiveFd(1000);
  if (!fd) return fd.status().code() == Code::Unimplemented ? CUDA_ERROR_NOT_SUPPORTED
                                                             : CUDA_ERROR_INVALID_VALUE;
  constexpr uint64_t kMaxShared = uint64_t(1) << 40;
  CUresult r = CUDA_SUCCESS;
  struct stat st {};
  if (!addr || !size || size > kMaxShared || addr % kMirrorPage || size % kMirrorPage ||
      addr + size < addr || fstat(*fd, &st) != 0 || uint64_t(st.st_size) < size ||
      allocationFor(addr, 0) || allocationFor(addr + size - 1, 0))
    r = CUDA_ERROR_INVALID_VALUE;
  void* m = MAP_FAILED;
  if (r == CUDA_SUCCESS) {
    m = mmap(reinterpret_cast<void*>(addr), size, PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_FIXED_NOREPLACE, *fd, 0);
    if (m != MAP_FAILED && m != reinterpret_cast<void*>(addr)) {
      munmap(m, size);
      m = MAP_FAILED;
    }
    if (m == MAP_FAILED) r = CUDA_ERROR_NOT_SUPPORTED; // the address is taken here
  }
  ::close(*fd);
  if (r != CUDA_SUCCESS) return r;
  auto reg = d().fn<decltype(&::cuMemHostRegister_v2)>(FnId::cuMemHostRegister_v2);
  r = reg ? reg(m, size, CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP)
          : CUDA_ERROR_NOT_SUPPORTED;
  if (r != CUDA_SUCCESS) {
    munmap(m, size);
    return r;
  }
  hostMirrors_[addr] = HostRange{size, true};
  addAllocation(addr, size, false);
  return CUDA_SUCCESS;
}

bool Session::hostRangeFor(uint64_t addr, uint64_t n) const {
  if (mirrors_->contains(addr, n)) return true;
  auto it = hostMirrors_.upper_bound(addr);
  if (it == hostMirrors_.begin()) return false;
  --it;
  uint64_t off = addr - it->first;
  return off <= it->second.size && n <= it->second.size - off;
}

void Session::unmapHostPages(uint64_t addr, uint64_t size) {
  uint64_t first = addr & ~(kMirrorPage - 1);
  uint64_t end = (addr + size + kMirrorPage - 1) & ~(kMirrorPage - 1);
  for (uint64_t p = first; p < end; p += kMirrorPage) {
    auto it = hostPages_.find(p);
    if (it == hostPages_.end() || --it->second > 0) continue;
    hostPages_.erase(it);
    munmap(reinterpret_cast<void*>(p), kMirrorPage);
  }
}

CUresult Session::releaseHostMirror(uint64_t addr) {
  auto it = hostMirrors_.find(addr);
  if (it == hostMirrors_.end()) return CUDA_ERROR_INVALID_VALUE;
  HostRange range = it->second;
  // Work still queued may read or write the pages.
  if (auto sync = d().fn<decltype(&::cuCtxSynchronize)>(FnId::cuCtxSynchronize)) sync();
  if (auto unreg = d().fn<decltype(&::cuMemHostUnregister)>(FnId::cuMemHostUnregister))
    unreg(reinterpret_cast<void*>(addr));
  untrack(addr);
  hostMirrors_.erase(it);
  if (range.shared) {
    munmap(reinterpret_cast<void*>(addr), range.size);
  } else {
    mirrors_->remove(addr);
    unmapHostPages(addr, range.size);
  }
  return CUDA_SUCCESS;
}

void OwnerMap::add(uint64_t p, uint64_t size, const void* owner) {
  std::unique_lock lock(mu_);
  auto& r = ranges_[p];
  if (r.second.empty() || r.first != size) r = {size, {}};
  r.second.push_back(owner);
}

void OwnerMap::remove(uint64_t p, const void* owner) {
  std::unique_lock lock(mu_);
  auto it = ranges_.find(p);
  if (it == ranges_.end()) return;
  auto& owners = it->second.second;
  auto o = std::find(owners.begin(), owners.end(), owner);
  if (o != owners.end()) owners.erase(o);
  if (owners.empty()) ranges_.erase(it);
}

void Session::track(CUdeviceptr p, const Allocation& a) {
  allocations_[p] = a;
  shared_.owners.add(p, a.size, this);
}

void Session::untrack(CUdeviceptr p) {
  allocations_.erase(p);
  shared_.owners.remove(p, this);
}

bool OwnerMap::anyForeign(const char* p, size_t n, const void* self) const {
  std::shared_lock lock(mu_);
  if (ranges_.empty()) return false;
  for (size_t at = 0; at + 8 <= n; at += 8) {
    uint64_t v;
    std::memcpy(&v, p + at, 8);
    if (v < 4096) continue;
    auto it = ranges_.upper_bound(v);
    if (it == ranges_.begin()) continue;
    --it;
    const auto& owners = it->second.second;
    if (v - it->first < it->second.first &&
        std::find(owners.begin(), owners.end(), self) == owners.end())
      return true;
  }
  return false;
}

bool Session::foreignPointerIn(std::string_view params) const {
  return shared_.owners.anyForeign(params.data(), params.size(), this);
}

void Session::addAllocation(CUdeviceptr p, uint64_t size, bool freeable) {
  track(p, Allocation{size, current_, freeable});
  if (freeable) info_->bytes.fetch_add(size);
}

// ---- VRAM tiers -----------------------------------------------------------------------------

Result<CUdeviceptr> Session::tierAllocate(uint64_t size, CUdeviceptr at) {
  CUdevice dev = 0;
  if (CUresult r = d().fn<decltype(&::cuCtxGetDevice)>(FnId::cuCtxGetDevice)(&dev); r != CUDA_SUCCESS)
    return failedPrecondition("no current context");
  DeviceTiers& t = tiers_[dev];
  if (!t.tiers) {
    VramTiers::Options o;
    o.coldDir = shared_.tiers.coldDir;
    t.tiers = std::make_unique<VramTiers>(d(), dev, o);
    t.ctx = current_;
  }
  auto p = t.tiers->allocate(size, at);
  // No room: with an admin that may free some (by freezing idle clients), wait for it within
  // the bound, saying how much is wanted.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(shared_.tiers.allocWaitMs);
  for (int attempt = 0; !p && p.status().code() == Code::ResourceExhausted && shared_.tiers.allocWaitMs > 0 &&
                        std::chrono::steady_clock::now() < deadline;
       ++attempt) {
    info_->waitingBytes.store(size);
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50, 5 << std::min(attempt, 4))));
    p = t.tiers->allocate(size, at);
  }
  info_->waitingBytes.store(0);
  if (!p) return p.status();
  track(*p, Allocation{size, current_, true, true});
  info_->bytes.fetch_add(size);
  return *p;
}

std::optional<CUresult> Session::tierFree(CUdeviceptr p) {
  auto a = allocations_.find(p);
  if (a == allocations_.end() || !a->second.tiered) return std::nullopt;
  for (auto& [dev, t] : tiers_) {
    if (!t.tiers->find(p)) continue;
    removeAllocation(p);
    return t.tiers->free(p) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_ERROR_INVALID_VALUE;
}

VramTiers::Usage Session::tierUsage() const {
  VramTiers::Usage sum;
  for (const auto& [dev, t] : tiers_) {
    const VramTiers::Usage u = t.tiers->usage();
    sum.hotBytes += u.hotBytes;
    sum.warmBytes += u.warmBytes;
    sum.coldBytes += u.coldBytes;
    sum.warmStoredBytes += u.warmStoredBytes;
    sum.coldStoredBytes += u.coldStoredBytes;
    sum.freezes += u.freezes;
    sum.thaws += u.thaws;
    sum.freezeTime += u.freezeTime;
    sum.thawTime += u.thawTime;
  }
  return sum;
}

// The client's work finishes first (its memory must not move under a kernel); then each
// device's memory moves with one of the client's contexts of that device current.
Status Session::freezeTiers(VramTiers::Tier to) {
  auto setCurrent = d().fn<decltype(&::cuCtxSetCurrent)>(FnId::cuCtxSetCurrent);
  auto sync = d().fn<decltype(&::cuCtxSynchronize)>(FnId::cuCtxSynchronize);
  Status result = Status::ok();
  for (uint64_t c : handles_.drivers(HandleKind::Context))
    if (setCurrent(reinterpret_cast<CUcontext>(c)) == CUDA_SUCCESS) sync();
  for (auto& [dev, t] : tiers_) {
    CUcontext ctx = primaries_.count(dev) ? primaries_[dev] : t.ctx;
    if (setCurrent(ctx) != CUDA_SUCCESS) continue;
    if (Status s = t.tiers->freeze(to); !s && result.isOk()) result = s;
  }
  setCurrent(current_);
  publishTiers();
  return result;
}

CUresult Session::thawTiers() {
  auto setCurrent = d().fn<decltype(&::cuCtxSetCurrent)>(FnId::cuCtxSetCurrent);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(shared_.tiers.thawWaitMs);
  for (int attempt = 0;; ++attempt) {
    Status failed = Status::ok();
    for (auto& [dev, t] : tiers_) {
      CUcontext ctx = primaries_.count(dev) ? primaries_[dev] : t.ctx;
      if (!t.tiers->frozen() || setCurrent(ctx) != CUDA_SUCCESS) continue;
      if (Status s = t.tiers->thaw(); !s && failed.isOk()) failed = s;
    }
    setCurrent(current_);
    if (failed.isOk()) {
      frozen_.reset();
      info_->waitingBytes.store(0);
      publishTiers();
      return CUDA_SUCCESS;
    }
    // No room on the device (another vGPU holds it): wait for it, within the bound, saying
    // how much is wanted (the hypervisor frees room by freezing idle clients).
    const VramTiers::Usage u = tierUsage();
    info_->waitingBytes.store(u.warmBytes + u.coldBytes);
    publishTiers();
    if (failed.code() != Code::ResourceExhausted || std::chrono::steady_clock::now() >= deadline) {
      info_->waitingBytes.store(0);
      TF_LOG(Warn, "worker: %s: thawing its memory: %s", peer_.c_str(), failed.toString().c_str());
      return failed.code() == Code::ResourceExhausted ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_ERROR_UNKNOWN;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50, 5 << std::min(attempt, 4))));
  }
}

void Session::publishTiers() {
  const VramTiers::Usage u = tierUsage();
  info_->warmBytes.store(u.warmBytes);
  info_->coldBytes.store(u.coldBytes);
  info_->warmStoredBytes.store(u.warmStoredBytes);
  info_->coldStoredBytes.store(u.coldStoredBytes);
  info_->freezes.store(u.freezes);
  info_->thaws.store(u.thaws);
  info_->freezeNs.store(static_cast<uint64_t>(u.freezeTime.count()));
  info_->thawNs.store(static_cast<uint64_t>(u.thawTime.count()));
  const TierState state = u.coldBytes ? TierState::Cold : u.warmBytes ? TierState::Warm : TierState::Hot;
  info_->tierState.store(static_cast<uint32_t>(state));
}

bool Session::freezeTo(VramTiers::Tier to) {
  const VramTiers::Usage before = tierUsage();
  const uint64_t movable = to == VramTiers::Tier::Warm ? before.hotBytes : before.hotBytes + before.warmBytes;
  if (movable == 0) return false;
  if (Status s = freezeTiers(to); !s) {
    TF_LOG(Warn, "worker: %s: freezing its memory to %s: %s", peer_.c_str(),
           to == VramTiers::Tier::Cold ? "disk" : "host memory", s.toString().c_str());
    if (tierUsage().hotBytes == before.hotBytes) return false;
  }
  const VramTiers::Usage after = tierUsage();
  frozen_ = after.coldBytes ? VramTiers::Tier::Cold : VramTiers::Tier::Warm;
  if (shared_.verbose)
    TF_LOG(Info, "worker: %s: its device memory is in %s (%llu bytes, %llu of them not all zero and stored)",
           peer_.c_str(), *frozen_ == VramTiers::Tier::Cold ? "the cold tier" : "host memory",
           static_cast<unsigned long long>(after.warmBytes + after.coldBytes),
           static_cast<unsigned long long>(after.warmStoredBytes + after.coldStoredBytes));
  return true;
}

bool Session::carryOut(uint32_t order) {
  switch (static_cast<TierAction>(order - 1)) {
  case TierAction::Freeze: return freezeTo(VramTiers::Tier::Warm);
  case TierAction::FreezeCold: return freezeTo(VramTiers::Tier::Cold);
  case TierAction::Thaw: return frozen_ && thawTiers() == CUDA_SUCCESS;
  }
  return false;
}

void Session::waitFreezingIdle() {
  using Clock = std::chrono::steady_clock;
  const TierOptions& o = shared_.tiers;
  const auto idleStart = Clock::now();
  info_->idleSinceNs.store(idleStart.time_since_epoch().count());
  // With an admin, orders may come at any time: look for them this often while idle.
  constexpr std::chrono::milliseconds kOrderPoll{20};
  const bool ordersPossible = !shared_.adminToken.empty();
  auto frozenAt = idleStart;
  bool warmTried = false, coldTried = false;
  for (;;) {
    if (uint32_t order = info_->order.exchange(0)) {
      info_->lastMoved.store(carryOut(order));
      info_->ordersDone.fetch_add(1);
      frozenAt = Clock::now();
      continue;
    }
    // The next automatic move: warm after freezeIdleMs idle, cold coldAfterMs after that.
    std::optional<Clock::time_point> due;
    if (!tiers_.empty() && !frozen_ && !warmTried && o.freezeIdleMs > 0)
      due = idleStart + std::chrono::milliseconds(o.freezeIdleMs);
    else if (!tiers_.empty() && frozen_ == VramTiers::Tier::Warm && !coldTried && o.coldAfterMs > 0)
      due = frozenAt + std::chrono::milliseconds(o.coldAfterMs);
    const auto now = Clock::now();
    if (due && now >= *due) {
      if (!frozen_) warmTried = true;
      else coldTried = true;
      freezeTo(frozen_ ? VramTiers::Tier::Cold : VramTiers::Tier::Warm);
      frozenAt = Clock::now();
      continue;
    }
    if (!due && !ordersPossible) break;  // nothing to do until the client calls
    auto wait = ordersPossible ? kOrderPoll : std::chrono::milliseconds(86400000);
    if (due)
      wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(*due - now));
    if (transport_->waitReadable(static_cast<int>(wait.count()))) break;
  }
  info_->idleSinceNs.store(0);
  if (info_->order.exchange(0)) {  // came as the client called again: not carried out
    info_->lastMoved.store(false);
    info_->ordersDone.fetch_add(1);
  }
}

const Session::Allocation* Session::allocationFor(CUdeviceptr p, uint64_t n) const {
  auto it = allocations_.upper_bound(p);
  if (it == allocations_.begin()) return nullptr;
  --it;
  uint64_t off = p - it->first;
  if (off > it->second.size || n > it->second.size - off) return nullptr;
  if (n == 0 && off == it->second.size && it->second.size) return nullptr;
  return &it->second;
}

bool Session::removeAllocation(CUdeviceptr p) {
  auto it = allocations_.find(p);
  if (it == allocations_.end() || !it->second.freeable) return false;
  info_->bytes.fetch_sub(it->second.size);
  untrack(p);
  return true;
}

void Session::addGlobal(uint64_t owner, CUdeviceptr p, uint64_t size, const std::string& name) {
  if (allocations_.count(p)) return;
  track(p, Allocation{size, current_, false});
  globals_.emplace(owner, p);
  globalNames_[p] = name;
}

void Session::dropGlobalsOf(uint64_t owner) {
  auto range = globals_.equal_range(owner);
  for (auto it = range.first; it != range.second; ++it) {
    untrack(it->second);
    globalNames_.erase(it->second);
  }
  globals_.erase(range.first, range.second);
}

Status Session::readBulk(void* dst, size_t n) {
  if (n > bulkLeft_) return dataLoss("call reads past its bulk");
  bulkLeft_ -= n;
  return transport_->readExact(dst, n);
}

void Session::run(Role role) {
  if (role == Role::HostChannel) {
    serveHostChannel(std::move(attachedTo_));
    return;
  }
  if (role == Role::Calls) serve();
  {
    std::lock_guard<std::mutex> lock(shared_.channelsMu);
    shared_.channels.erase(id_);
  }
  host_->close(); // host functions still queued on streams return at once
  releaseAll();   // synchronises every context: no callback outlives this session's work
  if (counted_) shared_.tenantSessions.fetch_sub(1);
  counted_ = false;
  std::lock_guard<std::mutex> lock(shared_.sessionsMu);
  shared_.sessions.erase(this);
}

void Session::serveHostChannel(std::shared_ptr<HostChannel> channel) {
  std::shared_ptr<Transport> held; // attached in handshake()
  {
    std::lock_guard<std::mutex> lock(channel->mu);
    held = channel->transport;
  }
  Transport& t = *held;
  std::vector<uint8_t> args;
  for (;;) {
    FrameHeader h;
    Status s = readHeader(t, &h);
    bool ping = s.isOk() && h.kind == static_cast<uint16_t>(Kind::Call) &&
                h.fn == static_cast<uint32_t>(Op::Ping) && !h.bulkLen;
    if (s.isOk() && !ping && h.kind != static_cast<uint16_t>(Kind::HostDone))
      s = dataLoss("host channel: expected HostDone or Ping");
    if (s.isOk()) s = readArgs(t, h, &args);
    if (s.isOk() && ping) { // the client's heartbeat: answered here, whatever the calls do
      FrameHeader r;
      r.kind = static_cast<uint16_t>(Kind::Reply);
      r.fn = h.fn;
      Writer w;
      encodeReply(w, nullptr, 0, nullptr, 0);
      r.argsLen = static_cast<uint32_t>(w.size());
      std::lock_guard<std::mutex> lock(channel->writeMu);
      if (!sendFrame(t, r, w.data(), nullptr, 0).isOk()) break;
      continue;
    }
    CallArgs a;
    if (s.isOk()) s = decodeCall(args.data(), args.size(), &a);
    if (s.isOk() && a.count != 1) s = dataLoss("host channel: HostDone takes one token");
    // The bulk: the bytes a HostToDeviceAtStreamTime expects, then what the host function
    // changed in mirrored memory (runs in the blob).
    std::pair<void*, uint64_t> into{nullptr, 0};
    if (s.isOk()) {
      std::lock_guard<std::mutex> lock(channel->mu);
      auto it = channel->expected.find(a.s[0]);
      if (it != channel->expected.end()) {
        into = it->second;
        channel->expected.erase(it);
      }
    }
    std::vector<MirrorRun> runs;
    if (s.isOk() && into.second > h.bulkLen) s = dataLoss("host channel: HostDone bulk too short");
    if (s.isOk() && !a.blob.empty()) s = decodeMirrorRuns(a.blob, h.bulkLen - into.second, &runs);
    if (s.isOk() && a.blob.empty() && h.bulkLen != into.second)
      s = dataLoss("host channel: HostDone bulk does not match");
    if (s.isOk() && into.first) s = t.readExact(into.first, into.second);
    if (s.isOk() && !runs.empty()) s = channel->mirrors->check(runs);
    std::vector<uint8_t> buf;
    for (size_t i = 0; s.isOk() && i < runs.size(); ++i) {
      buf.resize(runs[i].len);
      s = t.readExact(buf.data(), buf.size());
      if (s.isOk()) channel->mirrors->apply(runs[i], buf.data());
    }
    if (!s.isOk()) break;
    channel->markDone(a.s[0]);
  }
  channel->close(); // the client is gone: nothing waits for it any more
}

Session::Role Session::handshake(Status framing, const FrameHeader& h,
                                  const std::vector<uint8_t>& args) {
  Status s = std::move(framing);
  if (s.isOk() && h.kind != static_cast<uint16_t>(Kind::Hello)) s = dataLoss("expected Hello");
  if (s.isOk() && h.bulkLen) s = dataLoss("Hello carries no bulk");
  if (s.isOk() && args.size() != h.argsLen) s = dataLoss("Hello args cut short");
  Hello hello;
  if (s.isOk()) s = decodeHello(args.data(), args.size(), &hello);
  CUresult r = CUDA_SUCCESS;
  if (!s.isOk()) {
    r = CUDA_ERROR_INVALID_VALUE;
  } else if (hello.version != kProtocolVersion) {
    r = CUDA_ERROR_NOT_SUPPORTED;
    s = failedPrecondition("protocol version " + std::to_string(hello.version));
  } else if (hello.catalogSize != static_cast<uint32_t>(cuda::catalogSize())) {
    r = CUDA_ERROR_NOT_SUPPORTED;
    s = failedPrecondition("client built against another driver-API catalog");
  } else if (hello.role == kRoleAdmin) {
    // The hypervisor: its own token, no host channel, no tenant.
    admin_ = !shared_.adminToken.empty() && !hello.attachTo &&
             constantTimeEquals(hello.token, shared_.adminToken);
    adoptOnly_ = !admin_ && !shared_.migrationToken.empty() && !hello.attachTo &&
                 constantTimeEquals(hello.token, shared_.migrationToken);
    admin_ = admin_ || adoptOnly_;
    if (!admin_) {
      r = CUDA_ERROR_NOT_PERMITTED;
      s = Status(Code::PermissionDenied, "bad admin token");
    }
  } else if (!tenantOf(hello.token, shared_.tokens, &tenant_)) {
    r = CUDA_ERROR_NOT_PERMITTED;
    s = Status(Code::PermissionDenied, "bad token");
  } else if (hello.role == kRoleResume) {
    // A client whose session moved here: the parked session takes this connection.
    std::lock_guard<std::mutex> lock(shared_.parkedMu);
    auto it = shared_.parked.find(hello.attachTo);
    if (it == shared_.parked.end()) {
      r = CUDA_ERROR_INVALID_HANDLE;
      s = notFound("no session moved here under that resume id");
    } else {
      resumed_ = std::move(it->second);
      shared_.parked.erase(it);
    }
  } else if (hello.attachTo) {
    std::lock_guard<std::mutex> lock(shared_.channelsMu);
    auto it = shared_.channels.find(hello.attachTo);
    if (it != shared_.channels.end()) attachedTo_ = it->second.lock();
    if (attachedTo_) {
      std::lock_guard<std::mutex> channelLock(attachedTo_->mu);
      if (attachedTo_->transport) attachedTo_.reset(); // one host channel per session
    }
    if (!attachedTo_) {
      r = CUDA_ERROR_INVALID_HANDLE;
      s = notFound("no session to attach a host channel to");
    }
  }
  if (s.isOk()) peer_ = hello.host + ":" + std::to_string(hello.pid) + " (" + peer_ + ")";
  if (s.isOk() && resumed_) {
    Session& p = *resumed_;
    p.transport_ = std::move(transport_);
    p.peer_ = hello.host + ":" + std::to_string(hello.pid) + " (" + p.transport_->describe() + ", moved here)";
    p.tenant_ = tenant_;
    p.info_->pid = hello.pid;
    {
      std::lock_guard<std::mutex> lock(shared_.channelsMu);
      shared_.channels[p.id_] = p.host_;
    }
    {
      std::lock_guard<std::mutex> lock(shared_.sessionsMu);
      shared_.sessions[&p] = p.info_;
    }
    FrameHeader reply;
    reply.kind = static_cast<uint16_t>(Kind::HelloReply);
    Writer w;
    uint64_t v[2] = {kProtocolVersion, p.id_};
    encodeReply(w, v, 2, nullptr, 0);
    reply.argsLen = static_cast<uint32_t>(w.size());
    if (!sendFrame(*p.transport_, reply, w.data(), nullptr, 0).isOk()) {
      resumed_.reset();  // the client went away: the session goes with it
      return Role::Refused;
    }
    p.counted_ = true;
    shared_.tenantSessions.fetch_add(1);
    if (shared_.verbose) TF_LOG(Info, "worker: client %s resumed its session", p.peer_.c_str());
    return Role::Resume;
  }
  if (s.isOk() && !hello.attachTo) {
    std::random_device rd;
    std::lock_guard<std::mutex> lock(shared_.channelsMu);
    do {
      id_ = (uint64_t(rd()) << 32) | rd();
    } while (id_ == 0 || shared_.channels.count(id_));
    shared_.channels[id_] = host_;
  }
  FrameHeader reply;
  reply.kind = static_cast<uint16_t>(Kind::HelloReply);
  reply.result = r;
  Writer w;
  uint64_t v[2] = {kProtocolVersion, id_};
  encodeReply(w, v, 2, nullptr, 0);
  reply.argsLen = static_cast<uint32_t>(w.size());
  if (s.isOk() && hello.attachTo) {
    // The channel holds the connection before the client hears that it is attached: the
    // client queues host functions right after, and a stream that reached one while the
    // channel had no connection would skip it. Holding writeMu keeps a HostCall from going
    // out ahead of this reply.
    std::shared_ptr<Transport> t(std::move(transport_));
    std::lock_guard<std::mutex> writeLock(attachedTo_->writeMu);
    {
      std::lock_guard<std::mutex> channelLock(attachedTo_->mu);
      if (attachedTo_->transport) { // another attach won the race: one host channel per session
        reply.result = CUDA_ERROR_INVALID_HANDLE;
        (void)sendFrame(*t, reply, w.data(), nullptr, 0);
        TF_LOG(Info, "worker: refused %s: the session has a host channel", peer_.c_str());
        return Role::Refused;
      }
      attachedTo_->transport = t;
    }
    (void)sendFrame(*t, reply, w.data(), nullptr, 0);
    return Role::HostChannel;
  }
  (void)sendFrame(*transport_, reply, w.data(), nullptr, 0);
  if (!s.isOk()) {
    TF_LOG(Info, "worker: refused %s: %s", peer_.c_str(), s.toString().c_str());
    return Role::Refused;
  }
  if (hello.role == kRoleMonitor) {
    monitor_ = true;
    monitorPid_ = hello.pid;
  }
  if (hello.role == kRoleDriver || hello.role == kRoleMonitor) {
    counted_ = true;
    shared_.tenantSessions.fetch_add(1);
  }
  if (hello.role == kRoleDriver) {
    info_->pid = hello.pid;
    std::lock_guard<std::mutex> lock(shared_.sessionsMu);
    shared_.sessions[this] = info_;
  }
  if (shared_.verbose) TF_LOG(Info, "worker: client %s connected", peer_.c_str());
  return Role::Calls;
}

void Session::serve() {
  std::vector<uint8_t> args;
  for (;;) {
    if (tiersOn()) waitFreezingIdle();
    FrameHeader h;
    Status s = readHeader(*transport_, &h);
    if (s.isOk() && h.kind == static_cast<uint16_t>(Kind::Bye)) break;
    if (s.isOk() && h.kind != static_cast<uint16_t>(Kind::Call))
      s = dataLoss("unexpected frame kind");
    if (s.isOk()) s = readArgs(*transport_, h, &args);
    if (s.isOk() && !(h.flags & kFlagNoReply) && info_->migrationPending.load(std::memory_order_relaxed) &&
        migrateIfOrdered(h))
      continue;  // the client was told where it went; it leaves, or comes back if it cannot go
    if (s.isOk() && monitor_ && !(h.flags & kFlagNoReply) && shared_.anyMoved.load(std::memory_order_relaxed) &&
        followMovedProcess(h))
      continue;
    if (s.isOk()) s = execute(h, args);
    if (!s.isOk()) {
      if (s.code() != Code::Unavailable)
        TF_LOG(Info, "worker: dropping %s: %s", peer_.c_str(), s.toString().c_str());
      break;
    }
  }
}

Status Session::execute(const FrameHeader& h, std::vector<uint8_t>& args) {
  CallIn in;
  in.fn = h.fn;
  in.flags = h.flags;
  in.bulkLen = h.bulkLen;
  bulkLeft_ = h.bulkLen;
  CallOut out;
  CUresult r = CUDA_SUCCESS;
  Status decoded = decodeCall(args.data(), args.size(), &in.a);
  if (!decoded.isOk()) return decoded; // a malformed call: the stream cannot be trusted
  // Every call runs in the caller's current context, which must be one of its own. The last
  // call's context needs no lookup (a current context cannot be destroyed).
  const bool adminOp = in.fn == static_cast<uint32_t>(Op::TierStatus) || in.fn == static_cast<uint32_t>(Op::TierControl) ||
                       in.fn == static_cast<uint32_t>(Op::MigrateOut) || in.fn == static_cast<uint32_t>(Op::Adopt);
  if ((admin_ != adminOp && in.fn != static_cast<uint32_t>(Op::Ping)) ||
      (adoptOnly_ && in.fn != static_cast<uint32_t>(Op::Adopt))) {
    r = CUDA_ERROR_NOT_PERMITTED;  // the admin makes only its calls, and only it makes them
  } else if (h.ctx != currentClientValue_) {
    CUcontext want = reinterpret_cast<CUcontext>(h.ctx); // the client's value, then the driver's
    if (want && !resolveIn(want, HandleKind::Context)) {
      r = CUDA_ERROR_INVALID_CONTEXT;
    } else {
      if (want != current_) r = d().fn<decltype(&::cuCtxSetCurrent)>(FnId::cuCtxSetCurrent)(want);
      if (r == CUDA_SUCCESS) current_ = want, currentClientValue_ = h.ctx;
    }
  }
  if (r == CUDA_SUCCESS && frozen_) r = thawTiers();  // the memory comes back before any call runs
  // A call that makes handles (or changes one) another worker could make again is kept in the
  // replay log, as the client sent it (migration.h).
  const ReplayRule* rule = r == CUDA_SUCCESS ? replayRule(in.fn) : nullptr;
  Recipe recipe;
  if (rule) {
    recipe.fn = in.fn;
    recipe.ctx = h.ctx;
    recipe.args.assign(in.a.s, in.a.s + in.a.count);
    recipe.blob.assign(in.a.blob);
    recording_ = &recipe.made;
  }
  if (r == CUDA_SUCCESS) r = dispatch(*this, in, out);
  if (rule) {
    recording_ = nullptr;
    if (r == CUDA_SUCCESS) keepRecipe(*rule, std::move(recipe));
  }
  if (bulkLeft_) TF_RETURN_IF_ERROR(skipBulk(*transport_, bulkLeft_));
  bulkLeft_ = 0;
  if (h.flags & kFlagNoReply) {
    if (r != CUDA_SUCCESS && latched_ == CUDA_SUCCESS) latched_ = r;
    return Status::ok();
  }
  if (r == CUDA_SUCCESS && latched_ != CUDA_SUCCESS) {
    r = latched_; // an earlier asynchronous call failed: report it now, once
    latched_ = CUDA_SUCCESS;
  }
  // A synchronisation brings the device's changes back in its own reply (one exchange, not two).
  if ((h.flags & kFlagPullMirrors) && r == CUDA_SUCCESS && out.blob.empty() && out.bulk.empty() &&
      !out.dtohLen) {
    collectMirrors(out);
    return sendReply(h, r, out, kFlagMirrorRuns);
  }
  return sendReply(h, r, out);
}

void Session::collectMirrors(CallOut& out) {
  std::vector<MirrorRun> runs;
  mirrors().collect(runs, out.bulk);
  Writer w;
  encodeMirrorRuns(w, runs);
  out.blob.assign(reinterpret_cast<const char*>(w.data()), w.size());
}

Status Session::sendReply(const FrameHeader& req, CUresult r, CallOut& out, uint16_t flags) {
  FrameHeader h;
  h.kind = static_cast<uint16_t>(Kind::Reply);
  h.flags = flags;
  h.fn = req.fn;
  h.result = r;
  Writer w;
  encodeReply(w, out.v, out.n, out.blob.data(), out.blob.size());
  h.argsLen = static_cast<uint32_t>(w.size());
  // A failed call sends no bulk, except a pull: an earlier asynchronous error reported by it
  // does not undo what the device changed, and its runs need their bytes.
  if (r != CUDA_SUCCESS && req.fn != static_cast<uint32_t>(Op::MirrorPull)) {
    out.dtohLen = 0;
    out.bulk.clear();
  }
  if (!out.dtohLen) {
    h.bulkLen = out.bulk.size();
    iovec v{out.bulk.data(), out.bulk.size()};
    return sendFrame(*transport_, h, w.data(), &v, 1);
  }
  // Device-to-host: the first piece is in out.bulk; the rest streams in chunks, and the client
  // reads all of it straight into its buffer.
  h.bulkLen = out.bulk.size() + out.dtohLen;
  iovec first{out.bulk.data(), out.bulk.size()};
  TF_RETURN_IF_ERROR(sendFrame(*transport_, h, w.data(), &first, 1));
  auto dtoh = d().fn<decltype(&::cuMemcpyDtoH_v2)>(FnId::cuMemcpyDtoH_v2);
  if (transport_->supportsViews()) { // straight from the device into the ring
    for (uint64_t off = 0; off < out.dtohLen;) {
      uint8_t* p = nullptr;
      size_t k = 0;
      TF_RETURN_IF_ERROR(transport_->reserveWrite(
          static_cast<size_t>(std::min<uint64_t>(kChunk, out.dtohLen - off)), &p, &k));
      CUresult cr = dtoh(p, out.dtohSrc + off, k);
      if (cr != CUDA_SUCCESS) {
        std::memset(p, 0, k);
        if (latched_ == CUDA_SUCCESS) latched_ = cr;
      }
      transport_->commitWrite(k);
      off += k;
    }
    return Status::ok();
  }
  staging_.resize(kChunk);
  for (uint64_t off = 0; off < out.dtohLen; off += kChunk) {
    size_t k = static_cast<size_t>(std::min<uint64_t>(kChunk, out.dtohLen - off));
    CUresult cr = dtoh(staging_.data(), out.dtohSrc + off, k);
    if (cr != CUDA_SUCCESS) {
      std::fill(staging_.begin(), staging_.begin() + k, 0);
      if (latched_ == CUDA_SUCCESS) latched_ = cr;
    }
    iovec v{staging_.data(), k};
    TF_RETURN_IF_ERROR(transport_->writeV(&v, 1));
  }
  return Status::ok();
}

void Session::releaseIpc(const std::vector<IpcEntry>& due) {
  if (due.empty()) return;
  const DriverApi& api = d();
  auto setCurrent = api.fn<decltype(&::cuCtxSetCurrent)>(FnId::cuCtxSetCurrent);
  auto ctxSync = api.fn<decltype(&::cuCtxSynchronize)>(FnId::cuCtxSynchronize);
  auto memFree = api.fn<decltype(&::cuMemFree_v2)>(FnId::cuMemFree_v2);
  auto eventDestroy = api.fn<decltype(&::cuEventDestroy_v2)>(FnId::cuEventDestroy_v2);
  auto ctxDestroy = api.fn<decltype(&::cuCtxDestroy_v2)>(FnId::cuCtxDestroy_v2);
  if (current_) ctxSync(); // the importer's queued work on the memory finishes first
  for (const IpcEntry& e : due) {
    if (setCurrent(e.ctx) != CUDA_SUCCESS) continue;
    ctxSync();
    if (e.kind == IpcKind::Memory)
      memFree(e.object);
    else
      eventDestroy(reinterpret_cast<CUevent>(e.object));
    if (e.destroyCtx) {
      setCurrent(nullptr);
      ctxDestroy(e.ctx);
    }
  }
  setCurrent(current_);
}

void Session::releaseAll() {
  const DriverApi& api = d();
  // IPC: what this client opened is closed (the last close releases what its exporter left);
  // what it exported and others hold stays until they close it.
  for (uint64_t e : handles_.drivers(HandleKind::Event)) {
    uint64_t id = 0;
    if (shared_.ipc.opened(IpcKind::Event, this, e, &id)) handles_.forget(HandleKind::Event, e);
  }
  releaseIpc(shared_.ipc.closeAll(this));
  auto setCurrent = api.fn<decltype(&::cuCtxSetCurrent)>(FnId::cuCtxSetCurrent);
  auto memFree = api.fn<decltype(&::cuMemFree_v2)>(FnId::cuMemFree_v2);
  auto streamDestroy = api.fn<decltype(&::cuStreamDestroy_v2)>(FnId::cuStreamDestroy_v2);
  auto eventDestroy = api.fn<decltype(&::cuEventDestroy_v2)>(FnId::cuEventDestroy_v2);
  auto moduleUnload = api.fn<decltype(&::cuModuleUnload)>(FnId::cuModuleUnload);
  auto libraryUnload = api.fn<decltype(&::cuLibraryUnload)>(FnId::cuLibraryUnload);
  auto ctxDestroy = api.fn<decltype(&::cuCtxDestroy_v2)>(FnId::cuCtxDestroy_v2);
  auto ctxSync = api.fn<decltype(&::cuCtxSynchronize)>(FnId::cuCtxSynchronize);
  size_t freed = 0;
  for (uint64_t c : handles_.drivers(HandleKind::Context)) {
    if (setCurrent(reinterpret_cast<CUcontext>(c)) != CUDA_SUCCESS) continue;
    ctxSync(); // let queued work finish before its memory goes
    for (auto& [p, a] : allocations_)
      if (a.freeable && !a.tiered && a.ctx == reinterpret_cast<CUcontext>(c) &&
          shared_.ipc.ownerReleases(IpcKind::Memory, this, p) && memFree(p) == CUDA_SUCCESS)
        ++freed;
  }
  tiers_.clear();  // every tiered allocation, whatever its tier
  // Virtual memory: unmap, release every reference, free the reservations.
  if (!mappings_.empty() || !memHandles_.empty() || !reservations_.empty()) {
    auto unmap = api.fn<decltype(&::cuMemUnmap)>(FnId::cuMemUnmap);
    auto release = api.fn<decltype(&::cuMemRelease)>(FnId::cuMemRelease);
    auto addressFree = api.fn<decltype(&::cuMemAddressFree)>(FnId::cuMemAddressFree);
    if (!primaries_.empty()) setCurrent(primaries_.begin()->second);
    for (auto& [va, size] : mappings_)
      if (unmap) unmap(va, size);
    for (auto& [h, sizeRefs] : memHandles_)
      for (int i = 0; release && i < sizeRefs.second; ++i) release(h);
    for (auto& [va, size] : reservations_)
      if (addressFree) addressFree(va, size);
    mappings_.clear();
    memHandles_.clear();
    reservations_.clear();
  }
  if (auto execDestroy = api.fn<decltype(&::cuGraphExecDestroy)>(FnId::cuGraphExecDestroy))
    for (uint64_t g : handles_.drivers(HandleKind::GraphExec)) execDestroy(reinterpret_cast<CUgraphExec>(g));
  if (auto graphDestroy = api.fn<decltype(&::cuGraphDestroy)>(FnId::cuGraphDestroy)) {
    for (uint64_t g : handles_.drivers(HandleKind::Graph))
      if (!childGraphs_.count(g)) graphDestroy(reinterpret_cast<CUgraph>(g));
    for (const auto& [exec, b] : execBodies_)
      if (b.body) graphDestroy(reinterpret_cast<CUgraph>(b.body));
  }
  execBodies_.clear();
  if (auto texDestroy = api.fn<decltype(&::cuTexObjectDestroy)>(FnId::cuTexObjectDestroy))
    for (uint64_t t : handles_.drivers(HandleKind::TexObject)) texDestroy(static_cast<CUtexObject>(t));
  if (auto surfDestroy = api.fn<decltype(&::cuSurfObjectDestroy)>(FnId::cuSurfObjectDestroy))
    for (uint64_t o : handles_.drivers(HandleKind::SurfObject)) surfDestroy(static_cast<CUsurfObject>(o));
  if (auto arrayDestroy = api.fn<decltype(&::cuArrayDestroy)>(FnId::cuArrayDestroy))
    for (uint64_t a : handles_.drivers(HandleKind::Array)) arrayDestroy(reinterpret_cast<CUarray>(a));
  if (auto mipmapDestroy = api.fn<decltype(&::cuMipmappedArrayDestroy)>(FnId::cuMipmappedArrayDestroy))
    for (uint64_t m : handles_.drivers(HandleKind::MipmappedArray))
      mipmapDestroy(reinterpret_cast<CUmipmappedArray>(m));
  for (uint64_t s : handles_.drivers(HandleKind::Stream)) streamDestroy(reinterpret_cast<CUstream>(s));
  for (uint64_t e : handles_.drivers(HandleKind::Event))
    if (shared_.ipc.ownerReleases(IpcKind::Event, this, e)) eventDestroy(reinterpret_cast<CUevent>(e));
  for (uint64_t m : handles_.drivers(HandleKind::Module)) moduleUnload(reinterpret_cast<CUmodule>(m));
  for (uint64_t l : handles_.drivers(HandleKind::Library)) libraryUnload(reinterpret_cast<CUlibrary>(l));
  if (auto poolDestroy = api.fn<decltype(&::cuMemPoolDestroy)>(FnId::cuMemPoolDestroy))
    for (uint64_t p : handles_.drivers(HandleKind::Pool)) poolDestroy(reinterpret_cast<CUmemoryPool>(p));
  setCurrent(nullptr);
  for (uint64_t c : handles_.drivers(HandleKind::Context))
    if (!shared_.ipc.adoptContext(this, reinterpret_cast<CUcontext>(c))) // else its last IPC object's
      ctxDestroy(reinterpret_cast<CUcontext>(c));
  if (shared_.verbose)
    TF_LOG(Info, "worker: client %s left; freed %zu allocations, %zu contexts", peer_.c_str(),
           freed, handles_.count(HandleKind::Context));
  for (auto& [addr, range] : hostMirrors_) {
    if (range.shared) {
      munmap(reinterpret_cast<void*>(addr), range.size);
    } else {
      mirrors_->remove(addr);
      unmapHostPages(addr, range.size);
    }
  }
  hostMirrors_.clear();
  for (uint64_t b : mirrors_->bases()) mirrors_->remove(b); // managed ones
  for (auto& [p, a] : allocations_) shared_.owners.remove(p, this);
  allocations_.clear();
  handles_.clear();
  info_->bytes.store(0);
  info_->devices.store(0);
}

} // namespace tf::remoting
