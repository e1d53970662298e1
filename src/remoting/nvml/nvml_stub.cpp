// The stub's libnvidia-ml.so.1: NVML for a process with no GPU, answered by the worker it
// connects to (TF_REMOTE_WORKER, TF_REMOTE_TOKEN) as a monitoring session. Device facts come
// from the one-time DeviceInfo fetch (name, UUID, compute capability, PCI location, clocks, bus
// width); memory is the device's, as the worker's driver sees it (under hard isolation, the
// vGPU's); the process list is the worker's clients holding a context on the device, with the
// memory they hold. Every other function of the NVML table (src/cuda/nvml_catalog.inc) is
// exported too, generated: it checks its arguments as NVIDIA's does, then answers NOT_SUPPORTED
// (or, for features no device here has, the table's answer). Event sets are the stub's own, as
// the soft GPU's (cuda/nvml_event_sets.h): no event is raised, a wait lasts its timeout.
#include <cstdio>
#include <cstring>
#include <vector>

#include "cuda/nvml_api.h"
#include "cuda/nvml_event_sets.h"
#include "cuda/nvml_text.h"
#include "remoting/nvml/nvml_stub.h"
#include "remoting/stub/client.h"

using tf::remoting::stub::client;

namespace {

nvmlReturn_t fromCu(CUresult r) {
  switch (r) {
  case CUDA_SUCCESS: return NVML_SUCCESS;
  case CUDA_ERROR_INVALID_VALUE: return NVML_ERROR_INVALID_ARGUMENT;
  case CUDA_ERROR_INVALID_DEVICE: return NVML_ERROR_INVALID_ARGUMENT;
  case CUDA_ERROR_NOT_SUPPORTED: return NVML_ERROR_NOT_SUPPORTED;
  case CUDA_ERROR_NOT_PERMITTED: return NVML_ERROR_NO_PERMISSION;
  case CUDA_ERROR_DEVICE_UNAVAILABLE: return NVML_ERROR_GPU_IS_LOST;
  default: return NVML_ERROR_UNKNOWN;
  }
}

using tf::remoting::nvml::indexOf;

nvmlDevice_t handleOf(int index) { return reinterpret_cast<nvmlDevice_t>(static_cast<uintptr_t>(index) + 1); }

// Every entry point: no exception reaches the caller; UNINITIALIZED before nvmlInit.
template <typename Fn> nvmlReturn_t withClient(Fn&& fn) noexcept {
  try {
    if (!client().initialized()) return NVML_ERROR_UNINITIALIZED;
    return fn();
  } catch (...) {
    return NVML_ERROR_UNKNOWN;
  }
}

// fn(index, DeviceInfo) for a valid handle.
template <typename Fn> nvmlReturn_t withDevice(nvmlDevice_t d, Fn&& fn) noexcept {
  return withClient([&]() -> nvmlReturn_t {
    int i = indexOf(d);
    if (i < 0) return NVML_ERROR_INVALID_ARGUMENT;
    return fn(i, *client().device(i));
  });
}

int attr(const tf::remoting::DeviceInfo& info, CUdevice_attribute a) { return info.attrs[a]; }

nvmlReturn_t processes(nvmlDevice_t d, unsigned* count, void* out, bool v1) {
  return withDevice(d, [&](int i, const tf::remoting::DeviceInfo&) -> nvmlReturn_t {
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    std::string blob;
    CUresult r = client().call(static_cast<uint32_t>(tf::remoting::Op::DeviceProcesses), {static_cast<uint64_t>(i)},
                               nullptr, 0, nullptr, 0, nullptr, 0, nullptr, &blob);
    if (r != CUDA_SUCCESS) return fromCu(r);
    unsigned n = static_cast<unsigned>(blob.size() / 16);
    unsigned room = *count;
    *count = n;
    if (n > room || (n && !out)) return NVML_ERROR_INSUFFICIENT_SIZE;
    for (unsigned k = 0; k < n; ++k) {
      uint32_t pid;
      uint64_t bytes;
      std::memcpy(&pid, blob.data() + k * 16, 4);
      std::memcpy(&bytes, blob.data() + k * 16 + 8, 8);
      if (v1) {
        static_cast<nvmlProcessInfo_v1_t*>(out)[k] = {pid, bytes};
      } else {
        static_cast<nvmlProcessInfo_t*>(out)[k] = {pid, bytes, 0xFFFFFFFFu, 0xFFFFFFFFu};
      }
    }
    return NVML_SUCCESS;
  });
}

// Graphics and MPS processes: the worker's clients are compute clients; none.
nvmlReturn_t noProcesses(nvmlDevice_t d, unsigned* count) {
  return withDevice(d, [&](int, const tf::remoting::DeviceInfo&) -> nvmlReturn_t {
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    *count = 0;
    return NVML_SUCCESS;
  });
}

// PCI location from the device's attributes; the product ids are not sent, so they read 0.
nvmlReturn_t pciInfo(nvmlDevice_t d, nvmlPciInfo_t* pci, bool full) {
  return withDevice(d, [&](int, const tf::remoting::DeviceInfo& info) -> nvmlReturn_t {
    if (!pci) return NVML_ERROR_INVALID_ARGUMENT;
    nvmlPciInfo_t p{};
    p.domain = unsigned(attr(info, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID));
    p.bus = unsigned(attr(info, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID));
    p.device = unsigned(attr(info, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID));
    snprintf(p.busIdLegacy, sizeof p.busIdLegacy, "%04X:%02X:%02X.0", p.domain, p.bus, p.device);
    snprintf(p.busId, sizeof p.busId, "%08X:%02X:%02X.0", p.domain, p.bus, p.device);
    if (full) {
      *pci = p;
    } else { // the original layout: the same first 36 bytes, then 16 reserved
      std::memcpy(pci, &p, offsetof(nvmlPciInfo_t, busId));
      std::memset(reinterpret_cast<char*>(pci) + offsetof(nvmlPciInfo_t, busId), 0, 16);
    }
    return NVML_SUCCESS;
  });
}

nvmlReturn_t handleByBusId(const char* busId, nvmlDevice_t* d) {
  return withClient([&]() -> nvmlReturn_t {
    if (!busId || !d) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned domain, bus, dev, fn;
    if (!tf::nvml::parseNvmlPciBusId(busId, &domain, &bus, &dev, &fn)) return NVML_ERROR_INVALID_ARGUMENT;
    for (int i = 0; i < client().deviceCount(); ++i) {
      const auto& info = *client().device(i);
      if (fn == 0 && domain == unsigned(attr(info, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID)) &&
          bus == unsigned(attr(info, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID)) &&
          dev == unsigned(attr(info, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID))) {
        *d = handleOf(i);
        return NVML_SUCCESS;
      }
    }
    return NVML_ERROR_NOT_FOUND;
  });
}

nvmlReturn_t clockInfo(nvmlDevice_t d, nvmlClockType_t type, unsigned* clock) {
  return withDevice(d, [&](int, const tf::remoting::DeviceInfo& info) -> nvmlReturn_t {
    if (!clock) return NVML_ERROR_INVALID_ARGUMENT;
    switch (type) {
    case NVML_CLOCK_GRAPHICS:
    case NVML_CLOCK_SM: *clock = unsigned(attr(info, CU_DEVICE_ATTRIBUTE_CLOCK_RATE) / 1000); break;
    case NVML_CLOCK_MEM: *clock = unsigned(attr(info, CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE) / 1000); break;
    default: return NVML_ERROR_INVALID_ARGUMENT;
    }
    return NVML_SUCCESS;
  });
}

nvmlReturn_t deviceCount(unsigned* n) {
  return withClient([&]() -> nvmlReturn_t {
    if (!n) return NVML_ERROR_INVALID_ARGUMENT;
    *n = static_cast<unsigned>(client().deviceCount());
    return NVML_SUCCESS;
  });
}

nvmlReturn_t handleByIndex(unsigned index, nvmlDevice_t* d) {
  return withClient([&]() -> nvmlReturn_t {
    if (!d || !client().device(static_cast<int>(index))) return NVML_ERROR_INVALID_ARGUMENT;
    *d = handleOf(static_cast<int>(index));
    return NVML_SUCCESS;
  });
}

nvmlReturn_t cudaDriverVersion(int* v) {
  return withClient([&]() -> nvmlReturn_t {
    if (!v) return NVML_ERROR_INVALID_ARGUMENT;
    *v = client().driverVersion();
    return NVML_SUCCESS;
  });
}

tf::nvml::EventSets& eventSets() {
  static auto* s = new tf::nvml::EventSets(); // never destroyed: callers may outlive static dtors
  return *s;
}

nvmlReturn_t waitOn(nvmlEventSet_t set, nvmlEventData_t* data, unsigned timeoutMs) {
  nvmlReturn_t r = withClient([&] { return NVML_SUCCESS; });
  return r != NVML_SUCCESS ? r : eventSets().wait(set, data, timeoutMs);
}

} // namespace

