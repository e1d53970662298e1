// Stream capture and graphs on the worker. Graphs, executable graphs and nodes are handles of
// the client that created (or, for captured nodes, listed) them; dependencies must be its own
// nodes. Host nodes run the client's function over the host channel on every launch of the
// graph, so their arguments live as long as the session.
#include <cstring>
#include <vector>

#include "remoting/worker/calls.h"

namespace tf::remoting {

namespace {

// Blob: u32 count, count x u64 node handles, then the call's parameter struct (if any).
struct NodeBlob {
  std::vector<CUgraphNode> deps;
  std::string_view rest;
};
CUresult decodeNodes(Session& s, std::string_view blob, NodeBlob* out) {
  Reader r(blob.data(), blob.size());
  uint32_t n = r.u32();
  if (!r.ok() || n > kMaxParams || uint64_t(n) * 8 > r.remaining()) return CUDA_ERROR_INVALID_VALUE;
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t h = r.u64();
    OWN(GraphNode, h);
    out->deps.push_back(H(CUgraphNode)(h));
  }
  out->rest = blob.substr(blob.size() - r.remaining());
  return CUDA_SUCCESS;
}

template <typename T> bool structArg(std::string_view rest, T* v) {
  if (rest.size() != sizeof(T)) return false;
  std::memcpy(v, rest.data(), sizeof(T));
  return true;
}

// Records the node a call created (passed by address: it is only set once the call has run).
CUresult addedNode(Session& s, CUresult r, const CUgraphNode* created, CallOut& out) {
  putNew(s, out, r, K::GraphNode, *created);
  return r;
}

} // namespace

