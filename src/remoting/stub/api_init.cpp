// cuInit, cuGetProcAddress, the hidden export tables, error strings and device queries: all
// answered locally (device facts were fetched once at cuInit).
#include <cstdio>
#include <cstring>
#include <mutex>

#include "common/log.h"
#include "cuda/export_tables.h"
#include "remoting/stub/api.h"

using namespace tf::remoting::stub;
using tf::remoting::DeviceInfo;

namespace tf::remoting::stub {
CUresult moduleFromWrapper(CUmodule* out, const void* wrapper); // api_module.cpp
}

namespace {

CUresult primaryContextHook(CUcontext* out, CUdevice dev) {
  TF_READY();
  if (!client().device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  CUcontext c = client().primaryContext(dev);
  if (!c) return CUDA_ERROR_DEVICE_UNAVAILABLE;
  *out = c;
  return CUDA_SUCCESS;
}

CUresult clsPut(CUcontext ctx, void* key, void* value, void*) {
  Client& c = client();
  if (!ctx) ctx = currentContext();
  std::lock_guard<std::mutex> lock(c.contextsMu());
  auto it = c.contexts().find(ctx);
  if (it == c.contexts().end()) return CUDA_ERROR_INVALID_CONTEXT;
  it->second.localStorage[key] = value;
  return CUDA_SUCCESS;
}
CUresult clsDelete(CUcontext ctx, void* key) {
  Client& c = client();
  if (!ctx) ctx = currentContext();
  std::lock_guard<std::mutex> lock(c.contextsMu());
  auto it = c.contexts().find(ctx);
  if (it == c.contexts().end()) return CUDA_ERROR_INVALID_CONTEXT;
  it->second.localStorage.erase(key);
  return CUDA_SUCCESS;
}
CUresult clsGet(void** value, CUcontext ctx, void* key) {
  Client& c = client();
  if (!ctx) ctx = currentContext();
  std::lock_guard<std::mutex> lock(c.contextsMu());
  auto it = c.contexts().find(ctx);
  if (it == c.contexts().end()) return CUDA_ERROR_INVALID_CONTEXT;
  auto v = it->second.localStorage.find(key);
  if (v == it->second.localStorage.end()) return CUDA_ERROR_INVALID_HANDLE;
  *value = v->second;
  return CUDA_SUCCESS;
}
CUresult ctxCreateHook(CUcontext* out, unsigned flags, CUdevice dev) {
  return tf_rs_cuCtxCreate_v2(out, flags, dev);
}
void integrityDevices(std::vector<tf::cuda::IntegrityDevice>* out) {
  Client& c = client();
  if (!c.initialized()) return;
  for (int i = 0; i < c.deviceCount(); ++i) {
    tf::cuda::IntegrityDevice d{};
    std::memcpy(d.uuid, c.device(i)->uuid, 16);
    d.pciDomain = c.device(i)->attrs[CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID];
    d.pciBus = c.device(i)->attrs[CU_DEVICE_ATTRIBUTE_PCI_BUS_ID];
    d.pciDevice = c.device(i)->attrs[CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID];
    out->push_back(d);
  }
}

void installHooks() {
  static std::once_flag once;
  std::call_once(once, [] {
    tf::cuda::ExportTableHooks h;
    h.moduleFromFatbin = &moduleFromWrapper;
    h.primaryContext = &primaryContextHook;
    h.clsPut = &clsPut;
    h.clsDelete = &clsDelete;
    h.clsGet = &clsGet;
    h.ctxCreate = &ctxCreateHook;
    h.driverVersion = CUDA_VERSION;
    h.integrityDevices = &integrityDevices;
    tf::cuda::installExportTableHooks(h);
  });
}

const DeviceInfo* deviceOf(CUdevice dev) { return client().device(dev); }

struct ErrorStrings {
  std::mutex mu;
  std::map<int, std::pair<std::string, std::string>> known;
};
ErrorStrings& errorStrings() {
  static ErrorStrings* e = new ErrorStrings();
  return *e;
}
const std::pair<std::string, std::string>* errorText(CUresult code) {
  auto& e = errorStrings();
  {
    std::lock_guard<std::mutex> lock(e.mu);
    auto it = e.known.find(code);
    if (it != e.known.end()) return &it->second;
  }
  std::pair<std::string, std::string> t;
  std::string blob;
  if (code == CUDA_ERROR_DEVICE_UNAVAILABLE) {
    t = {"CUDA_ERROR_DEVICE_UNAVAILABLE", "CUDA-capable device(s) is/are busy or unavailable"};
  } else if (code == CUDA_SUCCESS) {
    t = {"CUDA_SUCCESS", "no error"};
  } else if (ready() == CUDA_SUCCESS &&
             client().call(static_cast<uint32_t>(tf::remoting::Op::ErrorString),
                           {static_cast<uint64_t>(code)}, nullptr, 0, nullptr, 0, nullptr, 0,
                           nullptr, &blob) == CUDA_SUCCESS) {
    size_t z = blob.find('\0');
    if (z == std::string::npos) return nullptr;
    t = {blob.substr(0, z), blob.substr(z + 1)};
  } else {
    return nullptr;
  }
  std::lock_guard<std::mutex> lock(e.mu);
  return &(e.known[code] = std::move(t)); // map nodes never move: the strings stay put
}

} // namespace

extern "C" {

CUresult tf_rs_cuInit(unsigned flags) {
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  installHooks();
  return client().init();
}

CUresult tf_rs_cuDriverGetVersion(int* v) {
  if (!v) return CUDA_ERROR_INVALID_VALUE;
  *v = CUDA_VERSION; // what the integrity check hashes, too
  return CUDA_SUCCESS;
}

CUresult tf_rs_cuGetProcAddress_v2(const char* symbol, void** pfn, int cudaVersion,
                                   cuuint64_t flags, CUdriverProcAddressQueryResult* found) {
  if (!symbol || !pfn) return CUDA_ERROR_INVALID_VALUE;
  CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  *pfn = nullptr;
  int index = tf::cuda::resolveProcAddress(symbol, cudaVersion, flags, &status);
  if (index >= 0) {
    *pfn = exportedFunction(index);
    if (!*pfn) status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  }
  if (found) *found = status;
  if (!*pfn) TF_LOG(Debug, "cuGetProcAddress(%s, %d, %llu): not forwarded", symbol, cudaVersion,
                    static_cast<unsigned long long>(flags));
  return *pfn ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

CUresult tf_rs_cuGetProcAddress(const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags) {
  return tf_rs_cuGetProcAddress_v2(symbol, pfn, cudaVersion, flags, nullptr);
}

CUresult tf_rs_cuGetExportTable(const void** table, const CUuuid* id) {
  installHooks();
  return tf::cuda::getExportTable(table, id);
}

CUresult tf_rs_cuGetErrorName(CUresult code, const char** out) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  auto* t = errorText(code);
  *out = t ? t->first.c_str() : nullptr;
  return t ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult tf_rs_cuGetErrorString(CUresult code, const char** out) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  auto* t = errorText(code);
  *out = t ? t->second.c_str() : nullptr;
  return t ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult tf_rs_cuDeviceGetCount(int* n) {
  if (!n) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  *n = client().deviceCount();
  return CUDA_SUCCESS;
}

CUresult tf_rs_cuDeviceGet(CUdevice* dev, int ordinal) {
  if (!dev) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  if (!deviceOf(ordinal)) return CUDA_ERROR_INVALID_DEVICE;
  *dev = ordinal;
  return CUDA_SUCCESS;
}

CUresult tf_rs_cuDeviceGetName(char* name, int len, CUdevice dev) {
  if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  const DeviceInfo* d = deviceOf(dev);
  if (!d) return CUDA_ERROR_INVALID_DEVICE;
  snprintf(name, static_cast<size_t>(len), "%s", d->name);
  return CUDA_SUCCESS;
}

CUresult tf_rs_cuDeviceGetUuid_v2(CUuuid* uuid, CUdevice dev) {
  if (!uuid) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  const DeviceInfo* d = deviceOf(dev);
  if (!d) return CUDA_ERROR_INVALID_DEVICE;
  std::memcpy(uuid->bytes, d->uuid, 16);
  return CUDA_SUCCESS;
}
CUresult tf_rs_cuDeviceGetUuid(CUuuid* uuid, CUdevice dev) { return tf_rs_cuDeviceGetUuid_v2(uuid, dev); }

CUresult tf_rs_cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) {
  if (!bytes) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  const DeviceInfo* d = deviceOf(dev);
  if (!d) return CUDA_ERROR_INVALID_DEVICE;
  *bytes = d->totalMem;
  return CUDA_SUCCESS;
}

CUresult tf_rs_cuDeviceGetAttribute(int* value, CUdevice_attribute attr, CUdevice dev) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  const DeviceInfo* d = deviceOf(dev);
  if (!d) return CUDA_ERROR_INVALID_DEVICE;
  if (attr <= 0 || attr >= CU_DEVICE_ATTRIBUTE_MAX || attr >= 256) return CUDA_ERROR_INVALID_VALUE;
  *value = d->attrs[attr];
  return CUDA_SUCCESS;
}

CUresult tf_rs_cuDeviceComputeCapability(int* major, int* minor, CUdevice dev) {
  if (!major || !minor) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  const DeviceInfo* d = deviceOf(dev);
  if (!d) return CUDA_ERROR_INVALID_DEVICE;
  *major = d->attrs[CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR];
  *minor = d->attrs[CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR];
  return CUDA_SUCCESS;
}

CUresult tf_rs_cuDeviceGetPCIBusId(char* id, int len, CUdevice dev) {
  if (!id || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  const DeviceInfo* d = deviceOf(dev);
  if (!d) return CUDA_ERROR_INVALID_DEVICE;
  snprintf(id, static_cast<size_t>(len), "%08x:%02x:%02x.0",
           d->attrs[CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID], d->attrs[CU_DEVICE_ATTRIBUTE_PCI_BUS_ID],
           d->attrs[CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID]);
  return CUDA_SUCCESS;
}

CUresult tf_rs_cuDeviceCanAccessPeer(int* can, CUdevice dev, CUdevice peer) {
  if (!can) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  if (!deviceOf(dev) || !deviceOf(peer)) return CUDA_ERROR_INVALID_DEVICE;
  *can = 0; // peer access between remote devices is not forwarded
  return CUDA_SUCCESS;
}

} // extern "C"
