// One connected client on the worker: its handshake, its own contexts, and a table of every
// handle and device allocation it created. A client can only name what is in its table
// (anything else is CUDA_ERROR_INVALID_HANDLE / INVALID_VALUE / INVALID_CONTEXT); everything it
// owns is released when it disconnects or dies.
//
//   Session s(shared, std::move(transport));
//   auto role = s.handshake(framing, hello, args);  // the gate read the Hello
//   if (role != Session::Role::Refused) s.run(role); // until the client leaves; then its
//                                                    // resources are freed
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <cuda.h>

#include "remoting/mirror.h"
#include "remoting/protocol.h"
#include "remoting/transport.h"
#include "remoting/worker/driver_api.h"
#include "remoting/worker/handle_table.h"
#include "remoting/worker/vram_tiers.h"
#include "remoting/worker/ipc.h"
#include "remoting/worker/migration.h"

namespace tf::remoting {

// A session's host channel: a second connection from the same client on which the worker
// asks for host functions (cuLaunchHostFunc reached on a stream) and the client answers when
// each has returned. Kept apart from the call connection, so a call blocked in the driver
// (a stream synchronisation waiting for that very host function) cannot stop the answer.
struct HostChannel {
  std::mutex mu;
  std::condition_variable cv;
  std::set<uint64_t> done;
  bool closing = false;
  std::mutex writeMu;
  std::shared_ptr<Transport> transport; // set when the client attaches