// ---- stream capture --------------------------------------------------------------------
TF_CALL(cuStreamBeginCapture_v2, cuStreamBeginCapture_v2_ptsz) {
  NEED(2);
  OWN_STREAM(A(0));
  DRV(cuStreamBeginCapture_v2);
  return f(H(CUstream)(A(0)), static_cast<CUstreamCaptureMode>(A(1)));
}
TF_CALL(cuStreamEndCapture, cuStreamEndCapture_ptsz) {
  NEED(1);
  OWN_STREAM(A(0));
  DRV(cuStreamEndCapture);
  CUgraph g = nullptr;
  CUresult r = f(H(CUstream)(A(0)), &g);
  putNew(s, out, r, K::Graph, g);
  return r;
}
TF_CALL(cuStreamIsCapturing, cuStreamIsCapturing_ptsz) {
  NEED(1);
  OWN_STREAM(A(0));
  DRV(cuStreamIsCapturing);
  CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
  CUresult r = f(H(CUstream)(A(0)), &st);
  out.put(st);
  return r;
}
TF_CALL(cuStreamGetCaptureInfo_v3, cuStreamGetCaptureInfo_v3_ptsz) {
  NEED(1);
  OWN_STREAM(A(0));
  DRV(cuStreamGetCaptureInfo_v3);
  CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
  cuuint64_t id = 0;
  CUgraph g = nullptr;
  const CUgraphNode* deps = nullptr;
  size_t n = 0;
  CUresult r = f(H(CUstream)(A(0)), &st, &id, &g, &deps, nullptr, &n);
  if (r != CUDA_SUCCESS) return r;
  out.put(st);
  out.put(id);
  putNew(s, out, r, K::Graph, g);
  for (size_t i = 0; deps && i < n && i < kMaxParams; ++i) {
    uint64_t h = s.expose(K::GraphNode, H(uint64_t)(deps[i]));
    out.blob.append(reinterpret_cast<const char*>(&h), 8);
  }
  return r;
}
// ---- graphs ----------------------------------------------------------------------------
TF_CALL(cuGraphDestroy) {
  NEED(1);
  OWN(Graph, A(0));
  if (s.childGraphs().count(A(0))) return CUDA_ERROR_INVALID_VALUE; // its node's
  DRV(cuGraphDestroy);
  CUresult r = f(H(CUgraph)(A(0)));
  if (r == CUDA_SUCCESS) s.forget(K::Graph, A(0));
  return r;
}
TF_CALL(cuGraphGetNodes) {
  NEED(2); // graph, capacity (0: count only)
  OWN(Graph, A(0));
  DRV(cuGraphGetNodes);
  size_t n = 0;
  CUresult r = f(H(CUgraph)(A(0)), nullptr, &n);
  if (r != CUDA_SUCCESS) return r;
  out.put(n);
  if (A(1) == 0 || n == 0) return r;
  std::vector<CUgraphNode> nodes(n);
  r = f(H(CUgraph)(A(0)), nodes.data(), &n);
  for (size_t i = 0; r == CUDA_SUCCESS && i < n && i < A(1); ++i) {
    uint64_t h = s.expose(K::GraphNode, H(uint64_t)(nodes[i])); // captured nodes: once listed
    out.blob.append(reinterpret_cast<const char*>(&h), 8);
  }
  return r;
}
// The executable is made from a copy of the graph, its body (Session::ExecBody), which the
// worker can read back when the client moves; the client's nodes name the body's.
TF_CALL(cuGraphInstantiateWithFlags) {
  NEED(2);
  OWN(Graph, A(0));
  DRV(cuGraphInstantiateWithFlags);
  DRV_AT(clone, cuGraphClone, cuGraphClone);
  DRV_AT(destroy, cuGraphDestroy, cuGraphDestroy);
  DRV_AT(find, cuGraphNodeFindInClone, cuGraphNodeFindInClone);
  Session::ExecBody b;
  b.from = A(0);
  b.flags = A(1);
  // The driver clones no graph with memory allocation, free or conditional nodes: such an
  // executable is made from the client's graph itself, and cannot be read back.
  CUgraph body = nullptr;
  if (clone(&body, H(CUgraph)(A(0))) != CUDA_SUCCESS) {
    body = nullptr;
    b.unreadable = "its graph holds nodes the driver cannot copy (memory allocation, free or conditional nodes)";
  }
  CUgraphExec e = nullptr;
  CUresult r = f(&e, body ? body : H(CUgraph)(A(0)), A(1));
  if (r != CUDA_SUCCESS) {
    if (body) destroy(body);
    out.put(0);
    return r;
  }
  b.body = H(uint64_t)(body);
  for (CUgraphNode n : graphNodes(s, H(CUgraph)(A(0)))) {
    CUgraphNode c = n;  // without a body, the client's nodes are the executable's
    if (!body || find(&c, n, body) == CUDA_SUCCESS) b.nodeOf[H(uint64_t)(n)] = H(uint64_t)(c);
  }
  s.execBodies()[H(uint64_t)(e)] = std::move(b);
  putNew(s, out, r, K::GraphExec, e);
  return r;
}
TF_CALL(cuGraphExecDestroy) {
  NEED(1);
  OWN(GraphExec, A(0));
  DRV(cuGraphExecDestroy);
  CUresult r = f(H(CUgraphExec)(A(0)));
  if (r == CUDA_SUCCESS) {
    dropExecBody(s, A(0));
    s.forget(K::GraphExec, A(0));
  }
  return r;
}

std::vector<CUgraphNode> graphNodes(Session& s, CUgraph g) {
  auto f = s.d().fn<decltype(&::cuGraphGetNodes)>(FnId::cuGraphGetNodes);
  size_t n = 0;
  if (!f || f(g, nullptr, &n) != CUDA_SUCCESS || n == 0) return {};
  std::vector<CUgraphNode> nodes(n);
  if (f(g, nodes.data(), &n) != CUDA_SUCCESS) return {};
  nodes.resize(n);
  return nodes;
}

void dropExecBody(Session& s, uint64_t exec) {
  auto it = s.execBodies().find(exec);
  if (it == s.execBodies().end()) return;
  if (auto destroy = s.d().fn<decltype(&::cuGraphDestroy)>(FnId::cuGraphDestroy); destroy && it->second.body)
    destroy(reinterpret_cast<CUgraph>(it->second.body));
  s.execBodies().erase(it);
}

