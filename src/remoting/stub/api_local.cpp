// Calls the stub answers from what it knows, without the worker: context ids and devices,
// the module loading mode, and stream capture (not forwarded: streams never capture here).
#include <cstdio>
#include <cstring>

#include "remoting/stub/api.h"

using namespace tf::remoting::stub;

extern "C" {

CUresult tf_rs_cuCtxGetDevice_v2(CUdevice* dev, CUcontext ctx) {
  if (!dev) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  if (!ctx) ctx = currentContext();
  if (!ctx || !client().contextDevice(ctx, dev)) return CUDA_ERROR_INVALID_CONTEXT;
  return CUDA_SUCCESS;
}

CUresult tf_rs_cuCtxSynchronize_v2(CUcontext ctx) {
  TF_READY();
  if (!ctx) return tf_rs_cuCtxSynchronize();
  if (!client().contextDevice(ctx, nullptr)) return CUDA_ERROR_INVALID_CONTEXT;
  contextStack().push_back(ctx); // the call travels with its context
  CUresult r = tf_rs_cuCtxSynchronize();
  contextStack().pop_back();
  return r;
}

CUresult tf_rs_cuCtxGetId(CUcontext ctx, unsigned long long* id) {
  if (!id) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  if (!ctx) ctx = currentContext();
  if (!ctx || !client().contextDevice(ctx, nullptr)) return CUDA_ERROR_INVALID_CONTEXT;
  *id = u(ctx);
  return CUDA_SUCCESS;
}

CUresult tf_rs_cuStreamGetCtx_v2(CUstream s, CUcontext* ctx, CUgreenCtx* green) {
  if (!ctx) return CUDA_ERROR_INVALID_VALUE;
  if (green) *green = nullptr;
  return tf_rs_cuStreamGetCtx(s, ctx);
}

CUresult tf_rs_cuStreamGetDevice(CUstream s, CUdevice* dev) {
  if (!dev) return CUDA_ERROR_INVALID_VALUE;
  CUcontext ctx = nullptr;
  CUresult r = tf_rs_cuStreamGetCtx(s, &ctx);
  if (r != CUDA_SUCCESS) return r;
  return client().contextDevice(ctx, dev) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

CUresult tf_rs_cuModuleGetLoadingMode(CUmoduleLoadingMode* mode) {
  if (!mode) return CUDA_ERROR_INVALID_VALUE;
  *mode = CU_MODULE_EAGER_LOADING;
  return CUDA_SUCCESS;
}

CUresult tf_rs_cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode* mode) {
  if (!mode) return CUDA_ERROR_INVALID_VALUE;
  thread_local CUstreamCaptureMode current = CU_STREAM_CAPTURE_MODE_GLOBAL;
  std::swap(current, *mode);
  return CUDA_SUCCESS;
}

CUresult tf_rs_cuStreamAddCallback(CUstream s, CUstreamCallback cb, void* data, unsigned flags) {
  if (!cb || flags) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  if (!client().streamOk(s)) return CUDA_ERROR_INVALID_HANDLE;
  return client().hostFunction(FnId::cuLaunchHostFunc, s, [s, cb, data] { cb(s, CUDA_SUCCESS, data); });
}

CUresult tf_rs_cuDeviceGetByPCIBusId(CUdevice* dev, const char* id) {
  if (!dev || !id) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  unsigned domain = 0, bus = 0, device = 0, fn = 0;
  if (sscanf(id, "%x:%x:%x.%x", &domain, &bus, &device, &fn) < 3) {
    domain = 0;
    if (sscanf(id, "%x:%x.%x", &bus, &device, &fn) < 2) return CUDA_ERROR_INVALID_VALUE;
  }
  for (int i = 0; i < client().deviceCount(); ++i) {
    auto* d = client().device(i);
    if (unsigned(d->attrs[CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID]) == domain &&
        unsigned(d->attrs[CU_DEVICE_ATTRIBUTE_PCI_BUS_ID]) == bus &&
        unsigned(d->attrs[CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID]) == device) {
      *dev = i;
      return CUDA_SUCCESS;
    }
  }
  return CUDA_ERROR_INVALID_DEVICE;
}

} // extern "C"
