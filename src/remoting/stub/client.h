// The client stub's connection to its worker, and what it knows locally: devices (fetched
// once at cuInit), the contexts, device allocations and pinned host memory it has seen, the
// parameter layout of each kernel it launches.
//
//   Client& c = client();
//   uint64_t out[1];
//   CUresult r = c.call(FnId::cuMemAlloc_v2, {size}, out, 1);       // waits for the reply
//   c.post(FnId::cuLaunchKernel, {...}, blob, n);                   // does not wait
//
// Calls that return nothing the caller needs (launches, memsets, async copies, event
// records, stream waits) are posted; the worker latches the first error they raise and
// returns it from the next synchronous call. When the worker dies or is cut off, every pending
// and later call fails with CUDA_ERROR_DEVICE_UNAVAILABLE.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <cuda.h>

#include "cuda/catalog.h"
#include "remoting/mirror.h"
#include "remoting/protocol.h"
#include "remoting/transport.h"

namespace tf::remoting::stub {

using cuda::FnId;

// Where a reply's bulk goes.
struct ReplySink {
  void* dst = nullptr;           // read straight here when the length matches
  uint64_t expected = 0;
  std::vector<uint8_t>* spill = nullptr; // or into this vector (packed 2D/3D data)
  uint64_t spillCap = kMaxImage;
};

class Client {
public:
  // Connects and fetches devices on first use (cuInit); later calls reuse the result.
  CUresult init();
  // Before init(): kRoleMonitor for the NVML stub.
  void setRole(uint32_t role) { role_ = role; }
  bool initialized() const { return initialized_.load(std::memory_order_acquire); }

  CUresult call(uint32_t fn, std::initializer_list<uint64_t> in, uint64_t* outs = nullptr,
                uint32_t nOuts = 0, const void* blob = nullptr, size_t blobSize = 0,
                const iovec* bulk = nullptr, int bulkCount = 0, ReplySink* sink = nullptr,
                std::string* replyBlob = nullptr);
  CUresult call(FnId fn, std::initializer_list<uint64_t> in, uint64_t* outs = nullptr,
                uint32_t nOuts = 0, const void* blob = nullptr, size_t blobSize = 0,
                const iovec* bulk = nullptr, int bulkCount = 0, ReplySink* sink = nullptr,
                std::string* replyBlob = nullptr) {
    return call(static_cast<uint32_t>(fn), in, outs, nOuts, blob, blobSize, bulk, bulkCount, sink,
                replyBlob);
  }
  // cuLaunchHostFunc / cuStreamAddCallback: the worker asks for `run` over the host channel
  // (a second connection, opened on first use) when the stream reaches it, and holds the
  // stream until it has returned.
  CUresult hostFunction(FnId fn, CUstream stream, std::function<void()> run);
  // A host function the worker names by token (a graph's host node): `persistent` ones run
  // every time the worker asks, until the process ends.
  CUresult hostToken(std::function<void()> run, bool persistent, uint64_t* token);
  // Host functions posted and not finished: while any is, an async copy from pinned memory
  // must read its source when the stream reaches it (a host function may still fill it).
  bool hostFunctionsOutstanding() const { return hostOutstanding_.load() > 0; }
  CUresult hostToDeviceAtStreamTime(CUdeviceptr dst, const void* src, size_t n, CUstream s);
  // Fire-and-forget.
  CUresult post(uint32_t fn, std::initializer_list<uint64_t> in, const void* blob = nullptr,
                size_t blobSize = 0, const iovec* bulk = nullptr, int bulkCount = 0);
  CUresult post(FnId fn, std::initializer_list<uint64_t> in, const void* blob = nullptr,
                size_t blobSize = 0, const iovec* bulk = nullptr, int bulkCount = 0) {
    return post(static_cast<uint32_t>(fn), in, blob, blobSize, bulk, bulkCount);
  }

