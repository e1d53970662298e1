// Contexts: the stub keeps each thread's context stack itself and sends the current context
// with every call; the worker gives each client its own contexts (its "primary" context too).
#include <algorithm>

#include "remoting/stub/api.h"

using namespace tf::remoting::stub;

namespace {

bool known(CUcontext c) { return client().contextDevice(c, nullptr); }

CUresult scalarOut(FnId fn, std::initializer_list<uint64_t> in, uint64_t* out, uint32_t n) {
  TF_READY();
  return client().call(fn, in, out, n);
}

} // namespace

extern "C" {

CUresult tf_rs_cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  if (!client().device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  CUcontext c = client().primaryContext(dev);
  if (!c) return client().dead() ? CUDA_ERROR_DEVICE_UNAVAILABLE : CUDA_ERROR_OUT_OF_MEMORY;
  *pctx = c;
  return CUDA_SUCCESS;
}

CUresult tf_rs_cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  TF_READY();
  return client().device(dev) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}
CUresult tf_rs_cuDevicePrimaryCtxReset_v2(CUdevice dev) { return tf_rs_cuDevicePrimaryCtxRelease_v2(dev); }
CUresult tf_rs_cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned) {
  return tf_rs_cuDevicePrimaryCtxRelease_v2(dev);
}

CUresult tf_rs_cuDevicePrimaryCtxGetState(CUdevice dev, unsigned* flags, int* active) {
  if (!flags || !active) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  if (!client().device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  uint64_t out[2];
  CUresult r = client().call(FnId::cuDevicePrimaryCtxGetState, {static_cast<uint64_t>(dev)}, out, 2);
  *flags = static_cast<unsigned>(out[0]);
  *active = static_cast<int>(out[1]);
  return r;
}

CUresult tf_rs_cuCtxCreate_v2(CUcontext* pctx, unsigned flags, CUdevice dev) {
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  if (!client().device(dev)) return CUDA_ERROR_INVALID_DEVICE;
  uint64_t out = 0;
  CUresult r = client().call(FnId::cuCtxCreate_v2, {flags, static_cast<uint64_t>(dev)}, &out, 1);
  if (r != CUDA_SUCCESS) return r;
  CUcontext c = h<CUcontext>(out);
  client().addContext(c, dev, false);
  contextStack().push_back(c);
  *pctx = c;
  return CUDA_SUCCESS;
}
CUresult tf_rs_cuCtxCreate_v3(CUcontext* pctx, CUexecAffinityParam*, int, unsigned flags, CUdevice dev) {
  return tf_rs_cuCtxCreate_v2(pctx, flags, dev);
}
CUresult tf_rs_cuCtxCreate_v4(CUcontext* pctx, CUctxCreateParams* params, unsigned flags, CUdevice dev) {
  if (params && (params->execAffinityParams || params->cigParams)) return CUDA_ERROR_NOT_SUPPORTED;
  return tf_rs_cuCtxCreate_v2(pctx, flags, dev);
}

CUresult tf_rs_cuCtxDestroy_v2(CUcontext ctx) {
  TF_READY();
  if (!known(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
  auto& s = contextStack();
  s.erase(std::remove(s.begin(), s.end(), ctx), s.end());
  CUresult r = client().call(FnId::cuCtxDestroy_v2, {u(ctx)});
  if (r == CUDA_SUCCESS) client().removeContext(ctx);
  return r;
}

CUresult tf_rs_cuCtxSetCurrent(CUcontext ctx) {
  TF_READY();
  if (ctx && !known(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
  auto& s = contextStack();
  if (s.empty()) {
    if (ctx) s.push_back(ctx);
  } else if (ctx) {
    s.back() = ctx;
  } else {
    s.pop_back();
  }
  return CUDA_SUCCESS;
}

CUresult tf_rs_cuCtxGetCurrent(CUcontext* pctx) {
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  *pctx = currentContext();
  return CUDA_SUCCESS;
}

CUresult tf_rs_cuCtxPushCurrent_v2(CUcontext ctx) {
  TF_READY();
  if (!known(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
  contextStack().push_back(ctx);
  return CUDA_SUCCESS;
}

CUresult tf_rs_cuCtxPopCurrent_v2(CUcontext* pctx) {
  TF_READY();
  auto& s = contextStack();
  if (s.empty()) return CUDA_ERROR_INVALID_CONTEXT;
  if (pctx) *pctx = s.back();
  s.pop_back();
  return CUDA_SUCCESS;
}

CUresult tf_rs_cuCtxGetDevice(CUdevice* dev) {
  if (!dev) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  CUcontext c = currentContext();
  if (!c || !client().contextDevice(c, dev)) return CUDA_ERROR_INVALID_CONTEXT;
  return CUDA_SUCCESS;
}

CUresult tf_rs_cuCtxGetApiVersion(CUcontext ctx, unsigned* version) {
  if (!version) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  if (!ctx) ctx = currentContext();
  if (!known(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
  *version = 3020;
  return CUDA_SUCCESS;
}

CUresult tf_rs_cuCtxSynchronize() {
  TF_READY();
  return client().call(FnId::cuCtxSynchronize, {});
}

// Profiler control runs on the worker, where the GPU (and any profiler attached to the worker,
// such as Nsight Systems) is; the driver needs a current context for it.
// The deprecated initializer names files on the client's machine, which the worker cannot
// read: checked and accepted here, as the driver of CUDA 12 accepts it.
CUresult tf_rs_cuProfilerInitialize(const char*, const char*, CUoutput_mode mode) {
  if (mode != CU_OUT_KEY_VALUE_PAIR && mode != CU_OUT_CSV) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  return CUDA_SUCCESS;
}

// Configuration the worker's driver keeps (or, on the soft GPU, checks and accepts).
// Graph memory: every attribute is a cuuint64_t.
CUresult tf_rs_cuDeviceGetGraphMemAttribute(CUdevice dev, CUgraphMem_attribute attr, void* value) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  uint64_t out = 0;
  CUresult r = scalarOut(FnId::cuDeviceGetGraphMemAttribute,
                         {static_cast<uint64_t>(dev), static_cast<uint64_t>(attr)}, &out, 1);
  if (r == CUDA_SUCCESS) *static_cast<cuuint64_t*>(value) = out;
  return r;
}
CUresult tf_rs_cuDeviceSetGraphMemAttribute(CUdevice dev, CUgraphMem_attribute attr, void* value) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  return client().call(FnId::cuDeviceSetGraphMemAttribute,
                       {static_cast<uint64_t>(dev), static_cast<uint64_t>(attr),
                        *static_cast<const cuuint64_t*>(value)});
}

CUresult tf_rs_cuCtxGetStreamPriorityRange(int* least, int* greatest) {
  uint64_t out[2] = {};
  CUresult r = scalarOut(FnId::cuCtxGetStreamPriorityRange, {}, out, 2);
  if (least) *least = static_cast<int>(out[0]);
  if (greatest) *greatest = static_cast<int>(out[1]);
  return r;
}


} // extern "C"
