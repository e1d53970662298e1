// The shared page of an interprocess event (CU_EVENT_INTERPROCESS): how many times it was
// recorded and up to which record its work is done, in a memfd that every process holding the
// event (by its IPC handle, api_ipc.cpp) maps. A record takes the next number and its stream
// marks it done; a query, a synchronisation or a stream wait compares the two counts as they
// were when it was called. Records made in two processes at once complete in either order
// (the counts only grow), as on NVIDIA's driver, where the last record wins.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "common/status.h"

namespace tf::softgpu {

class IpcEventPage {
public:
  static Result<std::shared_ptr<IpcEventPage>> create();
  // Maps the page of another process's event; takes the descriptor.
  static Result<std::shared_ptr<IpcEventPage>> open(int fd);
  ~IpcEventPage();
  IpcEventPage(const IpcEventPage&) = delete;
  IpcEventPage& operator=(const IpcEventPage&) = delete;

  int fd() const { return fd_; }
  // A new record: its number.
  uint64_t record() { return counts_->recorded.fetch_add(1, std::memory_order_acq_rel) + 1; }
  // The work of record `n` is done.
  void complete(uint64_t n);
  uint64_t recorded() const { return counts_->recorded.load(std::memory_order_acquire); }
  bool reached(uint64_t n) const { return counts_->completed.load(std::memory_order_acquire) >= n; }
  // Waits until record `n` is done (short sleeps: another process marks it).
  void waitFor(uint64_t n) const;

private:
  struct Counts {
    uint64_t magic;
    std::atomic<uint64_t> recorded;
    std::atomic<uint64_t> completed;
  };
  IpcEventPage(int fd, Counts* counts) : fd_(fd), counts_(counts) {}
  int fd_;
  Counts* counts_;
};

} // namespace tf::softgpu