  // ---- mirrored host memory (mirrors.cpp, remoting/mirror.h) ---------------------------------
  // Managed memory and pinned memory the device reaches by address exist on both sides at
  // the same address. Before a call that submits device work the host's changes are pushed;
  // after a call that synchronises, the device's changes are pulled.
  MirrorSet& mirrors() { return mirrors_; }
  // Mirrors the pinned allocation holding p on the worker (once); the device may then use
  // its address.
  CUresult mirrorHost(const void* p);
  // Mirrors [base, base + size) of any host memory (pageable memory a graph's memcpy node
  // uses at every launch) on the worker, at the same address.
  CUresult mirrorRange(uint64_t base, uint64_t size);
  // Before unregistering (keepContents), what the device wrote is pulled first.
  CUresult releaseHostMirror(void* base, bool keepContents);
  CUresult pushMirrors();
  CUresult pullMirrors();
  // Shared memory transport: pinned memory can be one memfd both processes map at the same
  // address (nothing to exchange, copies by reference). shareHost passes the descriptor and
  // asks the worker to map it.
  bool sharesMemory() const { return address_.rfind("shm://", 0) == 0; }
  // A call whose successful reply comes with a descriptor over the transport (ShareDevice):
  // *fd gets it (the caller's to close). Such calls are made one at a time, so each takes its own.
  CUresult callForFd(uint32_t fn, std::initializer_list<uint64_t> in, uint64_t* outs,
                     uint32_t nOuts, int* fd);
  CUresult shareHost(void* p, size_t size, int fd);
  // Stream captures begun and not ended: while any is, async copies of pinned memory go by
  // reference (a graph reads and writes the host buffer each time it runs).
  void captureBegun() { captures_.fetch_add(1); }
  void captureEnded() {
    int n = captures_.load();
    while (n > 0 && !captures_.compare_exchange_weak(n, n - 1)) {}
  }
  bool capturing() const { return captures_.load(std::memory_order_relaxed) > 0; }

  // ---- local knowledge ---------------------------------------------------------------------
  int deviceCount() const { return static_cast<int>(devices_.size()); }
  const DeviceInfo* device(int ordinal) const {
    return ordinal >= 0 && ordinal < deviceCount() ? &devices_[ordinal] : nullptr;
  }
  int driverVersion() const { return driverVersion_; }

  // What a device-reachable range is: device memory, managed memory, or pinned host memory
  // mirrored on the worker or shared with it (its host address is its device address).
  enum class Memory : uint8_t { Device, Managed, HostMirror, HostShared };
  struct Allocation {
    uint64_t size;
    CUcontext ctx;
    Memory kind = Memory::Device;
  };
  void addDeviceAllocation(CUdeviceptr p, uint64_t size, CUcontext ctx,
                           Memory kind = Memory::Device);
  void removeDeviceAllocation(CUdeviceptr p);
  // Base and allocation holding p, or false.
  bool findDevice(CUdeviceptr p, CUdeviceptr* base, Allocation* a) const;
  void addHost(void* p, uint64_t size, unsigned flags);
  bool removeHost(void* p);
  bool findHost(const void* p, void** base, uint64_t* size, unsigned* flags) const;
  // Pinned allocations the worker does not hold yet (neither mirrored nor shared): while there
  // are none, a launch's parameters need no look (the launch path stays one atomic load).
  bool anyUnmirroredHost() const { return unmirrored_.load(std::memory_order_relaxed) != 0; }
  // Whether v lies in such an allocation (one lock for both tables).
  bool inUnmirroredHost(uint64_t v) const;

  struct Ctx {
    CUdevice dev;
    bool primary;
    std::map<void*, void*> localStorage; // cudart's context-local storage
  };
  void addContext(CUcontext c, CUdevice dev, bool primary);
  void removeContext(CUcontext c);
  bool contextDevice(CUcontext c, CUdevice* dev) const;
  std::mutex& contextsMu() { return ctxMu_; }
  std::unordered_map<CUcontext, Ctx>& contexts() { return contexts_; }
  CUcontext primaryContext(CUdevice dev);

