// nvmlInit/Shutdown, error strings, system versions and device enumeration.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <strings.h>

#include "softgpu/nvml/nvml_context.h"

using tf::softgpu::nvml::copyString;
using tf::softgpu::nvml::guarded;
using tf::softgpu::nvml::Library;
using tf::softgpu::nvml::withLibrary;

namespace {

nvmlReturn_t handleByIndex(unsigned int index, nvmlDevice_t* device) {
  return withLibrary([&](Library& lib) -> nvmlReturn_t {
    if (!device || index >= lib.devices().size()) return NVML_ERROR_INVALID_ARGUMENT;
    *device = lib.devices()[index].get();
    return NVML_SUCCESS;
  });
}

nvmlReturn_t deviceCount(unsigned int* count) {
  return withLibrary([&](Library& lib) -> nvmlReturn_t {
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    *count = static_cast<unsigned>(lib.devices().size());
    return NVML_SUCCESS;
  });
}

// "00000000:01:00.0", "0000:01:00.0" or "01:00.0", hex, any case.
bool parseBusId(const char* text, unsigned* domain, unsigned* bus, unsigned* dev, unsigned* fn) {
  char tail;
  if (sscanf(text, "%x:%x:%x.%x%c", domain, bus, dev, fn, &tail) == 4) return true;
  *domain = 0;
  return sscanf(text, "%x:%x.%x%c", bus, dev, fn, &tail) == 3;
}

nvmlReturn_t handleByBusId(const char* busId, nvmlDevice_t* device) {
  return withLibrary([&](Library& lib) -> nvmlReturn_t {
    if (!busId || !device) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned domain, bus, dev, fn;
    if (!parseBusId(busId, &domain, &bus, &dev, &fn)) return NVML_ERROR_INVALID_ARGUMENT;
    for (const auto& d : lib.devices())
      if (domain == 0 && dev == 0 && fn == 0 && bus == unsigned(d->config.pciBus)) {
        *device = d.get();
        return NVML_SUCCESS;
      }
    return NVML_ERROR_NOT_FOUND;
  });
}

nvmlReturn_t cudaDriverVersion(int* version) {
  // Like NVIDIA's, answers without nvmlInit.
  if (!version) return NVML_ERROR_INVALID_ARGUMENT;
  *version = tf::softgpu::nvml::kCudaDriverVersion;
  return NVML_SUCCESS;
}

} // namespace

extern "C" {

nvmlReturn_t nvmlInit_v2(void) {
  return guarded([] { return Library::get().init(); });
}
nvmlReturn_t nvmlInit(void) { return nvmlInit_v2(); }
nvmlReturn_t nvmlInitWithFlags(unsigned int) { return nvmlInit_v2(); }

nvmlReturn_t nvmlShutdown(void) {
  return guarded([] { return Library::get().shutdown(); });
}

const char* nvmlErrorString(nvmlReturn_t result) {
  switch (result) {
  case NVML_SUCCESS: return "Success";
  case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
  case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
  case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
  case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
  case NVML_ERROR_ALREADY_INITIALIZED: return "Already Initialized";
  case NVML_ERROR_NOT_FOUND: return "Not Found";
  case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
  case NVML_ERROR_INSUFFICIENT_POWER: return "Insufficient External Power";
  case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
  case NVML_ERROR_TIMEOUT: return "Timeout";
  case NVML_ERROR_IRQ_ISSUE: return "Interrupt Request Issue";
  case NVML_ERROR_LIBRARY_NOT_FOUND: return "NVML Shared Library Not Found";
  case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
  case NVML_ERROR_CORRUPTED_INFOROM: return "Corrupted infoROM";
  case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
  case NVML_ERROR_RESET_REQUIRED: return "GPU requires reset";
  case NVML_ERROR_OPERATING_SYSTEM: return "GPU access blocked by the operating system";
  case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "Driver/library version mismatch";
  case NVML_ERROR_IN_USE: return "In use by another client";
  case NVML_ERROR_MEMORY: return "Insufficient Memory";
  case NVML_ERROR_NO_DATA: return "No data";
  case NVML_ERROR_INSUFFICIENT_RESOURCES: return "Insufficient resources";
  case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Version mismatch between passed in argument and NVML";
  case NVML_ERROR_DEPRECATED: return "Deprecated";
  case NVML_ERROR_NOT_READY: return "Not ready";
  case NVML_ERROR_GPU_NOT_FOUND: return "GPU not found";
  case NVML_ERROR_INVALID_STATE: return "Invalid state";
  default: return "Unknown Error";
  }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  return guarded([&] { return copyString(tf::softgpu::nvml::kDriverVersion, version, length); });
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char* version, unsigned int length) {
  return guarded([&] { return copyString(tf::softgpu::nvml::kNvmlVersion, version, length); });
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int* version) { return cudaDriverVersion(version); }
nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int* version) { return cudaDriverVersion(version); }

