// What a device is: name, UUID, PCI location, capabilities. Static per configuration.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <unistd.h>

#include "softgpu/nvml/nvml_context.h"

using tf::nvml::copyNvmlString;
using tf::softgpu::nvml::Library;
using tf::softgpu::nvml::withDevice;
using tf::softgpu::nvml::withLibrary;

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

namespace nv = tf::softgpu::nvml;

// Runs fn(first, second) when both handles are this library's devices.
template <typename Fn> nvmlReturn_t withPair(nvmlDevice_t a, nvmlDevice_t b, Fn&& fn) {
  return withLibrary([&](Library& lib) -> nvmlReturn_t {
    if (!lib.owns(a) || !lib.owns(b)) return NVML_ERROR_INVALID_ARGUMENT;
    return fn(*a, *b);
  });
}

// All soft devices hang off one host bridge: the CPU's memory is theirs.
nvmlGpuTopologyLevel_t levelBetween(const nvmlDevice_st& a, const nvmlDevice_st& b) {
  return &a == &b ? NVML_TOPOLOGY_INTERNAL : NVML_TOPOLOGY_HOSTBRIDGE;
}

nvmlReturn_t cpuAffinity(nvmlDevice_t device, unsigned int cpuSetSize, unsigned long* cpuSet) {
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

// A modelled VBIOS version per architecture, in NVIDIA's format.
const char* vbiosFor(nvmlDeviceArchitecture_t arch) {
  switch (arch) {
  case NVML_DEVICE_ARCH_TURING: return "90.04.96.00.01";
  case NVML_DEVICE_ARCH_AMPERE: return "92.00.45.00.06";
  case NVML_DEVICE_ARCH_ADA: return "95.04.29.00.01";
  case NVML_DEVICE_ARCH_HOPPER: return "96.00.99.00.01";
  default: return "97.00.00.00.01";
  }
}

unsigned coresPerSm(const tf::softgpu::DeviceModel& m) {
  if (m.ccMajor == 8 && m.ccMinor == 0) return 64;
  if (m.ccMajor >= 8) return 128;
  return 64;
}

} // namespace

