#include "remoting/mirror.h"

#include <algorithm>
#include <cstring>

#include <sys/mman.h>

#include "remoting/write_tracker.h"

namespace tf::remoting {

Mirror::Mirror(uint8_t* mem, uint64_t size, bool trackWrites, bool gateOnFaults)
    : mem_(mem), size_(size), gateOnFaults_(gateOnFaults) {
  // Untouched shadow pages stay the kernel's shared zero page: a mirror costs memory only
  // where its contents are not zero.
  void* p = mmap(nullptr, size ? size : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (p != MAP_FAILED) shadow_ = static_cast<uint8_t*>(p);
  if (trackWrites && shadow_)
    if (WriteTracker* t = WriteTracker::get()) tracked_ = t->track(base(), size_);
}

Mirror::~Mirror() {
  if (tracked_) WriteTracker::get()->untrack(base(), size_);
  if (shadow_) munmap(shadow_, size_ ? size_ : 1);
}

namespace {
// Written pages a mirror leaves open between collects (compared each time: 256 KiB).
constexpr uint64_t kOpenPages = 64;
constexpr uint64_t kUnknownFaults = ~uint64_t(0); // what WriteTracker's counts say on failure
} // namespace

uint64_t Mirror::collect(std::vector<MirrorRun>& runs, std::vector<uint8_t>& bytes) {
  std::vector<std::pair<uint64_t, uint64_t>> written;
  const bool protectAgain = std::max<uint64_t>(openPages_, open_.size()) > kOpenPages;
  const uint64_t faults = gateOnFaults_ ? WriteTracker::processFaults() : kUnknownFaults;
  if (gateArmed_ && !protectAgain && faults != kUnknownFaults && faults - faultsAtScan_ == mergeFaults_) {
    ++gated_; // nothing faulted but our merges: only the open pages can differ
    return compareOpen(runs, bytes);
  }
  // The count is taken before the scan: a write during it shows next time.
  faultsAtScan_ = faults;
  mergeFaults_ = 0;
  open_.clear();
  gateArmed_ = false;
  if (!tracked_ || !scanned_ || !WriteTracker::get()->written(base(), size_, &written, protectAgain)) {
    scanned_ = true;
    return collectRange(0, size_, runs, bytes);
  }
  ++scans_;
  gateArmed_ = gateOnFaults_ && faults != kUnknownFaults;
  uint64_t total = 0, pages = 0;
  for (auto [start, end] : written) pages += (end - start + kMirrorPage - 1) / kMirrorPage;
  openPages_ = protectAgain ? 0 : pages;
  for (auto [start, end] : written) {
    uint64_t from = std::max(start, base()) - base();
    uint64_t to = std::min(end, base() + size_) - base();
    if (from < to) total += collectRange(from, to, runs, bytes);
    if (gateOnFaults_ && !protectAgain)
      for (uint64_t off = from / kMirrorPage * kMirrorPage; off < to; off += kMirrorPage) open_.insert(off);
  }
  return total;
}

uint64_t Mirror::compareOpen(std::vector<MirrorRun>& runs, std::vector<uint8_t>& bytes) {
  uint64_t total = 0;
  for (auto it = open_.begin(); it != open_.end();) {
    uint64_t from = *it, to = from;
    while (it != open_.end() && *it == to) { // a stretch of consecutive open pages
      to += kMirrorPage;
      ++it;
    }
    total += collectRange(from, std::min(to, size_), runs, bytes);
  }
  return total;
}

// Offsets [from, to) start on a page boundary (or at 0) and end on one (or at size_).
uint64_t Mirror::collectRange(uint64_t from, uint64_t to, std::vector<MirrorRun>& runs,
                              std::vector<uint8_t>& bytes) {
  uint64_t total = 0;
  for (uint64_t off = from; off < to;) {
    uint64_t n = std::min(kMirrorPage - (base() + off) % kMirrorPage, to - off);
    if (std::memcmp(mem_ + off, shadow_ + off, n) == 0) {
      off += n;
      continue;
    }
    // A stretch of changed pages becomes one run.
    uint64_t start = off;
    while (off < to) {
      n = std::min(kMirrorPage - (base() + off) % kMirrorPage, to - off);
      if (std::memcmp(mem_ + off, shadow_ + off, n) == 0) break;
      std::memcpy(shadow_ + off, mem_ + off, n);
      off += n;
    }
    uint64_t len = off - start;
    runs.push_back(MirrorRun{base() + start, len});
    bytes.insert(bytes.end(), shadow_ + start, shadow_ + off);
    total += len;
  }
  return total;
}

void Mirror::apply(uint64_t addr, const uint8_t* data, uint64_t len) {
  if (gateOnFaults_ && tracked_ && len) {
    // The pages this merge writes are open from now on, and the faults it takes (this
    // thread's, during the merge) are accounted for.
    const uint64_t before = WriteTracker::threadFaults();
    merge(addr, data, len);
    const uint64_t after = WriteTracker::threadFaults();
    if (before == kUnknownFaults || after == kUnknownFaults) gateArmed_ = false;
    mergeFaults_ += after - before;
    const uint64_t first = (addr - base()) / kMirrorPage * kMirrorPage;
    for (uint64_t off = first; off < addr - base() + len; off += kMirrorPage) open_.insert(off);
    return;
  }
  merge(addr, data, len);
}

void Mirror::merge(uint64_t addr, const uint8_t* data, uint64_t len) {
  uint8_t* m = mem_ + (addr - base());
  uint8_t* sh = shadow_ + (addr - base());
  // Eight bytes at a time where nothing changed; byte by byte where something did.
  uint64_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t in, old;
    std::memcpy(&in, data + i, 8);
    std::memcpy(&old, sh + i, 8);
    if (in == old) continue;
    for (int k = 0; k < 8; ++k)
      if (data[i + k] != sh[i + k]) m[i + k] = sh[i + k] = data[i + k];
  }
  for (; i < len; ++i)
    if (data[i] != sh[i]) m[i] = sh[i] = data[i];
}

const Mirror* MirrorSet::findLocked(uint64_t addr, uint64_t n) const {
  auto it = mirrors_.upper_bound(addr);
  if (it == mirrors_.begin()) return nullptr;
  --it;
  const Mirror& m = *it->second;
  uint64_t off = addr - m.base();
  if (off > m.size() || n > m.size() - off || (n == 0 && off == m.size())) return nullptr;
  return &m;
}

bool MirrorSet::add(uint64_t addr, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  auto next = mirrors_.lower_bound(addr);
  if (next != mirrors_.end() && next->first < addr + size) return false;
  if (next != mirrors_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second->size() > addr) return false;
  }
  auto m = std::make_unique<Mirror>(reinterpret_cast<uint8_t*>(addr), size, trackWrites_, gateOnFaults_);
  if (!m->valid()) return false;
  mirrors_[addr] = std::move(m);
  count_.store(mirrors_.size(), std::memory_order_release);
  return true;
}