namespace tf::remoting::nvml {
bool eventSetExists(nvmlEventSet_t set) { return eventSets().exists(set); }
// Handles are index + 1, so a null handle is never valid.
int indexOf(nvmlDevice_t d) {
  auto i = static_cast<int>(reinterpret_cast<uintptr_t>(d)) - 1;
  return client().initialized() && !client().dead() && client().device(i) ? i : -1;
}
} // namespace tf::remoting::nvml

extern "C" {

NVML_API_EXPORT nvmlReturn_t nvmlInit_v2(void) {
  client().setRole(tf::remoting::kRoleMonitor);
  CUresult r = client().init();
  if (r == CUDA_ERROR_NO_DEVICE) return NVML_ERROR_DRIVER_NOT_LOADED;
  return fromCu(r);
}
NVML_API_EXPORT nvmlReturn_t nvmlInit(void) { return nvmlInit_v2(); }
NVML_API_EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int) { return nvmlInit_v2(); }
NVML_API_EXPORT nvmlReturn_t nvmlShutdown(void) {
  return client().initialized() ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
}

NVML_API_EXPORT const char* nvmlErrorString(nvmlReturn_t r) { return tf::nvml::nvmlErrorText(r); }

NVML_API_EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  return withClient([&]() -> nvmlReturn_t {
    int v = client().driverVersion();
    char text[64];
    snprintf(text, sizeof text, "%d.%d (remote)", v / 1000, (v % 1000) / 10);
    return tf::nvml::copyNvmlString(text, version, length);
  });
}
NVML_API_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int* v) { return cudaDriverVersion(v); }
NVML_API_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int* v) { return cudaDriverVersion(v); }

NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* n) { return deviceCount(n); }
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int* n) { return deviceCount(n); }
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* d) {
  return handleByIndex(index, d);
}
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t* d) {
  return handleByIndex(index, d);
}
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char* uuid, nvmlDevice_t* d) {
  return withClient([&]() -> nvmlReturn_t {
    if (!uuid || !d) return NVML_ERROR_INVALID_ARGUMENT;
    for (int i = 0; i < client().deviceCount(); ++i)
      if (strcasecmp(tf::nvml::nvmlUuidString(client().device(i)->uuid).c_str(), uuid) == 0) {
        *d = handleOf(i);
        return NVML_SUCCESS;
      }
    return NVML_ERROR_NOT_FOUND;
  });
}
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetHandleByPciBusId(const char* busId, nvmlDevice_t* d) {
  return handleByBusId(busId, d);
}
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char* busId, nvmlDevice_t* d) {
  return handleByBusId(busId, d);
}

NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t d, unsigned int* index) {
  return withDevice(d, [&](int i, const tf::remoting::DeviceInfo&) -> nvmlReturn_t {
    if (!index) return NVML_ERROR_INVALID_ARGUMENT;
    *index = static_cast<unsigned>(i);
    return NVML_SUCCESS;
  });
}
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t d, unsigned int* minor) {
  return nvmlDeviceGetIndex(d, minor);
}

NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char* name, unsigned int length) {
  return withDevice(d, [&](int, const tf::remoting::DeviceInfo& info) {
    return tf::nvml::copyNvmlString(info.name, name, length);
  });
}

NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char* uuid, unsigned int length) {
  return withDevice(d, [&](int, const tf::remoting::DeviceInfo& info) {
    return tf::nvml::copyNvmlString(tf::nvml::nvmlUuidString(info.uuid), uuid, length);
  });
}

NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t d, nvmlPciInfo_t* pci) { return pciInfo(d, pci, false); }
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t d, nvmlPciInfo_t* pci) { return pciInfo(d, pci, true); }
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t* pci) { return pciInfo(d, pci, true); }

NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t d, int* major, int* minor) {
  return withDevice(d, [&](int, const tf::remoting::DeviceInfo& info) -> nvmlReturn_t {
    if (!major || !minor) return NVML_ERROR_INVALID_ARGUMENT;
    *major = attr(info, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
    *minor = attr(info, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
    return NVML_SUCCESS;
  });
}

NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetMemoryBusWidth(nvmlDevice_t d, unsigned int* width) {
  return withDevice(d, [&](int, const tf::remoting::DeviceInfo& info) -> nvmlReturn_t {
    if (!width) return NVML_ERROR_INVALID_ARGUMENT;
    *width = unsigned(attr(info, CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH));
    return NVML_SUCCESS;
  });
}

NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, nvmlClockType_t type, unsigned int* clock) {
  return clockInfo(d, type, clock);
}
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t d, nvmlClockType_t type, unsigned int* clock) {
  return clockInfo(d, type, clock);
}

NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t* m) {
  return withDevice(d, [&](int i, const tf::remoting::DeviceInfo&) -> nvmlReturn_t {
    if (!m) return NVML_ERROR_INVALID_ARGUMENT;
    uint64_t out[2] = {};
    CUresult r = client().call(static_cast<uint32_t>(tf::remoting::Op::DeviceMemory), {static_cast<uint64_t>(i)}, out, 2);
    if (r != CUDA_SUCCESS) return fromCu(r);
    m->total = out[0];
    m->free = out[1];
    m->used = out[0] - out[1];
    return NVML_SUCCESS;
  });
}

NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t* m) {
  return withDevice(d, [&](int, const tf::remoting::DeviceInfo&) -> nvmlReturn_t {
    if (!m) return NVML_ERROR_INVALID_ARGUMENT;
    if (m->version != nvmlMemory_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    nvmlMemory_t v1;
    nvmlReturn_t r = nvmlDeviceGetMemoryInfo(d, &v1);
    if (r != NVML_SUCCESS) return r;
    m->total = v1.total;
    m->reserved = 0;
    m->free = v1.free;
    m->used = v1.used;
    return NVML_SUCCESS;
  });
}

NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t d, unsigned int* count,
                                                                  nvmlProcessInfo_v1_t* infos) {
  return processes(d, count, infos, true);
}
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t d, unsigned int* count,
                                                                     nvmlProcessInfo_t* infos) {
  return processes(d, count, infos, false);
}
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int* count,
                                                                     nvmlProcessInfo_t* infos) {
  return processes(d, count, infos, false);
}
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses(nvmlDevice_t d, unsigned int* count,
                                                                   nvmlProcessInfo_v1_t*) {
  return noProcesses(d, count);
}
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v2(nvmlDevice_t d, unsigned int* count,
                                                                      nvmlProcessInfo_t*) {
  return noProcesses(d, count);
}
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t d, unsigned int* count,
                                                                      nvmlProcessInfo_t*) {
  return noProcesses(d, count);
}
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses(nvmlDevice_t d, unsigned int* count,
                                                                     nvmlProcessInfo_v1_t*) {
  return noProcesses(d, count);
}
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses_v2(nvmlDevice_t d, unsigned int* count,
                                                                        nvmlProcessInfo_t*) {
  return noProcesses(d, count);
}
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int* count,
                                                                        nvmlProcessInfo_t*) {
  return noProcesses(d, count);
}

NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetSupportedEventTypes(nvmlDevice_t d, unsigned long long* types) {
  return withDevice(d, [&](int, const tf::remoting::DeviceInfo&) -> nvmlReturn_t {
    if (!types) return NVML_ERROR_INVALID_ARGUMENT;
    *types = tf::nvml::kSupportedEvents;
    return NVML_SUCCESS;
  });
}
NVML_API_EXPORT nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t d, unsigned long long types, nvmlEventSet_t set) {
  return withDevice(d, [&](int, const tf::remoting::DeviceInfo&) { return eventSets().registerEvents(types, set); });
}
NVML_API_EXPORT nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t* set) {
  return withClient([&] { return eventSets().create(set); });
}
NVML_API_EXPORT nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
  return withClient([&] { return eventSets().free(set); });
}
NVML_API_EXPORT nvmlReturn_t nvmlEventSetWait(nvmlEventSet_t set, nvmlEventData_t* data, unsigned int timeoutMs) {
  return waitOn(set, data, timeoutMs);
}
NVML_API_EXPORT nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t* data, unsigned int timeoutMs) {
  return waitOn(set, data, timeoutMs);
}

} // extern "C"