extern "C" {

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned int length) {
  return withDevice(device, [&](nvmlDevice_st& d) { return copyNvmlString(d.config.model->name, name, length); });
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned int length) {
  return withDevice(device, [&](nvmlDevice_st& d) { return copyNvmlString(d.config.uuidString, uuid, length); });
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
    return copyNvmlString(tf::softgpu::nvml::serialOf(d.config), serial, length);
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

// The soft GPU runs on every CPU of the machine, in NUMA node 0's memory.
nvmlReturn_t nvmlDeviceGetCpuAffinity(nvmlDevice_t device, unsigned int cpuSetSize, unsigned long* cpuSet) {
  return cpuAffinity(device, cpuSetSize, cpuSet);
}
nvmlReturn_t nvmlDeviceGetCpuAffinityWithinScope(nvmlDevice_t device, unsigned int cpuSetSize, unsigned long* cpuSet,
                                                 nvmlAffinityScope_t scope) {
  if (scope > NVML_AFFINITY_SCOPE_SOCKET) return withDevice(device, [](nvmlDevice_st&) { return NVML_ERROR_INVALID_ARGUMENT; });
  return cpuAffinity(device, cpuSetSize, cpuSet);
}
nvmlReturn_t nvmlDeviceGetMemoryAffinity(nvmlDevice_t device, unsigned int nodeSetSize, unsigned long* nodeSet,
                                         nvmlAffinityScope_t scope) {
  return withDevice(device, [&](nvmlDevice_st&) -> nvmlReturn_t {
    if (!nodeSet || nodeSetSize == 0 || scope > NVML_AFFINITY_SCOPE_SOCKET) return NVML_ERROR_INVALID_ARGUMENT;
    for (unsigned i = 0; i < nodeSetSize; ++i) nodeSet[i] = i == 0 ? 1ul : 0ul;
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetArchitecture(nvmlDevice_t device, nvmlDeviceArchitecture_t* arch) {
  return nv::readValue(device, arch, [](nvmlDevice_st& d) { return nv::architectureOf(*d.config.model); });
}

nvmlReturn_t nvmlDeviceGetBoardId(nvmlDevice_t device, unsigned int* boardId) {
  return nv::readValue(device, boardId, [](nvmlDevice_st& d) { return unsigned(d.config.pciBus) << 8; });
}

nvmlReturn_t nvmlDeviceGetBoardPartNumber(nvmlDevice_t device, char* partNumber, unsigned int length) {
  return withDevice(device, [&](nvmlDevice_st& d) {
    return copyNvmlString(std::string("softgpu-") + d.config.model->key, partNumber, length);
  });
}

nvmlReturn_t nvmlDeviceGetMultiGpuBoard(nvmlDevice_t device, unsigned int* multiGpu) {
  return nv::readValue(device, multiGpu, [](nvmlDevice_st&) { return 0u; });
}

nvmlReturn_t nvmlDeviceGetVbiosVersion(nvmlDevice_t device, char* version, unsigned int length) {
  return withDevice(device, [&](nvmlDevice_st& d) {
    return copyNvmlString(vbiosFor(nv::architectureOf(*d.config.model)), version, length);
  });
}

nvmlReturn_t nvmlDeviceGetInforomVersion(nvmlDevice_t device, nvmlInforomObject_t object, char* version,
                                         unsigned int length) {
  return withDevice(device, [&](nvmlDevice_st&) -> nvmlReturn_t {
    if (!version) return NVML_ERROR_INVALID_ARGUMENT;
    switch (unsigned(object)) {
    case NVML_INFOROM_OEM: return copyNvmlString("2.1", version, length);
    case NVML_INFOROM_ECC: return copyNvmlString("7.0", version, length);
    case NVML_INFOROM_POWER: return NVML_ERROR_NOT_SUPPORTED; // no power object on these boards
    default: return NVML_ERROR_INVALID_ARGUMENT;
    }
  });
}

nvmlReturn_t nvmlDeviceGetInforomImageVersion(nvmlDevice_t device, char* version, unsigned int length) {
  return withDevice(device, [&](nvmlDevice_st&) { return copyNvmlString("G000.0000.00.01", version, length); });
}

nvmlReturn_t nvmlDeviceGetBridgeChipInfo(nvmlDevice_t device, nvmlBridgeChipHierarchy_t* hierarchy) {
  return withDevice(device, [&](nvmlDevice_st&) -> nvmlReturn_t {
    if (!hierarchy) return NVML_ERROR_INVALID_ARGUMENT;
    hierarchy->bridgeCount = 0;
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetDisplayMode(nvmlDevice_t device, nvmlEnableState_t* display) {
  return nv::readValue(device, display, [](nvmlDevice_st&) { return NVML_FEATURE_DISABLED; });
}
nvmlReturn_t nvmlDeviceGetDisplayActive(nvmlDevice_t device, nvmlEnableState_t* active) {
  return nv::readValue(device, active, [](nvmlDevice_st&) { return NVML_FEATURE_DISABLED; });
}

nvmlReturn_t nvmlDeviceGetVirtualizationMode(nvmlDevice_t device, nvmlGpuVirtualizationMode_t* mode) {
  return nv::readValue(device, mode, [](nvmlDevice_st&) { return NVML_GPU_VIRTUALIZATION_MODE_NONE; });
}

// Clock settings are restricted to root, as on NVIDIA's data-centre boards.
nvmlReturn_t nvmlDeviceGetAPIRestriction(nvmlDevice_t device, nvmlRestrictedAPI_t api, nvmlEnableState_t* restricted) {
  return withDevice(device, [&](nvmlDevice_st&) -> nvmlReturn_t {
    if (!restricted || unsigned(api) > NVML_RESTRICTED_API_SET_AUTO_BOOSTED_CLOCKS) return NVML_ERROR_INVALID_ARGUMENT;
    *restricted = NVML_FEATURE_ENABLED;
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetTopologyCommonAncestor(nvmlDevice_t a, nvmlDevice_t b, nvmlGpuTopologyLevel_t* level) {
  return withPair(a, b, [&](nvmlDevice_st& x, nvmlDevice_st& y) -> nvmlReturn_t {
    if (!level) return NVML_ERROR_INVALID_ARGUMENT;
    *level = levelBetween(x, y);
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetTopologyNearestGpus(nvmlDevice_t device, nvmlGpuTopologyLevel_t level, unsigned int* count,
                                              nvmlDevice_t* devices) {
  return withLibrary([&](Library& lib) -> nvmlReturn_t {
    if (!lib.owns(device) || !count) return NVML_ERROR_INVALID_ARGUMENT;
    std::vector<nvmlDevice_t> near;
    for (const auto& d : lib.devices())
      if (d.get() != device && unsigned(levelBetween(*device, *d)) <= unsigned(level)) near.push_back(d.get());
    return nv::fillList(count, devices, near);
  });
}

nvmlReturn_t nvmlDeviceGetP2PStatus(nvmlDevice_t a, nvmlDevice_t b, nvmlGpuP2PCapsIndex_t caps,
                                    nvmlGpuP2PStatus_t* status) {
  return withPair(a, b, [&](nvmlDevice_st& x, nvmlDevice_st& y) -> nvmlReturn_t {
    if (!status || unsigned(caps) >= NVML_P2P_CAPS_INDEX_UNKNOWN) return NVML_ERROR_INVALID_ARGUMENT;
    // As cuDeviceCanAccessPeer: distinct soft devices share host memory; no NVLink between them.
    bool ok = &x != &y && caps != NVML_P2P_CAPS_INDEX_NVLINK;
    *status = ok ? NVML_P2P_STATUS_OK : NVML_P2P_STATUS_NOT_SUPPORTED;
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceOnSameBoard(nvmlDevice_t a, nvmlDevice_t b, int* onSameBoard) {
  return withPair(a, b, [&](nvmlDevice_st& x, nvmlDevice_st& y) -> nvmlReturn_t {
    if (!onSameBoard) return NVML_ERROR_INVALID_ARGUMENT;
    *onSameBoard = &x == &y ? 1 : 0;
    return NVML_SUCCESS;
  });
}

// Every device is near every CPU.
nvmlReturn_t nvmlSystemGetTopologyGpuSet(unsigned int, unsigned int* count, nvmlDevice_t* devices) {
  return withLibrary([&](Library& lib) -> nvmlReturn_t {
    std::vector<nvmlDevice_t> all;
    for (const auto& d : lib.devices()) all.push_back(d.get());
    return nv::fillList(count, devices, all);
  });
}

// MIG: the HBM boards support it and have it off; it cannot be turned on here.
nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int* current, unsigned int* pending) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!current || !pending) return NVML_ERROR_INVALID_ARGUMENT;
    if (!nv::isHbmBoard(*d.config.model)) return NVML_ERROR_NOT_SUPPORTED;
    *current = *pending = NVML_DEVICE_MIG_DISABLE;
    return NVML_SUCCESS;
  });
}
nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned int* isMig) {
  return nv::readValue(device, isMig, [](nvmlDevice_st&) { return 0u; });
}
nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int* count) {
  return nv::readValue(device, count, [](nvmlDevice_st&) { return 0u; }); // zero while MIG is off
}

} // extern "C"
