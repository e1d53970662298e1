// The NVML library's state: the devices of the soft GPU configuration (loadConfig), each with
// its shared DeviceState, behind an init reference count. Every entry point goes through
// guarded()/withDevice(): no exception reaches the C caller, calls before nvmlInit get
// NVML_ERROR_UNINITIALIZED and a handle that is not one of ours NVML_ERROR_INVALID_ARGUMENT.
#pragma once

#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "softgpu/device_model.h"
#include "softgpu/device_state.h"
#include "cuda/nvml_api.h"
#include "cuda/nvml_text.h"

struct nvmlDevice_st {
  tf::softgpu::DeviceConfig config;
  std::unique_ptr<tf::softgpu::DeviceState> state;
};

namespace tf::softgpu::nvml {

// Versions consistent with a CUDA 13.0 driver (R580).
inline constexpr const char* kDriverVersion = "580.65.06";
inline constexpr const char* kNvmlVersion = "13.580.65.06";
inline constexpr int kCudaDriverVersion = 13000;

class Library {
public:
  static Library& get();

  nvmlReturn_t init();
  nvmlReturn_t shutdown();

  // Shared lock held for the duration of a query; exclusive for init/shutdown.
  std::shared_mutex& mutex() { return mutex_; }
  bool initialised() const { return refs_ > 0; }
  const std::vector<std::unique_ptr<nvmlDevice_st>>& devices() const { return devices_; }
  bool owns(nvmlDevice_t device) const;

private:
  std::shared_mutex mutex_;
  int refs_ = 0;
  std::vector<std::unique_ptr<nvmlDevice_st>> devices_;
};

template <typename Fn> nvmlReturn_t guarded(Fn&& fn) noexcept {
  try {
    return fn();
  } catch (...) {
    return NVML_ERROR_UNKNOWN;
  }
}

// Runs fn(Library&) under the shared lock once NVML is initialised.
template <typename Fn> nvmlReturn_t withLibrary(Fn&& fn) noexcept {
  return guarded([&]() -> nvmlReturn_t {
    Library& lib = Library::get();
    std::shared_lock lock(lib.mutex());
    if (!lib.initialised()) return NVML_ERROR_UNINITIALIZED;
    return fn(lib);
  });
}

// Runs fn(nvmlDevice_st&) for a valid handle.
template <typename Fn> nvmlReturn_t withDevice(nvmlDevice_t device, Fn&& fn) noexcept {
  return withLibrary([&](Library& lib) -> nvmlReturn_t {
    if (!lib.owns(device)) return NVML_ERROR_INVALID_ARGUMENT;
    return fn(*device);
  });
}

// The usual getter: a device, one output (NULL is an invalid argument), *out = value(device).
template <typename T, typename Fn> nvmlReturn_t readValue(nvmlDevice_t device, T* out, Fn value) noexcept {
  return withDevice(device, [&](nvmlDevice_st& d) -> nvmlReturn_t {
    if (!out) return NVML_ERROR_INVALID_ARGUMENT;
    *out = static_cast<T>(value(d));
    return NVML_SUCCESS;
  });
}

// Strings go to callers with NVML's rules (cuda/nvml_text.h).
using tf::nvml::copyNvmlString;

// The two-call size protocol: *count too small (or the array NULL with items to give) is
// INSUFFICIENT_SIZE with *count set to what is needed; NULL count is an invalid argument.
template <typename T> nvmlReturn_t fillList(unsigned int* count, T* out, const std::vector<T>& items) {
  if (!count) return NVML_ERROR_INVALID_ARGUMENT;
  unsigned n = static_cast<unsigned>(items.size());
  if (*count < n || (n > 0 && !out)) {
    *count = n;
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  for (unsigned i = 0; i < n; ++i) out[i] = items[i];
  *count = n;
  return NVML_SUCCESS;
}

// Modelled sensors from the device-wide utilization of the last second.
unsigned utilizationOf(nvmlDevice_st& device);
unsigned temperatureFor(unsigned utilization);
unsigned powerMilliwattsFor(const DeviceModel& model, unsigned utilization);

// What the device model implies beyond what it lists.
nvmlDeviceArchitecture_t architectureOf(const DeviceModel& model);
// HBM boards (A100, H100): MIG capable (and disabled), rows remapped instead of pages retired.
bool isHbmBoard(const DeviceModel& model);
unsigned pcieGenerationOf(const DeviceModel& model); // Turing 3, Ampere/Ada 4, Hopper on 5
// BAR1: the whole memory rounded up to a power of two on Ampere and later (resizable BAR),
// 256 MiB before.
uint64_t bar1BytesOf(const DeviceModel& model, uint64_t memoryBytes);
std::string serialOf(const DeviceConfig& config);

uint64_t realtimeMicros();
// Whether a handle is a live event set of this library (nvml_events.cpp).
bool eventSetExists(nvmlEventSet_t set);

} // namespace tf::softgpu::nvml
