// Initialisation, versions, devices and their attributes, cuGetProcAddress.
#include <cstdio>
#include <cstring>

#include "cuda/catalog.h"
#include "common/log.h"
#include "softgpu/driver/api.h"
#include "softgpu/driver/device_attributes.h"

namespace tf::softgpu {
void* exportedFunction(int index);

} // namespace tf::softgpu

using namespace tf::softgpu;

extern "C" {

CUresult tf_sg_cuInit(unsigned int flags) { return initializeDriver(flags); }

CUresult tf_sg_cuDriverGetVersion(int* version) {
  if (!version) return CUDA_ERROR_INVALID_VALUE;
  *version = kDriverVersion;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuDeviceGetCount(int* count) {
  if (!count) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkInitialized());
  *count = static_cast<int>(driver().devices.size());
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuDeviceGet(CUdevice* device, int ordinal) {
  if (!device) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  TF_TRY(deviceFor(ordinal, &d));
  *device = ordinal;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuDeviceGetName(char* name, int len, CUdevice dev) {
  if (!name || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  TF_TRY(deviceFor(dev, &d));
  snprintf(name, len, "%s", d->config.model->name);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuDeviceGetUuid_v2(CUuuid* uuid, CUdevice dev) {
  if (!uuid) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  TF_TRY(deviceFor(dev, &d));
  memcpy(uuid->bytes, d->config.uuid.data(), 16);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuDeviceGetUuid(CUuuid* uuid, CUdevice dev) { return tf_sg_cuDeviceGetUuid_v2(uuid, dev); }

CUresult tf_sg_cuDeviceGetLuid(char*, unsigned int*, CUdevice dev) {
  Device* d;
  TF_TRY(deviceFor(dev, &d));
  return CUDA_ERROR_NOT_SUPPORTED; // LUIDs exist on Windows only
}

CUresult tf_sg_cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) {
  if (!bytes) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  TF_TRY(deviceFor(dev, &d));
  *bytes = d->config.memoryBytes;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuDeviceGetAttribute(int* value, CUdevice_attribute attr, CUdevice dev) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  TF_TRY(deviceFor(dev, &d));
  return deviceAttribute(d->config, attr, value) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult tf_sg_cuDeviceComputeCapability(int* major, int* minor, CUdevice dev) {
  if (!major || !minor) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  TF_TRY(deviceFor(dev, &d));
  *major = d->config.model->ccMajor;
  *minor = d->config.model->ccMinor;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuDeviceGetProperties(CUdevprop* p, CUdevice dev) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  TF_TRY(deviceFor(dev, &d));
  const DeviceModel& m = *d->config.model;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = 1024;
  p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 2147483647;
  p->maxGridSize[1] = 65535;
  p->maxGridSize[2] = 65535;
  p->sharedMemPerBlock = m.sharedPerBlock;
  p->totalConstantMemory = 65536;
  p->SIMDWidth = 32;
  p->memPitch = 2147483647;
  p->regsPerBlock = 65536;
  p->clockRate = m.clockKhz;
  p->textureAlign = 512;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuDeviceGetPCIBusId(char* busId, int len, CUdevice dev) {
  if (!busId || len <= 0) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  TF_TRY(deviceFor(dev, &d));
  snprintf(busId, len, "00000000:%02X:00.0", d->config.pciBus);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuDeviceGetByPCIBusId(CUdevice* dev, const char* busId) {
  if (!dev || !busId) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkInitialized());
  unsigned domain = 0, bus = 0, device = 0, function = 0;
  if (sscanf(busId, "%x:%x:%x.%x", &domain, &bus, &device, &function) != 4 &&
      sscanf(busId, "%x:%x.%x", &bus, &device, &function) != 3)
    return CUDA_ERROR_INVALID_VALUE;
  for (auto& d : driver().devices)
    if (domain == 0 && static_cast<int>(bus) == d->config.pciBus && device == 0) {
      *dev = d->ordinal;
      return CUDA_SUCCESS;
    }
  return CUDA_ERROR_INVALID_DEVICE;
}

CUresult tf_sg_cuDeviceCanAccessPeer(int* can, CUdevice dev, CUdevice peer) {
  if (!can) return CUDA_ERROR_INVALID_VALUE;
  Device *a, *b;
  TF_TRY(deviceFor(dev, &a));
  TF_TRY(deviceFor(peer, &b));
  *can = dev != peer ? 1 : 0; // every soft device shares the host's memory
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuDeviceGetP2PAttribute(int* value, CUdevice_P2PAttribute attr, CUdevice src,
                                       CUdevice dst) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  Device *a, *b;
  TF_TRY(deviceFor(src, &a));
  TF_TRY(deviceFor(dst, &b));
  if (src == dst) return CUDA_ERROR_INVALID_DEVICE;
  switch (attr) {
  case CU_DEVICE_P2P_ATTRIBUTE_PERFORMANCE_RANK: *value = 0; break;
  case CU_DEVICE_P2P_ATTRIBUTE_ACCESS_SUPPORTED: *value = 1; break;
  case CU_DEVICE_P2P_ATTRIBUTE_NATIVE_ATOMIC_SUPPORTED: *value = 1; break;
  case CU_DEVICE_P2P_ATTRIBUTE_CUDA_ARRAY_ACCESS_SUPPORTED: *value = 0; break;
  default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuDeviceGetExecAffinitySupport(int* pi, CUexecAffinityType, CUdevice dev) {
  if (!pi) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  TF_TRY(deviceFor(dev, &d));
  *pi = 0;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuDeviceGetTexture1DLinearMaxWidth(size_t* w, CUarray_format, unsigned, CUdevice dev) {
  if (!w) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  TF_TRY(deviceFor(dev, &d));
  *w = 1u << 27;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGetProcAddress_v2(const char* symbol, void** pfn, int cudaVersion,
                                   cuuint64_t flags, CUdriverProcAddressQueryResult* found) {
  if (!symbol || !pfn) return CUDA_ERROR_INVALID_VALUE;
  CUdriverProcAddressQueryResult status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  *pfn = nullptr;
  int index = tf::cuda::resolveProcAddress(symbol, cudaVersion, flags, &status);
  if (index >= 0) {
    *pfn = exportedFunction(index);
    if (!*pfn) status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND; // in the ABI, not implemented
  }
  if (found) *found = status;
  if (!*pfn) TF_LOG(Debug, "cuGetProcAddress: no %s (version %d)", symbol, cudaVersion);
  return *pfn ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

CUresult tf_sg_cuGetProcAddress(const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags) {
  return tf_sg_cuGetProcAddress_v2(symbol, pfn, cudaVersion, flags, nullptr);
}

} // extern "C"