  // Runs on the driver's stream thread: asks the client, waits for its answer or the end.
  void run(uint64_t token);
  void markDone(uint64_t token);
  // HostToDeviceAtStreamTime: HostDone(token) brings n bytes for `into`.
  void expectBytes(uint64_t token, void* into, uint64_t n);
  std::unordered_map<uint64_t, std::pair<void*, uint64_t>> expected;
  void close();
  // The session's mirrored host memory: what the device changed goes with each HostCall (the
  // host function may read it); what the host function changed comes back with HostDone.
  std::shared_ptr<MirrorSet> mirrors;
};

// MigrateOut's order to a client's session, carried out by its own thread at the client's next
// synchronous call (migration.h); the admin waits for `done`.
struct MigrationTicket {
  MigrateOrder order;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Status result = Status::ok();
  uint64_t pauseNs = 0, bytes = 0, resumeId = 0;
  void finish(Status s) {
    {
      std::lock_guard<std::mutex> lock(mu);
      result = std::move(s);
      done = true;
    }
    cv.notify_all();
  }
};

// What other sessions may read about a session (for NVML's process list).
struct SessionInfo {
  uint32_t pid = 0;
  std::atomic<uint64_t> bytes{0};   // device memory it holds
  std::atomic<uint64_t> devices{0}; // bit d: it has a context on device d
  // VRAM tiers, published by the session's thread for TierStatus (tier_control.h).
  std::atomic<uint32_t> tierState{0}; // TierState
  std::atomic<uint64_t> warmBytes{0}, coldBytes{0}, freezes{0}, thaws{0}, freezeNs{0}, thawNs{0};
  std::atomic<uint64_t> warmStoredBytes{0}, coldStoredBytes{0};
  std::atomic<uint64_t> waitingBytes{0};
  std::atomic<int64_t> idleSinceNs{0}; // steady clock at the end of its last call; 0 in a call
  // TierControl's orders to the session's thread, carried out while it waits for a call:
  // TierAction + 1 (0: none); `ordersDone` counts the orders it has handled, `lastMoved`
  // whether the last one moved any memory.
  std::atomic<uint32_t> order{0};
  std::atomic<uint64_t> ordersDone{0};
  std::atomic<bool> lastMoved{false};
  // A migration ordered and not yet taken by the session's thread.
  std::mutex migrationMu;
  std::shared_ptr<MigrationTicket> migration;
  std::atomic<bool> migrationPending{false};
};

// Every client's device-reachable ranges and whose they are: a kernel argument pointing into
// another client's memory is refused (a real GPU would let a kernel of one context read
// another context's memory in the same process). A range may have several owners (memory
// opened by IPC handle is its exporter's and each importer's).
class OwnerMap {
public:
  void add(uint64_t p, uint64_t size, const void* owner);
  void remove(uint64_t p, const void* owner);
  // Whether any aligned 8-byte word of [p, p + n) points into a range of another owner than
  // `self` (one lock for all the words).
  bool anyForeign(const char* p, size_t n, const void* self) const;

private:
  mutable std::shared_mutex mu_;
  std::map<uint64_t, std::pair<uint64_t, std::vector<const void*>>> ranges_;
};

class Session;

// What all sessions of one worker share: the driver, the image cache, the tokens (one per
// tenant: tokens[i] is tenant i), IPC handles.
// VRAM tiers (worker/vram_tiers.h) for every client of the worker: its cuMemAlloc memory can
// leave the device while it idles. Off when freezeIdleMs is 0.
struct TierOptions {
  bool enabled = false;  // cuMemAlloc memory is tiered (on by itself with freezeIdleMs)
  int freezeIdleMs = 0;  // a client idle this long: its memory goes to host memory (0: never)
  int coldAfterMs = 0;   // idle this much longer: to the cold directory (0: never)
  int thawWaitMs = 5000; // a thaw that finds no room retries this long, then the call fails
  int allocWaitMs = 0;   // likewise a tiered allocation (an admin may free room meanwhile)
  std::string coldDir = "/var/tmp";
};

struct WorkerShared {
  std::unique_ptr<DriverApi> driver;
  std::vector<std::string> tokens;
  std::string adminToken; // the hypervisor's (kRoleAdmin); empty: no admin sessions
  // Another node's hypervisor's, for one thing only: Adopt (a client moving here); empty: none.
  std::string migrationToken;
  IpcRegistry ipc;
  bool verbose = false;
  TierOptions tiers;
  // Every session's handles remapped (handle_table.h): what a migrated session runs in.
  bool remapHandles = false;
  // Module images by FNV-1a hash, kept while the worker runs (capped in total).
  std::mutex imagesMu;
  std::unordered_map<uint64_t, std::shared_ptr<const std::vector<uint8_t>>> images;
  uint64_t imageBytes = 0;
  // Host channels of live sessions, by session id.
  std::mutex channelsMu;
  std::unordered_map<uint64_t, std::weak_ptr<HostChannel>> channels;
  // Driver sessions, for NVML's process list.
  std::mutex sessionsMu;
  std::map<const void*, std::shared_ptr<SessionInfo>> sessions;
  OwnerMap owners;
  std::shared_ptr<const std::vector<uint8_t>> findImage(uint64_t hash);
  void addImage(uint64_t hash, std::shared_ptr<const std::vector<uint8_t>> image);
  // Sessions of the tenants (drivers and NVML's), for TierStatus: a worker with none is idle.
  std::atomic<uint64_t> tenantSessions{0};
  // Where clients that moved away went, by pid: their NVML sessions follow them.
  std::mutex movedMu;
  std::unordered_map<uint32_t, std::string> movedTo;
  std::atomic<bool> anyMoved{false};
  // Sessions moved here (Adopt) and not yet resumed by their client, by resume id.
  std::mutex parkedMu;
  std::unordered_map<uint64_t, std::shared_ptr<Session>> parked;
};

// One call being executed: its decoded args and what goes back.
struct CallIn {
  uint32_t fn = 0;
  uint16_t flags = 0;
  CallArgs a;
  uint64_t bulkLen = 0;
};
struct CallOut {
  uint64_t v[kMaxScalars] = {};
  uint32_t n = 0;
  std::string blob;
  std::vector<uint8_t> bulk;     // small or packed bulk replies
  CUdeviceptr dtohSrc = 0;       // or: stream this device range back in chunks
  uint64_t dtohLen = 0;
  void put(uint64_t x) {
    if (n < kMaxScalars) v[n++] = x;
  }
};

class Session {
public:
  Session(WorkerShared& shared, TransportPtr transport);
  ~Session();
  enum class Role { Refused, Calls, HostChannel, Resume };
  // A session moved here from another worker (Adopt, migration.h): re-created from `img`, its
  // contents read with `readBulk`, then parked until its client resumes it (kRoleResume).
  // Returns the resume id; on failure everything it made is released.
  static Result<uint64_t> adopt(WorkerShared& shared, const MigrationImage& img, Session& bulk);
  // The current call's bulk, for an Adopt: n bytes into dst; or n bytes handed to `use` piece
  // by piece (in place over shared memory).
  Status read(void* dst, size_t n);
  Status fill(uint64_t n, const std::function<Status(uint64_t, const uint8_t*, size_t)>& use);
  // After handshake() answered Resume: the parked session that now holds this connection.
  std::shared_ptr<Session> resumed() { return std::move(resumed_); }
  // The client's first frame, read whole by the gate (framing: whether its header decoded):
  // checks version, catalog and token and answers HelloReply. Cheap, no driver calls: it runs
  // on the gate thread.
  Role handshake(Status framing, const FrameHeader& h, const std::vector<uint8_t>& args);
  // After an accepted handshake, on the session's own thread: serves the client until it
  // leaves or breaks the protocol; then releases its resources.
  void run(Role role);
  const std::string& peer() const { return peer_; }

