// Clocks, power, thermals, PCIe and ECC: modelled from the device model and the device's
// utilization. The soft GPU always runs at its boost clocks in P0, is never throttled except
// for being idle, has ECC on and never an error, and sits on a full-width PCIe link of its
// generation.
#include <ctime>

#include "softgpu/nvml/nvml_context.h"

using tf::softgpu::DeviceModel;
using tf::softgpu::nvml::withDevice;

namespace {

namespace nv = tf::softgpu::nvml;

// Modelled thermal limits (those of NVIDIA's data-centre boards).
constexpr unsigned kShutdownC = 92, kSlowdownC = 89, kMemoryMaxC = 95, kGpuMaxC = 87;
constexpr unsigned long long kSupportedThrottleReasons =
    nvmlClocksThrottleReasonGpuIdle | nvmlClocksThrottleReasonApplicationsClocksSetting |
    nvmlClocksThrottleReasonSwPowerCap | nvmlClocksThrottleReasonHwSlowdown | nvmlClocksThrottleReasonSyncBoost |
    nvmlClocksThrottleReasonSwThermalSlowdown | nvmlClocksThrottleReasonHwThermalSlowdown |
    nvmlClocksThrottleReasonHwPowerBrakeSlowdown;

unsigned clockMhz(const DeviceModel& m, unsigned type) {
  switch (type) {
  case NVML_CLOCK_GRAPHICS:
  case NVML_CLOCK_SM: return unsigned(m.clockKhz / 1000);
  case NVML_CLOCK_MEM: return unsigned(m.memoryClockKhz / 1000);
  case NVML_CLOCK_VIDEO: return unsigned(m.clockKhz / 1000 * 9 / 10);
  default: return 0;
  }
}

// Every clock id reads the boost clock: current, application target and default, customer max.
nvmlReturn_t clockInfo(nvmlDevice_t device, unsigned type, unsigned id, unsigned int* clock) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!clock || id > NVML_CLOCK_ID_CUSTOMER_BOOST_MAX) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned mhz = clockMhz(*d.config.model, type);
    if (mhz == 0) return NVML_ERROR_INVALID_ARGUMENT;
    *clock = mhz;
    return NVML_SUCCESS;
  });
}

unsigned powerLimitMw(const nvmlDevice_st& d) { return unsigned(d.config.model->powerLimitWatts) * 1000; }

nvmlReturn_t throttleReasons(nvmlDevice_t device, unsigned long long* reasons) {
  return nv::readValue(device, reasons, [](nvmlDevice_st& d) {
    return nv::utilizationOf(d) == 0 ? nvmlClocksThrottleReasonGpuIdle : nvmlClocksThrottleReasonNone;
  });
}

nvmlReturn_t retiredPages(nvmlDevice_t device, unsigned cause, unsigned int* count) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!count || cause > NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR) return NVML_ERROR_INVALID_ARGUMENT;
    if (nv::isHbmBoard(*d.config.model)) return NVML_ERROR_NOT_SUPPORTED; // rows are remapped instead
    *count = 0;
    return NVML_SUCCESS;
  });
}

bool validEccCounter(unsigned errorType, unsigned counterType) {
  return errorType <= NVML_MEMORY_ERROR_TYPE_UNCORRECTED && counterType <= NVML_AGGREGATE_ECC;
}

} // namespace