uint64_t bodyNode(Session& s, uint64_t exec, uint64_t node) {
  auto it = s.execBodies().find(exec);
  if (it == s.execBodies().end()) return 0;
  auto n = it->second.nodeOf.find(node);
  return n == it->second.nodeOf.end() ? 0 : n->second;
}
TF_CALL(cuGraphLaunch, cuGraphLaunch_ptsz, cuGraphUpload, cuGraphUpload_ptsz) {
  NEED(2);
  OWN(GraphExec, A(0));
  OWN_STREAM(A(1));
  DRV(cuGraphLaunch);
  return f(H(CUgraphExec)(A(0)), H(CUstream)(A(1)));
}
// ---- nodes: blob = dependencies, then the parameters -------------------------------------
TF_CALL(cuGraphAddEmptyNode) {
  NEED(1);
  OWN(Graph, A(0));
  NodeBlob b;
  if (CUresult r = decodeNodes(s, in.a.blob, &b); r != CUDA_SUCCESS) return r;
  DRV(cuGraphAddEmptyNode);
  CUgraphNode node = nullptr;
  return addedNode(s, f(&node, H(CUgraph)(A(0)), b.deps.data(), b.deps.size()), &node, out);
}
TF_CALL(cuGraphAddMemsetNode) {
  NEED(2);
  OWN(Graph, A(0));
  OWN(Context, A(1));
  NodeBlob b;
  if (CUresult r = decodeNodes(s, in.a.blob, &b); r != CUDA_SUCCESS) return r;
  CUDA_MEMSET_NODE_PARAMS p{};
  if (!structArg(b.rest, &p)) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = checkMemsetNode(s, p); r != CUDA_SUCCESS) return r;
  DRV(cuGraphAddMemsetNode);
  CUgraphNode node = nullptr;
  return addedNode(s, f(&node, H(CUgraph)(A(0)), b.deps.data(), b.deps.size(), &p, H(CUcontext)(A(1))),
                   &node, out);
}
TF_CALL(cuGraphAddHostNode) {
  NEED(2); // graph, token
  OWN(Graph, A(0));
  NodeBlob b;
  if (CUresult r = decodeNodes(s, in.a.blob, &b); r != CUDA_SUCCESS) return r;
  DRV(cuGraphAddHostNode);
  CUDA_HOST_NODE_PARAMS p{};
  p.fn = &Session::hostFunctionEntry;
  p.userData = s.hostFunctionArg(A(1), true);
  CUgraphNode node = nullptr;
  return addedNode(s, f(&node, H(CUgraph)(A(0)), b.deps.data(), b.deps.size(), &p), &node, out);
}
TF_CALL(cuGraphAddKernelNode_v2) {
  NEED(9); // graph, function, grid xyz, block xyz, shared bytes; blob: deps, launch blob
  OWN(Graph, A(0));
  OWN_FUNC(A(1));
  NodeBlob b;
  if (CUresult r = decodeNodes(s, in.a.blob, &b); r != CUDA_SUCCESS) return r;
  LaunchBlob lb;
  std::vector<void*> ptrs;
  if (CUresult r = kernelParams(s, A(1), b.rest, &lb, &ptrs); r != CUDA_SUCCESS) return r;
  CUDA_KERNEL_NODE_PARAMS_v2 p{};
  p.func = H(CUfunction)(A(1));
  p.gridDimX = static_cast<unsigned>(A(2));
  p.gridDimY = static_cast<unsigned>(A(3));
  p.gridDimZ = static_cast<unsigned>(A(4));
  p.blockDimX = static_cast<unsigned>(A(5));
  p.blockDimY = static_cast<unsigned>(A(6));
  p.blockDimZ = static_cast<unsigned>(A(7));
  p.sharedMemBytes = static_cast<unsigned>(A(8));
  p.kernelParams = ptrs.empty() ? nullptr : ptrs.data(); // the driver copies the values
  if (in.a.count > 9 && A(9)) { // the kernel named besides the function (cudart's)
    OWN_FUNC(A(9));
    p.kern = H(CUkernel)(A(9));
  }
  DRV(cuGraphAddKernelNode_v2);
  CUgraphNode node = nullptr;
  return addedNode(s, f(&node, H(CUgraph)(A(0)), b.deps.data(), b.deps.size(), &p), &node, out);
}
TF_CALL(cuGraphAddMemcpyNode) {
  NEED(2); // graph, context; blob: deps, CUDA_MEMCPY3D (host sides by address)
  OWN(Graph, A(0));
  OWN(Context, A(1));
  NodeBlob b;
  if (CUresult r = decodeNodes(s, in.a.blob, &b); r != CUDA_SUCCESS) return r;
  CUDA_MEMCPY3D c{};
  if (!structArg(b.rest, &c)) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = checkMemcpyNode(s, c); r != CUDA_SUCCESS) return r;
  DRV(cuGraphAddMemcpyNode);
  CUgraphNode node = nullptr;
  return addedNode(s, f(&node, H(CUgraph)(A(0)), b.deps.data(), b.deps.size(), &c, H(CUcontext)(A(1))),
                   &node, out);
}
// Edges added or removed: blob = from..., to... in one list (default edges only).
template <typename Edges> CUresult changeEdges(Session& s, CallIn& in, Edges change) {
  NEED(1);
  OWN(Graph, A(0));
  NodeBlob b;
  if (CUresult r = decodeNodes(s, in.a.blob, &b); r != CUDA_SUCCESS) return r;
  if (b.deps.size() % 2 || !b.rest.empty()) return CUDA_ERROR_INVALID_VALUE;
  if (!change) return CUDA_ERROR_NOT_SUPPORTED;
  const size_t n = b.deps.size() / 2;
  return change(H(CUgraph)(A(0)), b.deps.data(), b.deps.data() + n, nullptr, n);
}
TF_CALL(cuGraphAddDependencies, cuGraphAddDependencies_v2) {
  return changeEdges(s, in, s.d().fn<decltype(&::cuGraphAddDependencies_v2)>(FnId::cuGraphAddDependencies_v2));
}
TF_CALL(cuGraphRemoveDependencies, cuGraphRemoveDependencies_v2) {
  return changeEdges(s, in, s.d().fn<decltype(&::cuGraphRemoveDependencies_v2)>(FnId::cuGraphRemoveDependencies_v2));
}