  // ---- used by the handlers --------------------------------------------------------------
  const DriverApi& d() const { return *shared_.driver; }
  WorkerShared& shared() { return shared_; }
  Transport& transport() { return *transport_; }
  // Reads n bytes of the current call's bulk.
  Status readBulk(void* dst, size_t n);
  // Shared memory: hands `consume` the bulk in place, piece by piece (no staging copy).
  // Returns false if the transport has no views (then use readBulk).
  template <typename F> Result<bool> consumeBulkInPlace(uint64_t n, F&& consume);
  uint64_t bulkLeft() const { return bulkLeft_; }
  CUcontext currentCtx() const { return current_; }

  // The client's handles (handle_table.h): handlers resolve what the client names into the
  // driver's values and expose what the driver hands out; everything else in the session
  // (allocations, primaries, layouts, child graphs, IPC) holds driver values.
  using HandleKind = tf::remoting::HandleKind;
  // While a replayable call runs (migration.h), what it makes is recorded; while a replayed
  // one runs on the target, what it makes gets the client's old values.
  uint64_t expose(HandleKind k, uint64_t driver) {
    if (!recording_ && adoptQueue_.empty()) return handles_.expose(k, driver);
    return exposeForMigration(k, driver);
  }
  std::optional<uint64_t> clientValue(HandleKind k, uint64_t driver) const {
    return handles_.clientValue(k, driver);
  }
  bool ownsDriver(HandleKind k, uint64_t driver) const { return handles_.ownsDriver(k, driver); }
  void forget(HandleKind k, uint64_t driver) {
    if (!recipesOf_.empty()) dropRecipesOf(k, driver);
    if ((k == HandleKind::Graph || k == HandleKind::GraphNode) && !execBodies_.empty()) forgetInBodies(k, driver);
    handles_.forget(k, driver);
  }
  // Resolves a client value in place (a scalar arg, a local, a struct's handle field) into the
  // driver's value of the first of `kinds` that owns it; false (h unchanged) if none does.
  template <typename T, typename... Kinds> bool resolveIn(T& h, Kinds... kinds) const {
    uint64_t v = handleBits(h);
    for (HandleKind k : {kinds...})
      if (auto d = handles_.resolve(k, v)) {
        h = fromHandleBits<T>(*d);
        return true;
      }
    return false;
  }
  // Streams may also be the special values 0, CU_STREAM_LEGACY, CU_STREAM_PER_THREAD (kept).
  template <typename T> bool resolveStreamIn(T& h) const {
    return handleBits(h) <= 2 || resolveIn(h, HandleKind::Stream);
  }
  template <typename T> static uint64_t handleBits(T h) {
    if constexpr (std::is_pointer_v<T>) return reinterpret_cast<uint64_t>(h);
    else return static_cast<uint64_t>(h);
  }
  template <typename T> static T fromHandleBits(uint64_t v) {
    if constexpr (std::is_pointer_v<T>) return reinterpret_cast<T>(v);
    else return static_cast<T>(v);
  }