nvmlReturn_t nvmlDeviceGetCount(unsigned int* count) { return deviceCount(count); }
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) { return deviceCount(count); }

nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t* device) {
  return handleByIndex(index, device);
}
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  return handleByIndex(index, device);
}

nvmlReturn_t nvmlDeviceGetHandleByUUID(const char* uuid, nvmlDevice_t* device) {
  return withLibrary([&](Library& lib) -> nvmlReturn_t {
    if (!uuid || !device) return NVML_ERROR_INVALID_ARGUMENT;
    for (const auto& d : lib.devices())
      if (strcasecmp(d->config.uuidString.c_str(), uuid) == 0) {
        *device = d.get();
        return NVML_SUCCESS;
      }
    return NVML_ERROR_NOT_FOUND;
  });
}

nvmlReturn_t nvmlDeviceGetHandleByPciBusId(const char* busId, nvmlDevice_t* device) {
  return handleByBusId(busId, device);
}
nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char* busId, nvmlDevice_t* device) {
  return handleByBusId(busId, device);
}

nvmlReturn_t nvmlDeviceGetHandleBySerial(const char* serial, nvmlDevice_t* device) {
  return withLibrary([&](Library& lib) -> nvmlReturn_t {
    if (!serial || !device) return NVML_ERROR_INVALID_ARGUMENT;
    for (const auto& d : lib.devices())
      if (tf::softgpu::nvml::serialOf(d->config) == serial) {
        *device = d.get();
        return NVML_SUCCESS;
      }
    return NVML_ERROR_NOT_FOUND;
  });
}

// The program a process runs (argv[0]), as nvidia-smi lists it; a kernel thread by its name.
nvmlReturn_t nvmlSystemGetProcessName(unsigned int pid, char* name, unsigned int length) {
  return withLibrary([&](Library&) -> nvmlReturn_t {
    if (!name || length == 0) return NVML_ERROR_INVALID_ARGUMENT;
    if (pid == 0) return NVML_ERROR_NOT_FOUND;
    std::string proc = "/proc/" + std::to_string(pid);
    std::ifstream cmdline(proc + "/cmdline", std::ios::binary);
    if (!cmdline) return NVML_ERROR_NOT_FOUND;
    std::string argv0;
    std::getline(cmdline, argv0, '\0');
    if (argv0.empty()) {
      std::ifstream comm(proc + "/comm");
      std::getline(comm, argv0);
    }
    if (argv0.empty()) return NVML_ERROR_NOT_FOUND;
    return copyString(argv0, name, length);
  });
}

// No host interface cards (S-class) and no units.
nvmlReturn_t nvmlSystemGetHicVersion(unsigned int* count, nvmlHwbcEntry_t*) {
  return withLibrary([&](Library&) -> nvmlReturn_t {
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    *count = 0;
    return NVML_SUCCESS;
  });
}
nvmlReturn_t nvmlUnitGetCount(unsigned int* count) {
  return withLibrary([&](Library&) -> nvmlReturn_t {
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    *count = 0;
    return NVML_SUCCESS;
  });
}

} // extern "C"

// Marks this NVML as the soft GPU's, for tools that must know (the hypervisor runs programs
// with the soft GPU's libcuda first on their library path only then).
extern "C" __attribute__((visibility("default"))) int tfSoftGpuNvml(void) { return 1; }