extern "C" {

nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int* clock) {
  return clockInfo(device, type, NVML_CLOCK_ID_CURRENT, clock);
}
nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int* clock) {
  return clockInfo(device, type, NVML_CLOCK_ID_CUSTOMER_BOOST_MAX, clock);
}
nvmlReturn_t nvmlDeviceGetClock(nvmlDevice_t device, nvmlClockType_t type, nvmlClockId_t id, unsigned int* clock) {
  return clockInfo(device, type, id, clock);
}
nvmlReturn_t nvmlDeviceGetApplicationsClock(nvmlDevice_t device, nvmlClockType_t type, unsigned int* clock) {
  return clockInfo(device, type, NVML_CLOCK_ID_APP_CLOCK_TARGET, clock);
}
nvmlReturn_t nvmlDeviceGetDefaultApplicationsClock(nvmlDevice_t device, nvmlClockType_t type, unsigned int* clock) {
  return clockInfo(device, type, NVML_CLOCK_ID_APP_CLOCK_DEFAULT, clock);
}
nvmlReturn_t nvmlDeviceGetMaxCustomerBoostClock(nvmlDevice_t device, nvmlClockType_t type, unsigned int* clock) {
  return clockInfo(device, type, NVML_CLOCK_ID_CUSTOMER_BOOST_MAX, clock);
}

nvmlReturn_t nvmlDeviceGetSupportedMemoryClocks(nvmlDevice_t device, unsigned int* count, unsigned int* clocks) {
  return withDevice(device, [&](nvmlDevice_st& d) {
    return nv::fillList(count, clocks, std::vector<unsigned>{clockMhz(*d.config.model, NVML_CLOCK_MEM)});
  });
}

nvmlReturn_t nvmlDeviceGetSupportedGraphicsClocks(nvmlDevice_t device, unsigned int memoryClockMhz, unsigned int* count,
                                                  unsigned int* clocks) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    if (memoryClockMhz != clockMhz(*d.config.model, NVML_CLOCK_MEM)) return NVML_ERROR_NOT_FOUND;
    return nv::fillList(count, clocks, std::vector<unsigned>{clockMhz(*d.config.model, NVML_CLOCK_GRAPHICS)});
  });
}

nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t device, unsigned long long* reasons) {
  return throttleReasons(device, reasons);
}
nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t device, unsigned long long* reasons) {
  return throttleReasons(device, reasons);
}
nvmlReturn_t nvmlDeviceGetSupportedClocksThrottleReasons(nvmlDevice_t device, unsigned long long* reasons) {
  return nv::readValue(device, reasons, [](nvmlDevice_st&) { return kSupportedThrottleReasons; });
}
nvmlReturn_t nvmlDeviceGetSupportedClocksEventReasons(nvmlDevice_t device, unsigned long long* reasons) {
  return nv::readValue(device, reasons, [](nvmlDevice_st&) { return kSupportedThrottleReasons; });
}

