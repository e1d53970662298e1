// Declarations of every stub implementation, tf_rs_<symbol>, expanded from the catalog so an
// implementation with the wrong signature does not compile. Implementing (forwarding) a
// driver function means defining its tf_rs_ function in an api_*.cpp file; exports.cpp exports
// every catalog symbol and answers CUDA_ERROR_NOT_SUPPORTED for the rest.
#pragma once

#include <cuda.h>
#include <cudaProfiler.h> // the catalog lists cuProfilerInitialize/Start/Stop too

#include "remoting/stub/client.h"

extern "C" {
#define TF_CU_FN(symbol, base, version, perThread, plain, params, args) CUresult tf_rs_##symbol params;
#include "cuda/catalog.inc"
#undef TF_CU_FN
}

namespace tf::remoting::stub {

// Address cuGetProcAddress hands out for a catalog index; null where not implemented.
void* exportedFunction(int index);

// Every forwarded call needs cuInit to have connected.
inline CUresult ready() {
  Client& c = client();
  if (!c.initialized()) return CUDA_ERROR_NOT_INITIALIZED;
  if (c.dead()) return CUDA_ERROR_DEVICE_UNAVAILABLE;
  return CUDA_SUCCESS;
}

#define TF_READY()                                                                                \
  do {                                                                                            \
    CUresult tf_r_ = ::tf::remoting::stub::ready();                                               \
    if (tf_r_ != CUDA_SUCCESS) return tf_r_;                                                      \
  } while (0)

inline uint64_t u(const void* p) { return reinterpret_cast<uint64_t>(p); }

// Per-thread default streams are emulated: each thread gets a stream of its own in each
// context (created on first use, synchronising with the legacy stream like the real one), so
// on the worker one client thread's stream work never queues behind another's.
CUstream threadStream();
// The plain (legacy-stream) function of a _ptsz/_ptds variant.
inline FnId plainOf(FnId fn) {
  const auto& e = cuda::catalogEntry(static_cast<int>(fn));
  return e.perThread ? static_cast<FnId>(e.plainIndex) : fn;
}
// A stream call: the per-thread flavour becomes the plain call on the thread's own stream.
inline void perThreadCall(FnId& fn, CUstream& s) {
  bool pt = cuda::catalogEntry(static_cast<int>(fn)).perThread;
  fn = plainOf(fn);
  if (s == CU_STREAM_PER_THREAD || (pt && s == nullptr)) s = threadStream();
}
template <typename T> inline T h(uint64_t v) { return reinterpret_cast<T>(v); }

// A kernel's parameters (kernelParams or the `extra` buffer) packed by its layout, with launch
// attributes, as the blob of a launch or a kernel node (protocol.h, encodeLaunch). Pinned memory
// the parameters point into is mirrored on the worker first.
CUresult packLaunch(CUfunction f, void** params, void** extra, const CUlaunchAttribute* attrs,
                    unsigned nAttrs, Writer& w);

// A graph host node's function as a token of the host channel (run here whenever the node
// does), and what the program gave remembered by it (for cuGraphHostNodeGetParams;
// api_graph_nodes.cpp).
CUresult hostNodeToken(const CUDA_HOST_NODE_PARAMS& p, uint64_t* token);
// `user` (a graph or an executable graph) now uses what `graph` does: the pageable memory its
// memcpy nodes read and write stays mirrored while either lives (api_graph.cpp).
void holdsGraphMemory(uint64_t user, uint64_t graph);
CUDA_KERNEL_NODE_PARAMS_v2 kernelParamsV2(const CUDA_KERNEL_NODE_PARAMS_v1& p);

} // namespace tf::remoting::stub
