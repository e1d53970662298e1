#include "softgpu/nvml/nvml_context.h"

#include <algorithm>
#include <cstring>
#include <mutex>

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

nvmlReturn_t copyString(const std::string& value, char* buffer, unsigned int length) {
  if (!buffer) return NVML_ERROR_INVALID_ARGUMENT;
  if (length < value.size() + 1) return NVML_ERROR_INSUFFICIENT_SIZE;
  memcpy(buffer, value.c_str(), value.size() + 1);
  return NVML_SUCCESS;
}

unsigned utilizationOf(nvmlDevice_st& device) { return device.state->utilizationPercent(1000); }

unsigned temperatureFor(unsigned utilization) { return 30 + utilization / 2; }

unsigned powerMilliwattsFor(const DeviceModel& model, unsigned utilization) {
  // Idle draw is about a tenth of the limit; the rest scales with busy time.
  double watts = model.powerLimitWatts * (0.1 + 0.9 * std::min(utilization, 100u) / 100.0);
  return static_cast<unsigned>(watts * 1000);
}

} // namespace tf::softgpu::nvml
