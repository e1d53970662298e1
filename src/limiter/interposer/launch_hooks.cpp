// Compute: every way work reaches the device waits while the vGPU's share is used up.
#include "limiter/interposer/limiter.h"

using namespace tf::limiter;

namespace {

template <typename Launch>
CUresult guarded(CUstream stream, bool perThread, Launch&& launch) {
  Limiter& l = Limiter::get();
  if (CUresult r = l.ready(); r != CUDA_SUCCESS) return r;
  CUdevice dev = -1;
  if (TF_REAL(cuCtxGetDevice)(&dev) != CUDA_SUCCESS) return launch(); // the driver reports it
  l.beforeLaunch(dev);
  CUevent start = l.regionDeviceOf(dev) >= 0 ? l.startTiming(dev, stream, perThread) : nullptr;
  CUresult r = launch();
  if (start) l.endTiming(dev, stream, perThread, r == CUDA_SUCCESS, start);
  if (r == CUDA_SUCCESS) l.afterLaunch(dev);
  return r;
}

constexpr bool perThread(const char* symbol) {
  const char* p = symbol;
  while (*p) ++p;
  return p - symbol > 5 && p[-5] == '_' && p[-4] == 'p' && p[-3] == 't';
}

} // namespace

#define TF_LAUNCH_KERNEL_HOOK(sym)                                                                \
  TF_EXPORT CUresult sym(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,         \
                         unsigned by, unsigned bz, unsigned smem, CUstream s, void** params,       \
                         void** extra) {                                                          \
    return guarded(s, perThread(#sym),                                                            \
                   [&] { return TF_REAL(sym)(f, gx, gy, gz, bx, by, bz, smem, s, params, extra); }); \
  }                                                                                               \
  TF_LIMITER_HOOK(sym)
TF_LAUNCH_KERNEL_HOOK(cuLaunchKernel);
TF_LAUNCH_KERNEL_HOOK(cuLaunchKernel_ptsz);

#define TF_LAUNCH_COOPERATIVE_HOOK(sym)                                                           \
  TF_EXPORT CUresult sym(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,         \
                         unsigned by, unsigned bz, unsigned smem, CUstream s, void** params) {    \
    return guarded(s, perThread(#sym),                                                            \
                   [&] { return TF_REAL(sym)(f, gx, gy, gz, bx, by, bz, smem, s, params); });     \
  }                                                                                               \
  TF_LIMITER_HOOK(sym)
TF_LAUNCH_COOPERATIVE_HOOK(cuLaunchCooperativeKernel);
TF_LAUNCH_COOPERATIVE_HOOK(cuLaunchCooperativeKernel_ptsz);

#define TF_LAUNCH_EX_HOOK(sym)                                                                    \
  TF_EXPORT CUresult sym(const CUlaunchConfig* config, CUfunction f, void** params, void** extra) { \
    return guarded(config ? config->hStream : nullptr, perThread(#sym),                           \
                   [&] { return TF_REAL(sym)(config, f, params, extra); });                       \
  }                                                                                               \
  TF_LIMITER_HOOK(sym)
TF_LAUNCH_EX_HOOK(cuLaunchKernelEx);
TF_LAUNCH_EX_HOOK(cuLaunchKernelEx_ptsz);

#define TF_GRAPH_LAUNCH_HOOK(sym)                                                                 \
  TF_EXPORT CUresult sym(CUgraphExec g, CUstream s) {                                             \
    return guarded(s, perThread(#sym), [&] { return TF_REAL(sym)(g, s); });                       \
  }                                                                                               \
  TF_LIMITER_HOOK(sym)
TF_GRAPH_LAUNCH_HOOK(cuGraphLaunch);
TF_GRAPH_LAUNCH_HOOK(cuGraphLaunch_ptsz);
