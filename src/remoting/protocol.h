// The remoting wire protocol, described once and used by the client stub and the worker.
//
// A connection is a byte stream (TCP or a shared-memory ring pair) carrying frames:
//
//   FrameHeader (32 bytes, little-endian) | args (argsLen bytes) | bulk (bulkLen bytes)
//
// `args` is small and decoded in one piece (capped at kMaxArgs); `bulk` is payload that is
// streamed in chunks straight to its destination (memcpy data, module images) and is never
// allocated in one piece by a decoder unless it is under a cap the caller gives.
//
//   Writer w; w.u64(size);                              // encode a call's scalars
//   FrameHeader h = callHeader(FnId::cuMemAlloc_v2, w.size(), 0, ctx, kFlagNone);
//   TF_RETURN_IF_ERROR(sendFrame(transport, h, w.data(), nullptr, 0));
//   FrameHeader r; TF_RETURN_IF_ERROR(readHeader(transport, &r));   // validated
//
// The handshake is a Hello frame (magic, protocol version, catalog size, token, pid, host)
// answered by a HelloReply whose `result` is CUDA_SUCCESS or the reason for refusal, and
// whose out values are (protocol version, session id).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <sys/uio.h>

#include "common/status.h"

namespace tf::remoting {

class Transport;

inline constexpr uint32_t kHelloMagic = 0x45524654; // "TFRE"
inline constexpr uint16_t kProtocolVersion = 3;
inline constexpr uint32_t kMaxArgs = 1u << 20;            // args of one frame
inline constexpr uint64_t kMaxBulk = uint64_t(1) << 40;   // streamed payload of one frame
inline constexpr uint64_t kMaxImage = uint64_t(512) << 20; // a module image held in memory
inline constexpr size_t kMaxToken = 1024;
inline constexpr size_t kMaxHostName = 255;
inline constexpr size_t kChunk = size_t(1) << 20;         // bulk copies move in 1 MiB pieces

// X(name, value): every frame kind.
#define TF_REMOTE_MESSAGES(X)                                                                     \
  X(Hello, 1)     /* client -> worker: handshake */                                               \
  X(HelloReply, 2)/* worker -> client: accepted or refused (result) */                            \
  X(Call, 3)      /* client -> worker: a driver call (fn = catalog index or an Op) */             \
  X(Reply, 4)     /* worker -> client: CUresult + out values (+ bulk) */                          \
  X(Bye, 5)       /* client -> worker: orderly disconnect */                                     \
  X(HostCall, 6)  /* worker -> client, host channel: run host function `token` now */            \
  X(HostDone, 7)  /* client -> worker, host channel: host function `token` has returned */

enum class Kind : uint16_t {
#define TF_X(name, value) name = value,
  TF_REMOTE_MESSAGES(TF_X)
#undef TF_X
};
const char* kindName(Kind kind); // nullptr for an unknown value

// Frame flags.
inline constexpr uint16_t kFlagNone = 0;
inline constexpr uint16_t kFlagNoReply = 1; // fire-and-forget: errors are latched by the worker
// A call that waits for device work: if it succeeds and its reply carries nothing else, the
// reply also brings what the device changed in mirrored memory (MirrorPull's runs and bytes).
inline constexpr uint16_t kFlagPullMirrors = 2;
// A reply that does: its blob is mirror runs, its bulk their bytes. Without it (the call
// failed, or its reply has other content) the client pulls separately.
inline constexpr uint16_t kFlagMirrorRuns = 4;
// A reply saying the session has moved to another worker (migration): args (resume id), blob:
// the worker's address. The call was not run: the client reconnects there (Hello with
// kRoleResume) and sends it again.
inline constexpr uint16_t kFlagMoved = 8;
inline constexpr uint16_t kKnownFlags = kFlagNoReply | kFlagPullMirrors | kFlagMirrorRuns | kFlagMoved;

// Operations beyond the catalog (Call.fn >= kOpBase).
#define TF_REMOTE_OPS(X)                                                                          \
  X(DeviceInfo, 0x10000)  /* (dev) -> (count, driver version), blob: DeviceInfo of dev */        \
  X(ParamLayout, 0x10001) /* (func) -> blob: (u32 offset, u32 size)* */                           \
  X(ErrorString, 0x10002) /* (code) -> blob: name \0 text */                                      \
  X(Ping, 0x10003)        /* () -> () : round-trip probe */                                       \
  X(HostToDeviceAtStreamTime, 0x10004) /* (dst, n, stream, token), posted: the bytes come   */   \
                                       /* with HostDone(token) when the stream reaches it   */   \
  X(DeviceMemory, 0x10005) /* (dev) -> (total, free): device-wide, for NVML */                   \
  X(DeviceProcesses, 0x10006) /* (dev) -> blob: (u32 pid, u32 0, u64 bytes)* of the clients  */  \
                              /* holding a context on dev */                                    \
  X(WaitStream, 0x10007) /* (stream, budget us): CUDA_ERROR_NOT_READY if still busy after it */  \
  X(WaitEvent, 0x10008)  /* (event, budget us): likewise; the client asks again */            \
  X(MirrorHost, 0x10009) /* (addr, size): the worker maps host memory at the client's address  */\
                         /* and registers it with the driver (device-mapped, portable)         */\
  X(MirrorRelease, 0x1000A) /* (addr): undoes MirrorHost */                                      \
  X(MirrorPush, 0x1000B) /* posted, blob: mirror runs, bulk: their bytes (client -> worker)   */ \
  X(MirrorPull, 0x1000C) /* () -> blob: mirror runs, bulk: their bytes (worker -> client)     */ \
  X(CopyHostByRef, 0x1000D) /* (dst, src, n, stream): a copy whose host side is a mirror or  */  \
                            /* shared memory, read or written when the stream (or a graph    */  \
                            /* captured from it) reaches it; stream ~0: synchronous          */  \
  X(ShareHost, 0x1000E) /* (addr, size): the memfd passed just before over the transport     */  \
                        /* (shared memory only) is mapped at addr and registered: pinned     */  \
                        /* memory both processes use, with nothing to exchange               */  \
  X(ShareDevice, 0x1000F) /* (base, size) -> (bytes, buffer id), then a descriptor over the   */ \
                         /* transport: the device allocation's memory, which the client maps */  \
                         /* (shared memory, a driver that can: the soft GPU); NOT_SUPPORTED   */ \
                         /* where it cannot                                                   */ \
  X(AwaitHostCopy, 0x10010) /* (ptr, n, buffer id): waits as a synchronous copy waits for     */ \
                            /* earlier work; then the client copies through its mapping.      */ \
                            /* NOT_SUPPORTED when [ptr, ptr + n) is no longer in that buffer  */ \
  X(ShareManaged, 0x10011) /* (base) -> (bytes), then a descriptor: the client's managed      */ \
                           /* allocation's memory, which it maps at base; the worker stops    */ \
                           /* mirroring it (shared memory, the soft GPU); else NOT_SUPPORTED  */ \
  X(TierStatus, 0x10012) /* admin: () -> (tenant sessions), blob: TierRecord* (tier_control.h) */ \
  X(TierControl, 0x10013) /* admin: (TierAction, min idle ms, wait ms) -> (clients it moved):  */ \
                          /* freeze or thaw the clients idle at least that long, now          */ \
  X(MigrateOut, 0x10014) /* admin: (pid, wait ms), blob: MigrateOrder (migration.h) ->        */ \
                         /* (pause ns, bytes moved, resume id): the client moves to the target */\
                         /* at its next synchronous call; it stays here if anything fails     */ \
  X(Adopt, 0x10015) /* admin, worker -> worker: blob: MigrationImage, bulk: memory contents    */ \
                    /* -> (resume id): the session re-created here, parked until it resumes */

inline constexpr uint32_t kOpBase = 0x10000;
enum class Op : uint32_t {
#define TF_X(name, value) name = value,
  TF_REMOTE_OPS(TF_X)
#undef TF_X
};

// The fixed header of every frame. `result` is a CUresult in replies, 0 in requests.
struct FrameHeader {
  uint16_t kind = 0;
  uint16_t flags = 0;
  uint32_t fn = 0;        // catalog index (tf::cuda::FnId) or Op
  uint32_t argsLen = 0;
  int32_t result = 0;
  uint64_t bulkLen = 0;
  uint64_t ctx = 0;       // the caller's current context (a worker handle), 0 if none
};
inline constexpr size_t kHeaderSize = 32;
static_assert(sizeof(FrameHeader) == kHeaderSize);

void encodeHeader(const FrameHeader& h, uint8_t out[kHeaderSize]);
// Checks kind, lengths and caps; garbage is DataLoss, never a crash.
Status decodeHeader(const uint8_t in[kHeaderSize], FrameHeader* h);

// Appends little-endian values; used for args.
class Writer {
public:
  void u8(uint8_t v) { buf_.push_back(v); }
  void u32(uint32_t v) { put(&v, 4); }
  void u64(uint64_t v) { put(&v, 8); }
  void bytes(const void* p, size_t n) { put(p, n); }
  // u32 length + bytes.
  void blob(const void* p, size_t n) {
    u32(static_cast<uint32_t>(n));
    put(p, n);
  }
  void str(std::string_view s) { blob(s.data(), s.size()); }
  const uint8_t* data() const { return buf_.data(); }
  size_t size() const { return buf_.size(); }
  void clear() { buf_.clear(); }
  std::vector<uint8_t>& buffer() { return buf_; }

private:
  void put(const void* p, size_t n) {
    size_t at = buf_.size();
    buf_.resize(at + n);
    if (n) std::memcpy(buf_.data() + at, p, n);
  }
  std::vector<uint8_t> buf_;
};

// Reads little-endian values with bounds checks. The first failure is sticky: later reads
// return zeros and status() says what went wrong.
class Reader {
public:
  Reader(const void* p, size_t n) : p_(static_cast<const uint8_t*>(p)), n_(n) {}
  uint8_t u8() { uint8_t v = 0; get(&v, 1); return v; }
  uint32_t u32() { uint32_t v = 0; get(&v, 4); return v; }
  uint64_t u64() { uint64_t v = 0; get(&v, 8); return v; }
  // A u32-length blob of at most `cap` bytes, as a view into the input.
  std::string_view blob(size_t cap);
  bool ok() const { return ok_; }
  size_t remaining() const { return n_ - at_; }
  Status status() const {
    return ok_ ? Status::ok() : dataLoss(std::string("malformed message: ") + why_);
  }
  void fail(const char* why) {
    if (ok_) why_ = why;
    ok_ = false;
  }

private:
  void get(void* out, size_t n) {
    if (!ok_ || n > n_ - at_) {
      fail("truncated");
      return;
    }
    std::memcpy(out, p_ + at_, n);
    at_ += n;
  }
  const uint8_t* p_;
  size_t n_;
  size_t at_ = 0;
  bool ok_ = true;
  const char* why_ = "";
};

// ---- Calls: the args of a Call frame are scalars, then one blob. ----------------------------
inline constexpr size_t kMaxScalars = 16;

struct CallArgs {
  uint64_t s[kMaxScalars] = {};
  uint32_t count = 0;
  std::string_view blob; // view into the frame's args
};
void encodeCall(Writer& w, const uint64_t* scalars, uint32_t count, const void* blob,
                size_t blobSize);
Status decodeCall(const void* args, size_t size, CallArgs* out);
// Replies use the same layout (out values, then a blob).
inline void encodeReply(Writer& w, const uint64_t* outs, uint32_t count, const void* blob,
                        size_t blobSize) {
  encodeCall(w, outs, count, blob, blobSize);
}
inline Status decodeReply(const void* args, size_t size, CallArgs* out) {
  return decodeCall(args, size, out);
}

// ---- Kernel launches: the blob of cuLaunchKernel / cuLaunchKernelEx calls -------------------
// u32 count, count x (u32 offset, u32 size), u32-length packed parameter buffer,
// u32 attribute count, raw CUlaunchAttribute records.
inline constexpr uint32_t kMaxParams = 4096;
inline constexpr uint32_t kMaxLaunchAttrs = 64;
struct ParamSlot {
  uint32_t offset = 0, size = 0;
};
struct LaunchBlob {
  std::vector<ParamSlot> slots;
  std::string_view params;
  std::string_view attrs;
  uint32_t attrCount = 0;
};
void encodeLaunch(Writer& w, const ParamSlot* slots, uint32_t count, const void* params,
                  size_t paramsSize, const void* attrs, uint32_t attrCount, size_t attrSize);
// Every slot must lie inside the parameter buffer.
Status decodeLaunch(std::string_view blob, size_t attrSize, LaunchBlob* out);

// ---- Mirrored host memory (mirror.h): what changed, as (address, length) runs -------------
// u32 count, count x (u64 addr, u64 len); the bytes travel as the frame's bulk, in order.
inline constexpr uint32_t kMaxMirrorRuns = 65536;
struct MirrorRun {
  uint64_t addr = 0, len = 0;
};
void encodeMirrorRuns(Writer& w, const std::vector<MirrorRun>& runs);
// Checks the count, that no run wraps, and that the lengths add up to `bulkLen`.
Status decodeMirrorRuns(std::string_view blob, uint64_t bulkLen, std::vector<MirrorRun>* out);

// ---- Handshake ------------------------------------------------------------------------------
struct Hello {
  uint32_t magic = kHelloMagic;
  uint16_t version = kProtocolVersion;
  uint32_t catalogSize = 0; // both sides must agree on the catalog's indexes
  uint32_t pid = 0;
  std::string host;
  std::string token;
  // 0: a new session. Otherwise the id a HelloReply gave: this connection becomes that
  // session's host channel, on which the worker asks for host functions (cuLaunchHostFunc)
  // and the client says when they have returned.
  uint64_t attachTo = 0;
  // What the session is for: kRoleDriver (a libcuda stub), kRoleMonitor (the NVML stub:
  // reads device facts and who uses the device; never listed as a process itself) or
  // kRoleAdmin.
  uint32_t role = 0;
};
inline constexpr uint32_t kRoleDriver = 0;
inline constexpr uint32_t kRoleMonitor = 1;
// The node's hypervisor: TierStatus and TierControl only, with the worker's admin token (never
// a tenant's); tenants' sessions cannot make those calls.
inline constexpr uint32_t kRoleAdmin = 2;
// A client whose session moved here (kFlagMoved): attachTo is the resume id, the token its
// tenant's; the parked session becomes this connection's.
inline constexpr uint32_t kRoleResume = 3;
void encodeHello(Writer& w, const Hello& h);
// This process's Hello: its pid, host name and catalog size, with `token` and `role`.
Hello localHello(const std::string& token, uint32_t role);
// Sends `hello` over t and reads the HelloReply: *result gets its CUresult, *ids its values
// (protocol version, session id; views into *args). A reply that is not a HelloReply is DataLoss.
Status sayHello(Transport& t, const Hello& hello, int32_t* result, std::vector<uint8_t>* args, CallArgs* ids);
Status decodeHello(const void* args, size_t size, Hello* out);

// Device facts the stub answers locally (one DeviceInfo op per device at cuInit).
struct DeviceInfo {
  char name[256] = {};
  uint8_t uuid[16] = {};
  uint64_t totalMem = 0;
  int32_t attrs[256] = {}; // indexed by CUdevice_attribute; unknown ones 0
};

// ---- Frames on a transport ------------------------------------------------------------------
// Writes header, args and the bulk pieces with one vectored write.
Status sendFrame(Transport& t, const FrameHeader& h, const void* args, const iovec* bulk,
                 int bulkCount);
Status readHeader(Transport& t, FrameHeader* h);
// Reads a frame's args (argsLen is already capped by decodeHeader).
Status readArgs(Transport& t, const FrameHeader& h, std::vector<uint8_t>* args);
// Reads and drops n bytes of bulk (to stay in step after refusing a call).
Status skipBulk(Transport& t, uint64_t n);

// FNV-1a 64 over a module image: the key of the worker's image cache.
uint64_t fnv1a64(const void* data, size_t size);

} // namespace tf::remoting
