// Host memory that the client and the worker both hold at the same address: managed memory
// and pinned memory the device reaches by address (mapped pinned memory, pinned buffers used
// by captured copies and graph nodes). A remote device cannot touch the client's pages, so
// each side keeps its own copy and they are made to agree at the points where CUDA makes
// memory coherent: before device work is submitted the client sends what the host changed;
// after a synchronisation, and before a host function runs, the worker sends what the device
// changed.
//
// What changed is found by comparing each page with a shadow of the last agreed contents (no
// page protection tricks: a read() into managed memory must keep working). Incoming bytes are
// merged byte by byte against that shadow, so a byte the receiver changed itself is kept
// unless the sender changed the same byte: the host and a kernel writing different bytes of one
// page between two synchronisations both keep their writes.
//
//   MirrorSet set;
//   set.add(addr, size);                    // both sides start from all-zero agreed contents
//   std::vector<MirrorRun> runs; std::vector<uint8_t> bytes;
//   set.collect(runs, bytes);               // what changed here since the last exchange
//   ... send encodeMirrorRuns(runs) + bytes; the other side: set.apply(run, data) per run
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "common/status.h"
#include "remoting/protocol.h"

namespace tf::remoting {

inline constexpr uint64_t kMirrorPage = 4096;

class Mirror {
public:
  // `mem` is the live memory (owned by the caller); the shadow starts all zero. With
  // `trackWrites` (memory only the CPU writes) and a kernel that can (write_tracker.h), only
  // the pages written since the last collect are compared; otherwise every page is.
  // With gateOnFaults as well (memory no other process writes: the worker's), a collect
  // skips the kernel's scan while the process has taken no page fault beyond those of this
  // mirror's own merges (apply), and compares only the pages known open.
  Mirror(uint8_t* mem, uint64_t size, bool trackWrites = false, bool gateOnFaults = false);
  ~Mirror();
  Mirror(const Mirror&) = delete;
  Mirror& operator=(const Mirror&) = delete;
  bool valid() const { return shadow_ != nullptr; }
  uint64_t base() const { return reinterpret_cast<uint64_t>(mem_); }
  uint64_t size() const { return size_; }
  // Appends a run per stretch of changed pages and their bytes; the shadow takes them.
  uint64_t collect(std::vector<MirrorRun>& runs, std::vector<uint8_t>& bytes);
  // Merges `len` bytes the other side sent for [addr, addr + len) (inside this mirror).
  void apply(uint64_t addr, const uint8_t* data, uint64_t len);

  bool tracked() const { return tracked_; }
  // How many collects scanned with the kernel, and how many were spared by the fault gate.
  uint64_t scans() const { return scans_; }
  uint64_t gatedLooks() const { return gated_; }

private:
  uint64_t collectRange(uint64_t from, uint64_t to, std::vector<MirrorRun>& runs,
                        std::vector<uint8_t>& bytes);
  uint8_t* mem_;
  uint64_t size_;
  uint8_t* shadow_ = nullptr;
  bool tracked_ = false;
  bool scanned_ = false; // the first collect compares everything (writes before tracking)
  // Pages written and left open (not protected again) at the last collect: they are listed
  // (and compared) at every collect until there are more than kOpenPages, when one collect
  // protects them all again (one TLB flush for many rounds instead of one per round).
  uint64_t openPages_ = 0;
  // The fault gate: the page offsets known written and not protected again (from the last scan
  // and from merges since), the process's fault count before that scan, and the faults this
  // mirror's merges took since.
  bool gateOnFaults_ = false;
  bool gateArmed_ = false; // a scan succeeded and the counts since are known
  std::set<uint64_t> open_;
  uint64_t faultsAtScan_ = 0;
  uint64_t mergeFaults_ = 0;
  uint64_t scans_ = 0, gated_ = 0;
  uint64_t compareOpen(std::vector<MirrorRun>& runs, std::vector<uint8_t>& bytes);
  void merge(uint64_t addr, const uint8_t* data, uint64_t len);
};

class MirrorSet {
public:
  // trackWrites: see Mirror. The stub's mirrors are written by its CPU only; the worker's are
  // too when its driver is the soft GPU, but not when a GPU writes them by DMA.
  // gateOnFaults: see Mirror.
  explicit MirrorSet(bool trackWrites = false, bool gateOnFaults = false)
      : trackWrites_(trackWrites), gateOnFaults_(gateOnFaults) {}
  // False when the shadow cannot be allocated or the range overlaps a mirror.
  bool add(uint64_t addr, uint64_t size);
  bool remove(uint64_t addr);
  bool empty() const { return count_.load(std::memory_order_acquire) == 0; }
  // The mirror holding [addr, addr + n), or false.
  bool contains(uint64_t addr, uint64_t n) const;
  bool base(uint64_t addr, uint64_t* base, uint64_t* size) const;
  // Every mirror's changes, appended.
  uint64_t collect(std::vector<MirrorRun>& runs, std::vector<uint8_t>& bytes);
  // Checks every run lies inside one mirror (DataLoss otherwise) before anything is applied.
  Status check(const std::vector<MirrorRun>& runs) const;
  void apply(const MirrorRun& run, const uint8_t* data);
  std::vector<uint64_t> bases() const;

private:
  mutable std::mutex mu_;
  const bool trackWrites_;
  const bool gateOnFaults_;
  std::map<uint64_t, std::unique_ptr<Mirror>> mirrors_;
  std::atomic<size_t> count_{0};
  const Mirror* findLocked(uint64_t addr, uint64_t n) const;
};

} // namespace tf::remoting