// Never held below its clocks: no violation time.
nvmlReturn_t nvmlDeviceGetViolationStatus(nvmlDevice_t device, nvmlPerfPolicyType_t policy, nvmlViolationTime_t* time) {
  return withDevice(device, [&](nvmlDevice_st&) -> nvmlReturn_t {
    unsigned p = policy;
    if (!time || (p > NVML_PERF_POLICY_RELIABILITY && p != NVML_PERF_POLICY_TOTAL_APP_CLOCKS &&
                  p != NVML_PERF_POLICY_TOTAL_BASE_CLOCKS))
      return NVML_ERROR_INVALID_ARGUMENT;
    *time = nvmlViolationTime_t{nv::realtimeMicros(), 0};
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetPerformanceState(nvmlDevice_t device, nvmlPstates_t* state) {
  return nv::readValue(device, state, [](nvmlDevice_st&) { return NVML_PSTATE_0; });
}
nvmlReturn_t nvmlDeviceGetPowerState(nvmlDevice_t device, nvmlPstates_t* state) {
  return nv::readValue(device, state, [](nvmlDevice_st&) { return NVML_PSTATE_0; });
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int* power) {
  return nv::readValue(device, power, [](nvmlDevice_st& d) { return nv::powerMilliwattsFor(*d.config.model, nv::utilizationOf(d)); });
}

// Millijoules since boot at the idle draw: the state keeps 60 s of busy time, so kernels'
// extra energy is not accumulated (the figure stays monotonic).
nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long* energy) {
  return nv::readValue(device, energy, [](nvmlDevice_st& d) {
    timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    unsigned long long ms = (unsigned long long)ts.tv_sec * 1000 + ts.tv_nsec / 1'000'000;
    return (unsigned long long)nv::powerMilliwattsFor(*d.config.model, 0) * ms / 1000;
  });
}

nvmlReturn_t nvmlDeviceGetPowerManagementMode(nvmlDevice_t device, nvmlEnableState_t* mode) {
  return nv::readValue(device, mode, [](nvmlDevice_st&) { return NVML_FEATURE_ENABLED; });
}
nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t device, unsigned int* limit) {
  return nv::readValue(device, limit, powerLimitMw);
}
nvmlReturn_t nvmlDeviceGetPowerManagementDefaultLimit(nvmlDevice_t device, unsigned int* limit) {
  return nv::readValue(device, limit, powerLimitMw);
}
nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int* limit) {
  return nv::readValue(device, limit, powerLimitMw);
}
// The limit can be set from a quarter of the board's limit up to it.
nvmlReturn_t nvmlDeviceGetPowerManagementLimitConstraints(nvmlDevice_t device, unsigned int* minLimit,
                                                          unsigned int* maxLimit) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!minLimit || !maxLimit) return NVML_ERROR_INVALID_ARGUMENT;
    *maxLimit = powerLimitMw(d);
    *minLimit = *maxLimit / 4;
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, nvmlTemperatureSensors_t sensor, unsigned int* temp) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!temp || sensor != NVML_TEMPERATURE_GPU) return NVML_ERROR_INVALID_ARGUMENT;
    *temp = nv::temperatureFor(nv::utilizationOf(d));
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetTemperatureThreshold(nvmlDevice_t device, nvmlTemperatureThresholds_t type, unsigned int* temp) {
  return withDevice(device, [&](nvmlDevice_st&) -> nvmlReturn_t {
    if (!temp) return NVML_ERROR_INVALID_ARGUMENT;
    switch (unsigned(type)) {
    case NVML_TEMPERATURE_THRESHOLD_SHUTDOWN: *temp = kShutdownC; return NVML_SUCCESS;
    case NVML_TEMPERATURE_THRESHOLD_SLOWDOWN: *temp = kSlowdownC; return NVML_SUCCESS;
    case NVML_TEMPERATURE_THRESHOLD_MEM_MAX: *temp = kMemoryMaxC; return NVML_SUCCESS;
    case NVML_TEMPERATURE_THRESHOLD_GPU_MAX: *temp = kGpuMaxC; return NVML_SUCCESS;
    case NVML_TEMPERATURE_THRESHOLD_ACOUSTIC_MIN:
    case NVML_TEMPERATURE_THRESHOLD_ACOUSTIC_CURR:
    case NVML_TEMPERATURE_THRESHOLD_ACOUSTIC_MAX: return NVML_ERROR_NOT_SUPPORTED; // no fans
    default: return NVML_ERROR_INVALID_ARGUMENT;
    }
  });
}

nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t device, unsigned int* gen) {
  return nv::readValue(device, gen, [](nvmlDevice_st& d) { return nv::pcieGenerationOf(*d.config.model); });
}
nvmlReturn_t nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t device, unsigned int* gen) {
  return nv::readValue(device, gen, [](nvmlDevice_st& d) { return nv::pcieGenerationOf(*d.config.model); });
}
nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t device, unsigned int* width) {
  return nv::readValue(device, width, [](nvmlDevice_st&) { return 16u; });
}
nvmlReturn_t nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t device, unsigned int* width) {
  return nv::readValue(device, width, [](nvmlDevice_st&) { return 16u; });
}
// Copies do not cross a bus: no PCIe traffic, no replays.
nvmlReturn_t nvmlDeviceGetPcieThroughput(nvmlDevice_t device, nvmlPcieUtilCounter_t counter, unsigned int* value) {
  return withDevice(device, [&](nvmlDevice_st&) -> nvmlReturn_t {
    if (!value || unsigned(counter) > NVML_PCIE_UTIL_RX_BYTES) return NVML_ERROR_INVALID_ARGUMENT;
    *value = 0;
    return NVML_SUCCESS;
  });
}
nvmlReturn_t nvmlDeviceGetPcieReplayCounter(nvmlDevice_t device, unsigned int* value) {
  return nv::readValue(device, value, [](nvmlDevice_st&) { return 0u; });
}

