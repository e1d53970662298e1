// NVML events, as health monitors (the Kubernetes device plugin, DCGM) use them: a set, devices
// registered for event types, a wait. The soft GPU raises no ECC, Xid, clock or P-state events,
// so a wait ends in its timeout, as on a healthy GPU.
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "softgpu/nvml/nvml_context.h"

using tf::softgpu::nvml::Library;
using tf::softgpu::nvml::withDevice;
using tf::softgpu::nvml::withLibrary;

struct nvmlEventSet_st {
  unsigned long long registered = 0;
};

namespace {

constexpr unsigned long long kSupportedEvents = nvmlEventTypeSingleBitEccError | nvmlEventTypeDoubleBitEccError |
                                                nvmlEventTypePState | nvmlEventTypeXidCriticalError |
                                                nvmlEventTypeClock;

struct Registry {
  std::mutex mutex;
  std::set<nvmlEventSet_t> sets;
};

Registry& registry() {
  static Registry* r = new Registry(); // never destroyed: callers may outlive static dtors
  return *r;
}

nvmlReturn_t waitOn(nvmlEventSet_t set, nvmlEventData_t* data, unsigned int timeoutMs) {
  nvmlReturn_t r = withLibrary([&](Library&) -> nvmlReturn_t {
    if (!data || !tf::softgpu::nvml::eventSetExists(set)) return NVML_ERROR_INVALID_ARGUMENT;
    return NVML_SUCCESS;
  });
  if (r != NVML_SUCCESS) return r;
  std::this_thread::sleep_for(std::chrono::milliseconds(timeoutMs)); // nothing ever happens
  return NVML_ERROR_TIMEOUT;
}

} // namespace

namespace tf::softgpu::nvml {
bool eventSetExists(nvmlEventSet_t set) {
  std::lock_guard lock(registry().mutex);
  return registry().sets.count(set) > 0;
}
} // namespace tf::softgpu::nvml

extern "C" {

nvmlReturn_t nvmlDeviceGetSupportedEventTypes(nvmlDevice_t device, unsigned long long* types) {
  return withDevice(device, [&](nvmlDevice_st&) -> nvmlReturn_t {
    if (!types) return NVML_ERROR_INVALID_ARGUMENT;
    *types = kSupportedEvents;
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long types, nvmlEventSet_t set) {
  return withDevice(device, [&](nvmlDevice_st&) -> nvmlReturn_t {
    std::lock_guard lock(registry().mutex);
    if (!registry().sets.count(set)) return NVML_ERROR_INVALID_ARGUMENT;
    if (types & ~kSupportedEvents) return NVML_ERROR_NOT_SUPPORTED;
    set->registered |= types;
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t* set) {
  return withLibrary([&](Library&) -> nvmlReturn_t {
    if (!set) return NVML_ERROR_INVALID_ARGUMENT;
    auto* created = new nvmlEventSet_st();
    std::lock_guard lock(registry().mutex);
    registry().sets.insert(created);
    *set = created;
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
  return withLibrary([&](Library&) -> nvmlReturn_t {
    std::lock_guard lock(registry().mutex);
    if (!registry().sets.erase(set)) return NVML_ERROR_INVALID_ARGUMENT;
    delete set;
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlEventSetWait(nvmlEventSet_t set, nvmlEventData_t* data, unsigned int timeoutMs) {
  return waitOn(set, data, timeoutMs);
}
nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t* data, unsigned int timeoutMs) {
  return waitOn(set, data, timeoutMs);
}

} // extern "C"
