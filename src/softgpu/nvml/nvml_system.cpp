// nvmlInit/Shutdown, error strings, system versions and device enumeration.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <strings.h>

#include "softgpu/nvml/nvml_context.h"

using tf::nvml::copyNvmlString;
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

nvmlReturn_t handleByBusId(const char* busId, nvmlDevice_t* device) {
  return withLibrary([&](Library& lib) -> nvmlReturn_t {
    if (!busId || !device) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned domain, bus, dev, fn;
    if (!tf::nvml::parseNvmlPciBusId(busId, &domain, &bus, &dev, &fn)) return NVML_ERROR_INVALID_ARGUMENT;
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

const char* nvmlErrorString(nvmlReturn_t result) { return tf::nvml::nvmlErrorText(result); }

nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  return guarded([&] { return copyNvmlString(tf::softgpu::nvml::kDriverVersion, version, length); });
}

nvmlReturn_t nvmlSystemGetNVMLVersion(char* version, unsigned int length) {
  return guarded([&] { return copyNvmlString(tf::softgpu::nvml::kNvmlVersion, version, length); });
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
    return copyNvmlString(argv0, name, length);
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