  struct Allocation {
    uint64_t size;
    CUcontext ctx;
    bool freeable; // false for module globals
    bool tiered = false; // the tiers' (freed through them)
  };
  void addAllocation(CUdeviceptr p, uint64_t size, bool freeable);
  // The client's allocation starting exactly at p, or nullptr.
  const Allocation* allocationAt(CUdeviceptr p) const {
    auto it = allocations_.find(p);
    return it == allocations_.end() ? nullptr : &it->second;
  }
  // Memory opened by IPC handle: the client may name it (not free it) while it holds it.
  void addImport(CUdeviceptr p, uint64_t size) { track(p, Allocation{size, current_, false}); }
  void dropImport(CUdeviceptr p) { untrack(p); }
  // Releases what the last close of an IPC handle left to release (ipc.h).
  void releaseIpc(const std::vector<IpcEntry>& due);
  // The tenant whose token the client gave (WorkerShared::tokens).
  uint32_t tenant() const { return tenant_; }
  bool admin() const { return admin_; }
  // The client's allocation containing [p, p + n), or nullptr.
  const Allocation* allocationFor(CUdeviceptr p, uint64_t n) const;
  bool removeAllocation(CUdeviceptr p); // only freeable bases
  void dropGlobalsOf(uint64_t moduleOrLibrary);
  // Virtual memory management: physical handles (with their references), reservations and
  // the mappings in them (mappings count as the client's device memory for pointer checks).
  std::map<uint64_t, std::pair<uint64_t, int>>& memHandles() { return memHandles_; } // size, refs
  std::map<CUdeviceptr, uint64_t>& reservations() { return reservations_; }
  std::map<CUdeviceptr, uint64_t>& mappings() { return mappings_; }
  void addMapping(CUdeviceptr va, uint64_t size) {
    mappings_[va] = size;
    track(va, Allocation{size, current_, false});
  }
  void removeMapping(CUdeviceptr va) {
    mappings_.erase(va);
    untrack(va);
  }
  // VRAM tiers (WorkerShared::tiers): cuMemAlloc's memory is the tiers', frozen once the
  // client has been idle long enough and thawed before its next call runs.
  bool tiersOn() const { return shared_.tiers.enabled; }
  Result<CUdeviceptr> tierAllocate(uint64_t size, CUdeviceptr at = 0);
  // Frees the tiered allocation starting at p; nullopt if p is not one.
  std::optional<CUresult> tierFree(CUdeviceptr p);
  // Bytes per tier over the client's devices.
  VramTiers::Usage tierUsage() const;
  // Whether any 8-byte word of a kernel's parameters points into another client's memory.
  bool foreignPointerIn(std::string_view params) const;
  // Parameter layouts of launched functions (a launch must match its kernel exactly).
  std::unordered_map<uint64_t, std::vector<ParamSlot>>& layouts() { return layouts_; }
  void accountBytes(int64_t delta) { info_->bytes.fetch_add(static_cast<uint64_t>(delta)); }
  void addGlobal(uint64_t owner, CUdeviceptr p, uint64_t size, const std::string& name);
  // A module image the client loaded (kept while it may migrate), or nullptr.
  void keepImage(uint64_t hash, std::shared_ptr<const std::vector<uint8_t>> image) { images_[hash] = std::move(image); }
  // While a migrated module load is replayed: where its globals must go (empty otherwise).
  const std::vector<cuda::GlobalPlacement>& placements() const { return placements_; }
  std::shared_ptr<const std::vector<uint8_t>> keptImage(uint64_t hash) const {
    auto it = images_.find(hash);
    return it == images_.end() ? nullptr : it->second;
  }
  std::map<int, CUcontext>& primaries() { return primaries_; }
  void usesDevice(int dev) {
    if (dev >= 0 && dev < 64) info_->devices.fetch_or(uint64_t(1) << dev);
  }
  // cuLaunchHostFunc: the driver calls hostFunctionEntry(arg) on the stream. A persistent
  // argument (a host node of a graph, replayed many times) lives until the session ends.
  void* hostFunctionArg(uint64_t token, bool persistent = false);
  static void hostFunctionEntry(void* arg);
  // The client's token of a host function argument made by hostFunctionArg.
  static uint64_t hostFunctionToken(void* arg);
  // Graphs embedded in child graph nodes: the client may name them, never destroy them (they
  // go with their node).
  std::set<uint64_t>& childGraphs() { return childGraphs_; }
  // An executable graph cannot be read back from the driver, and migration must build it again
  // elsewhere: the worker instantiates each one from a copy of the client's graph (its body,
  // never the client's) and keeps the body in step with what is changed in the executable
  // (calls_graph.cpp). The client names the executable's nodes by its graph's nodes.
  struct ExecBody {
    uint64_t body = 0;                  // the driver's graph (0: none, see `unreadable`)
    uint64_t from = 0;                  // the client's graph it was made from, while it lives
    unsigned long long flags = 0;
    std::map<uint64_t, uint64_t> nodeOf;  // a node of `from` (driver) -> the body's
    std::set<uint64_t> disabled;          // body nodes disabled in the executable
    std::string unreadable;               // why the body no longer says what the executable does
  };
  std::map<uint64_t, ExecBody>& execBodies() { return execBodies_; }  // by executable (driver)
  static void dropHostFunctionArg(void* arg);
  void expectHostBytes(uint64_t token, void* into, uint64_t n);

