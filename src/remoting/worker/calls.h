// What the worker's call files share: the shorthands every handler uses to read its args and
// resolve what the client names (OWN*: the client's handle value becomes the driver's, in
// place; a handle not the client's is refused), to expose what the driver hands out (putNew,
// putKnown), TF_CALL (a hand-written handler, found by gen_wire.py and put in
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
CUresult deviceInfo(Session& s, CallIn& in, CallOut& out);       // calls_context.cpp
CUresult deviceMemory(Session& s, CallIn& in, CallOut& out);     // calls_context.cpp
CUresult deviceProcesses(Session& s, CallIn& in, CallOut& out);  // calls_context.cpp
CUresult errorString(Session& s, CallIn& in, CallOut& out);      // calls_context.cpp
CUresult paramLayout(Session& s, CallIn& in, CallOut& out);      // calls_launch.cpp
CUresult hostToDeviceAtStreamTime(Session& s, CallIn& in);       // calls_memcpy.cpp
CUresult waitStream(Session& s, CallIn& in);                     // calls_stream.cpp
CUresult waitEvent(Session& s, CallIn& in);                      // calls_stream.cpp
// calls_mirror.cpp: mirrored host memory, shared pinned memory, copies by reference.
CUresult dispatchMirror(Session& s, CallIn& in, CallOut& out);

// cuEventDestroy's worker side (calls_ipc.cpp): an opened event is closed, a held exported one
// kept.
CUresult destroyEvent(Session& s, uint64_t event);
// shared_device.cpp: ShareDevice and AwaitHostCopy, device memory the client maps for its
// synchronous copies from and to pageable memory; ShareManaged, managed memory it maps.
CUresult dispatchSharedDevice(Session& s, CallIn& in, CallOut& out);
// calls_tiers.cpp: the admin's TierStatus and TierControl.
CUresult tierStatus(Session& s, CallIn& in, CallOut& out);
CUresult tierControl(Session& s, CallIn& in, CallOut& out);
// calls_migration.cpp: the admin's MigrateOut (source) and Adopt (target).
CUresult migrateOut(Session& s, CallIn& in, CallOut& out);
CUresult adoptSession(Session& s, CallIn& in, CallOut& out);

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

// Executable graphs and their bodies (Session::ExecBody; calls_graph.cpp): a graph's nodes in
// creation order (empty if it cannot be read); the body's node standing for the client's
// node `node` (driver values) in `exec`, 0 if none (INVALID_VALUE, as the driver answers a node
// not in the executable); the body released with its executable.
std::vector<CUgraphNode> graphNodes(Session& s, CUgraph g);
uint64_t bodyNode(Session& s, uint64_t exec, uint64_t node);
void dropExecBody(Session& s, uint64_t exec);
// Copies the parameters of node `from` into `to` (of the same type: kernel, memset, memcpy,
// host or empty); NOT_SUPPORTED for other types (calls_graph_nodes.cpp).
CUresult copyNodeParams(Session& s, CUgraphNode from, CUgraphNode to);

// A kernel node's arguments (kernelParams, one pointer per parameter) packed into one buffer
// by the kernel's parameter layout.
std::string packedArguments(const std::vector<ParamSlot>& layout, void* const* kernelParams);

// A launch blob (protocol.h) checked against the kernel's parameter layout and against
// pointers into other clients' memory; `ptrs` gets the kernelParams array into lb->params.
CUresult kernelParams(Session& s, uint64_t func, std::string_view blob, LaunchBlob* lb,
                      std::vector<void*>* ptrs);

// A handle the call created (or the driver handed out): recorded as the client's, and the
// value the client sees put in the reply (0 if the call failed).
template <typename T> void putNew(Session& s, CallOut& out, CUresult r, K kind, T driver) {
  out.put(r == CUDA_SUCCESS ? s.expose(kind, Session::handleBits(driver)) : 0);
}
// A handle of the client's the call names in its output: its client value (0 if it is not
// the client's: the driver's values never reach the client).
template <typename T> uint64_t known(Session& s, K kind, T driver) {
  return s.clientValue(kind, Session::handleBits(driver)).value_or(0);
}

// The handles inside the structs the generated handlers take (structIn: resolved; a handle not
// the client's is refused) and give back (structOut: exposed). Every struct type wire_calls.txt
// carries has its pair here, so a new one does not build until someone has looked inside it.
inline CUresult structIn(Session&, CUstreamAttrValue&) { return CUDA_SUCCESS; } // stream attributes
inline void structOut(Session&, CUstreamAttrValue&) {}  // (policy, priority, domains): no handles
inline CUresult structIn(Session&, CUmemPoolProps&) { return CUDA_SUCCESS; }   // no handles
inline CUresult structIn(Session&, CUmemLocation&) { return CUDA_SUCCESS; }    // no handles
inline void structOut(Session&, CUDA_MEMSET_NODE_PARAMS&) {}                   // no handles
inline void structOut(Session&, CUDA_ARRAY_DESCRIPTOR&) {}                     // no handles
inline void structOut(Session&, CUDA_ARRAY3D_DESCRIPTOR&) {}                   // no handles
inline void structOut(Session&, CUDA_TEXTURE_DESC&) {}                         // no handles
inline void structOut(Session&, CUDA_RESOURCE_VIEW_DESC&) {}                   // no handles
void structOut(Session& s, CUDA_RESOURCE_DESC& r); // its array or mipmapped array (calls_array.cpp)

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
// OWN*(h): h (an lvalue: A(i), a local, a struct's field) names a handle of the client's; it
// now holds the driver's value. Resolve each value once: a driver value is not a client value.
#define OWN(kind, h)                                                                              \
  if (!s.resolveIn((h), K::kind)) return CUDA_ERROR_INVALID_HANDLE
// A graph node that is not the client's is INVALID_VALUE, as the driver answers for a node
// that does not exist.
#define OWN_NODE(h)                                                                               \
  if (!s.resolveIn((h), K::GraphNode)) return CUDA_ERROR_INVALID_VALUE
#define OWN_ARRAY(h)                                                                              \
  if (!s.resolveIn((h), K::Array, K::ArrayLevel)) return CUDA_ERROR_INVALID_HANDLE
#define OWN_STREAM(h)                                                                             \
  if (!s.resolveStreamIn(h)) return CUDA_ERROR_INVALID_HANDLE
#define OWN_FUNC(h)                                                                               \
  if (!s.resolveIn((h), K::Kernel, K::Function)) return CUDA_ERROR_INVALID_HANDLE
#define DPTR(p, n)                                                                                \
  if (!s.allocationFor((p), (n))) return CUDA_ERROR_INVALID_VALUE
#define H(x) reinterpret_cast<x>
#define CASE2(a, b) case FnId::a: case FnId::b:
// A hand-written handler of one or more catalog symbols (named after the first).
#define TF_CALL(first, ...)                                                                       \
  CUresult call_##first([[maybe_unused]] Session& s, [[maybe_unused]] CallIn& in,         \
                        [[maybe_unused]] CallOut& out)
