// NVML's text conventions, shared by every library that answers NVML (the soft GPU's, the
// remoting stub's, the limiter's hooks):
//
//   copyNvmlString("NVIDIA H100 80GB HBM3", name, length)  // NULL: INVALID_ARGUMENT; too
//                                                         // short for the NUL: INSUFFICIENT_SIZE
//   nvmlUuidString(uuid16)        -> "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
//   parseNvmlPciBusId("0000:01:00.0", &domain, &bus, &device, &function)
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "cuda/nvml_api.h"

namespace tf::nvml {

inline nvmlReturn_t copyNvmlString(const std::string& value, char* buffer, unsigned int length) {
  if (!buffer) return NVML_ERROR_INVALID_ARGUMENT;
  if (length < value.size() + 1) return NVML_ERROR_INSUFFICIENT_SIZE;
  std::memcpy(buffer, value.c_str(), value.size() + 1);
  return NVML_SUCCESS;
}

inline std::string nvmlUuidString(const uint8_t* u) {
  char s[48];
  std::snprintf(s, sizeof s, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
                u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
  return s;
}

// "00000000:01:00.0", "0000:01:00.0" or "01:00.0", hex, any case.
inline bool parseNvmlPciBusId(const char* text, unsigned* domain, unsigned* bus, unsigned* device, unsigned* fn) {
  char tail;
  if (std::sscanf(text, "%x:%x:%x.%x%c", domain, bus, device, fn, &tail) == 4) return true;
  *domain = 0;
  return std::sscanf(text, "%x:%x.%x%c", bus, device, fn, &tail) == 3;
}

// NVIDIA's text for each code (nvmlErrorString).
inline const char* nvmlErrorText(nvmlReturn_t result) {
  switch (result) {
  case NVML_SUCCESS: return "Success";
  case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
  case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
  case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
  case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
  case NVML_ERROR_ALREADY_INITIALIZED: return "Already Initialized";
  case NVML_ERROR_NOT_FOUND: return "Not Found";
  case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
  case NVML_ERROR_INSUFFICIENT_POWER: return "Insufficient External Power";
  case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
  case NVML_ERROR_TIMEOUT: return "Timeout";
  case NVML_ERROR_IRQ_ISSUE: return "Interrupt Request Issue";
  case NVML_ERROR_LIBRARY_NOT_FOUND: return "NVML Shared Library Not Found";
  case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
  case NVML_ERROR_CORRUPTED_INFOROM: return "Corrupted infoROM";
  case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
  case NVML_ERROR_RESET_REQUIRED: return "GPU requires reset";
  case NVML_ERROR_OPERATING_SYSTEM: return "GPU access blocked by the operating system";
  case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "Driver/library version mismatch";
  case NVML_ERROR_IN_USE: return "In use by another client";
  case NVML_ERROR_MEMORY: return "Insufficient Memory";
  case NVML_ERROR_NO_DATA: return "No data";
  case NVML_ERROR_INSUFFICIENT_RESOURCES: return "Insufficient resources";
  case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Version mismatch between passed in argument and NVML";
  case NVML_ERROR_DEPRECATED: return "Deprecated";
  case NVML_ERROR_NOT_READY: return "Not ready";
  case NVML_ERROR_GPU_NOT_FOUND: return "GPU not found";
  case NVML_ERROR_INVALID_STATE: return "Invalid state";
  default: return "Unknown Error";
  }
}

} // namespace tf::nvml