  // Mirrored host memory (mirror.h): managed allocations, and host memory mapped at the
  // client's addresses (MirrorHost) and registered with the driver.
  MirrorSet& mirrors() { return *mirrors_; }
  // What the device changed in mirrored memory since the last look, as a MirrorPull reply:
  // runs in out.blob, their bytes in out.bulk.
  void collectMirrors(CallOut& out);
  CUresult mapHostMirror(uint64_t addr, uint64_t size);
  // ShareHost: maps the memfd the client passed over the transport at addr (MAP_SHARED).
  CUresult mapSharedHost(uint64_t addr, uint64_t size);
  // Undoes either.
  CUresult releaseHostMirror(uint64_t addr);
  // Whether [addr, addr + n) is host memory of this client the device reaches by address
  // (a mirror, managed memory, or shared pinned memory).
  bool hostRangeFor(uint64_t addr, uint64_t n) const;

private:
  Session(WorkerShared& shared, TransportPtr transport, bool remapped);
  void serve();
  // ---- migration (session_migration.cpp) ----
  uint64_t exposeForMigration(HandleKind k, uint64_t driver);
  void dropRecipesOf(HandleKind k, uint64_t driver);
  // Keeps the recipe of a replayable call that succeeded.
  void keepRecipe(const ReplayRule& rule, Recipe recipe);
  // At a synchronous call (h, not yet run, its bulk unread): carries out a pending MigrateOut.
  // True if the client has been told it moved (the call is not run here then).
  bool migrateIfOrdered(const FrameHeader& h);
  // An NVML session of a process whose driver session moved away: its call is answered Moved
  // (resume id 0: a new session there). True if it was.
  bool followMovedProcess(const FrameHeader& h);
  Status sendMoved(const FrameHeader& h, uint64_t resumeId, const std::string& address);
  Result<uint64_t> migrateOut(MigrationTicket& t, uint64_t* bytes);
  Status migrationRefusal() const;
  Result<MigrationImage> capture();
  Status writeContents(const MigrationImage& img, Transport& t);
  Status adoptImage(const MigrationImage& img, Session& bulk);
  Status replay(const Recipe& recipe);
  // Runs a call as the client would send it (ctx: its client value); what it makes gets the
  // values in `made` (fresh ones if empty).
  CUresult runAsClient(uint64_t ctx, uint32_t fn, std::vector<uint64_t> args, std::string blob,
                       std::vector<Recipe::Made> made, CallOut& out, bool* allAdopted = nullptr);
  // Graphs (session_graphs.cpp): the client's graphs and its executables' bodies walked into
  // the image, and built again from it.
  Status describeGraphs(MigrationImage& img);
  Status adoptGraphs(const MigrationImage& img);
  // Adds gi's nodes and edges to graph (client values; the nodes get their client values if
  // `named`); the nodes' client values, in order. Child graphs are built as temporary graphs
  // the node copies, then named in the copy (nameEmbedded).
  Result<std::vector<uint64_t>> buildGraph(const GraphImage& gi, uint64_t graph, bool named);
  Status nameEmbedded(const GraphImage& gi, CUgraph embedded);
  void forgetInBodies(HandleKind k, uint64_t driver);
  CUcontext deviceContext(int dev);
  // Every change to allocations_ goes through these, so the worker-wide OwnerMap agrees.
  void track(CUdeviceptr p, const Allocation& a);
  void untrack(CUdeviceptr p);
  void serveHostChannel(std::shared_ptr<HostChannel> channel);
  Status execute(const FrameHeader& h, std::vector<uint8_t>& args);
  Status sendReply(const FrameHeader& h, CUresult r, CallOut& out, uint16_t flags = 0);
  void releaseAll();
  // Tiers: waits for the next frame, freezing the client's memory when none comes in time
  // and carrying out the admin's orders meanwhile.
  void waitFreezingIdle();
  // Carries out one TierControl order (TierAction + 1); whether memory moved.
  bool carryOut(uint32_t order);
  // Moves the client's memory down to `to`; whether any moved.
  bool freezeTo(VramTiers::Tier to);
  Status freezeTiers(VramTiers::Tier to);
  CUresult thawTiers();
  // Copies tierUsage() into info_ for TierStatus.
  void publishTiers();