CUresult checkMemcpyNode(Session& s, CUDA_MEMCPY3D& c) {
  // The node runs whenever the graph does: a host side must be memory the worker holds at
  // the client's address (mirrored or shared pinned memory), never staging.
  for (CUmemorytype t : {c.srcMemoryType, c.dstMemoryType})
    if (t != CU_MEMORYTYPE_HOST && t != CU_MEMORYTYPE_DEVICE) return CUDA_ERROR_NOT_SUPPORTED;
  uint64_t src = c.srcMemoryType == CU_MEMORYTYPE_HOST ? H(uint64_t)(c.srcHost) : c.srcDevice;
  uint64_t dst = c.dstMemoryType == CU_MEMORYTYPE_HOST ? H(uint64_t)(c.dstHost) : c.dstDevice;
  if (checkSpan(s, c.srcMemoryType, src, c.srcXInBytes, c.srcY, c.srcZ, c.srcPitch, c.srcHeight,
                c.WidthInBytes, c.Height, c.Depth, true) ||
      checkSpan(s, c.dstMemoryType, dst, c.dstXInBytes, c.dstY, c.dstZ, c.dstPitch, c.dstHeight,
                c.WidthInBytes, c.Height, c.Depth, true))
    return CUDA_ERROR_INVALID_VALUE;
  c.srcArray = c.dstArray = nullptr;
  return CUDA_SUCCESS;
}

CUresult checkMemsetNode(Session& s, const CUDA_MEMSET_NODE_PARAMS& p) {
  if (p.elementSize != 1 && p.elementSize != 2 && p.elementSize != 4) return CUDA_ERROR_INVALID_VALUE;
  uint64_t rowBytes = uint64_t(p.width) * p.elementSize;
  if (p.height == 0 || p.width == 0) return CUDA_ERROR_INVALID_VALUE;
  if (p.height > 1 && p.pitch < rowBytes) return CUDA_ERROR_INVALID_VALUE;
  uint64_t span = 0;
  if (__builtin_mul_overflow(uint64_t(p.height - 1), uint64_t(p.pitch), &span) ||
      __builtin_add_overflow(span, rowBytes, &span))
    return CUDA_ERROR_INVALID_VALUE;
  DPTR(p.dst, span);
  return CUDA_SUCCESS;
}

} // namespace tf::remoting
