// Graph and node introspection on the worker (node lists, edges, dependencies, types), node
// parameters (kernel, memset, memcpy, host) read and changed in graphs and executable graphs,
// clones, child graphs and executable graph updates. Every node, graph or executable graph
// named must be the client's; nodes and graphs the driver hands out (a clone's nodes, a child
// node's graph, an update's error node) become the client's. Node lists come back as the
// blob (u64 handles), with the full count as the first out value; the call's second scalar
// is the caller's capacity (0: the count only).
#include <cstring>
#include <vector>

#include "remoting/worker/calls.h"

namespace tf::remoting {

namespace {

void putNodes(Session& s, const CUgraphNode* nodes, size_t n, size_t cap, CallOut& out) {
  for (size_t i = 0; i < n && i < cap && i < kMaxParams * 64; ++i) {
    uint64_t h = s.expose(K::GraphNode, H(uint64_t)(nodes[i]));
    out.blob.append(reinterpret_cast<const char*>(&h), 8);
  }
}

// A node list from f(handle, nodes, &n): count, then (if asked) the nodes.
template <typename F> CUresult listNodes(Session& s, F f, uint64_t cap, CallOut& out) {
  size_t n = 0;
  CUresult r = f(nullptr, &n);
  if (r != CUDA_SUCCESS) return r;
  out.put(n);
  if (!cap || !n) return r;
  std::vector<CUgraphNode> nodes(n);
  r = f(nodes.data(), &n);
  if (r == CUDA_SUCCESS) putNodes(s, nodes.data(), n, cap, out);
  return r;
}

// Kernel node parameters from the wire: function, grid, block, shared bytes; blob: the
// launch blob (checked as a launch's).
CUresult kernelNodeParams(Session& s, CallIn& in, int at, CUDA_KERNEL_NODE_PARAMS_v2* p,
                          LaunchBlob* lb, std::vector<void*>* ptrs) {
  NEED(static_cast<uint32_t>(at) + 8);
  OWN_FUNC(A(at));
  if (CUresult r = kernelParams(s, A(at), in.a.blob, lb, ptrs); r != CUDA_SUCCESS) return r;
  *p = {};
  p->func = H(CUfunction)(A(at));
  p->gridDimX = static_cast<unsigned>(A(at + 1));
  p->gridDimY = static_cast<unsigned>(A(at + 2));
  p->gridDimZ = static_cast<unsigned>(A(at + 3));
  p->blockDimX = static_cast<unsigned>(A(at + 4));
  p->blockDimY = static_cast<unsigned>(A(at + 5));
  p->blockDimZ = static_cast<unsigned>(A(at + 6));
  p->sharedMemBytes = static_cast<unsigned>(A(at + 7));
  p->kernelParams = ptrs->empty() ? nullptr : ptrs->data();
  // The kernel the program named besides its function (cudart finds its host stub by it).
  if (in.a.count > uint32_t(at + 8) && A(at + 8)) {
    OWN_FUNC(A(at + 8));
    p->kern = H(CUkernel)(A(at + 8));
  }
  return CUDA_SUCCESS;
}

// The client value of a node's function (first: K::Function) or kernel (K::Kernel): the
// client's own of that kind, else of the other (a driver may give both one value), else one
// the driver made for the node, which becomes the client's.
uint64_t funcValue(Session& s, K first, uint64_t driver) {
  K other = first == K::Function ? K::Kernel : K::Function;
  if (auto c = s.clientValue(first, driver)) return *c;
  if (auto c = s.clientValue(other, driver)) return *c;
  return s.expose(first, driver);
}

// A change to node `node` (the client's, driver value) of executable `exec`: made to the
// executable's node (the body's), then kept in the body.
template <typename Exec, typename Body>
CUresult execAndBody(Session& s, uint64_t exec, uint64_t node, Exec&& onExec, Body&& onBody) {
  const uint64_t bn = bodyNode(s, exec, node);
  if (!bn) return CUDA_ERROR_INVALID_VALUE;
  CUresult r = onExec(H(CUgraphNode)(bn));
  Session::ExecBody& b = s.execBodies()[exec];
  if (r == CUDA_SUCCESS && b.body && onBody(H(CUgraphNode)(bn)) != CUDA_SUCCESS)
    b.unreadable = "a change to one of its nodes could not be kept";
  return r;
}

template <typename T> bool blobStruct(const CallIn& in, T* v) {
  if (in.a.blob.size() != sizeof(T)) return false;
  std::memcpy(v, in.a.blob.data(), sizeof(T));
  return true;
}

} // namespace

// ---- lists -------------------------------------------------------------------------------
TF_CALL(cuGraphGetRootNodes) {
  NEED(2);
  OWN(Graph, A(0));
  DRV(cuGraphGetRootNodes);
  return listNodes(s, [&](CUgraphNode* n, size_t* k) { return f(H(CUgraph)(A(0)), n, k); }, A(1), out);
}
TF_CALL(cuGraphNodeGetDependencies) {
  NEED(2);
  OWN_NODE(A(0));
  DRV(cuGraphNodeGetDependencies);
  return listNodes(s, [&](CUgraphNode* n, size_t* k) { return f(H(CUgraphNode)(A(0)), n, k); }, A(1), out);
}
TF_CALL(cuGraphNodeGetDependentNodes) {
  NEED(2);
  OWN_NODE(A(0));
  DRV(cuGraphNodeGetDependentNodes);
  return listNodes(s, [&](CUgraphNode* n, size_t* k) { return f(H(CUgraphNode)(A(0)), n, k); }, A(1), out);
}
TF_CALL(cuGraphGetEdges) { // blob: the `from` nodes, then the `to` nodes
  NEED(2);
  OWN(Graph, A(0));
  DRV(cuGraphGetEdges);
  size_t n = 0;
  CUresult r = f(H(CUgraph)(A(0)), nullptr, nullptr, &n);
  if (r != CUDA_SUCCESS) return r;
  out.put(n);
  if (!A(1) || !n) return r;
  std::vector<CUgraphNode> from(n), to(n);
  r = f(H(CUgraph)(A(0)), from.data(), to.data(), &n);
  if (r != CUDA_SUCCESS) return r;
  size_t k = std::min<size_t>(n, A(1));
  putNodes(s, from.data(), k, k, out);
  putNodes(s, to.data(), k, k, out);
  return r;
}
// ---- clones and child graphs -------------------------------------------------------------
TF_CALL(cuGraphClone) { // hand-written in the stub, which carries the graph's mirrors over
  NEED(1);
  OWN(Graph, A(0));
  DRV(cuGraphClone);
  CUgraph clone = nullptr;
  CUresult r = f(&clone, H(CUgraph)(A(0)));
  putNew(s, out, r, K::Graph, clone);
  return r;
}
TF_CALL(cuGraphAddChildGraphNode) {
  NEED(2); // graph, child; blob: deps
  OWN(Graph, A(0));
  OWN(Graph, A(1));
  Reader rd(in.a.blob.data(), in.a.blob.size());
  uint32_t n = rd.u32();
  if (!rd.ok() || n > kMaxParams || rd.remaining() != uint64_t(n) * 8) return CUDA_ERROR_INVALID_VALUE;
  std::vector<CUgraphNode> deps;
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t h = rd.u64();
    OWN(GraphNode, h);
    deps.push_back(H(CUgraphNode)(h));
  }
  DRV(cuGraphAddChildGraphNode);
  CUgraphNode node = nullptr;
  CUresult r = f(&node, H(CUgraph)(A(0)), deps.data(), deps.size(), H(CUgraph)(A(1)));
  putNew(s, out, r, K::GraphNode, node);
  return r;
}
TF_CALL(cuGraphChildGraphNodeGetGraph) {
  NEED(1);
  OWN_NODE(A(0));
  DRV(cuGraphChildGraphNodeGetGraph);
  CUgraph g = nullptr;
  CUresult r = f(H(CUgraphNode)(A(0)), &g);
  if (r == CUDA_SUCCESS && g) s.childGraphs().insert(H(uint64_t)(g));
  putNew(s, out, r, K::Graph, g);
  return r;
}
// ---- node parameters ---------------------------------------------------------------------
TF_CALL(cuGraphKernelNodeGetParams_v2) { // outs: function, grid, block, shared, kernel; blob: values
  NEED(1);
  OWN_NODE(A(0));
  DRV(cuGraphKernelNodeGetParams_v2);
  CUDA_KERNEL_NODE_PARAMS_v2 p{};
  CUresult r = f(H(CUgraphNode)(A(0)), &p);
  if (r != CUDA_SUCCESS) return r;
  uint64_t fn = p.func ? H(uint64_t)(p.func) : H(uint64_t)(p.kern);
  const std::vector<ParamSlot>* layout = nullptr;
  if ((r = layoutOf(s, fn, &layout)) != CUDA_SUCCESS) return r;
  out.blob = packedArguments(*layout, p.kernelParams);
  for (uint64_t v : {funcValue(s, K::Function, H(uint64_t)(p.func)), uint64_t(p.gridDimX), uint64_t(p.gridDimY),
                     uint64_t(p.gridDimZ), uint64_t(p.blockDimX), uint64_t(p.blockDimY),
                     uint64_t(p.blockDimZ), uint64_t(p.sharedMemBytes), funcValue(s, K::Kernel, H(uint64_t)(p.kern))})
    out.put(v);
  return r;
}
TF_CALL(cuGraphKernelNodeSetParams_v2) {
  NEED(1);
  OWN_NODE(A(0));
  CUDA_KERNEL_NODE_PARAMS_v2 p;
  LaunchBlob lb;
  std::vector<void*> ptrs;
  if (CUresult r = kernelNodeParams(s, in, 1, &p, &lb, &ptrs); r != CUDA_SUCCESS) return r;
  DRV(cuGraphKernelNodeSetParams_v2);
  return f(H(CUgraphNode)(A(0)), &p);
}
TF_CALL(cuGraphExecKernelNodeSetParams_v2) {
  NEED(2);
  OWN(GraphExec, A(0));
  OWN_NODE(A(1));
  CUDA_KERNEL_NODE_PARAMS_v2 p;
  LaunchBlob lb;
  std::vector<void*> ptrs;
  if (CUresult r = kernelNodeParams(s, in, 2, &p, &lb, &ptrs); r != CUDA_SUCCESS) return r;
  DRV(cuGraphExecKernelNodeSetParams_v2);
  DRV_AT(keep, cuGraphKernelNodeSetParams_v2, cuGraphKernelNodeSetParams_v2);
  return execAndBody(s, A(0), A(1), [&](CUgraphNode n) { return f(H(CUgraphExec)(A(0)), n, &p); },
                     [&](CUgraphNode n) { return keep(n, &p); });
}
TF_CALL(cuGraphExecMemsetNodeSetParams) {
  NEED(3); // exec, node, context; blob: the parameters
  OWN(GraphExec, A(0));
  OWN_NODE(A(1));
  OWN(Context, A(2));
  CUDA_MEMSET_NODE_PARAMS p{};
  if (!blobStruct(in, &p)) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = checkMemsetNode(s, p); r != CUDA_SUCCESS) return r;
  DRV(cuGraphExecMemsetNodeSetParams);
  DRV_AT(keep, cuGraphMemsetNodeSetParams, cuGraphMemsetNodeSetParams);
  return execAndBody(s, A(0), A(1), [&](CUgraphNode n) { return f(H(CUgraphExec)(A(0)), n, &p, H(CUcontext)(A(2))); },
                     [&](CUgraphNode n) { return keep(n, &p); });
}
TF_CALL(cuGraphMemsetNodeSetParams) {
  NEED(1); // node; blob: the parameters
  OWN_NODE(A(0));
  CUDA_MEMSET_NODE_PARAMS p{};
  if (!blobStruct(in, &p)) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = checkMemsetNode(s, p); r != CUDA_SUCCESS) return r;
  DRV(cuGraphMemsetNodeSetParams);
  return f(H(CUgraphNode)(A(0)), &p);
}
TF_CALL(cuGraphMemcpyNodeSetParams) {
  NEED(1); // node; blob: CUDA_MEMCPY3D (host sides by address)
  OWN_NODE(A(0));
  CUDA_MEMCPY3D p{};
  if (!blobStruct(in, &p)) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = checkMemcpyNode(s, p); r != CUDA_SUCCESS) return r;
  DRV(cuGraphMemcpyNodeSetParams);
  return f(H(CUgraphNode)(A(0)), &p);
}
TF_CALL(cuGraphExecMemcpyNodeSetParams) {
  NEED(3); // exec, node, context; blob: CUDA_MEMCPY3D (host sides by address)
  OWN(GraphExec, A(0));
  OWN_NODE(A(1));
  OWN(Context, A(2));
  CUDA_MEMCPY3D p{};
  if (!blobStruct(in, &p)) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = checkMemcpyNode(s, p); r != CUDA_SUCCESS) return r;
  DRV(cuGraphExecMemcpyNodeSetParams);
  DRV_AT(keep, cuGraphMemcpyNodeSetParams, cuGraphMemcpyNodeSetParams);
  return execAndBody(s, A(0), A(1), [&](CUgraphNode n) { return f(H(CUgraphExec)(A(0)), n, &p, H(CUcontext)(A(2))); },
                     [&](CUgraphNode n) { return keep(n, &p); });
}
TF_CALL(cuGraphHostNodeSetParams) {
  NEED(2); // node, the client's token of the host function
  OWN_NODE(A(0));
  DRV(cuGraphHostNodeSetParams);
  CUDA_HOST_NODE_PARAMS p{};
  p.fn = &Session::hostFunctionEntry;
  p.userData = s.hostFunctionArg(A(1), true);
  return f(H(CUgraphNode)(A(0)), &p);
}
TF_CALL(cuGraphExecHostNodeSetParams) {
  NEED(3); // exec, node, the client's token of the host function
  OWN(GraphExec, A(0));
  OWN_NODE(A(1));
  DRV(cuGraphExecHostNodeSetParams);
  DRV_AT(keep, cuGraphHostNodeSetParams, cuGraphHostNodeSetParams);
  CUDA_HOST_NODE_PARAMS p{};
  p.fn = &Session::hostFunctionEntry;
  p.userData = s.hostFunctionArg(A(2), true);
  return execAndBody(s, A(0), A(1), [&](CUgraphNode n) { return f(H(CUgraphExec)(A(0)), n, &p); },
                     [&](CUgraphNode n) { return keep(n, &p); });
}
TF_CALL(cuGraphMemcpyNodeGetParams) {
  NEED(1);
  OWN_NODE(A(0));
  DRV(cuGraphMemcpyNodeGetParams);
  CUDA_MEMCPY3D p{};
  CUresult r = f(H(CUgraphNode)(A(0)), &p);
  if (r == CUDA_SUCCESS) out.blob.assign(reinterpret_cast<const char*>(&p), sizeof p);
  return r;
}
TF_CALL(cuGraphHostNodeGetParams) { // out: the client's token of the host function
  NEED(1);
  OWN_NODE(A(0));
  DRV(cuGraphHostNodeGetParams);
  CUDA_HOST_NODE_PARAMS p{};
  CUresult r = f(H(CUgraphNode)(A(0)), &p);
  if (r != CUDA_SUCCESS) return r;
  if (p.fn != &Session::hostFunctionEntry) return CUDA_ERROR_NOT_SUPPORTED;
  out.put(Session::hostFunctionToken(p.userData));
  return r;
}
TF_CALL(cuGraphNodeGetEnabled) {
  NEED(2);
  OWN(GraphExec, A(0));
  OWN_NODE(A(1));
  DRV(cuGraphNodeGetEnabled);
  const uint64_t bn = bodyNode(s, A(0), A(1));
  if (!bn) return CUDA_ERROR_INVALID_VALUE;
  unsigned enabled = 0;
  CUresult r = f(H(CUgraphExec)(A(0)), H(CUgraphNode)(bn), &enabled);
  out.put(enabled);
  return r;
}
// Kernel node attributes: only those without handles in them (an event would be the driver's
// value of another client's, or none).
TF_CALL(cuGraphKernelNodeSetAttribute) {
  NEED(2); // node, attribute; blob: the value
  OWN_NODE(A(0));
  CUkernelNodeAttrValue v{};
  if (!blobStruct(in, &v)) return CUDA_ERROR_INVALID_VALUE;
  const auto attr = static_cast<CUkernelNodeAttrID>(A(1));
  if (attr == CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT || attr == CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT ||
      attr == CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE)
    return CUDA_ERROR_NOT_SUPPORTED;
  DRV(cuGraphKernelNodeSetAttribute);
  return f(H(CUgraphNode)(A(0)), attr, &v);
}
TF_CALL(cuGraphNodeSetEnabled) {
  NEED(3);
  OWN(GraphExec, A(0));
  OWN_NODE(A(1));
  DRV(cuGraphNodeSetEnabled);
  const uint64_t bn = bodyNode(s, A(0), A(1));
  if (!bn) return CUDA_ERROR_INVALID_VALUE;
  CUresult r = f(H(CUgraphExec)(A(0)), H(CUgraphNode)(bn), static_cast<unsigned>(A(2)));
  if (r == CUDA_SUCCESS) {
    auto& disabled = s.execBodies()[A(0)].disabled;
    if (A(2)) disabled.erase(bn);
    else disabled.insert(bn);
  }
  return r;
}
TF_CALL(cuGraphExecChildGraphNodeSetParams) {
  NEED(3);
  OWN(GraphExec, A(0));
  OWN_NODE(A(1));
  OWN(Graph, A(2));
  DRV(cuGraphExecChildGraphNodeSetParams);
  // The body's child graph is not changed with it (no driver call does that): it says so.
  return execAndBody(s, A(0), A(1), [&](CUgraphNode n) { return f(H(CUgraphExec)(A(0)), n, H(CUgraph)(A(2))); },
                     [](CUgraphNode) { return CUDA_ERROR_NOT_SUPPORTED; });
}
TF_CALL(cuGraphExecUpdate_v2) { // outs: result, error node, error-from node
  NEED(2);
  OWN(GraphExec, A(0));
  OWN(Graph, A(1));
  DRV(cuGraphExecUpdate_v2);
  CUgraphExecUpdateResultInfo info{};
  CUresult r = f(H(CUgraphExec)(A(0)), H(CUgraph)(A(1)), &info);
  out.put(info.result);
  out.put(info.errorNode ? s.expose(K::GraphNode, H(uint64_t)(info.errorNode)) : 0);
  // The node it came from is the body's: the client knows it as its graph's node.
  auto it = s.execBodies().find(A(0));
  uint64_t from = 0;
  if (it != s.execBodies().end() && info.errorFromNode)
    for (const auto& [node, body] : it->second.nodeOf)
      if (body == H(uint64_t)(info.errorFromNode)) from = s.clientValue(K::GraphNode, node).value_or(0);
  out.put(from);
  if (r != CUDA_SUCCESS || it == s.execBodies().end() || !it->second.body) return r;
  Session::ExecBody& b = it->second;
  // The executable now does what the new graph says: so does its body, node for node (the
  // driver pairs them in creation order).
  std::vector<CUgraphNode> now = graphNodes(s, H(CUgraph)(A(1))), body = graphNodes(s, H(CUgraph)(b.body));
  bool kept = now.size() == body.size();
  for (size_t i = 0; kept && i < now.size(); ++i) kept = copyNodeParams(s, now[i], body[i]) == CUDA_SUCCESS;
  if (!kept) b.unreadable = "it was updated from a graph whose nodes could not be kept";
  return r;
}

