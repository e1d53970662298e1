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

nvmlReturn_t noProcesses(nvmlDevice_t device, unsigned int* count) {
  return withDevice(device, [&](nvmlDevice_st&) -> nvmlReturn_t {
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    *count = 0;
    return NVML_SUCCESS;
  });
}

struct Sample {
  unsigned pid;
  unsigned long long timeUs;
  unsigned smUtil;
};

// One sample per process that ran kernels in the last second and after lastSeenTimeStamp
// (microseconds of CLOCK_REALTIME, as NVIDIA's).
std::vector<Sample> processSamples(nvmlDevice_st& d, unsigned long long lastSeenTimeStamp) {
  constexpr unsigned kWindowMs = 1000;
  // A sample's time is its monotonic time moved to the wall clock by one offset taken once: two
  // clock reads per call would give the same sample a time that moves by a microsecond or so
  // from call to call, and a caller passing its last seen time back would see it again.
  static const uint64_t kRealMinusMono = clockNs(CLOCK_REALTIME) - clockNs(CLOCK_MONOTONIC);
  std::vector<Sample> out;
  for (const ProcessUsage& p : d.state->recentProcessUsage(kWindowMs)) {
    if (p.busyNs == 0 || p.lastSeenNs == 0) continue;
    unsigned long long seenUs = (p.lastSeenNs + kRealMinusMono) / 1000;
    if (seenUs <= lastSeenTimeStamp) continue;
    unsigned sm = unsigned(std::min<uint64_t>(100, p.busyNs * 100 / (kWindowMs * 1'000'000ull)));
    out.push_back({static_cast<unsigned>(p.pid), seenUs, sm});
  }
  return out;
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

// No graphics and no MPS server on a soft GPU: these lists are always empty.
nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses(nvmlDevice_t device, unsigned int* count, nvmlProcessInfo_v1_t*) {
  return noProcesses(device, count);
}
nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v2(nvmlDevice_t device, unsigned int* count, nvmlProcessInfo_t*) {
  return noProcesses(device, count);
}
nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t device, unsigned int* count, nvmlProcessInfo_t*) {
  return noProcesses(device, count);
}
nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses(nvmlDevice_t device, unsigned int* count, nvmlProcessInfo_v1_t*) {
  return noProcesses(device, count);
}
nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int* count, nvmlProcessInfo_t*) {
  return noProcesses(device, count);
}
nvmlReturn_t nvmlDeviceGetMPSComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int* count, nvmlProcessInfo_t*) {
  return noProcesses(device, count);
}

nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device, nvmlProcessUtilizationSample_t* samples,
                                             unsigned int* count, unsigned long long lastSeenTimeStamp) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!count) return NVML_ERROR_INVALID_ARGUMENT;
    std::vector<nvmlProcessUtilizationSample_t> out;
    for (const Sample& s : processSamples(d, lastSeenTimeStamp))
      out.push_back({s.pid, s.timeUs, s.smUtil, s.smUtil / 2, 0, 0});
    if (!samples || *count < out.size()) {
      *count = static_cast<unsigned>(out.size());
      return out.empty() ? NVML_ERROR_NOT_FOUND : NVML_ERROR_INSUFFICIENT_SIZE;
    }
    std::copy(out.begin(), out.end(), samples);
    *count = static_cast<unsigned>(out.size());
    return out.empty() ? NVML_ERROR_NOT_FOUND : NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceGetProcessesUtilizationInfo(nvmlDevice_t device, nvmlProcessesUtilizationInfo_t* info) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!info) return NVML_ERROR_INVALID_ARGUMENT;
    if (info->version != nvmlProcessesUtilizationInfo_v1) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    std::vector<Sample> found = processSamples(d, info->lastSeenTimeStamp);
    unsigned n = static_cast<unsigned>(found.size());
    if (n == 0) {
      info->processSamplesCount = 0;
      return NVML_ERROR_NOT_FOUND;
    }
    if (!info->procUtilArray || info->processSamplesCount < n) {
      info->processSamplesCount = n;
      return NVML_ERROR_INSUFFICIENT_SIZE;
    }
    for (unsigned i = 0; i < n; ++i)
      info->procUtilArray[i] = {found[i].timeUs, found[i].pid, found[i].smUtil, found[i].smUtil / 2, 0, 0, 0, 0};
    info->processSamplesCount = n;
    return NVML_SUCCESS;
  });
}

// BAR1 maps host-visible windows of device memory; nothing is mapped through it here.
nvmlReturn_t nvmlDeviceGetBAR1MemoryInfo(nvmlDevice_t device, nvmlBAR1Memory_t* bar1) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!bar1) return NVML_ERROR_INVALID_ARGUMENT;
    uint64_t total = tf::softgpu::nvml::bar1BytesOf(*d.config.model, d.state->totalMemory());
    *bar1 = nvmlBAR1Memory_t{total, total, 0};
    return NVML_SUCCESS;
  });
}

// The current value of the quantity, as one sample (the device keeps no sample buffer).
nvmlReturn_t nvmlDeviceGetSamples(nvmlDevice_t device, nvmlSamplingType_t type, unsigned long long lastSeenTimeStamp,
                                  nvmlValueType_t* valueType, unsigned int* count, nvmlSample_t* samples) {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!valueType || !count || unsigned(type) > NVML_MEMORY_CLK_SAMPLES) return NVML_ERROR_INVALID_ARGUMENT;
    if (!samples) {
      *count = 1; // the most a call returns
      return NVML_SUCCESS;
    }
    if (*count < 1) return NVML_ERROR_INSUFFICIENT_SIZE;
    unsigned long long now = tf::softgpu::nvml::realtimeMicros();
    if (lastSeenTimeStamp >= now) return NVML_ERROR_NOT_FOUND;
    const auto& m = *d.config.model;
    unsigned util = tf::softgpu::nvml::utilizationOf(d), value = 0;
    switch (type) {
    case NVML_TOTAL_POWER_SAMPLES: value = tf::softgpu::nvml::powerMilliwattsFor(m, util); break;
    case NVML_GPU_UTILIZATION_SAMPLES: value = util; break;
    case NVML_MEMORY_UTILIZATION_SAMPLES: value = util / 2; break;
    case NVML_PROCESSOR_CLK_SAMPLES: value = unsigned(m.clockKhz / 1000); break;
    case NVML_MEMORY_CLK_SAMPLES: value = unsigned(m.memoryClockKhz / 1000); break;
    default: value = 0; break; // no video engines
    }
    *valueType = NVML_VALUE_TYPE_UNSIGNED_INT;
    samples[0].timeStamp = now;
    samples[0].sampleValue.ullVal = 0;
    samples[0].sampleValue.uiVal = value;
    *count = 1;
    return NVML_SUCCESS;
  });
}

// Field values are not modelled: each field answers NOT_SUPPORTED, as fields a board lacks do.
nvmlReturn_t nvmlDeviceGetFieldValues(nvmlDevice_t device, int valuesCount, nvmlFieldValue_t* values) {
  return withDevice(device, [&](nvmlDevice_st&) -> nvmlReturn_t {
    if (!values || valuesCount <= 0) return NVML_ERROR_INVALID_ARGUMENT;
    long long now = static_cast<long long>(tf::softgpu::nvml::realtimeMicros());
    for (int i = 0; i < valuesCount; ++i) {
      values[i].timestamp = now;
      values[i].latencyUsec = 0;
      values[i].valueType = NVML_VALUE_TYPE_UNSIGNED_LONG_LONG;
      values[i].nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
      values[i].value.ullVal = 0;
    }
    return NVML_SUCCESS;
  });
}

// Accounting is off (turning it on is a setting the configuration fixes).
nvmlReturn_t nvmlDeviceGetAccountingMode(nvmlDevice_t device, nvmlEnableState_t* mode) {
  return tf::softgpu::nvml::readValue(device, mode, [](nvmlDevice_st&) { return NVML_FEATURE_DISABLED; });
}
nvmlReturn_t nvmlDeviceGetAccountingBufferSize(nvmlDevice_t device, unsigned int* size) {
  // NVIDIA's circular buffer of accounted processes.
  return tf::softgpu::nvml::readValue(device, size, [](nvmlDevice_st&) { return 4000u; });
}

} // extern "C"