  // Parameter layout of a kernel/function, fetched once.
  using Layout = std::shared_ptr<const std::vector<ParamSlot>>;
  CUresult paramLayout(CUfunction f, Layout* out);
  // After an unload: handle values may come back for other functions.
  void forgetLayouts() {
    std::lock_guard<std::mutex> lock(layoutMu_);
    layouts_.clear();
    occupancy_.clear();
    launched_.clear();
  }
  // Functions the driver has accepted a launch of: the first launch of each function waits for
  // the driver's answer (a kernel the driver cannot run is refused by that launch, as on a
  // GPU, not by a later synchronisation); later ones are posted.
  bool launchedBefore(CUfunction f) {
    std::lock_guard<std::mutex> lock(layoutMu_);
    return launched_.count(f) != 0;
  }
  void markLaunched(CUfunction f) {
    std::lock_guard<std::mutex> lock(layoutMu_);
    launched_.insert(f);
  }
  // Blocks of f resident per SM with this block size and dynamic shared memory (the worker's
  // cuOccupancyMaxActiveBlocksPerMultiprocessor), asked once per shape: a cooperative launch
  // is checked against it before it is posted, as the driver refuses one too large at once.
  CUresult residentBlocksPerSm(CUfunction f, unsigned threads, unsigned sharedBytes, int* blocks);
  // After an attribute change (dynamic shared memory, carveout): occupancy may differ.
  void forgetOccupancy() {
    std::lock_guard<std::mutex> lock(layoutMu_);
    occupancy_.clear();
  }
  // Shipped images: hashes this worker already holds.
  bool imageKnown(uint64_t hash);
  void markImage(uint64_t hash);

  // Streams and events this client created: posted calls are checked here, so a bad handle
  // is reported by the call itself, as the driver does, not by a later one.
  // SharedEvent: an event other processes can wait on (made interprocess, or opened from an
  // IPC handle), so recording it must reach the worker before the call returns.
  enum class Handle { Stream, Event, SharedEvent };
  void addHandle(Handle k, const void* h);
  void removeHandle(Handle k, const void* h);
  bool hasHandle(Handle k, const void* h) const;
  bool streamOk(CUstream s) const {
    return reinterpret_cast<uintptr_t>(s) <= 2 || hasHandle(Handle::Stream, s);
  }

  bool dead() const { return dead_.load(std::memory_order_acquire); }
  // How many times the session has moved to another worker (migration): what the stub holds
  // of the old worker (mappings of its memory) is stale once this changes.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

private:
  CUresult connectLocked();
  CUresult fail(const Status& s);
  // Posted frames waiting to be written in one go (TCP): flushed by the next call that waits,
  // when 64 KiB have gathered, or by the flusher thread ~100 us after the first was posted.
  Status flushLocked();
  void flusher();
  // pulled (with kFlagPullMirrors asked): set when the reply brought the device's changes to
  // mirrored memory, which are then merged.
  CUresult readReply(uint32_t fn, uint64_t* outs, uint32_t nOuts, ReplySink* sink,
                     std::string* replyBlob, bool* pulled = nullptr);
  CUresult exchange(uint32_t fn, std::initializer_list<uint64_t> in, uint64_t* outs,
                    uint32_t nOuts, const void* blob, size_t blobSize, const iovec* bulk,
                    int bulkCount, ReplySink* sink, std::string* replyBlob,
                    bool* pulled = nullptr);
  // Merges the device's changes a MirrorPull (or a synchronisation's) reply brought.
  Status applyPulled(std::string_view runsBlob, const std::vector<uint8_t>& bytes);
  // Host channel: merges the mirror runs a HostCall brings; collects this side's for HostDone.
  Status applyIncomingRuns(Transport& t, std::string_view blob, uint64_t bulkLen);

