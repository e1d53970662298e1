// Contexts and devices on the worker: each client has contexts of its own (its "primary"
// context too, kept until it disconnects); device facts, memory and processes for the stub
// and its NVML.
#include <cstring>
#include <map>
#include <mutex>

#include "remoting/worker/calls.h"

namespace tf::remoting {

namespace {

// A context of this session on dev (created once), made current.
CUresult sessionContext(Session& s, int dev) {
  auto it = s.primaries().find(dev);
  if (it == s.primaries().end()) {
    DRV_AT(create, cuCtxCreate_v2, cuCtxCreate_v2);
    CUcontext c = nullptr;
    CUresult r = create(&c, 0, dev);
    if (r != CUDA_SUCCESS) return r;
    s.expose(K::Context, H(uint64_t)(c));
    it = s.primaries().emplace(dev, c).first;
  }
  DRV_AT(set, cuCtxSetCurrent, cuCtxSetCurrent);
  return set(it->second);
}

} // namespace

CUresult deviceMemory(Session& s, CallIn& in, CallOut& out) {
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

CUresult deviceProcesses(Session& s, CallIn& in, CallOut& out) {
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

CUresult deviceInfo(Session& s, CallIn& in, CallOut& out) {
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

CUresult errorString(Session& s, CallIn& in, CallOut& out) {
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

// ---- contexts --------------------------------------------------------------------------
TF_CALL(cuDevicePrimaryCtxRetain) {
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
    s.expose(K::Context, H(uint64_t)(c));
    s.usesDevice(dev);
    it = s.primaries().emplace(dev, c).first;
  }
  out.put(known(s, K::Context, it->second));
  return CUDA_SUCCESS;
}
TF_CALL(cuDevicePrimaryCtxRelease, cuDevicePrimaryCtxRelease_v2, cuDevicePrimaryCtxReset,
        cuDevicePrimaryCtxReset_v2, cuDevicePrimaryCtxSetFlags, cuDevicePrimaryCtxSetFlags_v2) {
  return CUDA_SUCCESS; // the client's primary context lives until it disconnects
}
TF_CALL(cuDevicePrimaryCtxGetState) {
  NEED(1);
  out.put(0);
  out.put(s.primaries().count(static_cast<int>(A(0))) ? 1 : 0);
  return CUDA_SUCCESS;
}
TF_CALL(cuCtxCreate_v2) {
  NEED(2);
  DRV_AT(create, cuCtxCreate_v2, cuCtxCreate_v2);
  CUcontext c = nullptr;
  CUresult r = create(&c, static_cast<unsigned>(A(0)), static_cast<CUdevice>(A(1)));
  if (r != CUDA_SUCCESS) return r;
  DRV_AT(set, cuCtxSetCurrent, cuCtxSetCurrent);
  set(s.currentCtx());
  s.usesDevice(static_cast<int>(A(1)));
  putNew(s, out, r, K::Context, c);
  return CUDA_SUCCESS;
}
TF_CALL(cuCtxDestroy_v2) {
  NEED(1);
  OWN(Context, A(0));
  for (auto& [dev, c] : s.primaries())
    if (H(uint64_t)(c) == A(0)) return CUDA_ERROR_INVALID_CONTEXT;
  if (H(uint64_t)(s.currentCtx()) == A(0)) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
  DRV(cuCtxDestroy_v2);
  CUresult r = f(H(CUcontext)(A(0)));
  if (r == CUDA_SUCCESS) s.forget(K::Context, A(0));
  return r;
}
TF_CALL(cuDeviceGetGraphMemAttribute) {
  NEED(2);
  DRV(cuDeviceGetGraphMemAttribute);
  cuuint64_t v = 0;
  CUresult r = f(static_cast<CUdevice>(A(0)), static_cast<CUgraphMem_attribute>(A(1)), &v);
  out.put(static_cast<uint64_t>(v));
  return r;
}
TF_CALL(cuDeviceSetGraphMemAttribute) {
  NEED(3);
  DRV(cuDeviceSetGraphMemAttribute);
  cuuint64_t v = A(2);
  return f(static_cast<CUdevice>(A(0)), static_cast<CUgraphMem_attribute>(A(1)), &v);
}
TF_CALL(cuCtxGetStreamPriorityRange) {
  DRV(cuCtxGetStreamPriorityRange);
  int lo = 0, hi = 0;
  CUresult r = f(&lo, &hi);
  out.put(static_cast<uint64_t>(static_cast<int64_t>(lo)));
  out.put(static_cast<uint64_t>(static_cast<int64_t>(hi)));
  return r;
}

} // namespace tf::remoting