bool MirrorSet::remove(uint64_t addr) {
  std::lock_guard<std::mutex> lock(mu_);
  bool erased = mirrors_.erase(addr) != 0;
  count_.store(mirrors_.size(), std::memory_order_release);
  return erased;
}

bool MirrorSet::contains(uint64_t addr, uint64_t n) const {
  std::lock_guard<std::mutex> lock(mu_);
  return findLocked(addr, n) != nullptr;
}

bool MirrorSet::base(uint64_t addr, uint64_t* base, uint64_t* size) const {
  std::lock_guard<std::mutex> lock(mu_);
  const Mirror* m = findLocked(addr, 0);
  if (!m) return false;
  if (base) *base = m->base();
  if (size) *size = m->size();
  return true;
}

uint64_t MirrorSet::collect(std::vector<MirrorRun>& runs, std::vector<uint8_t>& bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t total = 0;
  for (auto& [addr, m] : mirrors_) total += m->collect(runs, bytes);
  return total;
}

Status MirrorSet::check(const std::vector<MirrorRun>& runs) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const MirrorRun& r : runs)
    if (!r.len || !findLocked(r.addr, r.len)) return dataLoss("mirror run outside every mirror");
  return Status::ok();
}

void MirrorSet::apply(const MirrorRun& run, const uint8_t* data) {
  std::lock_guard<std::mutex> lock(mu_);
  if (const Mirror* m = findLocked(run.addr, run.len))
    const_cast<Mirror*>(m)->apply(run.addr, data, run.len);
}

std::vector<uint64_t> MirrorSet::bases() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint64_t> out;
  for (auto& [addr, m] : mirrors_) out.push_back(addr);
  return out;
}

} // namespace tf::remoting
