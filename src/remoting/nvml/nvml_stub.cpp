// The stub's libnvidia-ml.so.1: NVML for a process with no GPU, answered by the worker it
// connects to (TF_REMOTE_WORKER, TF_REMOTE_TOKEN) as a monitoring session. Device facts come
// from the one-time DeviceInfo fetch; memory is the device's, as the worker's driver sees it;
// the process list is the worker's clients holding a context on the device, with the memory
// they hold. What is not here is not exported (dlsym finds nothing), as with an older NVML.
#include <cstdio>
#include <cstring>
#include <map>
#include <vector>

#include "cuda/nvml_api.h"
#include "remoting/stub/client.h"

using tf::remoting::stub::Client;
using tf::remoting::stub::client;

namespace {

nvmlReturn_t fromCu(CUresult r) {
  switch (r) {
  case CUDA_SUCCESS: return NVML_SUCCESS;
  case CUDA_ERROR_INVALID_VALUE: return NVML_ERROR_INVALID_ARGUMENT;
  case CUDA_ERROR_INVALID_DEVICE: return NVML_ERROR_INVALID_ARGUMENT;
  case CUDA_ERROR_NOT_SUPPORTED: return NVML_ERROR_NOT_SUPPORTED;
  case CUDA_ERROR_NOT_PERMITTED: return NVML_ERROR_NO_PERMISSION;
  case CUDA_ERROR_DEVICE_UNAVAILABLE: return NVML_ERROR_GPU_IS_LOST;
  default: return NVML_ERROR_UNKNOWN;
  }
}

// Handles are index + 1, so a null handle is never valid.
int indexOf(nvmlDevice_t d) {
  auto i = static_cast<int>(reinterpret_cast<uintptr_t>(d)) - 1;
  return client().initialized() && !client().dead() && client().device(i) ? i : -1;
}

nvmlReturn_t processes(nvmlDevice_t d, unsigned* count, void* out, bool v1) {
  int i = indexOf(d);
  if (i < 0 || !count) return NVML_ERROR_INVALID_ARGUMENT;
  std::string blob;
  CUresult r = client().call(static_cast<uint32_t>(tf::remoting::Op::DeviceProcesses),
                             {static_cast<uint64_t>(i)}, nullptr, 0, nullptr, 0, nullptr, 0,
                             nullptr, &blob);
  if (r != CUDA_SUCCESS) return fromCu(r);
  unsigned n = static_cast<unsigned>(blob.size() / 16);
  unsigned room = *count;
  *count = n;
  if (n > room || (n && !out)) return NVML_ERROR_INSUFFICIENT_SIZE;
  for (unsigned k = 0; k < n; ++k) {
    uint32_t pid;
    uint64_t bytes;
    std::memcpy(&pid, blob.data() + k * 16, 4);
    std::memcpy(&bytes, blob.data() + k * 16 + 8, 8);
    if (v1) {
      static_cast<nvmlProcessInfo_v1_t*>(out)[k] = {pid, bytes};
    } else {
      static_cast<nvmlProcessInfo_t*>(out)[k] = {pid, bytes, 0xFFFFFFFFu, 0xFFFFFFFFu};
    }
  }
  return NVML_SUCCESS;
}

} // namespace

extern "C" {

NVML_API_EXPORT nvmlReturn_t nvmlInit_v2(void) {
  client().setRole(tf::remoting::kRoleMonitor);
  CUresult r = client().init();
  if (r == CUDA_ERROR_NO_DEVICE) return NVML_ERROR_DRIVER_NOT_LOADED;
  return fromCu(r);
}
NVML_API_EXPORT nvmlReturn_t nvmlInit(void) { return nvmlInit_v2(); }
NVML_API_EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int) { return nvmlInit_v2(); }
NVML_API_EXPORT nvmlReturn_t nvmlShutdown(void) {
  return client().initialized() ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
}

NVML_API_EXPORT const char* nvmlErrorString(nvmlReturn_t r) {
  switch (r) {
  case NVML_SUCCESS: return "Success";
  case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
  case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
  case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
  case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
  case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
  case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
  case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
  default: return "Unknown Error";
  }
}