CUresult copyNodeParams(Session& s, CUgraphNode from, CUgraphNode to) {
  DRV_AT(type, cuGraphNodeGetType, cuGraphNodeGetType);
  CUgraphNodeType t = CU_GRAPH_NODE_TYPE_EMPTY;
  if (CUresult r = type(from, &t); r != CUDA_SUCCESS) return r;
  // One node type's getter and setter: the parameters read from one node, given to the other.
  auto copy = [&](auto get, auto set, auto params) {
    if (!get || !set) return CUDA_ERROR_NOT_SUPPORTED;
    CUresult r = get(from, &params);
    return r == CUDA_SUCCESS ? set(to, &params) : r;
  };
  const DriverApi& d = s.d();
  switch (t) {
  case CU_GRAPH_NODE_TYPE_EMPTY:
    return CUDA_SUCCESS;
  case CU_GRAPH_NODE_TYPE_KERNEL:
    return copy(d.fn<decltype(&::cuGraphKernelNodeGetParams_v2)>(FnId::cuGraphKernelNodeGetParams_v2),
                d.fn<decltype(&::cuGraphKernelNodeSetParams_v2)>(FnId::cuGraphKernelNodeSetParams_v2),
                CUDA_KERNEL_NODE_PARAMS_v2{});
  case CU_GRAPH_NODE_TYPE_MEMSET:
    return copy(d.fn<decltype(&::cuGraphMemsetNodeGetParams)>(FnId::cuGraphMemsetNodeGetParams),
                d.fn<decltype(&::cuGraphMemsetNodeSetParams)>(FnId::cuGraphMemsetNodeSetParams),
                CUDA_MEMSET_NODE_PARAMS{});
  case CU_GRAPH_NODE_TYPE_MEMCPY:
    return copy(d.fn<decltype(&::cuGraphMemcpyNodeGetParams)>(FnId::cuGraphMemcpyNodeGetParams),
                d.fn<decltype(&::cuGraphMemcpyNodeSetParams)>(FnId::cuGraphMemcpyNodeSetParams),
                CUDA_MEMCPY3D{});
  case CU_GRAPH_NODE_TYPE_HOST:
    return copy(d.fn<decltype(&::cuGraphHostNodeGetParams)>(FnId::cuGraphHostNodeGetParams),
                d.fn<decltype(&::cuGraphHostNodeSetParams)>(FnId::cuGraphHostNodeSetParams),
                CUDA_HOST_NODE_PARAMS{});
  default:
    return CUDA_ERROR_NOT_SUPPORTED;
  }
}

std::string packedArguments(const std::vector<ParamSlot>& layout, void* const* kernelParams) {
  size_t total = 0;
  for (const ParamSlot& slot : layout) total = std::max<size_t>(total, size_t(slot.offset) + slot.size);
  std::string values(total, '\0');
  for (size_t i = 0; kernelParams && i < layout.size(); ++i)
    std::memcpy(values.data() + layout[i].offset, kernelParams[i], layout[i].size);
  return values;
}

} // namespace tf::remoting
