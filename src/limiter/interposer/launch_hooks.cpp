// Compute: every way work reaches the device waits while the vGPU's share is used up.
#include "limiter/interposer/limiter.h"

using namespace tf::limiter;

namespace {

// `graph`: the executable graph of a graph launch, whose kernels are what completes.
template <typename Launch>
CUresult guarded(CUstream stream, bool perThread, Launch&& launch, CUgraphExec graph = nullptr) {
  Limiter& l = Limiter::get();
  if (CUresult r = l.ready(); r != CUDA_SUCCESS) return r;
  CUdevice dev = -1;
  if (TF_REAL(cuCtxGetDevice)(&dev) != CUDA_SUCCESS) return launch(); // the driver reports it
  if (l.anyCapture()) { // only then is the stream asked: launches stay one check otherwise
    CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
    auto isCapturing = perThread ? TF_REAL(cuStreamIsCapturing_ptsz) : TF_REAL(cuStreamIsCapturing);
    if (isCapturing && isCapturing(stream, &st) == CUDA_SUCCESS && st != CU_STREAM_CAPTURE_STATUS_NONE)
      return launch(); // recorded into a graph, run (and throttled) when the graph is launched
  }
  l.beforeLaunch(dev);
  CUevent start = l.regionDeviceOf(dev) >= 0 ? l.startTiming(dev, stream, perThread) : nullptr;
  CUresult r = launch();
  if (start) l.endTiming(dev, stream, perThread, r == CUDA_SUCCESS, start);
  if (r == CUDA_SUCCESS) l.afterLaunch(dev, graph ? l.kernelsPerLaunch(graph) : 1);
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
    return guarded(s, perThread(#sym), [&] { return TF_REAL(sym)(g, s); }, g);                    \
  }                                                                                               \
  TF_LIMITER_HOOK(sym)
TF_GRAPH_LAUNCH_HOOK(cuGraphLaunch);
TF_GRAPH_LAUNCH_HOOK(cuGraphLaunch_ptsz);

// Instantiation: the limiter learns how many kernels each launch of the graph will run.
TF_EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec* exec, CUgraph g, unsigned long long flags) {
  CUresult r = TF_REAL(cuGraphInstantiateWithFlags)(exec, g, flags);
  if (r == CUDA_SUCCESS && exec) Limiter::get().graphInstantiated(*exec, g);
  return r;
}
TF_LIMITER_HOOK(cuGraphInstantiateWithFlags);

#define TF_GRAPH_INSTANTIATE_PARAMS_HOOK(sym)                                                     \
  TF_EXPORT CUresult sym(CUgraphExec* exec, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS* params) {   \
    CUresult r = TF_REAL(sym)(exec, g, params);                                                   \
    if (r == CUDA_SUCCESS && exec) Limiter::get().graphInstantiated(*exec, g);                    \
    return r;                                                                                     \
  }                                                                                               \
  TF_LIMITER_HOOK(sym)
TF_GRAPH_INSTANTIATE_PARAMS_HOOK(cuGraphInstantiateWithParams);
TF_GRAPH_INSTANTIATE_PARAMS_HOOK(cuGraphInstantiateWithParams_ptsz);

TF_EXPORT CUresult cuGraphExecDestroy(CUgraphExec exec) {
  Limiter::get().graphDestroyed(exec);
  return TF_REAL(cuGraphExecDestroy)(exec);
}
TF_LIMITER_HOOK(cuGraphExecDestroy);

// Captures: counted, so a launch asks whether its stream is capturing only while one is on.
#define TF_BEGIN_CAPTURE_HOOK(sym)                                                                \
  TF_EXPORT CUresult sym(CUstream s, CUstreamCaptureMode mode) {                                  \
    CUresult r = TF_REAL(sym)(s, mode);                                                           \
    if (r == CUDA_SUCCESS) Limiter::get().captureBegun();                                         \
    return r;                                                                                     \
  }                                                                                               \
  TF_LIMITER_HOOK(sym)
TF_BEGIN_CAPTURE_HOOK(cuStreamBeginCapture_v2);
TF_BEGIN_CAPTURE_HOOK(cuStreamBeginCapture_v2_ptsz);

#define TF_END_CAPTURE_HOOK(sym)                                                                  \
  TF_EXPORT CUresult sym(CUstream s, CUgraph* g) {                                                \
    CUresult r = TF_REAL(sym)(s, g);                                                              \
    if (r != CUDA_ERROR_INVALID_HANDLE && r != CUDA_ERROR_ILLEGAL_STATE)                          \
      Limiter::get().captureEnded();                                                              \
    return r;                                                                                     \
  }                                                                                               \
  TF_LIMITER_HOOK(sym)
TF_END_CAPTURE_HOOK(cuStreamEndCapture);
TF_END_CAPTURE_HOOK(cuStreamEndCapture_ptsz);
