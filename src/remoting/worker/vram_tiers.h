// VRAM tiers for one client's device memory: hot (on the device), warm (host memory), cold (a
// file on local disk). Every allocation is its own allocation of the driver's virtual memory
// management: an address range reserved for the allocation's whole life, and device memory
// mapped into it while it is hot. Freezing copies the contents out and gives the device memory
// back (to other vGPUs); thawing maps new device memory at the same addresses and copies the
// contents in, so pointers the program holds (in host variables, in device structures, in
// captured graphs) stay valid without it knowing.
//
// Freezes are sparse: the contents move in chunks (Options::chunkBytes), and a chunk that is
// all zero is stored nowhere: the warm tier's host memory is an anonymous mapping only the
// stored chunks are written to (the rest costs nothing), the cold file has holes there. A thaw
// copies back only the stored chunks and clears the rest on the device (cuMemsetD8 to 0: new
// device memory is not guaranteed zero; the soft GPU makes that clear a hole in its memfd). So
// a vGPU that allocated 60 GiB and wrote a few pages of it moves a few pages.
//
//   VramTiers tiers(api, device, {.coldDir = "/var/lib/tensor-fusion/cold"});
//   auto p = tiers.allocate(1 << 30);          // a CUdeviceptr, usable like cuMemAlloc's
//   tiers.freeze(VramTiers::Tier::Warm);        // the device memory is free for others now
//   tiers.thaw();                               // back, same address, same bytes
//
// The caller serialises calls and makes sure the device is not using the memory while it
// moves (the client's context synchronised, no call of the client in flight). A freeze or
// thaw that fails part way leaves every allocation whole in one tier or the other: nothing is
// lost, and a thaw refused for want of device memory can be tried again later.
//
// Sizes are rounded up to the driver's allocation granularity (2 MiB on current GPUs).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <cuda.h>

#include "common/status.h"
#include "remoting/worker/driver_api.h"

namespace tf::remoting {

class VramTiers {
public:
  enum class Tier { Hot, Warm, Cold };
  struct Options {
    std::string coldDir = "/var/tmp";  // where cold contents go (an unlinked file, gone with us)
    size_t stagingBytes = 8u << 20;    // host buffer for device -> host and cold -> device copies
    size_t chunkBytes = 64u << 10;     // the unit of sparseness (a power of two, 4 KiB to 2 MiB)
  };
  struct Usage {
    uint64_t hotBytes = 0, warmBytes = 0, coldBytes = 0;  // the allocations' sizes, per tier
    uint64_t warmStoredBytes = 0, coldStoredBytes = 0;    // what their non-zero chunks take
    uint64_t freezes = 0, thaws = 0;  // allocations moved off / back onto the device
    std::chrono::nanoseconds freezeTime{0}, thawTime{0};  // summed over those moves
  };

  VramTiers(const DriverApi& api, int device, Options options);
  ~VramTiers();  // frees every allocation, whatever its tier
  VramTiers(const VramTiers&) = delete;
  VramTiers& operator=(const VramTiers&) = delete;

  // A new hot allocation of at least `size` bytes (CUDA_ERROR_OUT_OF_MEMORY if the device has
  // no room). The current context must be on `device`. With `at`, exactly there (a migrated
  // client's memory keeps its addresses): FailedPrecondition if the driver puts it elsewhere.
  Result<CUdeviceptr> allocate(size_t size, CUdeviceptr at = 0);
  // Frees the allocation that starts at `p` (CUDA_ERROR_INVALID_VALUE if none does).
  Status free(CUdeviceptr p);
  // The allocation holding `p`: its start and (rounded) size, and tier.
  struct Range {
    CUdeviceptr base = 0;
    size_t size = 0;
    Tier tier = Tier::Hot;
  };
  std::optional<Range> find(CUdeviceptr p) const;

  // Moves every allocation in a hotter tier than `to` down to it (Warm or Cold).
  Status freeze(Tier to);
  // Brings every warm or cold allocation back onto the device at its address.
  Status thaw();
  bool frozen() const;  // any allocation not hot
  Usage usage() const;
  // Every allocation, by address (migration captures them).
  std::vector<Range> ranges() const;
  // Copies n bytes at `offset` of the allocation starting at `base` out of whichever tier holds
  // them (the device must not be writing them).
  Status read(CUdeviceptr base, size_t offset, void* dst, size_t n) const;

private:
  // Anonymous host memory for a warm allocation: reserved, not committed (only the chunks
  // written to it take memory, each populated in one go), unmapped when it goes back.
  class HostPages {
  public:
    HostPages() = default;
    HostPages(HostPages&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    HostPages& operator=(HostPages&& o) noexcept;
    ~HostPages() { reset(); }
    bool reserve(size_t n);
    void reset();
    char* data() const { return static_cast<char*>(p_); }

  private:
    void* p_ = nullptr;
    size_t n_ = 0;
  };
  // A stretch of an allocation that is not all zero (chunk-aligned), by offset.
  struct Extent {
    size_t offset = 0, size = 0;
  };
  struct Allocation {
    size_t size = 0;
    Tier tier = Tier::Hot;
    CUmemGenericAllocationHandle handle = 0;  // while hot
    HostPages warm;                           // while warm: at the allocation's offsets
    int64_t coldOffset = -1;                  // while cold: where in the cold file
    std::vector<Extent> stored;               // while warm or cold: all else is zero
  };
  CUresult mapNew(CUdeviceptr base, Allocation& a);
  void unmap(CUdeviceptr base, Allocation& a);
  Status toHost(CUdeviceptr base, Allocation& a, Tier to);
  // Copies the hot allocation out piece by piece, recording each run of chunks that are not all
  // zero in `stored`. A piece goes through the staging buffer, each such run handed to `keep`
  // (false: stop, failed), or, after a piece with no zero chunk and given `inPlace` (the warm
  // tier's memory, at the allocation's offsets), straight there, its zero chunks given back
  // after: dense memory is copied once, sparse memory is never committed.
  template <typename Keep>
  Status copyOutSparse(CUdeviceptr base, const Allocation& a, const char* where, char* inPlace, Keep keep,
                       std::vector<Extent>* stored);
  // The chunks of a hot allocation that may hold data: all of them, except on the soft GPU,
  // whose device memory is a file whose holes (never written, or cleared) need not be read.
  std::vector<Extent> mayHoldData(const Allocation& a) const;
  Status toDevice(CUdeviceptr base, Allocation& a);
  Status warmToCold(Allocation& a);
  Result<int64_t> coldSlot(size_t size);
  void releaseColdSlot(int64_t at, size_t size);  // its disk space goes back (a hole)
  Status driverError(const char* what, CUresult r) const;

  const DriverApi& api_;
  int device_;
  Options options_;
  size_t granularity_ = 0;
  std::map<CUdeviceptr, Allocation> allocations_;  // by start
  int coldFd_ = -1;
  int64_t coldEnd_ = 0;
  std::multimap<size_t, int64_t> coldFree_;  // freed cold slots by size
  Usage counts_;
};

}  // namespace tf::remoting