nvmlReturn_t nvmlDeviceGetEccMode(nvmlDevice_t device, nvmlEnableState_t* current, nvmlEnableState_t* pending) {
  return withDevice(device, [&](nvmlDevice_st&) -> nvmlReturn_t {
    if (!current || !pending) return NVML_ERROR_INVALID_ARGUMENT;
    *current = *pending = NVML_FEATURE_ENABLED;
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, nvmlMemoryErrorType_t errorType,
                                         nvmlEccCounterType_t counterType, unsigned long long* count) {
  return withDevice(device, [&](nvmlDevice_st&) -> nvmlReturn_t {
    if (!count || !validEccCounter(errorType, counterType)) return NVML_ERROR_INVALID_ARGUMENT;
    *count = 0;
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetDetailedEccErrors(nvmlDevice_t device, nvmlMemoryErrorType_t errorType,
                                            nvmlEccCounterType_t counterType, nvmlEccErrorCounts_t* counts) {
  return withDevice(device, [&](nvmlDevice_st&) -> nvmlReturn_t {
    if (!counts || !validEccCounter(errorType, counterType)) return NVML_ERROR_INVALID_ARGUMENT;
    *counts = nvmlEccErrorCounts_t{};
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetMemoryErrorCounter(nvmlDevice_t device, nvmlMemoryErrorType_t errorType,
                                             nvmlEccCounterType_t counterType, nvmlMemoryLocation_t location,
                                             unsigned long long* count) {
  return withDevice(device, [&](nvmlDevice_st&) -> nvmlReturn_t {
    if (!count || !validEccCounter(errorType, counterType) || unsigned(location) > NVML_MEMORY_LOCATION_SRAM)
      return NVML_ERROR_INVALID_ARGUMENT;
    *count = 0;
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t device, unsigned int* corrRows, unsigned int* uncRows,
                                       unsigned int* isPending, unsigned int* failureOccurred) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!corrRows || !uncRows || !isPending || !failureOccurred) return NVML_ERROR_INVALID_ARGUMENT;
    if (!nv::isHbmBoard(*d.config.model)) return NVML_ERROR_NOT_SUPPORTED;
    *corrRows = *uncRows = *isPending = *failureOccurred = 0;
    return NVML_SUCCESS;
  });
}

// Bank counts are not modelled: an empty histogram.
nvmlReturn_t nvmlDeviceGetRowRemapperHistogram(nvmlDevice_t device, nvmlRowRemapperHistogramValues_t* values) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!values) return NVML_ERROR_INVALID_ARGUMENT;
    if (!nv::isHbmBoard(*d.config.model)) return NVML_ERROR_NOT_SUPPORTED;
    *values = nvmlRowRemapperHistogramValues_t{};
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetRetiredPages(nvmlDevice_t device, nvmlPageRetirementCause_t cause, unsigned int* count,
                                       unsigned long long*) {
  return retiredPages(device, cause, count);
}
nvmlReturn_t nvmlDeviceGetRetiredPages_v2(nvmlDevice_t device, nvmlPageRetirementCause_t cause, unsigned int* count,
                                          unsigned long long*, unsigned long long*) {
  return retiredPages(device, cause, count);
}
nvmlReturn_t nvmlDeviceGetRetiredPagesPendingStatus(nvmlDevice_t device, nvmlEnableState_t* pending) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!pending) return NVML_ERROR_INVALID_ARGUMENT;
    if (nv::isHbmBoard(*d.config.model)) return NVML_ERROR_NOT_SUPPORTED;
    *pending = NVML_FEATURE_DISABLED;
    return NVML_SUCCESS;
  });
}

} // extern "C"
