// NVML events (cuda/nvml_event_sets.h): the soft GPU raises no ECC, Xid, clock or P-state
// events, so a wait ends in its timeout, as on a healthy GPU.
#include "cuda/nvml_event_sets.h"
#include "softgpu/nvml/nvml_context.h"

using tf::softgpu::nvml::Library;
using tf::softgpu::nvml::withDevice;
using tf::softgpu::nvml::withLibrary;

namespace {

tf::nvml::EventSets& sets() {
  static auto* s = new tf::nvml::EventSets(); // never destroyed: callers may outlive static dtors
  return *s;
}

nvmlReturn_t waitOn(nvmlEventSet_t set, nvmlEventData_t* data, unsigned int timeoutMs) {
  nvmlReturn_t r = withLibrary([&](Library&) -> nvmlReturn_t {
    if (!data || !sets().exists(set)) return NVML_ERROR_INVALID_ARGUMENT;
    return NVML_SUCCESS;
  });
  if (r != NVML_SUCCESS) return r;
  return sets().wait(set, data, timeoutMs); // outside the library's lock
}

} // namespace

namespace tf::softgpu::nvml {
bool eventSetExists(nvmlEventSet_t set) { return sets().exists(set); }
} // namespace tf::softgpu::nvml

extern "C" {

nvmlReturn_t nvmlDeviceGetSupportedEventTypes(nvmlDevice_t device, unsigned long long* types) {
  return withDevice(device, [&](nvmlDevice_st&) -> nvmlReturn_t {
    if (!types) return NVML_ERROR_INVALID_ARGUMENT;
    *types = tf::nvml::kSupportedEvents;
    return NVML_SUCCESS;
  });
}

nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t device, unsigned long long types, nvmlEventSet_t set) {
  return withDevice(device, [&](nvmlDevice_st&) { return sets().registerEvents(types, set); });
}

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t* set) {
  return withLibrary([&](Library&) { return sets().create(set); });
}

nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
  return withLibrary([&](Library&) { return sets().free(set); });
}

nvmlReturn_t nvmlEventSetWait(nvmlEventSet_t set, nvmlEventData_t* data, unsigned int timeoutMs) {
  return waitOn(set, data, timeoutMs);
}
nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t* data, unsigned int timeoutMs) {
  return waitOn(set, data, timeoutMs);
}

} // extern "C"
