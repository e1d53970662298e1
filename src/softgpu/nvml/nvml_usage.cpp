// What a device is doing: memory, utilization, processes (from the shared DeviceState) and the
// sensors modelled from them.
#include <algorithm>
#include <ctime>

#include "softgpu/nvml/nvml_context.h"

using tf::softgpu::ProcessUsage;
using tf::softgpu::nvml::withDevice;

namespace {

constexpr unsigned kNoInstance = 0xFFFFFFFFu; // gpuInstanceId/computeInstanceId without MIG

template <typename Info, typename Fill>
nvmlReturn_t runningProcesses(nvmlDevice_t device, unsigned int* count, Info* infos, Fill fill) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    std::vector<ProcessUsage> procs = d.state->processes();
    // As NVIDIA's driver: a process is listed once it holds a context, not from cuInit on.
    std::erase_if(procs, [](const ProcessUsage& p) { return !p.holdsContext; });
    unsigned n = static_cast<unsigned>(procs.size());
    if (*count < n) {
      *count = n;
      return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    if (n > 0 && !infos) return NVML_ERROR_INVALID_ARGUMENT;
    for (unsigned i = 0; i < n; ++i) fill(infos[i], procs[i]);
    *count = n;
    return NVML_SUCCESS;
  });
}

void fillV2(nvmlProcessInfo_t& info, const ProcessUsage& p) {
  info.pid = static_cast<unsigned>(p.pid);
  info.usedGpuMemory = p.memoryBytes;
  info.gpuInstanceId = kNoInstance;
  info.computeInstanceId = kNoInstance;
}

uint64_t clockNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}

unsigned clockMhz(const tf::softgpu::DeviceModel& m, nvmlClockType_t type) {
  switch (type) {
  case NVML_CLOCK_GRAPHICS:
  case NVML_CLOCK_SM: return unsigned(m.clockKhz / 1000);
  case NVML_CLOCK_MEM: return unsigned(m.memoryClockKhz / 1000);
  case NVML_CLOCK_VIDEO: return unsigned(m.clockKhz / 1000 * 9 / 10);
  default: return 0;
  }
}

nvmlReturn_t clockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int* clock) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!clock) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned mhz = clockMhz(*d.config.model, type);
    if (mhz == 0) return NVML_ERROR_INVALID_ARGUMENT;
    *clock = mhz;
    return NVML_SUCCESS;
  });
}

nvmlReturn_t powerLimit(nvmlDevice_t device, unsigned int* limit) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!limit) return NVML_ERROR_INVALID_ARGUMENT;
    *limit = unsigned(d.config.model->powerLimitWatts) * 1000;
    return NVML_SUCCESS;
  });
}

} // namespace

extern "C" {

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!memory) return NVML_ERROR_INVALID_ARGUMENT;
    uint64_t total = d.state->totalMemory(), used = std::min(d.state->usedMemory(), total);
    *memory = nvmlMemory_t{total, total - used, used};
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t* memory) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!memory) return NVML_ERROR_INVALID_ARGUMENT;
    if (memory->version != nvmlMemory_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    uint64_t total = d.state->totalMemory(), used = std::min(d.state->usedMemory(), total);
    *memory = nvmlMemory_v2_t{nvmlMemory_v2, total, 0, total - used, used};
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t* utilization) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!utilization) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned gpu = tf::softgpu::nvml::utilizationOf(d);
    *utilization = nvmlUtilization_t{gpu, gpu / 2}; // memory-controller busy: modelled
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, unsigned int* count,
                                                  nvmlProcessInfo_v1_t* infos) {
  return runningProcesses(device, count, infos, [](nvmlProcessInfo_v1_t& info, const ProcessUsage& p) {
    info.pid = static_cast<unsigned>(p.pid);
    info.usedGpuMemory = p.memoryBytes;
  });
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int* count,
                                                     nvmlProcessInfo_v2_t* infos) {
  return runningProcesses(device, count, infos, fillV2);
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int* count,
                                                     nvmlProcessInfo_t* infos) {
  return runningProcesses(device, count, infos, fillV2);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t device, unsigned int* count,
                                                      nvmlProcessInfo_t*) {
  return withDevice(device, [&](nvmlDevice_st&) -> nvmlReturn_t {
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    *count = 0; // no graphics on a soft GPU
    return NVML_SUCCESS;
  });
}

// One sample per process that ran kernels in the last second and after lastSeenTimeStamp
// (microseconds of CLOCK_REALTIME, as NVIDIA's).
nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device, nvmlProcessUtilizationSample_t* samples,
                                             unsigned int* count, unsigned long long lastSeenTimeStamp) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    constexpr unsigned kWindowMs = 1000;
    uint64_t mono = clockNs(CLOCK_MONOTONIC), real = clockNs(CLOCK_REALTIME);
    std::vector<nvmlProcessUtilizationSample_t> out;
    for (const ProcessUsage& p : d.state->recentProcessUsage(kWindowMs)) {
      if (p.busyNs == 0 || p.lastSeenNs == 0) continue;
      unsigned long long seenUs = (real - std::min(real, mono - std::min(mono, p.lastSeenNs))) / 1000;
      if (seenUs <= lastSeenTimeStamp) continue;
      unsigned sm = unsigned(std::min<uint64_t>(100, p.busyNs * 100 / (kWindowMs * 1'000'000ull)));
      out.push_back({static_cast<unsigned>(p.pid), seenUs, sm, sm / 2, 0, 0});
    }
    if (!samples || *count < out.size()) {
      *count = static_cast<unsigned>(out.size());
      return out.empty() ? NVML_ERROR_NOT_FOUND : NVML_ERROR_INSUFFICIENT_SIZE;
    }
    std::copy(out.begin(), out.end(), samples);
    *count = static_cast<unsigned>(out.size());
    return out.empty() ? NVML_ERROR_NOT_FOUND : NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, nvmlTemperatureSensors_t sensor, unsigned int* temp) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!temp || sensor != NVML_TEMPERATURE_GPU) return NVML_ERROR_INVALID_ARGUMENT;
    *temp = tf::softgpu::nvml::temperatureFor(tf::softgpu::nvml::utilizationOf(d));
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int* power) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!power) return NVML_ERROR_INVALID_ARGUMENT;
    *power = tf::softgpu::nvml::powerMilliwattsFor(*d.config.model, tf::softgpu::nvml::utilizationOf(d));
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetPowerManagementLimit(nvmlDevice_t device, unsigned int* limit) {
  return powerLimit(device, limit);
}
nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int* limit) {
  return powerLimit(device, limit);
}

nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int* clock) {
  return clockInfo(device, type, clock); // the soft GPU always runs at its boost clock
}
nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int* clock) {
  return clockInfo(device, type, clock);
}

} // extern "C"
