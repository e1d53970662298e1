// NVML event sets of a library whose devices raise no events (the soft GPU's NVML, and the
// remoting stub's in front of it): health monitors (the Kubernetes device plugin, DCGM) create
// a set, register devices for event types and wait; nothing is raised, so a wait lasts its
// timeout and ends in NVML_ERROR_TIMEOUT, as on a healthy GPU. Each library keeps one
// EventSets and checks its device handles and initialisation itself.
//
//   tf::nvml::EventSets sets;            // one per library
//   sets.create(&set); sets.registerEvents(nvmlEventTypeXidCriticalError, set);
//   sets.wait(set, &data, 50);           // NVML_ERROR_TIMEOUT after 50 ms
#pragma once

#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "cuda/nvml_api.h"

struct nvmlEventSet_st {
  unsigned long long registered = 0;
};

namespace tf::nvml {

inline constexpr unsigned long long kSupportedEvents =
    nvmlEventTypeSingleBitEccError | nvmlEventTypeDoubleBitEccError | nvmlEventTypePState |
    nvmlEventTypeXidCriticalError | nvmlEventTypeClock;

class EventSets {
public:
  nvmlReturn_t create(nvmlEventSet_t* set) {
    if (!set) return NVML_ERROR_INVALID_ARGUMENT;
    auto* created = new nvmlEventSet_st();
    std::lock_guard lock(mu_);
    sets_.insert(created);
    *set = created;
    return NVML_SUCCESS;
  }
  nvmlReturn_t free(nvmlEventSet_t set) {
    std::lock_guard lock(mu_);
    if (!sets_.erase(set)) return NVML_ERROR_INVALID_ARGUMENT;
    delete set;
    return NVML_SUCCESS;
  }
  bool exists(nvmlEventSet_t set) {
    std::lock_guard lock(mu_);
    return sets_.count(set) > 0;
  }
  // For a device the caller has checked.
  nvmlReturn_t registerEvents(unsigned long long types, nvmlEventSet_t set) {
    std::lock_guard lock(mu_);
    if (!sets_.count(set)) return NVML_ERROR_INVALID_ARGUMENT;
    if (types & ~kSupportedEvents) return NVML_ERROR_NOT_SUPPORTED;
    set->registered |= types;
    return NVML_SUCCESS;
  }
  nvmlReturn_t wait(nvmlEventSet_t set, nvmlEventData_t* data, unsigned timeoutMs) {
    if (!data || !exists(set)) return NVML_ERROR_INVALID_ARGUMENT;
    std::this_thread::sleep_for(std::chrono::milliseconds(timeoutMs)); // nothing ever happens
    return NVML_ERROR_TIMEOUT;
  }

private:
  std::mutex mu_;
  std::set<nvmlEventSet_t> sets_;
};

} // namespace tf::nvml