  WorkerShared& shared_;
  TransportPtr transport_;
  std::string peer_;
  uint64_t bulkLeft_ = 0;
  CUcontext current_ = nullptr;
  uint64_t currentClientValue_ = 0; // the client's value of current_
  CUresult latched_ = CUDA_SUCCESS;
  uint32_t tenant_ = 0;
  bool admin_ = false; // the hypervisor's admin session (kRoleAdmin)
  bool adoptOnly_ = false; // opened with the migration token: Adopt, nothing else
  bool counted_ = false;   // in WorkerShared::tenantSessions
  bool monitor_ = false;   // an NVML stub's session (kRoleMonitor), of process monitorPid_
  uint32_t monitorPid_ = 0;
  HandleTable handles_;
  std::map<CUdeviceptr, Allocation> allocations_;
  std::multimap<uint64_t, CUdeviceptr> globals_; // module/library -> global base
  std::map<int, CUcontext> primaries_;            // the client's "primary" context per device
  std::set<uint64_t> childGraphs_;
  std::map<uint64_t, ExecBody> execBodies_;
  std::map<uint64_t, std::pair<uint64_t, int>> memHandles_;
  std::map<CUdeviceptr, uint64_t> reservations_;
  std::map<CUdeviceptr, uint64_t> mappings_;
  std::unordered_map<uint64_t, std::vector<ParamSlot>> layouts_;
  std::vector<uint8_t> staging_;
  uint64_t id_ = 0;
  std::shared_ptr<HostChannel> host_ = std::make_shared<HostChannel>();
  std::shared_ptr<HostChannel> attachedTo_;
  std::shared_ptr<SessionInfo> info_ = std::make_shared<SessionInfo>();
  std::shared_ptr<MirrorSet> mirrors_; // tracking writes only on the soft GPU (see MirrorSet)
  struct HostRange {
    uint64_t size;
    bool shared; // ShareHost (one MAP_SHARED mapping) or MirrorHost (private pages, mirrored)
  };
  std::map<uint64_t, HostRange> hostMirrors_;
  std::map<uint64_t, int> hostPages_;        // pages mapped for them -> ranges using each
  std::vector<void*> persistentArgs_;
  struct DeviceTiers {
    std::unique_ptr<VramTiers> tiers;
    CUcontext ctx = nullptr;  // a context of the device, current while memory moves
  };
  std::map<int, DeviceTiers> tiers_;
  std::optional<VramTiers::Tier> frozen_;  // where the memory went, while it is off the device
  // Migration: the replay log (by sequence), which recipes each handle (kind, client value)
  // appears in, what the call running now makes, the values replayed calls must give out.
  std::map<uint64_t, Recipe> recipes_;
  uint64_t nextRecipe_ = 0;
  std::multimap<std::pair<int, uint64_t>, uint64_t> recipesOf_;
  std::vector<Recipe::Made>* recording_ = nullptr;
  std::vector<Recipe::Made> adoptQueue_;
  std::vector<cuda::GlobalPlacement> placements_;
  std::map<uint64_t, std::shared_ptr<const std::vector<uint8_t>>> images_;
  std::map<CUdeviceptr, std::string> globalNames_;
  std::shared_ptr<Session> resumed_;
  void unmapHostPages(uint64_t addr, uint64_t size);
};

template <typename F> Result<bool> Session::consumeBulkInPlace(uint64_t n, F&& consume) {
  if (!transport_->supportsViews()) return false;
  if (n > bulkLeft_) return dataLoss("call reads past its bulk");
  for (uint64_t off = 0; off < n;) {
    const uint8_t* p = nullptr;
    size_t k = 0;
    Status s = transport_->peekRead(static_cast<size_t>(std::min<uint64_t>(n - off, kChunk)), &p, &k);
    if (!s.isOk()) return s;
    CUresult r = consume(off, p, k);
    transport_->consumeRead(k);
    bulkLeft_ -= k;
    off += k;
    if (r != CUDA_SUCCESS) return internalError(std::to_string(r));
  }
  return true;
}

// Executes one call (call_table.cpp). Returns the driver's CUresult.
CUresult dispatch(Session& s, CallIn& in, CallOut& out);

} // namespace tf::remoting
