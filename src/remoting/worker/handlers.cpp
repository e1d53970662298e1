// The worker's side of every forwarded call: check that each handle and pointer the client
// names is its own, run the call on the driver, record what it created. Wire shapes (which
// scalars, in which order) are the stub's (src/remoting/stub): scalars in parameter order with
// out-pointers left out; out values in parameter order.
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>

#include "cuda/catalog.h"
#include "remoting/worker/handlers.h"

namespace tf::remoting {


namespace {

// Async host-to-device staging kept until the context synchronises (flow control: capped).
constexpr uint64_t kMaxPendingStaging = uint64_t(256) << 20;
struct Pending {
  std::vector<std::shared_ptr<void>> buffers;
  uint64_t bytes = 0;
};
thread_local Pending pending; // one session per thread

// Sizes from the wire multiply and add without wrapping; a result that would wrap is "too
// big", which no allocation contains.
constexpr uint64_t kTooBig = ~uint64_t(0);
uint64_t mul(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_mul_overflow(a, b, &r) ? kTooBig : r;
}
uint64_t add(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_add_overflow(a, b, &r) ? kTooBig : r;
}

bool perThread(uint32_t fn) { return cuda::catalogEntry(static_cast<int>(fn)).perThread; }

} // namespace


namespace {

CUresult syncStream(Session& s, uint64_t stream, bool pt) {
  auto f = pt ? s.d().fn<decltype(&::cuStreamSynchronize)>(FnId::cuStreamSynchronize_ptsz)
              : s.d().fn<decltype(&::cuStreamSynchronize)>(FnId::cuStreamSynchronize);
  return f ? f(H(CUstream)(stream)) : CUDA_ERROR_NOT_SUPPORTED;
}

// Whether a stream is being captured into a graph. Copies the worker stages in its own buffers
// must not be captured: a graph would read them after they are gone.
bool capturing(Session& s, uint64_t stream, bool pt) {
  auto f = pt ? s.d().fn<decltype(&::cuStreamIsCapturing)>(FnId::cuStreamIsCapturing_ptsz)
              : s.d().fn<decltype(&::cuStreamIsCapturing)>(FnId::cuStreamIsCapturing);
  CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
  return f && f(H(CUstream)(stream), &st) == CUDA_SUCCESS && st != CU_STREAM_CAPTURE_STATUS_NONE;
}

void dropStaging(Session& s) {
  if (pending.buffers.empty()) return;
  auto sync = s.d().fn<decltype(&::cuCtxSynchronize)>(FnId::cuCtxSynchronize);
  if (sync) sync();
  pending.buffers.clear();
  pending.bytes = 0;
}

// Device-to-host replies: the first chunk is copied here, so the call's own result (a sticky
// error from an earlier kernel, say) is what the reply carries; the rest streams afterwards.
CUresult dtohReply(Session& s, CUdeviceptr src, uint64_t n, CallOut& out) {
  DRV_AT(copy, cuMemcpyDtoH_v2, cuMemcpyDtoH_v2);
  size_t first = static_cast<size_t>(std::min<uint64_t>(n, kChunk));
  out.bulk.resize(first);
  CUresult r = copy(out.bulk.data(), src, first);
  if (r != CUDA_SUCCESS) return r;
  out.dtohSrc = src + first;
  out.dtohLen = n - first;
  return CUDA_SUCCESS;
}

} // namespace

CUresult checkSpan(Session& s, CUmemorytype type, CUdeviceptr addr, size_t x, size_t y, size_t z,
                   size_t pitch, size_t height, size_t w, size_t h, size_t d, bool hostByAddress) {
  if (type != CU_MEMORYTYPE_DEVICE && !(type == CU_MEMORYTYPE_HOST && hostByAddress))
    return CUDA_SUCCESS;
  if (!w || !h || !d) return CUDA_SUCCESS;
  if (pitch < w && (h > 1 || d > 1)) return CUDA_ERROR_INVALID_VALUE;
  uint64_t start = add(add(addr, x), mul(add(y, mul(z, height)), pitch));
  uint64_t span = add(mul(add(mul(d - 1, height), h - 1), pitch), w);
  if (start == kTooBig || span == kTooBig) return CUDA_ERROR_INVALID_VALUE;
  bool ok = type == CU_MEMORYTYPE_DEVICE ? s.allocationFor(start, span) != nullptr
                                         : s.hostRangeFor(start, span);
  return ok ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

namespace {

// cuMemcpy3D(_Async): host sides travel packed (pitch = width, height = height).
CUresult memcpy3D(Session& s, const CallIn& in, CallOut& out, bool async) {
  if (in.a.blob.size() != sizeof(CUDA_MEMCPY3D)) return CUDA_ERROR_INVALID_VALUE;
  CUDA_MEMCPY3D c;
  std::memcpy(&c, in.a.blob.data(), sizeof(c));
  for (CUmemorytype t : {c.srcMemoryType, c.dstMemoryType})
    if (t != CU_MEMORYTYPE_HOST && t != CU_MEMORYTYPE_DEVICE && t != CU_MEMORYTYPE_ARRAY) return CUDA_ERROR_NOT_SUPPORTED;
  if (c.srcMemoryType == CU_MEMORYTYPE_ARRAY) OWN_ARRAY(H(uint64_t)(c.srcArray));
  if (c.dstMemoryType == CU_MEMORYTYPE_ARRAY) OWN_ARRAY(H(uint64_t)(c.dstArray));
  if (c.srcMemoryType == CU_MEMORYTYPE_HOST && c.dstMemoryType == CU_MEMORYTYPE_HOST)
    return CUDA_ERROR_INVALID_VALUE;
  uint64_t packed = uint64_t(c.WidthInBytes) * c.Height * c.Depth;
  if (c.WidthInBytes > (1ull << 32) || c.Height > (1u << 24) || c.Depth > (1u << 24) ||
      packed > kMaxImage)
    return CUDA_ERROR_INVALID_VALUE;
  if (checkSpan(s, c.srcMemoryType, c.srcDevice, c.srcXInBytes, c.srcY, c.srcZ, c.srcPitch,
                c.srcHeight, c.WidthInBytes, c.Height, c.Depth) ||
      checkSpan(s, c.dstMemoryType, c.dstDevice, c.dstXInBytes, c.dstY, c.dstZ, c.dstPitch,
                c.dstHeight, c.WidthInBytes, c.Height, c.Depth))
    return CUDA_ERROR_INVALID_VALUE;
  std::vector<uint8_t> buf;
  if (c.srcMemoryType == CU_MEMORYTYPE_HOST) {
    if (in.bulkLen != packed) return CUDA_ERROR_INVALID_VALUE;
    buf.resize(packed);
    if (!s.readBulk(buf.data(), packed).isOk()) return CUDA_ERROR_INVALID_VALUE;
    c.srcHost = buf.data();
    c.srcXInBytes = c.srcY = c.srcZ = 0;
    c.srcPitch = c.WidthInBytes;
    c.srcHeight = c.Height;
  }
  if (c.dstMemoryType == CU_MEMORYTYPE_HOST) {
    buf.resize(packed);
    c.dstHost = buf.data();
    c.dstXInBytes = c.dstY = c.dstZ = 0;
    c.dstPitch = c.WidthInBytes;
    c.dstHeight = c.Height;
  }
  if (async) {
    uint64_t stream = in.a.count ? A(0) : 0;
    OWN_STREAM(stream);
    CUresult r = syncStream(s, stream, perThread(in.fn));
    if (r != CUDA_SUCCESS) return r;
  }
  DRV_AT(copy, cuMemcpy3D_v2, cuMemcpy3D_v2);
  CUresult r = copy(&c);
  if (r == CUDA_SUCCESS && c.dstMemoryType == CU_MEMORYTYPE_HOST) out.bulk = std::move(buf);
  return r;
}

CUresult loadImage(Session& s, const CallIn& in, std::shared_ptr<const std::vector<uint8_t>>* img) {
  NEED(2);
  uint64_t hash = A(0), size = A(1);
  if (in.bulkLen) {
    if (in.bulkLen != size || size > kMaxImage) return CUDA_ERROR_INVALID_VALUE;
    auto bytes = std::make_shared<std::vector<uint8_t>>(size + 1, 0); // NUL after PTX text
    if (!s.readBulk(bytes->data(), size).isOk()) return CUDA_ERROR_INVALID_VALUE;
    if (fnv1a64(bytes->data(), size) != hash) return CUDA_ERROR_INVALID_IMAGE;
    s.shared().addImage(hash, bytes);
    *img = std::move(bytes);
    return CUDA_SUCCESS;
  }
  *img = s.shared().findImage(hash);
  return *img ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND; // the client then sends the bytes
}

std::string nameArg(const CallIn& in) {
  std::string n(in.a.blob);
  return n.find('\0') == std::string::npos ? n : std::string();
}

} // namespace

CUresult kernelParams(Session& s, uint64_t func, std::string_view blob, LaunchBlob* lb,
                      std::vector<void*>* ptrs) {
  if (!decodeLaunch(blob, sizeof(CUlaunchAttribute), lb).isOk()) return CUDA_ERROR_INVALID_VALUE;
  // The driver reads as many parameters, of the sizes, as the kernel declares: the launch
  // must carry exactly those, inside its buffer (decodeLaunch checked the buffer bounds).
  const std::vector<ParamSlot>* layout = nullptr;
  CUresult lr = layoutOf(s, func, &layout);
  if (lr != CUDA_SUCCESS) return lr;
  if (layout->size() != lb->slots.size()) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 0; i < lb->slots.size(); ++i)
    if (lb->slots[i].size != (*layout)[i].size) return CUDA_ERROR_INVALID_VALUE;
  // A pointer into another client's memory (any aligned word: pointers inside structs too).
  if (s.foreignPointerIn(lb->params)) return CUDA_ERROR_INVALID_VALUE;
  ptrs->resize(lb->slots.size());
  for (size_t i = 0; i < lb->slots.size(); ++i)
    (*ptrs)[i] = const_cast<char*>(lb->params.data()) + lb->slots[i].offset;
  return CUDA_SUCCESS;
}

namespace {

CUresult launch(Session& s, const CallIn& in) {
  NEED(9);
  OWN_FUNC(A(0));
  OWN_STREAM(A(8));
  LaunchBlob lb;
  std::vector<void*> ptrs;
  if (CUresult r = kernelParams(s, A(0), in.a.blob, &lb, &ptrs); r != CUDA_SUCCESS) return r;
  void** params = ptrs.empty() ? nullptr : ptrs.data();
  switch (static_cast<FnId>(in.fn)) {
  CASE2(cuLaunchKernel, cuLaunchKernel_ptsz) {
    DRV(cuLaunchKernel);
    return f(H(CUfunction)(A(0)), A(1), A(2), A(3), A(4), A(5), A(6), A(7), H(CUstream)(A(8)),
             params, nullptr);
  }
  CASE2(cuLaunchCooperativeKernel, cuLaunchCooperativeKernel_ptsz) {
    DRV(cuLaunchCooperativeKernel);
    return f(H(CUfunction)(A(0)), A(1), A(2), A(3), A(4), A(5), A(6), A(7), H(CUstream)(A(8)),
             params);
  }
  CASE2(cuLaunchKernelEx, cuLaunchKernelEx_ptsz) {
    DRV(cuLaunchKernelEx);
    std::vector<CUlaunchAttribute> attrs(lb.attrCount);
    if (lb.attrCount) std::memcpy(attrs.data(), lb.attrs.data(), lb.attrs.size());
    CUlaunchConfig cfg{};
    cfg.gridDimX = A(1), cfg.gridDimY = A(2), cfg.gridDimZ = A(3);
    cfg.blockDimX = A(4), cfg.blockDimY = A(5), cfg.blockDimZ = A(6);
    cfg.sharedMemBytes = A(7);
    cfg.hStream = H(CUstream)(A(8));
    cfg.attrs = attrs.data();
    cfg.numAttrs = lb.attrCount;
    return f(&cfg, H(CUfunction)(A(0)), params, nullptr);
  }
  default: return CUDA_ERROR_NOT_SUPPORTED;
  }
}

// An async host-to-device copy from pinned memory that a host function earlier on the stream
// may still write: a host function on the stream fetches the bytes into staging when the
// stream gets there, then the copy runs from staging.
CUresult hostToDeviceAtStreamTime(Session& s, const CallIn& in) {
  NEED(4);
  uint64_t dst = A(0), n = A(1), stream = A(2), token = A(3);
  DPTR(dst, n);
  OWN_STREAM(stream);
  if (n > kMaxImage) return CUDA_ERROR_INVALID_VALUE;
  if (capturing(s, stream, false)) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED; // see above
  DRV_AT(hostFn, cuLaunchHostFunc, cuLaunchHostFunc);
  DRV_AT(copy, cuMemcpyHtoDAsync_v2, cuMemcpyHtoDAsync_v2);
  if (pending.bytes + n > kMaxPendingStaging) dropStaging(s);
  // Pinned staging: a driver may read pageable sources when the copy is queued, and these
  // bytes only arrive when the stream reaches the host function.
  DRV_AT(hostAlloc, cuMemAllocHost_v2, cuMemAllocHost_v2);
  DRV_AT(hostFree, cuMemFreeHost, cuMemFreeHost);
  void* raw = nullptr;
  CUresult ar = hostAlloc(&raw, std::max<uint64_t>(n, 1));
  if (ar != CUDA_SUCCESS) return ar;
  std::shared_ptr<void> buf(raw, [hostFree](void* p) { hostFree(p); });
  s.expectHostBytes(token, buf.get(), n);
  void* arg = s.hostFunctionArg(token);
  CUresult r = hostFn(H(CUstream)(stream), &Session::hostFunctionEntry, arg);
  if (r != CUDA_SUCCESS) {
    Session::dropHostFunctionArg(arg);
    return r;
  }
  r = copy(dst, buf.get(), n, H(CUstream)(stream));
  pending.bytes += n;
  pending.buffers.push_back(std::move(buf));
  return r;
}

// Synchronisation in bounded slices: polls `query` for up to budgetUs (at most 100 ms), then
// answers CUDA_ERROR_NOT_READY and the client asks again. The client's connection is free
// between slices, so its other threads' calls are not stuck behind a long wait.
template <typename Q> CUresult boundedWait(Q&& query, uint64_t budgetUs) {
  auto start = std::chrono::steady_clock::now();
  auto budget = std::chrono::microseconds(std::min<uint64_t>(budgetUs, 100000));
  for (int i = 0;; ++i) {
    CUresult r = query();
    if (r != CUDA_ERROR_NOT_READY) return r;
    auto spent = std::chrono::steady_clock::now() - start;
    if (spent > budget) return CUDA_ERROR_NOT_READY;
    if (spent < std::chrono::microseconds(50)) std::this_thread::yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

// A context of this session on dev (created once), made current.
CUresult sessionContext(Session& s, int dev) {
  auto it = s.primaries().find(dev);
  if (it == s.primaries().end()) {
    DRV_AT(create, cuCtxCreate_v2, cuCtxCreate_v2);
    CUcontext c = nullptr;
    CUresult r = create(&c, 0, dev);
    if (r != CUDA_SUCCESS) return r;
    s.add(K::Context, H(uint64_t)(c));
    it = s.primaries().emplace(dev, c).first;
  }
  DRV_AT(set, cuCtxSetCurrent, cuCtxSetCurrent);
  return set(it->second);
}

CUresult deviceMemory(Session& s, const CallIn& in, CallOut& out) {
  NEED(1);
  CUresult r = sessionContext(s, static_cast<int>(A(0)));
  if (r != CUDA_SUCCESS) return r;
  DRV_AT(info, cuMemGetInfo_v2, cuMemGetInfo_v2);
  size_t fr = 0, total = 0;
  r = info(&fr, &total);
  DRV_AT(set, cuCtxSetCurrent, cuCtxSetCurrent);
  set(s.currentCtx());
  out.put(total);
  out.put(fr);
  return r;
}

CUresult deviceProcesses(Session& s, const CallIn& in, CallOut& out) {
  NEED(1);
  if (A(0) >= 64) return CUDA_ERROR_INVALID_DEVICE;
  std::map<uint32_t, uint64_t> byPid; // one line per process, whatever its connections
  {
    std::lock_guard<std::mutex> lock(s.shared().sessionsMu);
    for (auto& [key, info] : s.shared().sessions)
      if (info->devices.load() & (uint64_t(1) << A(0))) byPid[info->pid] += info->bytes.load();
  }
  for (auto& [pid, bytes] : byPid) {
    uint32_t head[2] = {pid, 0};
    out.blob.append(reinterpret_cast<const char*>(head), sizeof(head));
    out.blob.append(reinterpret_cast<const char*>(&bytes), sizeof(bytes));
  }
  return CUDA_SUCCESS;
}

CUresult deviceInfo(Session& s, const CallIn& in, CallOut& out) {
  NEED(1);
  DRV_AT(count, cuDeviceGetCount, cuDeviceGetCount);
  DRV_AT(version, cuDriverGetVersion, cuDriverGetVersion);
  DRV_AT(get, cuDeviceGet, cuDeviceGet);
  DRV_AT(name, cuDeviceGetName, cuDeviceGetName);
  DRV_AT(uuid, cuDeviceGetUuid_v2, cuDeviceGetUuid_v2);
  DRV_AT(total, cuDeviceTotalMem_v2, cuDeviceTotalMem_v2);
  DRV_AT(attr, cuDeviceGetAttribute, cuDeviceGetAttribute);
  int n = 0, v = 0;
  CUresult r = count(&n);
  if (r != CUDA_SUCCESS) return r;
  version(&v);
  out.put(static_cast<uint64_t>(n));
  out.put(static_cast<uint64_t>(v));
  int ordinal = static_cast<int>(A(0));
  if (ordinal < 0 || ordinal >= n) return CUDA_SUCCESS;
  CUdevice dev;
  if ((r = get(&dev, ordinal)) != CUDA_SUCCESS) return r;
  DeviceInfo info;
  name(info.name, sizeof(info.name) - 1, dev);
  CUuuid u{};
  uuid(&u, dev);
  std::memcpy(info.uuid, u.bytes, 16);
  size_t bytes = 0;
  total(&bytes, dev);
  info.totalMem = bytes;
  for (int a = 1; a < 256 && a < CU_DEVICE_ATTRIBUTE_MAX; ++a) {
    int value = 0;
    if (attr(&value, static_cast<CUdevice_attribute>(a), dev) == CUDA_SUCCESS) info.attrs[a] = value;
  }
  out.blob.assign(reinterpret_cast<const char*>(&info), sizeof(info));
  return CUDA_SUCCESS;
}

} // namespace

// The parameter layout of a function or kernel the client owns, from the driver, cached.
CUresult layoutOf(Session& s, uint64_t handle, const std::vector<ParamSlot>** out) {
  auto it = s.layouts().find(handle);
  if (it != s.layouts().end()) {
    *out = &it->second;
    return CUDA_SUCCESS;
  }
  bool isKernel = s.owns(K::Kernel, handle);
  auto kinfo = s.d().fn<decltype(&::cuKernelGetParamInfo)>(FnId::cuKernelGetParamInfo);
  auto finfo = s.d().fn<decltype(&::cuFuncGetParamInfo)>(FnId::cuFuncGetParamInfo);
  std::vector<ParamSlot> slots;
  for (size_t i = 0; i < kMaxParams; ++i) {
    size_t off = 0, size = 0;
    CUresult r = isKernel && kinfo ? kinfo(H(CUkernel)(handle), i, &off, &size)
                 : finfo           ? finfo(H(CUfunction)(handle), i, &off, &size)
                                   : CUDA_ERROR_NOT_SUPPORTED;
    if (r == CUDA_ERROR_NOT_SUPPORTED && i == 0) return r;
    if (r != CUDA_SUCCESS) break;
    ParamSlot p;
    p.offset = static_cast<uint32_t>(off);
    p.size = static_cast<uint32_t>(size);
    slots.push_back(p);
  }
  *out = &(s.layouts()[handle] = std::move(slots));
  return CUDA_SUCCESS;
}

namespace {

CUresult paramLayout(Session& s, const CallIn& in, CallOut& out) {
  NEED(1);
  OWN_FUNC(A(0));
  const std::vector<ParamSlot>* layout = nullptr;
  CUresult r = layoutOf(s, A(0), &layout);
  if (r != CUDA_SUCCESS) return r;
  for (auto& p : *layout) {
    uint32_t pair[2] = {p.offset, p.size};
    out.blob.append(reinterpret_cast<const char*>(pair), sizeof(pair));
  }
  return CUDA_SUCCESS;
}

CUresult errorString(Session& s, const CallIn& in, CallOut& out) {
  NEED(1);
  DRV_AT(name, cuGetErrorName, cuGetErrorName);
  DRV_AT(text, cuGetErrorString, cuGetErrorString);
  const char* n = nullptr;
  const char* t = nullptr;
  CUresult r = name(static_cast<CUresult>(A(0)), &n);
  if (r != CUDA_SUCCESS) return r;
  text(static_cast<CUresult>(A(0)), &t);
  out.blob = std::string(n ? n : "") + '\0' + (t ? t : "");
  return CUDA_SUCCESS;
}

} // namespace

CUresult dispatch(Session& s, const CallIn& in, CallOut& out) {
  if (in.fn >= kOpBase) {
    switch (static_cast<Op>(in.fn)) {
    case Op::DeviceInfo: return deviceInfo(s, in, out);
    case Op::ParamLayout: return paramLayout(s, in, out);
    case Op::ErrorString: return errorString(s, in, out);
    case Op::Ping: return CUDA_SUCCESS;
    case Op::HostToDeviceAtStreamTime: return hostToDeviceAtStreamTime(s, in);
    case Op::DeviceMemory: return deviceMemory(s, in, out);
    case Op::DeviceProcesses: return deviceProcesses(s, in, out);
    case Op::WaitStream: {
      NEED(2);
      OWN_STREAM(A(0));
      DRV_AT(query, cuStreamQuery, cuStreamQuery);
      return boundedWait([&] { return query(H(CUstream)(A(0))); }, A(1));
    }
    case Op::WaitEvent: {
      NEED(2);
      OWN(Event, A(0));
      DRV_AT(query, cuEventQuery, cuEventQuery);
      return boundedWait([&] { return query(H(CUevent)(A(0))); }, A(1));
    }
    case Op::MirrorHost:
    case Op::MirrorRelease:
    case Op::MirrorPush:
    case Op::MirrorPull:
    case Op::CopyHostByRef:
    case Op::ShareHost: return dispatchMirror(s, in, out);
    case Op::ShareDevice:
    case Op::AwaitHostCopy: return dispatchSharedDevice(s, in, out);
    }
    return CUDA_ERROR_NOT_SUPPORTED;
  }
  if (in.fn >= static_cast<uint32_t>(FnId::Count)) return CUDA_ERROR_NOT_SUPPORTED;
  switch (static_cast<FnId>(in.fn)) {
  // ---- contexts --------------------------------------------------------------------------
  case FnId::cuDevicePrimaryCtxRetain: {
    NEED(1);
    int dev = static_cast<int>(A(0));
    auto it = s.primaries().find(dev);
    if (it == s.primaries().end()) {
      DRV_AT(create, cuCtxCreate_v2, cuCtxCreate_v2);
      CUcontext c = nullptr;
      CUresult r = create(&c, 0, dev);
      if (r != CUDA_SUCCESS) return r;
      DRV_AT(set, cuCtxSetCurrent, cuCtxSetCurrent);
      set(s.currentCtx()); // creating pushed it; the call's context stays current
      s.add(K::Context, H(uint64_t)(c));
      s.usesDevice(dev);
      it = s.primaries().emplace(dev, c).first;
    }
    out.put(H(uint64_t)(it->second));
    return CUDA_SUCCESS;
  }
  CASE2(cuDevicePrimaryCtxRelease, cuDevicePrimaryCtxRelease_v2)
  CASE2(cuDevicePrimaryCtxReset, cuDevicePrimaryCtxReset_v2)
  CASE2(cuDevicePrimaryCtxSetFlags, cuDevicePrimaryCtxSetFlags_v2)
    return CUDA_SUCCESS; // the client's primary context lives until it disconnects
  case FnId::cuDevicePrimaryCtxGetState: {
    NEED(1);
    out.put(0);
    out.put(s.primaries().count(static_cast<int>(A(0))) ? 1 : 0);
    return CUDA_SUCCESS;
  }
  case FnId::cuCtxCreate_v2: {
    NEED(2);
    DRV_AT(create, cuCtxCreate_v2, cuCtxCreate_v2);
    CUcontext c = nullptr;
    CUresult r = create(&c, static_cast<unsigned>(A(0)), static_cast<CUdevice>(A(1)));
    if (r != CUDA_SUCCESS) return r;
    DRV_AT(set, cuCtxSetCurrent, cuCtxSetCurrent);
    set(s.currentCtx());
    s.add(K::Context, H(uint64_t)(c));
    s.usesDevice(static_cast<int>(A(1)));
    out.put(H(uint64_t)(c));
    return CUDA_SUCCESS;
  }
  case FnId::cuCtxDestroy_v2: {
    NEED(1);
    OWN(Context, A(0));
    for (auto& [dev, c] : s.primaries())
      if (H(uint64_t)(c) == A(0)) return CUDA_ERROR_INVALID_CONTEXT;
    if (H(uint64_t)(s.currentCtx()) == A(0)) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
    DRV(cuCtxDestroy_v2);
    CUresult r = f(H(CUcontext)(A(0)));
    if (r == CUDA_SUCCESS) s.remove(K::Context, A(0));
    return r;
  }
  CASE2(cuCtxSynchronize, cuCtxSynchronize_v2) {
    DRV_AT(sync, cuCtxSynchronize, cuCtxSynchronize);
    CUresult r = sync();
    pending.buffers.clear();
    pending.bytes = 0;
    return r;
  }
  case FnId::cuCtxResetPersistingL2Cache: {
    DRV(cuCtxResetPersistingL2Cache);
    return f();
  }
  case FnId::cuCtxSetSharedMemConfig: {
    NEED(1);
    DRV(cuCtxSetSharedMemConfig);
    return f(static_cast<CUsharedconfig>(A(0)));
  }
  case FnId::cuCtxGetSharedMemConfig: {
    DRV(cuCtxGetSharedMemConfig);
    CUsharedconfig c{};
    CUresult r = f(&c);
    out.put(static_cast<uint64_t>(c));
    return r;
  }
  case FnId::cuDeviceGetGraphMemAttribute: {
    NEED(2);
    DRV(cuDeviceGetGraphMemAttribute);
    cuuint64_t v = 0;
    CUresult r = f(static_cast<CUdevice>(A(0)), static_cast<CUgraphMem_attribute>(A(1)), &v);
    out.put(static_cast<uint64_t>(v));
    return r;
  }
  case FnId::cuDeviceSetGraphMemAttribute: {
    NEED(3);
    DRV(cuDeviceSetGraphMemAttribute);
    cuuint64_t v = A(2);
    return f(static_cast<CUdevice>(A(0)), static_cast<CUgraphMem_attribute>(A(1)), &v);
  }
  case FnId::cuDeviceGraphMemTrim: {
    NEED(1);
    DRV(cuDeviceGraphMemTrim);
    return f(static_cast<CUdevice>(A(0)));
  }
  case FnId::cuProfilerStart: {
    DRV(cuProfilerStart);
    return f();
  }
  case FnId::cuProfilerStop: {
    DRV(cuProfilerStop);
    return f();
  }
  case FnId::cuCtxGetLimit: {
    NEED(1);
    DRV(cuCtxGetLimit);
    size_t v = 0;
    CUresult r = f(&v, static_cast<CUlimit>(A(0)));
    out.put(v);
    return r;
  }
  case FnId::cuCtxSetLimit: {
    NEED(2);
    DRV(cuCtxSetLimit);
    return f(static_cast<CUlimit>(A(0)), A(1));
  }
  case FnId::cuCtxGetCacheConfig: {
    DRV(cuCtxGetCacheConfig);
    CUfunc_cache c{};
    CUresult r = f(&c);
    out.put(c);
    return r;
  }
  case FnId::cuCtxSetCacheConfig: {
    NEED(1);
    DRV(cuCtxSetCacheConfig);
    return f(static_cast<CUfunc_cache>(A(0)));
  }
  case FnId::cuCtxGetStreamPriorityRange: {
    DRV(cuCtxGetStreamPriorityRange);
    int lo = 0, hi = 0;
    CUresult r = f(&lo, &hi);
    out.put(static_cast<uint64_t>(static_cast<int64_t>(lo)));
    out.put(static_cast<uint64_t>(static_cast<int64_t>(hi)));
    return r;
  }
  case FnId::cuCtxGetFlags: {
    DRV(cuCtxGetFlags);
    unsigned v = 0;
    CUresult r = f(&v);
    out.put(v);
    return r;
  }
  case FnId::cuCtxSetFlags: {
    NEED(1);
    DRV(cuCtxSetFlags);
    return f(static_cast<unsigned>(A(0)));
  }
  case FnId::cuMemGetInfo_v2: {
    DRV(cuMemGetInfo_v2);
    size_t fr = 0, total = 0;
    CUresult r = f(&fr, &total);
    out.put(fr);
    out.put(total);
    return r;
  }
  // ---- memory ----------------------------------------------------------------------------
  case FnId::cuMemAlloc_v2: {
    NEED(1);
    DRV(cuMemAlloc_v2);
    CUdeviceptr p = 0;
    CUresult r = f(&p, A(0));
    if (r == CUDA_SUCCESS) s.addAllocation(p, A(0), true);
    out.put(p);
    return r;
  }
  case FnId::cuMemAllocPitch_v2: {
    NEED(3);
    DRV(cuMemAllocPitch_v2);
    CUdeviceptr p = 0;
    size_t pitch = 0;
    CUresult r = f(&p, &pitch, A(0), A(1), static_cast<unsigned>(A(2)));
    if (r == CUDA_SUCCESS) s.addAllocation(p, uint64_t(pitch) * A(1), true);
    out.put(p);
    out.put(pitch);
    return r;
  }
  CASE2(cuMemAllocAsync, cuMemAllocAsync_ptsz) {
    NEED(2);
    OWN_STREAM(A(1));
    DRV(cuMemAllocAsync);
    CUdeviceptr p = 0;
    CUresult r = f(&p, A(0), H(CUstream)(A(1)));
    if (r == CUDA_SUCCESS) s.addAllocation(p, A(0), true);
    out.put(p);
    return r;
  }
  case FnId::cuMemFree_v2: {
    NEED(1);
    DRV(cuMemFree_v2);
    if (A(0) == 0) return f(0);
    if (!s.removeAllocation(A(0))) return CUDA_ERROR_INVALID_VALUE;
    // Memory importers hold is freed when the last of them closes it.
    if (!s.shared().ipc.ownerReleases(IpcKind::Memory, &s, A(0))) return CUDA_SUCCESS;
    CUresult r = f(A(0));
    s.mirrors().remove(A(0)); // managed memory
    return r;
  }
  case FnId::cuMemAllocManaged:
  CASE2(cuMemPrefetchAsync_v2, cuMemPrefetchAsync_v2_ptsz)
  case FnId::cuMemAdvise_v2:
  case FnId::cuMemRangeGetAttribute:
    return dispatchMirror(s, in, out);
  CASE2(cuMemFreeAsync, cuMemFreeAsync_ptsz) {
    NEED(2);
    OWN_STREAM(A(1));
    DRV(cuMemFreeAsync);
    if (!s.removeAllocation(A(0))) return CUDA_ERROR_INVALID_VALUE;
    if (!s.shared().ipc.ownerReleases(IpcKind::Memory, &s, A(0))) return CUDA_SUCCESS;
    return f(A(0), H(CUstream)(A(1)));
  }
  // ---- memory pools: the client's own, and the device's default (shared by the worker) -----
  case FnId::cuDeviceGetDefaultMemPool:
  case FnId::cuDeviceGetMemPool: {
    NEED(1);
    DRV(cuDeviceGetDefaultMemPool);
    CUmemoryPool p = nullptr;
    CUresult r = f(&p, static_cast<CUdevice>(A(0)));
    if (r == CUDA_SUCCESS && !s.owns(K::Pool, H(uint64_t)(p))) s.add(K::SharedPool, H(uint64_t)(p));
    out.put(H(uint64_t)(p));
    return r;
  }
  case FnId::cuMemPoolCreate: {
    if (in.a.blob.size() != sizeof(CUmemPoolProps)) return CUDA_ERROR_INVALID_VALUE;
    CUmemPoolProps props;
    std::memcpy(&props, in.a.blob.data(), sizeof(props));
    DRV(cuMemPoolCreate);
    CUmemoryPool p = nullptr;
    CUresult r = f(&p, &props);
    if (r == CUDA_SUCCESS) s.add(K::Pool, H(uint64_t)(p));
    out.put(H(uint64_t)(p));
    return r;
  }
  case FnId::cuMemPoolDestroy: {
    NEED(1);
    OWN(Pool, A(0));
    DRV(cuMemPoolDestroy);
    CUresult r = f(H(CUmemoryPool)(A(0)));
    if (r == CUDA_SUCCESS) s.remove(K::Pool, A(0));
    return r;
  }
  case FnId::cuMemPoolGetAttribute:
  case FnId::cuMemPoolSetAttribute: {
    NEED(3);
    if (!s.owns(K::Pool, A(0)) && !s.owns(K::SharedPool, A(0))) return CUDA_ERROR_INVALID_HANDLE;
    auto attr = static_cast<CUmemPool_attribute>(A(1));
    bool isInt = attr == CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES ||
                 attr == CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC ||
                 attr == CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES;
    uint64_t v64 = A(2);
    int v32 = static_cast<int>(A(2));
    void* value = isInt ? static_cast<void*>(&v32) : static_cast<void*>(&v64);
    CUresult r;
    if (static_cast<FnId>(in.fn) == FnId::cuMemPoolSetAttribute) {
      DRV(cuMemPoolSetAttribute);
      r = f(H(CUmemoryPool)(A(0)), attr, value);
    } else {
      DRV(cuMemPoolGetAttribute);
      r = f(H(CUmemoryPool)(A(0)), attr, value);
    }
    out.put(isInt ? static_cast<uint64_t>(v32) : v64);
    return r;
  }
  case FnId::cuMemPoolTrimTo: {
    NEED(2);
    if (!s.owns(K::Pool, A(0)) && !s.owns(K::SharedPool, A(0))) return CUDA_ERROR_INVALID_HANDLE;
    DRV(cuMemPoolTrimTo);
    return f(H(CUmemoryPool)(A(0)), A(1));
  }
  CASE2(cuMemAllocFromPoolAsync, cuMemAllocFromPoolAsync_ptsz) {
    NEED(3);
    if (!s.owns(K::Pool, A(1)) && !s.owns(K::SharedPool, A(1))) return CUDA_ERROR_INVALID_HANDLE;
    OWN_STREAM(A(2));
    DRV(cuMemAllocFromPoolAsync);
    CUdeviceptr p = 0;
    CUresult r = f(&p, A(0), H(CUmemoryPool)(A(1)), H(CUstream)(A(2)));
    if (r == CUDA_SUCCESS) s.addAllocation(p, A(0), true);
    out.put(p);
    return r;
  }
  // ---- virtual memory management ------------------------------------------------------------
  case FnId::cuMemGetAllocationGranularity: {
    NEED(1);
    if (in.a.blob.size() != sizeof(CUmemAllocationProp)) return CUDA_ERROR_INVALID_VALUE;
    CUmemAllocationProp prop;
    std::memcpy(&prop, in.a.blob.data(), sizeof(prop));
    prop.win32HandleMetaData = nullptr;
    DRV(cuMemGetAllocationGranularity);
    size_t g = 0;
    CUresult r = f(&g, &prop, static_cast<CUmemAllocationGranularity_flags>(A(0)));
    out.put(g);
    return r;
  }
  case FnId::cuMemCreate: {
    NEED(2);
    if (in.a.blob.size() != sizeof(CUmemAllocationProp)) return CUDA_ERROR_INVALID_VALUE;
    CUmemAllocationProp prop;
    std::memcpy(&prop, in.a.blob.data(), sizeof(prop));
    prop.win32HandleMetaData = nullptr;
    DRV(cuMemCreate);
    CUmemGenericAllocationHandle h = 0;
    CUresult r = f(&h, A(0), &prop, A(1));
    if (r == CUDA_SUCCESS) {
      s.memHandles()[h] = {A(0), 1};
      s.accountBytes(static_cast<int64_t>(A(0)));
    }
    out.put(h);
    return r;
  }
  case FnId::cuMemRelease: {
    NEED(1);
    auto it = s.memHandles().find(A(0));
    if (it == s.memHandles().end()) return CUDA_ERROR_INVALID_VALUE;
    DRV(cuMemRelease);
    CUresult r = f(A(0));
    if (r == CUDA_SUCCESS && --it->second.second == 0) {
      s.accountBytes(-static_cast<int64_t>(it->second.first));
      s.memHandles().erase(it);
    }
    return r;
  }
  case FnId::cuMemGetAllocationPropertiesFromHandle: {
    NEED(1);
    if (!s.memHandles().count(A(0))) return CUDA_ERROR_INVALID_VALUE;
    DRV(cuMemGetAllocationPropertiesFromHandle);
    CUmemAllocationProp prop{};
    CUresult r = f(&prop, A(0));
    prop.win32HandleMetaData = nullptr;
    out.blob.assign(reinterpret_cast<const char*>(&prop), sizeof(prop));
    return r;
  }
  case FnId::cuMemAddressReserve: {
    NEED(4);
    DRV(cuMemAddressReserve);
    CUdeviceptr va = 0;
    CUresult r = f(&va, A(0), A(1), A(2), A(3));
    if (r == CUDA_SUCCESS) s.reservations()[va] = A(0);
    out.put(va);
    return r;
  }
  case FnId::cuMemAddressFree: {
    NEED(2);
    auto it = s.reservations().find(A(0));
    if (it == s.reservations().end() || it->second != A(1)) return CUDA_ERROR_INVALID_VALUE;
    DRV(cuMemAddressFree);
    CUresult r = f(A(0), A(1));
    if (r == CUDA_SUCCESS) s.reservations().erase(it);
    return r;
  }
  case FnId::cuMemMap: {
    NEED(5);
    uint64_t va = A(0), size = A(1);
    if (!s.memHandles().count(A(3))) return CUDA_ERROR_INVALID_VALUE;
    bool inside = false; // only inside the client's own reservations
    for (auto& [base, len] : s.reservations())
      if (va >= base && size <= len && va - base <= len - size) inside = true;
    if (!inside) return CUDA_ERROR_INVALID_VALUE;
    DRV(cuMemMap);
    CUresult r = f(va, size, A(2), A(3), A(4));
    if (r == CUDA_SUCCESS) s.addMapping(va, size);
    return r;
  }
  case FnId::cuMemUnmap: {
    NEED(2);
    auto it = s.mappings().find(A(0));
    if (it == s.mappings().end() || it->second != A(1)) return CUDA_ERROR_INVALID_VALUE;
    DRV(cuMemUnmap);
    CUresult r = f(A(0), A(1));
    if (r == CUDA_SUCCESS) s.removeMapping(A(0));
    return r;
  }
  case FnId::cuMemSetAccess: {
    NEED(2);
    DPTR(A(0), A(1));
    if (in.a.blob.empty() || in.a.blob.size() % sizeof(CUmemAccessDesc)) return CUDA_ERROR_INVALID_VALUE;
    std::vector<CUmemAccessDesc> desc(in.a.blob.size() / sizeof(CUmemAccessDesc));
    std::memcpy(desc.data(), in.a.blob.data(), in.a.blob.size());
    DRV(cuMemSetAccess);
    return f(A(0), A(1), desc.data(), desc.size());
  }
  case FnId::cuMemGetAccess: {
    NEED(1);
    DPTR(A(0), 1);
    if (in.a.blob.size() != sizeof(CUmemLocation)) return CUDA_ERROR_INVALID_VALUE;
    CUmemLocation loc;
    std::memcpy(&loc, in.a.blob.data(), sizeof(loc));
    DRV(cuMemGetAccess);
    unsigned long long flags = 0;
    CUresult r = f(&flags, &loc, A(0));
    out.put(flags);
    return r;
  }
  case FnId::cuMemRetainAllocationHandle: {
    NEED(1);
    DPTR(A(0), 1);
    DRV(cuMemRetainAllocationHandle);
    CUmemGenericAllocationHandle h = 0;
    CUresult r = f(&h, H(void*)(A(0)));
    if (r != CUDA_SUCCESS) return r;
    auto it = s.memHandles().find(h);
    if (it == s.memHandles().end()) { // a mapping of ours backed by a handle we released:
      s.memHandles()[h] = {0, 1};      // the new reference is ours to release
    } else {
      ++it->second.second;
    }
    out.put(h);
    return CUDA_SUCCESS;
  }
  // ---- copies ----------------------------------------------------------------------------
  CASE2(cuMemcpyHtoD_v2, cuMemcpyHtoD_v2_ptds) {
    NEED(2);
    DPTR(A(0), A(1));
    if (in.bulkLen != A(1)) return CUDA_ERROR_INVALID_VALUE;
    DRV(cuMemcpyHtoD_v2);
    CUresult failed = CUDA_SUCCESS;
    auto inPlace = s.consumeBulkInPlace(A(1), [&](uint64_t off, const uint8_t* p, size_t k) {
      CUresult r = f(A(0) + off, p, k);
      if (r != CUDA_SUCCESS && failed == CUDA_SUCCESS) failed = r;
      return CUDA_SUCCESS; // keep consuming: the stream stays in step
    });
    if (!inPlace.isOk()) return CUDA_ERROR_INVALID_VALUE;
    if (*inPlace) return failed;
    std::vector<uint8_t> chunk(std::min<uint64_t>(A(1), kChunk));
    for (uint64_t off = 0; off < A(1); off += kChunk) {
      size_t k = static_cast<size_t>(std::min<uint64_t>(kChunk, A(1) - off));
      if (!s.readBulk(chunk.data(), k).isOk()) return CUDA_ERROR_INVALID_VALUE;
      CUresult r = f(A(0) + off, chunk.data(), k);
      if (r != CUDA_SUCCESS) return r;
    }
    return CUDA_SUCCESS;
  }
  CASE2(cuMemcpyHtoDAsync_v2, cuMemcpyHtoDAsync_v2_ptsz) {
    NEED(3);
    DPTR(A(0), A(1));
    OWN_STREAM(A(2));
    if (in.bulkLen != A(1)) return CUDA_ERROR_INVALID_VALUE;
    // Captured, the copy would read staging that is freed long before the graph runs (the
    // stub sends pinned sources by reference while capturing).
    if (capturing(s, A(2), perThread(in.fn))) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    DRV(cuMemcpyHtoDAsync_v2);
    for (uint64_t off = 0; off < A(1); off += kChunk) {
      size_t k = static_cast<size_t>(std::min<uint64_t>(kChunk, A(1) - off));
      if (pending.bytes + k > kMaxPendingStaging) dropStaging(s);
      auto buf = std::make_shared<std::vector<uint8_t>>(k);
      if (!s.readBulk(buf->data(), k).isOk()) return CUDA_ERROR_INVALID_VALUE;
      CUresult r = f(A(0) + off, buf->data(), k, H(CUstream)(A(2)));
      pending.bytes += k;
      pending.buffers.push_back(buf);
      if (r != CUDA_SUCCESS) return r;
    }
    return CUDA_SUCCESS;
  }
  CASE2(cuMemcpyDtoH_v2, cuMemcpyDtoH_v2_ptds) {
    NEED(2);
    DPTR(A(0), A(1));
    return dtohReply(s, A(0), A(1), out);
  }
  CASE2(cuMemcpyDtoHAsync_v2, cuMemcpyDtoHAsync_v2_ptsz) {
    NEED(3);
    DPTR(A(0), A(1));
    OWN_STREAM(A(2));
    CUresult r = syncStream(s, A(2), perThread(in.fn));
    if (r != CUDA_SUCCESS) return r;
    return dtohReply(s, A(0), A(1), out);
  }
  CASE2(cuMemcpyDtoD_v2, cuMemcpyDtoD_v2_ptds) {
    NEED(3);
    DPTR(A(0), A(2));
    DPTR(A(1), A(2));
    DRV(cuMemcpyDtoD_v2);
    return f(A(0), A(1), A(2));
  }
  CASE2(cuMemcpyDtoDAsync_v2, cuMemcpyDtoDAsync_v2_ptsz) {
    NEED(4);
    DPTR(A(0), A(2));
    DPTR(A(1), A(2));
    OWN_STREAM(A(3));
    DRV(cuMemcpyDtoDAsync_v2);
    return f(A(0), A(1), A(2), H(CUstream)(A(3)));
  }
  CASE2(cuMemcpy3D_v2, cuMemcpy3D_v2_ptds) return memcpy3D(s, in, out, false);
  CASE2(cuMemcpy3DAsync_v2, cuMemcpy3DAsync_v2_ptsz) return memcpy3D(s, in, out, true);
  // ---- memsets: (dst, value, count[, stream]) and 2D (dst, pitch, value, w, h[, stream]) ----
#define TF_MEMSET(sym, symPt, T, elem)                                                            \
  CASE2(sym, symPt) {                                                                             \
    NEED(3);                                                                                      \
    DPTR(A(0), mul(A(2), (elem)));                                                                \
    DRV(sym);                                                                                     \
    return f(A(0), static_cast<T>(A(1)), A(2));                                                   \
  }
#define TF_MEMSET_ASYNC(sym, symPt, T, elem)                                                      \
  CASE2(sym, symPt) {                                                                             \
    NEED(4);                                                                                      \
    DPTR(A(0), mul(A(2), (elem)));                                                                \
    OWN_STREAM(A(3));                                                                             \
    DRV(sym);                                                                                     \
    return f(A(0), static_cast<T>(A(1)), A(2), H(CUstream)(A(3)));                                \
  }
#define TF_MEMSET2D(sym, symPt, T, elem)                                                          \
  CASE2(sym, symPt) {                                                                             \
    NEED(5);                                                                                      \
    if (A(4)) DPTR(A(0), add(mul(A(1), A(4) - 1), mul(A(3), (elem))));                            \
    DRV(sym);                                                                                     \
    return f(A(0), A(1), static_cast<T>(A(2)), A(3), A(4));                                       \
  }
#define TF_MEMSET2D_ASYNC(sym, symPt, T, elem)                                                    \
  CASE2(sym, symPt) {                                                                             \
    NEED(6);                                                                                      \
    if (A(4)) DPTR(A(0), add(mul(A(1), A(4) - 1), mul(A(3), (elem))));                            \
    OWN_STREAM(A(5));                                                                             \
    DRV(sym);                                                                                     \
    return f(A(0), A(1), static_cast<T>(A(2)), A(3), A(4), H(CUstream)(A(5)));                    \
  }
  TF_MEMSET(cuMemsetD8_v2, cuMemsetD8_v2_ptds, unsigned char, 1)
  TF_MEMSET(cuMemsetD16_v2, cuMemsetD16_v2_ptds, unsigned short, 2)
  TF_MEMSET(cuMemsetD32_v2, cuMemsetD32_v2_ptds, unsigned int, 4)
  TF_MEMSET_ASYNC(cuMemsetD8Async, cuMemsetD8Async_ptsz, unsigned char, 1)
  TF_MEMSET_ASYNC(cuMemsetD16Async, cuMemsetD16Async_ptsz, unsigned short, 2)
  TF_MEMSET_ASYNC(cuMemsetD32Async, cuMemsetD32Async_ptsz, unsigned int, 4)
  TF_MEMSET2D(cuMemsetD2D8_v2, cuMemsetD2D8_v2_ptds, unsigned char, 1)
  TF_MEMSET2D(cuMemsetD2D16_v2, cuMemsetD2D16_v2_ptds, unsigned short, 2)
  TF_MEMSET2D(cuMemsetD2D32_v2, cuMemsetD2D32_v2_ptds, unsigned int, 4)
  TF_MEMSET2D_ASYNC(cuMemsetD2D8Async, cuMemsetD2D8Async_ptsz, unsigned char, 1)
  TF_MEMSET2D_ASYNC(cuMemsetD2D16Async, cuMemsetD2D16Async_ptsz, unsigned short, 2)
  TF_MEMSET2D_ASYNC(cuMemsetD2D32Async, cuMemsetD2D32Async_ptsz, unsigned int, 4)
  // ---- modules and libraries ---------------------------------------------------------------
  case FnId::cuModuleLoadData: {
    std::shared_ptr<const std::vector<uint8_t>> img;
    CUresult r = loadImage(s, in, &img);
    if (r != CUDA_SUCCESS) return r;
    DRV(cuModuleLoadData);
    CUmodule m = nullptr;
    r = f(&m, img->data());
    if (r == CUDA_SUCCESS) s.add(K::Module, H(uint64_t)(m));
    out.put(H(uint64_t)(m));
    return r;
  }
  case FnId::cuLibraryLoadData: {
    std::shared_ptr<const std::vector<uint8_t>> img;
    CUresult r = loadImage(s, in, &img);
    if (r != CUDA_SUCCESS) return r;
    DRV(cuLibraryLoadData);
    CUlibrary l = nullptr;
    r = f(&l, img->data(), nullptr, nullptr, 0, nullptr, nullptr, 0);
    if (r == CUDA_SUCCESS) s.add(K::Library, H(uint64_t)(l));
    out.put(H(uint64_t)(l));
    return r;
  }
  case FnId::cuModuleUnload: {
    NEED(1);
    OWN(Module, A(0));
    DRV(cuModuleUnload);
    CUresult r = f(H(CUmodule)(A(0)));
    if (r == CUDA_SUCCESS) {
      s.remove(K::Module, A(0));
      s.dropGlobalsOf(A(0));
      s.layouts().clear();
    }
    return r;
  }
  case FnId::cuLibraryUnload: {
    NEED(1);
    OWN(Library, A(0));
    DRV(cuLibraryUnload);
    CUresult r = f(H(CUlibrary)(A(0)));
    if (r == CUDA_SUCCESS) {
      s.remove(K::Library, A(0));
      s.dropGlobalsOf(A(0));
      s.layouts().clear();
    }
    return r;
  }
  case FnId::cuLibraryGetKernel: {
    NEED(1);
    OWN(Library, A(0));
    DRV(cuLibraryGetKernel);
    CUkernel k = nullptr;
    CUresult r = f(&k, H(CUlibrary)(A(0)), nameArg(in).c_str());
    if (r == CUDA_SUCCESS) s.add(K::Kernel, H(uint64_t)(k));
    out.put(H(uint64_t)(k));
    return r;
  }
  case FnId::cuModuleGetFunction: {
    NEED(1);
    OWN(Module, A(0));
    DRV(cuModuleGetFunction);
    CUfunction fn = nullptr;
    CUresult r = f(&fn, H(CUmodule)(A(0)), nameArg(in).c_str());
    if (r == CUDA_SUCCESS) s.add(K::Function, H(uint64_t)(fn));
    out.put(H(uint64_t)(fn));
    return r;
  }
  case FnId::cuKernelGetFunction: {
    NEED(1);
    OWN(Kernel, A(0));
    DRV(cuKernelGetFunction);
    CUfunction fn = nullptr;
    CUresult r = f(&fn, H(CUkernel)(A(0)));
    if (r == CUDA_SUCCESS) s.add(K::Function, H(uint64_t)(fn));
    out.put(H(uint64_t)(fn));
    return r;
  }
  case FnId::cuModuleGetGlobal_v2: {
    NEED(1);
    OWN(Module, A(0));
    DRV(cuModuleGetGlobal_v2);
    CUdeviceptr p = 0;
    size_t size = 0;
    CUresult r = f(&p, &size, H(CUmodule)(A(0)), nameArg(in).c_str());
    if (r == CUDA_SUCCESS) s.addGlobal(A(0), p, size);
    out.put(p);
    out.put(size);
    return r;
  }
  case FnId::cuLibraryGetGlobal: {
    NEED(1);
    OWN(Library, A(0));
    DRV(cuLibraryGetGlobal);
    CUdeviceptr p = 0;
    size_t size = 0;
    CUresult r = f(&p, &size, H(CUlibrary)(A(0)), nameArg(in).c_str());
    if (r == CUDA_SUCCESS) s.addGlobal(A(0), p, size);
    out.put(p);
    out.put(size);
    return r;
  }
  case FnId::cuFuncGetAttribute: {
    NEED(2);
    OWN_FUNC(A(1));
    DRV(cuFuncGetAttribute);
    int v = 0;
    CUresult r = f(&v, static_cast<CUfunction_attribute>(A(0)), H(CUfunction)(A(1)));
    out.put(static_cast<uint64_t>(static_cast<int64_t>(v)));
    return r;
  }
  case FnId::cuFuncSetAttribute: {
    NEED(3);
    OWN_FUNC(A(0));
    DRV(cuFuncSetAttribute);
    return f(H(CUfunction)(A(0)), static_cast<CUfunction_attribute>(A(1)), static_cast<int>(A(2)));
  }
  case FnId::cuFuncSetSharedMemConfig: {
    NEED(2);
    OWN_FUNC(A(0));
    DRV(cuFuncSetSharedMemConfig);
    return f(H(CUfunction)(A(0)), static_cast<CUsharedconfig>(A(1)));
  }
  case FnId::cuFuncSetCacheConfig: {
    NEED(2);
    OWN_FUNC(A(0));
    DRV(cuFuncSetCacheConfig);
    return f(H(CUfunction)(A(0)), static_cast<CUfunc_cache>(A(1)));
  }
  case FnId::cuKernelGetAttribute: {
    NEED(3);
    OWN(Kernel, A(1));
    DRV(cuKernelGetAttribute);
    int v = 0;
    CUresult r = f(&v, static_cast<CUfunction_attribute>(A(0)), H(CUkernel)(A(1)),
                   static_cast<CUdevice>(A(2)));
    out.put(static_cast<uint64_t>(static_cast<int64_t>(v)));
    return r;
  }
  case FnId::cuKernelSetAttribute: {
    NEED(4);
    OWN(Kernel, A(2));
    DRV(cuKernelSetAttribute);
    return f(static_cast<CUfunction_attribute>(A(0)), static_cast<int>(A(1)), H(CUkernel)(A(2)),
             static_cast<CUdevice>(A(3)));
  }
  case FnId::cuKernelSetCacheConfig: {
    NEED(3);
    OWN(Kernel, A(0));
    DRV(cuKernelSetCacheConfig);
    return f(H(CUkernel)(A(0)), static_cast<CUfunc_cache>(A(1)), static_cast<CUdevice>(A(2)));
  }
  case FnId::cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags: {
    NEED(4);
    OWN_FUNC(A(0));
    DRV(cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags);
    int n = 0;
    CUresult r = f(&n, H(CUfunction)(A(0)), static_cast<int>(A(1)), A(2), static_cast<unsigned>(A(3)));
    out.put(static_cast<uint64_t>(n));
    return r;
  }
  CASE2(cuLaunchHostFunc, cuLaunchHostFunc_ptsz) {
    NEED(2);
    OWN_STREAM(A(0));
    DRV(cuLaunchHostFunc);
    // Captured into a graph, the host function runs at every launch of the graph.
    CUstreamCaptureStatus capturing = CU_STREAM_CAPTURE_STATUS_NONE;
    if (auto isCapturing = s.d().fn<decltype(&::cuStreamIsCapturing)>(FnId::cuStreamIsCapturing))
      isCapturing(H(CUstream)(A(0)), &capturing);
    void* arg = s.hostFunctionArg(A(1), capturing != CU_STREAM_CAPTURE_STATUS_NONE);
    CUresult r = f(H(CUstream)(A(0)), &Session::hostFunctionEntry, arg);
    if (r != CUDA_SUCCESS) Session::dropHostFunctionArg(arg);
    return r;
  }
  CASE2(cuLaunchKernel, cuLaunchKernel_ptsz)
  CASE2(cuLaunchKernelEx, cuLaunchKernelEx_ptsz)
  CASE2(cuLaunchCooperativeKernel, cuLaunchCooperativeKernel_ptsz)
    return launch(s, in);
  // ---- streams and events ------------------------------------------------------------------
  case FnId::cuStreamCreate: {
    NEED(1);
    DRV(cuStreamCreate);
    CUstream st = nullptr;
    CUresult r = f(&st, static_cast<unsigned>(A(0)));
    if (r == CUDA_SUCCESS) s.add(K::Stream, H(uint64_t)(st));
    out.put(H(uint64_t)(st));
    return r;
  }
  case FnId::cuStreamCreateWithPriority: {
    NEED(2);
    DRV(cuStreamCreateWithPriority);
    CUstream st = nullptr;
    CUresult r = f(&st, static_cast<unsigned>(A(0)), static_cast<int>(A(1)));
    if (r == CUDA_SUCCESS) s.add(K::Stream, H(uint64_t)(st));
    out.put(H(uint64_t)(st));
    return r;
  }
  case FnId::cuStreamDestroy_v2: {
    NEED(1);
    OWN(Stream, A(0));
    DRV(cuStreamDestroy_v2);
    CUresult r = f(H(CUstream)(A(0)));
    if (r == CUDA_SUCCESS) s.remove(K::Stream, A(0));
    return r;
  }
  CASE2(cuStreamSynchronize, cuStreamSynchronize_ptsz) {
    NEED(1);
    OWN_STREAM(A(0));
    DRV(cuStreamSynchronize);
    return f(H(CUstream)(A(0)));
  }
  CASE2(cuStreamQuery, cuStreamQuery_ptsz) {
    NEED(1);
    OWN_STREAM(A(0));
    DRV(cuStreamQuery);
    return f(H(CUstream)(A(0)));
  }
  CASE2(cuStreamWaitEvent, cuStreamWaitEvent_ptsz) {
    NEED(3);
    OWN_STREAM(A(0));
    OWN(Event, A(1));
    DRV(cuStreamWaitEvent);
    return f(H(CUstream)(A(0)), H(CUevent)(A(1)), static_cast<unsigned>(A(2)));
  }
  CASE2(cuStreamAttachMemAsync, cuStreamAttachMemAsync_ptsz) {
    NEED(4);
    OWN_STREAM(A(0));
    DPTR(A(1), A(2) ? A(2) : 1);
    DRV_AT(f, cuStreamAttachMemAsync, cuStreamAttachMemAsync);
    return f(H(CUstream)(A(0)), A(1), A(2), static_cast<unsigned>(A(3)));
  }
  CASE2(cuStreamSetAttribute, cuStreamSetAttribute_ptsz) {
    NEED(2);
    OWN_STREAM(A(0));
    if (in.a.blob.size() != sizeof(CUstreamAttrValue)) return CUDA_ERROR_INVALID_VALUE;
    CUstreamAttrValue v;
    std::memcpy(&v, in.a.blob.data(), sizeof(v));
    DRV_AT(f, cuStreamSetAttribute, cuStreamSetAttribute);
    return f(H(CUstream)(A(0)), static_cast<CUstreamAttrID>(A(1)), &v);
  }
  CASE2(cuStreamGetAttribute, cuStreamGetAttribute_ptsz) {
    NEED(2);
    OWN_STREAM(A(0));
    CUstreamAttrValue v{};
    DRV_AT(f, cuStreamGetAttribute, cuStreamGetAttribute);
    CUresult r = f(H(CUstream)(A(0)), static_cast<CUstreamAttrID>(A(1)), &v);
    if (r == CUDA_SUCCESS) out.blob.assign(reinterpret_cast<const char*>(&v), sizeof(v));
    return r;
  }
  CASE2(cuStreamCopyAttributes, cuStreamCopyAttributes_ptsz) {
    NEED(2);
    OWN_STREAM(A(0));
    OWN_STREAM(A(1));
    DRV_AT(f, cuStreamCopyAttributes, cuStreamCopyAttributes);
    return f(H(CUstream)(A(0)), H(CUstream)(A(1)));
  }
  CASE2(cuStreamGetPriority, cuStreamGetPriority_ptsz) {
    NEED(1);
    OWN_STREAM(A(0));
    DRV(cuStreamGetPriority);
    int p = 0;
    CUresult r = f(H(CUstream)(A(0)), &p);
    out.put(static_cast<uint64_t>(static_cast<int64_t>(p)));
    return r;
  }
  CASE2(cuStreamGetFlags, cuStreamGetFlags_ptsz) {
    NEED(1);
    OWN_STREAM(A(0));
    DRV(cuStreamGetFlags);
    unsigned v = 0;
    CUresult r = f(H(CUstream)(A(0)), &v);
    out.put(v);
    return r;
  }
  CASE2(cuStreamGetId, cuStreamGetId_ptsz) {
    NEED(1);
    OWN_STREAM(A(0));
    DRV(cuStreamGetId);
    unsigned long long v = 0;
    CUresult r = f(H(CUstream)(A(0)), &v);
    out.put(v);
    return r;
  }
  CASE2(cuStreamGetCtx, cuStreamGetCtx_ptsz) {
    NEED(1);
    OWN_STREAM(A(0));
    DRV(cuStreamGetCtx);
    CUcontext c = nullptr;
    CUresult r = f(H(CUstream)(A(0)), &c);
    out.put(H(uint64_t)(c));
    return r;
  }
  case FnId::cuEventCreate: {
    NEED(1);
    DRV(cuEventCreate);
    CUevent e = nullptr;
    CUresult r = f(&e, static_cast<unsigned>(A(0)));
    if (r == CUDA_SUCCESS) s.add(K::Event, H(uint64_t)(e));
    out.put(H(uint64_t)(e));
    return r;
  }
  case FnId::cuEventDestroy_v2: {
    NEED(1);
    OWN(Event, A(0));
    return destroyEvent(s, A(0));
  }
  CASE2(cuEventRecord, cuEventRecord_ptsz) {
    NEED(2);
    OWN(Event, A(0));
    OWN_STREAM(A(1));
    DRV(cuEventRecord);
    return f(H(CUevent)(A(0)), H(CUstream)(A(1)));
  }
  CASE2(cuEventRecordWithFlags, cuEventRecordWithFlags_ptsz) {
    NEED(3);
    OWN(Event, A(0));
    OWN_STREAM(A(1));
    DRV(cuEventRecordWithFlags);
    return f(H(CUevent)(A(0)), H(CUstream)(A(1)), static_cast<unsigned>(A(2)));
  }
  case FnId::cuEventSynchronize: {
    NEED(1);
    OWN(Event, A(0));
    DRV(cuEventSynchronize);
    return f(H(CUevent)(A(0)));
  }
  case FnId::cuEventQuery: {
    NEED(1);
    OWN(Event, A(0));
    DRV(cuEventQuery);
    return f(H(CUevent)(A(0)));
  }
  CASE2(cuEventElapsedTime, cuEventElapsedTime_v2) {
    NEED(2);
    OWN(Event, A(0));
    OWN(Event, A(1));
    DRV(cuEventElapsedTime);
    float ms = 0;
    CUresult r = f(&ms, H(CUevent)(A(0)), H(CUevent)(A(1)));
    uint32_t bits;
    std::memcpy(&bits, &ms, 4);
    out.put(bits);
    return r;
  }
  case FnId::cuIpcGetMemHandle:
  case FnId::cuIpcOpenMemHandle:
  case FnId::cuIpcOpenMemHandle_v2:
  case FnId::cuIpcCloseMemHandle:
  case FnId::cuIpcGetEventHandle:
  case FnId::cuIpcOpenEventHandle:
    return dispatchIpc(s, in, out);
  default: return dispatchGraph(s, in, out);
  }
}

} // namespace tf::remoting