  CUresult openHostChannel();
  void hostChannelLoop(std::shared_ptr<Transport> t);
  void heartbeat(std::shared_ptr<Transport> t);
  // A host channel replaced by a migration: its threads end quietly.
  bool retired(const std::shared_ptr<Transport>& t);
  // A reply said the session moved (kFlagMoved): reconnects to `address` and resumes session
  // `resumeId` there, host channel included. Under mu_. On failure the client stays with the
  // old worker, which still holds everything.
  Status resumeAt(const std::string& address, uint64_t resumeId);
  struct Move {
    std::string address;
    uint64_t resumeId = 0;
  };
  std::optional<Move> move_; // set by readReply
  std::atomic<uint64_t> generation_{0};
  bool flusherStarted_ = false;

  std::mutex mu_; // one request/reply exchange at a time
  std::mutex fdMu_; // one callForFd at a time
  TransportPtr transport_;
  std::atomic<bool> initialized_{false};
  std::atomic<bool> dead_{false};
  std::mutex failMu_; // orders fail()'s log line before dead_ is seen
  CUresult initResult_ = CUDA_SUCCESS;
  std::vector<DeviceInfo> devices_;
  int driverVersion_ = CUDA_VERSION;
  std::vector<uint8_t> args_;
  std::vector<uint8_t> pulled_; // the bytes of mirror runs a reply brought
  std::string address_;
  uint32_t role_ = kRoleDriver;
  uint64_t sessionId_ = 0;
  std::mutex hostMu_;
  std::shared_ptr<Transport> hostChannel_;
  struct HostEntry {
    std::function<void()> run;
    const void* bytes = nullptr; // or: send these bytes back with HostDone
    size_t size = 0;
    bool persistent = false;     // a graph's host node: runs at every launch
  };
  std::unordered_map<uint64_t, HostEntry> hostFns_;
  std::mutex hostWriteMu_;
  std::atomic<int> hostOutstanding_{0};
  std::atomic<int64_t> lastPongMs_{0};
  uint64_t nextHostToken_ = 1;
  std::vector<uint8_t> batch_;
  bool batching_ = false;
  std::condition_variable batchCv_;
  Writer w_;

  mutable std::shared_mutex allocMu_;
  std::map<CUdeviceptr, Allocation> deviceAllocs_;
  std::map<uintptr_t, std::pair<uint64_t, unsigned>> hostAllocs_;
  std::atomic<size_t> unmirrored_{0};
  void recountUnmirroredLocked();
  MirrorSet mirrors_{true}; // this process's CPU is the only writer of its copies
  std::mutex mirrorMu_; // one MirrorHost exchange at a time
  std::atomic<bool> deviceWorkSincePull_{false};
  std::atomic<int> captures_{0};
  std::mutex ctxMu_;
  std::unordered_map<CUcontext, Ctx> contexts_;
  std::map<CUdevice, CUcontext> primaries_;
  std::mutex layoutMu_;
  std::unordered_map<CUfunction, Layout> layouts_;
  struct ShapeHash {
    size_t operator()(const std::tuple<CUfunction, unsigned, unsigned>& k) const {
      return std::hash<const void*>()(std::get<0>(k)) ^ (size_t(std::get<1>(k)) << 32) ^ std::get<2>(k);
    }
  };
  std::unordered_map<std::tuple<CUfunction, unsigned, unsigned>, int, ShapeHash> occupancy_;
  std::unordered_set<uint64_t> images_;
  std::unordered_set<CUfunction> launched_;
  mutable std::shared_mutex handleMu_;
  std::unordered_set<const void*> handles_[3];
};

Client& client();

// The calling thread's current context (the stub keeps the context stack itself).
CUcontext currentContext();
// While one lives, the thread's calls name no context: for calls that need none (a library
// unload), made when the current context may be gone (cudart unloads its libraries at exit,
// after releasing the primary context).
struct WithoutContext {
  WithoutContext();
  ~WithoutContext();
};
// What a call names as its context: the current one, or none inside a WithoutContext.
CUcontext callContext();
std::vector<CUcontext>& contextStack();

} // namespace tf::remoting::stub
