// Contexts: primary and created, the per-thread current-context stack, limits and flags.
#include "softgpu/driver/api.h"
#include "softgpu/driver/stream.h"

using namespace tf::softgpu;

namespace {

constexpr unsigned kSchedMask = CU_CTX_SCHED_MASK;
constexpr unsigned kValidCtxFlags = CU_CTX_SCHED_MASK | CU_CTX_MAP_HOST |
                                    CU_CTX_LMEM_RESIZE_TO_MAX | CU_CTX_COREDUMP_ENABLE |
                                    CU_CTX_USER_COREDUMP_ENABLE | CU_CTX_SYNC_MEMOPS;

} // namespace

extern "C" {

CUresult tf_sg_cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  TF_TRY(deviceFor(dev, &d));
  *pctx = reinterpret_cast<CUcontext>(retainPrimary(d));
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  Device* d;
  TF_TRY(deviceFor(dev, &d));
  releasePrimary(d);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int* flags, int* active) {
  if (!flags || !active) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  TF_TRY(deviceFor(dev, &d));
  std::lock_guard<std::mutex> lock(d->primaryMu);
  *flags = d->primaryFlags;
  *active = d->primaryRefs > 0 ? 1 : 0;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags) {
  Device* d;
  TF_TRY(deviceFor(dev, &d));
  if (flags & ~kValidCtxFlags) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(d->primaryMu);
  d->primaryFlags = flags;
  if (d->primary) d->primary->flags = flags;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuDevicePrimaryCtxReset_v2(CUdevice dev) {
  Device* d;
  TF_TRY(deviceFor(dev, &d));
  Context* old = nullptr;
  {
    std::lock_guard<std::mutex> lock(d->primaryMu);
    old = d->primary;
    d->primary = nullptr;
    d->primaryRefs = 0;
  }
  if (old) destroyContext(old);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuCtxGetCurrent(CUcontext* pctx) {
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkInitialized());
  *pctx = reinterpret_cast<CUcontext>(currentContext());
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuCtxSetCurrent(CUcontext ctx) {
  TF_TRY(checkInitialized());
  auto& st = contextStack();
  if (!ctx) {
    if (!st.empty()) st.pop_back();
    return CUDA_SUCCESS;
  }
  Context* c = registryOf<Context>().find(ctx);
  if (!c) return CUDA_ERROR_INVALID_CONTEXT;
  if (st.empty()) st.push_back(c);
  else st.back() = c;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuCtxPushCurrent_v2(CUcontext ctx) {
  TF_TRY(checkInitialized());
  Context* c = registryOf<Context>().find(ctx);
  if (!c) return CUDA_ERROR_INVALID_CONTEXT;
  contextStack().push_back(c);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuCtxPopCurrent_v2(CUcontext* pctx) {
  TF_TRY(checkInitialized());
  Context* c = currentContext();
  if (!c) return CUDA_ERROR_INVALID_CONTEXT;
  contextStack().pop_back();
  if (pctx) *pctx = reinterpret_cast<CUcontext>(c);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuCtxCreate_v2(CUcontext* pctx, unsigned int flags, CUdevice dev) {
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  if (flags & ~kValidCtxFlags) return CUDA_ERROR_INVALID_VALUE;
  if (__builtin_popcount(flags & kSchedMask) > 1) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  TF_TRY(deviceFor(dev, &d));
  Context* c = createContext(d, flags);
  contextStack().push_back(c);
  *pctx = reinterpret_cast<CUcontext>(c);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuCtxCreate_v3(CUcontext* pctx, CUexecAffinityParam* params, int numParams,
                              unsigned int flags, CUdevice dev) {
  if (numParams < 0 || (numParams > 0 && !params)) return CUDA_ERROR_INVALID_VALUE;
  return tf_sg_cuCtxCreate_v2(pctx, flags, dev);
}

CUresult tf_sg_cuCtxCreate_v4(CUcontext* pctx, CUctxCreateParams* params, unsigned int flags,
                              CUdevice dev) {
  if (params && (params->numExecAffinityParams < 0 ||
                 (params->numExecAffinityParams > 0 && !params->execAffinityParams)))
    return CUDA_ERROR_INVALID_VALUE;
  return tf_sg_cuCtxCreate_v2(pctx, flags, dev);
}

CUresult tf_sg_cuCtxDestroy_v2(CUcontext ctx) {
  TF_TRY(checkInitialized());
  Context* c = registryOf<Context>().find(ctx);
  if (!c) return CUDA_ERROR_INVALID_CONTEXT;
  if (c->primary) return CUDA_ERROR_INVALID_CONTEXT; // primary contexts are reset, not destroyed
  auto& st = contextStack();
  std::erase(st, c);
  destroyContext(c);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuCtxGetDevice(CUdevice* device) {
  if (!device) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(contextOrCurrent(nullptr, &c));
  *device = c->device->ordinal;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuCtxGetDevice_v2(CUdevice* device, CUcontext ctx) {
  if (!device) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(contextOrCurrent(ctx, &c));
  *device = c->device->ordinal;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuCtxGetFlags(unsigned int* flags) {
  if (!flags) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(contextOrCurrent(nullptr, &c));
  *flags = c->flags;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuCtxSetFlags(unsigned int flags) {
  if (flags & ~kValidCtxFlags) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(contextOrCurrent(nullptr, &c));
  c->flags = flags;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuCtxGetId(CUcontext ctx, unsigned long long* id) {
  if (!id) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(contextOrCurrent(ctx, &c));
  *id = c->id;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuCtxGetApiVersion(CUcontext ctx, unsigned int* version) {
  if (!version) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(contextOrCurrent(ctx, &c));
  *version = 12050;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuCtxSynchronize(void) {
  Context* c;
  TF_TRY(contextOrCurrent(nullptr, &c));
  return synchronizeContext(c);
}

CUresult tf_sg_cuCtxSynchronize_v2(CUcontext ctx) {
  Context* c;
  TF_TRY(contextOrCurrent(ctx, &c));
  return synchronizeContext(c);
}

CUresult tf_sg_cuCtxGetLimit(size_t* value, CUlimit limit) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(contextOrCurrent(nullptr, &c));
  std::lock_guard<std::mutex> lock(c->mu);
  auto it = c->limits.find(limit);
  if (it == c->limits.end()) return CUDA_ERROR_UNSUPPORTED_LIMIT;
  *value = it->second;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuCtxSetLimit(CUlimit limit, size_t value) {
  Context* c;
  TF_TRY(contextOrCurrent(nullptr, &c));
  std::lock_guard<std::mutex> lock(c->mu);
  auto it = c->limits.find(limit);
  if (it == c->limits.end()) return CUDA_ERROR_UNSUPPORTED_LIMIT;
  it->second = value;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuCtxGetStreamPriorityRange(int* least, int* greatest) {
  TF_TRY(checkInitialized());
  if (least) *least = 0;
  if (greatest) *greatest = -5;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuCtxGetCacheConfig(CUfunc_cache* config) {
  if (!config) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(contextOrCurrent(nullptr, &c));
  *config = c->cacheConfig;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuCtxSetCacheConfig(CUfunc_cache config) {
  if (config < CU_FUNC_CACHE_PREFER_NONE || config > CU_FUNC_CACHE_PREFER_EQUAL)
    return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(contextOrCurrent(nullptr, &c));
  c->cacheConfig = config;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuCtxGetSharedMemConfig(CUsharedconfig* config) {
  if (!config) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(contextOrCurrent(nullptr, &c));
  *config = CU_SHARED_MEM_CONFIG_FOUR_BYTE_BANK_SIZE;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuCtxResetPersistingL2Cache(void) {
  Context* c;
  return contextOrCurrent(nullptr, &c);
}

CUresult tf_sg_cuCtxEnablePeerAccess(CUcontext peer, unsigned int flags) {
  if (flags) return CUDA_ERROR_INVALID_VALUE;
  Context *c, *p;
  TF_TRY(contextOrCurrent(nullptr, &c));
  p = registryOf<Context>().find(peer);
  if (!p) return CUDA_ERROR_INVALID_CONTEXT;
  if (p->device == c->device) return CUDA_ERROR_INVALID_DEVICE;
  return CUDA_SUCCESS; // all soft devices already see each other's memory
}

CUresult tf_sg_cuCtxDisablePeerAccess(CUcontext peer) {
  Context* c;
  TF_TRY(contextOrCurrent(nullptr, &c));
  if (!registryOf<Context>().find(peer)) return CUDA_ERROR_INVALID_CONTEXT;
  return CUDA_SUCCESS;
}

} // extern "C"
