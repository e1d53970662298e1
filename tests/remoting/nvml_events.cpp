// NVML event sets through whichever libnvidia-ml.so.1 the loader finds (run by run_remote.sh:
// the stub's): a health monitor's sequence (create a set, ask the supported types, register,
// wait) behaves as on the soft GPU: nothing is raised, so a wait ends in NVML_ERROR_TIMEOUT
// after its timeout; unsupported types, unknown sets and freed sets are refused.
#include <dlfcn.h>

#include <chrono>
#include <cstdio>

#include "cuda/nvml_api.h"

namespace {

int failures = 0;
void expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAIL: %s\n", what);
    ++failures;
  }
}

} // namespace

int main() {
  void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW);
  if (!lib) {
    std::fprintf(stderr, "FAIL: cannot load libnvidia-ml.so.1: %s\n", dlerror());
    return 1;
  }
#define FN(name) auto name = reinterpret_cast<decltype(&::name)>(dlsym(lib, #name))
  FN(nvmlInit_v2);
  FN(nvmlDeviceGetHandleByIndex_v2);
  FN(nvmlEventSetCreate);
  FN(nvmlEventSetFree);
  FN(nvmlEventSetWait_v2);
  FN(nvmlDeviceGetSupportedEventTypes);
  FN(nvmlDeviceRegisterEvents);
#undef FN
  nvmlEventSet_t set = nullptr;
  nvmlEventData_t data{};
  expect(nvmlEventSetCreate(&set) == NVML_ERROR_UNINITIALIZED, "a set before nvmlInit is UNINITIALIZED");
  if (nvmlInit_v2() != NVML_SUCCESS) {
    std::fprintf(stderr, "FAIL: nvmlInit_v2\n");
    return 1;
  }
  nvmlDevice_t dev = nullptr;
  expect(nvmlDeviceGetHandleByIndex_v2(0, &dev) == NVML_SUCCESS, "device 0");
  expect(nvmlEventSetCreate(nullptr) == NVML_ERROR_INVALID_ARGUMENT, "create(NULL) is INVALID_ARGUMENT");
  expect(nvmlEventSetCreate(&set) == NVML_SUCCESS && set, "create");
  unsigned long long types = 0;
  expect(nvmlDeviceGetSupportedEventTypes(dev, &types) == NVML_SUCCESS, "supported types");
  expect((types & nvmlEventTypeXidCriticalError) != 0, "Xid errors are supported");
  expect(nvmlDeviceRegisterEvents(dev, nvmlEventTypeXidCriticalError, set) == NVML_SUCCESS, "register Xid");
  expect(nvmlDeviceRegisterEvents(dev, 1ull << 40, set) == NVML_ERROR_NOT_SUPPORTED,
         "an unsupported type is NOT_SUPPORTED");
  expect(nvmlDeviceRegisterEvents(nullptr, nvmlEventTypeXidCriticalError, set) == NVML_ERROR_INVALID_ARGUMENT,
         "no device is INVALID_ARGUMENT");
  auto start = std::chrono::steady_clock::now();
  expect(nvmlEventSetWait_v2(set, &data, 50) == NVML_ERROR_TIMEOUT, "a wait with nothing raised is TIMEOUT");
  expect(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(50), "the wait lasts its timeout");
  expect(nvmlEventSetWait_v2(set, nullptr, 0) == NVML_ERROR_INVALID_ARGUMENT, "wait(NULL data) is INVALID_ARGUMENT");
  expect(nvmlEventSetFree(set) == NVML_SUCCESS, "free");
  expect(nvmlEventSetFree(set) == NVML_ERROR_INVALID_ARGUMENT, "a second free is INVALID_ARGUMENT");
  expect(nvmlEventSetWait_v2(set, &data, 0) == NVML_ERROR_INVALID_ARGUMENT, "a freed set is INVALID_ARGUMENT");
  expect(nvmlDeviceRegisterEvents(dev, nvmlEventTypeXidCriticalError, set) == NVML_ERROR_INVALID_ARGUMENT,
         "registering on a freed set is INVALID_ARGUMENT");
  if (failures) return 1;
  std::printf("PASS nvml_events\n");
  return 0;
}
