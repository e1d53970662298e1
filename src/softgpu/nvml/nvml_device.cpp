// What a device is: name, UUID, PCI location, capabilities. Static per configuration.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <unistd.h>

#include "softgpu/nvml/nvml_context.h"

using tf::softgpu::nvml::copyString;
using tf::softgpu::nvml::withDevice;

namespace {

// `full`: the current layout (busIdLegacy .. busId); otherwise the original nvmlPciInfo_t,
// whose first 36 bytes are the same and whose remaining 16 are reserved.
nvmlReturn_t pciInfo(nvmlDevice_t device, nvmlPciInfo_t* pci, bool full) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!pci) return NVML_ERROR_INVALID_ARGUMENT;
    nvmlPciInfo_t info;
    memset(&info, 0, sizeof info);
    info.domain = 0;
    info.bus = static_cast<unsigned>(d.config.pciBus);
    info.device = 0;
    info.pciDeviceId = d.config.model->pciDeviceId;
    info.pciSubSystemId = (d.config.model->pciDeviceId & 0xFFFF0000u) | 0x10DEu;
    snprintf(info.busIdLegacy, sizeof info.busIdLegacy, "%04X:%02X:%02X.0", info.domain, info.bus,
             info.device);
    snprintf(info.busId, sizeof info.busId, "%08X:%02X:%02X.0", info.domain, info.bus, info.device);
    if (full) {
      *pci = info;
    } else {
      memcpy(pci, &info, offsetof(nvmlPciInfo_t, busId));
      memset(reinterpret_cast<char*>(pci) + offsetof(nvmlPciInfo_t, busId), 0, 16);
    }
    return NVML_SUCCESS;
  });
}

unsigned coresPerSm(const tf::softgpu::DeviceModel& m) {
  if (m.ccMajor == 8 && m.ccMinor == 0) return 64;
  if (m.ccMajor >= 8) return 128;
  return 64;
}

} // namespace

extern "C" {

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned int length) {
  return withDevice(device, [&](nvmlDevice_st& d) { return copyString(d.config.model->name, name, length); });
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned int length) {
  return withDevice(device, [&](nvmlDevice_st& d) { return copyString(d.config.uuidString, uuid, length); });
}

nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int* index) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!index) return NVML_ERROR_INVALID_ARGUMENT;
    *index = static_cast<unsigned>(d.config.index);
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetMinorNumber(nvmlDevice_t device, unsigned int* minor) {
  return nvmlDeviceGetIndex(device, minor);
}

nvmlReturn_t nvmlDeviceGetSerial(nvmlDevice_t device, char* serial, unsigned int length) {
  return withDevice(device, [&](nvmlDevice_st& d) {
    unsigned long long v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | d.config.uuid[i];
    char buf[NVML_DEVICE_SERIAL_BUFFER_SIZE];
    snprintf(buf, sizeof buf, "16%011llu", v % 100000000000ull);
    return copyString(buf, serial, length);
  });
}

nvmlReturn_t nvmlDeviceGetBrand(nvmlDevice_t device, nvmlBrandType_t* type) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!type) return NVML_ERROR_INVALID_ARGUMENT;
    *type = strncmp(d.config.model->name, "Tesla", 5) == 0 ? NVML_BRAND_TESLA : NVML_BRAND_NVIDIA;
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetPciInfo(nvmlDevice_t device, nvmlPciInfo_t* pci) { return pciInfo(device, pci, false); }
nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t device, nvmlPciInfo_t* pci) { return pciInfo(device, pci, true); }
nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t* pci) { return pciInfo(device, pci, true); }

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int* major, int* minor) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!major || !minor) return NVML_ERROR_INVALID_ARGUMENT;
    *major = d.config.model->ccMajor;
    *minor = d.config.model->ccMinor;
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetNumGpuCores(nvmlDevice_t device, unsigned int* cores) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!cores) return NVML_ERROR_INVALID_ARGUMENT;
    *cores = unsigned(d.config.model->smCount) * coresPerSm(*d.config.model);
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetMemoryBusWidth(nvmlDevice_t device, unsigned int* width) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!width) return NVML_ERROR_INVALID_ARGUMENT;
    *width = unsigned(d.config.model->memoryBusWidth);
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t device, nvmlEnableState_t* mode) {
  return withDevice(device, [&](nvmlDevice_st&) -> nvmlReturn_t {
    if (!mode) return NVML_ERROR_INVALID_ARGUMENT;
    *mode = NVML_FEATURE_ENABLED;
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetComputeMode(nvmlDevice_t device, nvmlComputeMode_t* mode) {
  return withDevice(device, [&](nvmlDevice_st&) -> nvmlReturn_t {
    if (!mode) return NVML_ERROR_INVALID_ARGUMENT;
    *mode = NVML_COMPUTEMODE_DEFAULT;
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetNumaNodeId(nvmlDevice_t device, unsigned int* node) {
  return withDevice(device, [&](nvmlDevice_st&) -> nvmlReturn_t {
    if (!node) return NVML_ERROR_INVALID_ARGUMENT;
    *node = 0;
    return NVML_SUCCESS;
  });
}

// The soft GPU runs on every CPU of the machine.
nvmlReturn_t nvmlDeviceGetCpuAffinity(nvmlDevice_t device, unsigned int cpuSetSize, unsigned long* cpuSet) {
  return withDevice(device, [&](nvmlDevice_st&) -> nvmlReturn_t {
    if (!cpuSet || cpuSetSize == 0) return NVML_ERROR_INVALID_ARGUMENT;
    long cpus = sysconf(_SC_NPROCESSORS_CONF);
    const unsigned bits = sizeof(unsigned long) * 8;
    for (unsigned i = 0; i < cpuSetSize; ++i) {
      long first = long(i) * bits;
      long n = std::max(0L, std::min<long>(bits, cpus - first));
      cpuSet[i] = n == long(bits) ? ~0ul : ((1ul << n) - 1);
    }
    return NVML_SUCCESS;
  });
}

} // extern "C"
