// Which pages of a range the CPU wrote since the last look, from the kernel: userfaultfd
// write-protection in asynchronous mode (the kernel resolves each first write itself, also a
// write made by a system call such as read(2), so nothing is signalled or blocked) and
// /proc/self/pagemap's PAGEMAP_SCAN, which lists written pages and protects them again in one
// step. Linux 6.7 and later; where it is missing or refused, available() is false and callers
// compare whole ranges instead. Writes that do not go through the CPU's page tables (a GPU's
// DMA into registered memory) are not seen: use it only for memory the CPU alone writes.
//
//   WriteTracker* t = WriteTracker::get();          // nullptr: not available here
//   if (t && t->track(base, size)) { ... t->written(base, size, &ranges); ... }
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace tf::remoting {

class WriteTracker {
public:
  // The process's tracker, or nullptr when the kernel cannot (or TF_MIRROR_TRACKING=0).
  static WriteTracker* get();
  // Starts tracking [base, base + size): page-aligned; false if the memory cannot be tracked
  // (then compare it whole).
  bool track(uint64_t base, uint64_t size);
  void untrack(uint64_t base, uint64_t size);
  // Appends the [start, end) ranges written since they were last protected (or since
  // track()) and, with protectAgain, protects them again. Protecting costs a TLB flush (about
  // 100 us where the flush is a hypercall) while listing alone costs a walk of the page tables
  // (about 15 us for 64 MiB): a caller may leave written pages open for a while, since they
  // keep being listed. False if the scan failed (then compare the range whole).
  bool written(uint64_t base, uint64_t size, std::vector<std::pair<uint64_t, uint64_t>>* out,
               bool protectAgain = true);

  // Page faults (minor + major) of the whole process, and of the calling thread. The first
  // write to a protected page faults, and the fault counts for the thread that wrote, also a
  // system call's write. So while the process's count has not moved, no tracked page was newly
  // written by any of its threads: a look can skip the scan. A write into this process made by
  // another one (process_vm_writev, a debugger) counts there, not here: only memory no other
  // process writes may rely on it (the worker's).
  static uint64_t processFaults();
  static uint64_t threadFaults();

private:
  WriteTracker(int uffd, int pagemap) : uffd_(uffd), pagemap_(pagemap) {}
  static WriteTracker* open();
  bool selfTest();
  int uffd_;
  int pagemap_;
};

} // namespace tf::remoting