NVML_API_EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  if (!version || !length) return NVML_ERROR_INVALID_ARGUMENT;
  if (!client().initialized()) return NVML_ERROR_UNINITIALIZED;
  int v = client().driverVersion();
  snprintf(version, length, "%d.%d (remote)", v / 1000, (v % 1000) / 10);
  return NVML_SUCCESS;
}
NVML_API_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int* v) {
  if (!v) return NVML_ERROR_INVALID_ARGUMENT;
  if (!client().initialized()) return NVML_ERROR_UNINITIALIZED;
  *v = client().driverVersion();
  return NVML_SUCCESS;
}
NVML_API_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int* v) { return nvmlSystemGetCudaDriverVersion(v); }

NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* n) {
  if (!n) return NVML_ERROR_INVALID_ARGUMENT;
  if (!client().initialized()) return NVML_ERROR_UNINITIALIZED;
  *n = static_cast<unsigned>(client().deviceCount());
  return NVML_SUCCESS;
}
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int* n) { return nvmlDeviceGetCount_v2(n); }

NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* d) {
  if (!d) return NVML_ERROR_INVALID_ARGUMENT;
  if (!client().initialized()) return NVML_ERROR_UNINITIALIZED;
  if (!client().device(static_cast<int>(index))) return NVML_ERROR_INVALID_ARGUMENT;
  *d = reinterpret_cast<nvmlDevice_t>(static_cast<uintptr_t>(index) + 1);
  return NVML_SUCCESS;
}
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t* d) {
  return nvmlDeviceGetHandleByIndex_v2(index, d);
}

NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t d, unsigned int* index) {
  int i = indexOf(d);
  if (i < 0 || !index) return NVML_ERROR_INVALID_ARGUMENT;
  *index = static_cast<unsigned>(i);
  return NVML_SUCCESS;
}

NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char* name, unsigned int length) {
  int i = indexOf(d);
  if (i < 0 || !name || !length) return NVML_ERROR_INVALID_ARGUMENT;
  snprintf(name, length, "%s", client().device(i)->name);
  return NVML_SUCCESS;
}

NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char* uuid, unsigned int length) {
  int i = indexOf(d);
  if (i < 0 || !uuid) return NVML_ERROR_INVALID_ARGUMENT;
  const uint8_t* u = client().device(i)->uuid;
  char s[64];
  snprintf(s, sizeof(s),
           "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
           u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
  if (length < strlen(s) + 1) return NVML_ERROR_INSUFFICIENT_SIZE;
  memcpy(uuid, s, strlen(s) + 1);
  return NVML_SUCCESS;
}

NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t d, int* major, int* minor) {
  int i = indexOf(d);
  if (i < 0 || !major || !minor) return NVML_ERROR_INVALID_ARGUMENT;
  *major = client().device(i)->attrs[CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR];
  *minor = client().device(i)->attrs[CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR];
  return NVML_SUCCESS;
}

NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t* m) {
  int i = indexOf(d);
  if (i < 0 || !m) return NVML_ERROR_INVALID_ARGUMENT;
  uint64_t out[2] = {};
  CUresult r = client().call(static_cast<uint32_t>(tf::remoting::Op::DeviceMemory),
                             {static_cast<uint64_t>(i)}, out, 2);
  if (r != CUDA_SUCCESS) return fromCu(r);
  m->total = out[0];
  m->free = out[1];
  m->used = out[0] - out[1];
  return NVML_SUCCESS;
}

NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t* m) {
  if (!m) return NVML_ERROR_INVALID_ARGUMENT;
  if (m->version != nvmlMemory_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  nvmlMemory_t v1;
  nvmlReturn_t r = nvmlDeviceGetMemoryInfo(d, &v1);
  if (r != NVML_SUCCESS) return r;
  m->total = v1.total;
  m->reserved = 0;
  m->free = v1.free;
  m->used = v1.used;
  return NVML_SUCCESS;
}

NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t d, unsigned int* count,
                                                                  nvmlProcessInfo_v1_t* infos) {
  return processes(d, count, infos, true);
}
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t d, unsigned int* count,
                                                                     nvmlProcessInfo_t* infos) {
  return processes(d, count, infos, false);
}
NVML_API_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int* count,
                                                                     nvmlProcessInfo_t* infos) {
  return processes(d, count, infos, false);
}

} // extern "C"
