// What the worker's handler files share: the dispatchers of each family of calls, and the
// shorthands every handler uses to read its args and check what the client names.
#pragma once

#include "cuda/catalog.h"
#include "remoting/worker/session.h"

namespace tf::remoting {

using cuda::FnId;
using K = Session::HandleKind;

// handlers_mirror.cpp: managed memory, mirrored host memory, copies by reference.
CUresult dispatchMirror(Session& s, const CallIn& in, CallOut& out);
// handlers_graph.cpp: stream capture and graphs.
CUresult dispatchGraph(Session& s, const CallIn& in, CallOut& out);
// handlers_ipc.cpp: IPC memory and event handles (worker/ipc.h); destroyEvent is
// cuEventDestroy's worker side (an opened event is closed, a held exported one kept).
CUresult dispatchIpc(Session& s, const CallIn& in, CallOut& out);
CUresult destroyEvent(Session& s, uint64_t event);
// shared_device.cpp: ShareDevice and AwaitHostCopy, device memory the client maps for its
// synchronous copies from and to pageable memory.
CUresult dispatchSharedDevice(Session& s, const CallIn& in, CallOut& out);
// handlers_array.cpp: arrays, mipmapped arrays, texture and surface objects;
// CUDA_ERROR_NOT_SUPPORTED for anything else.
CUresult dispatchArray(Session& s, const CallIn& in, CallOut& out);

// One side of a 2D/3D copy lies inside the client's device memory (type DEVICE), or, with
// hostByAddress, inside host memory of the client the device reaches by address (a mirror or
// shared pinned memory; type HOST). Other host sides are not checked (they travel packed).
CUresult checkSpan(Session& s, CUmemorytype type, CUdeviceptr addr, size_t x, size_t y, size_t z,
                   size_t pitch, size_t height, size_t w, size_t h, size_t d,
                   bool hostByAddress = false);

// The parameter layout of a function or kernel the client owns, from the driver, cached.
CUresult layoutOf(Session& s, uint64_t handle, const std::vector<ParamSlot>** out);

// handlers_graph_nodes.cpp: graph and node introspection, node parameters, clones, child
// graphs, executable graph updates.
CUresult dispatchGraphNodes(Session& s, const CallIn& in, CallOut& out);
// A memset node's parameters checked against the client's memory.
CUresult checkMemsetNode(Session& s, const CUDA_MEMSET_NODE_PARAMS& p);

// A launch blob (protocol.h) checked against the kernel's parameter layout and against
// pointers into other clients' memory; `ptrs` gets the kernelParams array into lb->params.
CUresult kernelParams(Session& s, uint64_t func, std::string_view blob, LaunchBlob* lb,
                      std::vector<void*>* ptrs);

} // namespace tf::remoting

#define A(i) (in.a.s[i])
#define NEED(n)                                                                                   \
  if (in.a.count < (n)) return CUDA_ERROR_INVALID_VALUE
#define DRV(plain)                                                                                \
  auto f = s.d().fn<decltype(&::plain)>(in.fn);                                                   \
  if (!f) return CUDA_ERROR_NOT_SUPPORTED
#define DRV_AT(name, plain, id)                                                                   \
  auto name = s.d().fn<decltype(&::plain)>(FnId::id);                                             \
  if (!name) return CUDA_ERROR_NOT_SUPPORTED
#define OWN(kind, h)                                                                              \
  if (!s.owns(K::kind, (h))) return CUDA_ERROR_INVALID_HANDLE
// A graph node that is not the client's is INVALID_VALUE, as the driver answers for a node
// that does not exist.
#define OWN_NODE(h)                                                                               \
  if (!s.owns(K::GraphNode, (h))) return CUDA_ERROR_INVALID_VALUE
#define OWN_ARRAY(h)                                                                              \
  if (!s.owns(K::Array, (h)) && !s.owns(K::ArrayLevel, (h))) return CUDA_ERROR_INVALID_HANDLE
#define OWN_STREAM(h)                                                                             \
  if (!s.ownsStream(h)) return CUDA_ERROR_INVALID_HANDLE
#define OWN_FUNC(h)                                                                               \
  if (!s.owns(K::Kernel, (h)) && !s.owns(K::Function, (h))) return CUDA_ERROR_INVALID_HANDLE
#define DPTR(p, n)                                                                                \
  if (!s.allocationFor((p), (n))) return CUDA_ERROR_INVALID_VALUE
#define H(x) reinterpret_cast<x>
#define CASE2(a, b) case FnId::a: case FnId::b:
