// What the worker's call files share: the shorthands every handler uses to read its args and
// check what the client names, TF_CALL (a hand-written handler, found by gen_wire.py and put in
// the call table), and what one family's file offers the others.
//
//   TF_CALL(cuMemFree_v2) { NEED(1); ...; return r; }        // calls_memory.cpp
//   TF_CALL(cuStreamSynchronize, cuStreamSynchronize_ptsz) { ... }  // one handler, two symbols
#pragma once

#include "cuda/catalog.h"
#include "remoting/worker/call_table.h"
#include "remoting/worker/session.h"

namespace tf::remoting {

using cuda::FnId;
using K = Session::HandleKind;

// The extra ops (protocol.h Op), dispatched by call_table.cpp.
CUresult deviceInfo(Session& s, const CallIn& in, CallOut& out);       // calls_context.cpp
CUresult deviceMemory(Session& s, const CallIn& in, CallOut& out);     // calls_context.cpp
CUresult deviceProcesses(Session& s, const CallIn& in, CallOut& out);  // calls_context.cpp
CUresult errorString(Session& s, const CallIn& in, CallOut& out);      // calls_context.cpp
CUresult paramLayout(Session& s, const CallIn& in, CallOut& out);      // calls_launch.cpp
CUresult hostToDeviceAtStreamTime(Session& s, const CallIn& in);       // calls_memcpy.cpp
CUresult waitStream(Session& s, const CallIn& in);                     // calls_stream.cpp
CUresult waitEvent(Session& s, const CallIn& in);                      // calls_stream.cpp
// calls_mirror.cpp: mirrored host memory, shared pinned memory, copies by reference.
CUresult dispatchMirror(Session& s, const CallIn& in, CallOut& out);

// cuEventDestroy's worker side (calls_ipc.cpp): an opened event is closed, a held exported one
// kept.
CUresult destroyEvent(Session& s, uint64_t event);
// shared_device.cpp: ShareDevice and AwaitHostCopy, device memory the client maps for its
// synchronous copies from and to pageable memory; ShareManaged, managed memory it maps.
CUresult dispatchSharedDevice(Session& s, const CallIn& in, CallOut& out);
// calls_tiers.cpp: the admin's TierStatus and TierControl.
CUresult tierStatus(Session& s, const CallIn& in, CallOut& out);
CUresult tierControl(Session& s, const CallIn& in, CallOut& out);

// One side of a 2D/3D copy lies inside the client's device memory (type DEVICE), or, with
// hostByAddress, inside host memory of the client the device reaches by address (a mirror or
// shared pinned memory; type HOST). Other host sides are not checked (they travel packed).
CUresult checkSpan(Session& s, CUmemorytype type, CUdeviceptr addr, size_t x, size_t y, size_t z,
                   size_t pitch, size_t height, size_t w, size_t h, size_t d,
                   bool hostByAddress = false);

// The parameter layout of a function or kernel the client owns, from the driver, cached.
CUresult layoutOf(Session& s, uint64_t handle, const std::vector<ParamSlot>** out);

// A memset node's parameters checked against the client's memory.
CUresult checkMemsetNode(Session& s, const CUDA_MEMSET_NODE_PARAMS& p);
// A memcpy node's parameters: each side the client's device memory or host memory the worker
// holds at its address (no arrays); clears the array fields. calls_graph.cpp.
CUresult checkMemcpyNode(Session& s, CUDA_MEMCPY3D& c);

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
// A hand-written handler of one or more catalog symbols (named after the first).
#define TF_CALL(first, ...)                                                                       \
  CUresult call_##first([[maybe_unused]] Session& s, [[maybe_unused]] const CallIn& in,         \
                        [[maybe_unused]] CallOut& out)
