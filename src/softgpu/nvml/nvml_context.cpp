#include "softgpu/nvml/nvml_context.h"

#include <cstdio>
#include <algorithm>
#include <cstring>
#include <mutex>
#include <ctime>

#define TF_LOG_COMPONENT "nvml"
#include "common/log.h"

namespace tf::softgpu::nvml {

Library& Library::get() {
  static Library* library = new Library(); // never destroyed: callers may outlive static dtors
  return *library;
}

nvmlReturn_t Library::init() {
  std::unique_lock lock(mutex_);
  if (refs_ > 0) {
    ++refs_;
    return NVML_SUCCESS;
  }
  auto config = loadConfig();
  if (!config) {
    TF_LOG(Error, "soft GPU configuration: %s", config.status().toString().c_str());
    return NVML_ERROR_UNKNOWN;
  }
  std::vector<std::unique_ptr<nvmlDevice_st>> devices;
  for (const DeviceConfig& cfg : config->devices) {
    auto state = DeviceState::open(cfg);
    if (!state) {
      TF_LOG(Error, "soft GPU %d (%s): %s", cfg.index, cfg.uuidString.c_str(),
             state.status().toString().c_str());
      return NVML_ERROR_UNKNOWN;
    }
    auto device = std::make_unique<nvmlDevice_st>();
    device->config = cfg;
    device->state = std::move(*state);
    devices.push_back(std::move(device));
  }
  devices_ = std::move(devices);
  refs_ = 1;
  return NVML_SUCCESS;
}

nvmlReturn_t Library::shutdown() {
  std::unique_lock lock(mutex_);
  if (refs_ == 0) return NVML_ERROR_UNINITIALIZED;
  if (--refs_ == 0) devices_.clear();
  return NVML_SUCCESS;
}

bool Library::owns(nvmlDevice_t device) const {
  if (!device) return false;
  return std::any_of(devices_.begin(), devices_.end(),
                     [&](const auto& d) { return d.get() == device; });
}

unsigned utilizationOf(nvmlDevice_st& device) { return device.state->utilizationPercent(1000); }

unsigned temperatureFor(unsigned utilization) { return 30 + utilization / 2; }

unsigned powerMilliwattsFor(const DeviceModel& model, unsigned utilization) {
  // Idle draw is about a tenth of the limit; the rest scales with busy time.
  double watts = model.powerLimitWatts * (0.1 + 0.9 * std::min(utilization, 100u) / 100.0);
  return static_cast<unsigned>(watts * 1000);
}

nvmlDeviceArchitecture_t architectureOf(const DeviceModel& m) {
  int cc = m.ccMajor * 10 + m.ccMinor;
  if (cc >= 100) return NVML_DEVICE_ARCH_BLACKWELL;
  if (cc >= 90) return NVML_DEVICE_ARCH_HOPPER;
  if (cc == 89) return NVML_DEVICE_ARCH_ADA;
  if (cc >= 80) return NVML_DEVICE_ARCH_AMPERE;
  if (cc == 75) return NVML_DEVICE_ARCH_TURING;
  return NVML_DEVICE_ARCH_UNKNOWN;
}

bool isHbmBoard(const DeviceModel& m) {
  return (m.ccMajor == 8 && m.ccMinor == 0) || m.ccMajor == 9;
}

unsigned pcieGenerationOf(const DeviceModel& m) {
  if (m.ccMajor >= 9) return 5;
  if (m.ccMajor == 8) return 4;
  return 3;
}

uint64_t bar1BytesOf(const DeviceModel& m, uint64_t memoryBytes) {
  if (m.ccMajor < 8) return 256ull << 20;
  uint64_t bar = 1;
  while (bar < memoryBytes) bar <<= 1;
  return bar;
}

std::string serialOf(const DeviceConfig& config) {
  unsigned long long v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | config.uuid[i];
  char buf[NVML_DEVICE_SERIAL_BUFFER_SIZE];
  snprintf(buf, sizeof buf, "16%011llu", v % 100000000000ull);
  return buf;
}

uint64_t realtimeMicros() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000ull + uint64_t(ts.tv_nsec) / 1000;
}

} // namespace tf::softgpu::nvml
