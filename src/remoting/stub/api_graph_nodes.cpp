// Graph and node introspection, node parameters, clones, child graphs and executable graph
// updates, forwarded (worker: calls_graph_nodes.cpp). Node lists come as the reply's blob;
// a kernel node's parameter values come packed by the kernel's layout and are kept here per
// node, so the kernelParams pointers handed out stay valid as the driver's do (until the
// node's parameters are read again). A host node's function is the one this process gave.
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "remoting/stub/api.h"

using namespace tf::remoting::stub;
using tf::remoting::Writer;

namespace {

struct KernelValues {
  std::vector<uint8_t> values;
  std::vector<void*> ptrs;
};

struct NodeState {
  std::mutex mu;
  std::map<CUgraphNode, KernelValues> kernels;
  std::map<uint64_t, CUDA_HOST_NODE_PARAMS> hosts; // host function token -> what was given
};
NodeState& nodes() {
  static auto* s = new NodeState(); // never destroyed: calls may come during exit
  return *s;
}

// A list of nodes: the handle, the caller's capacity; the full count back.
CUresult list(FnId fn, uint64_t handle, CUgraphNode* out, CUgraphEdgeData* edges, size_t* n) {
  if (!n) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  uint64_t total = 0;
  std::string blob;
  CUresult r = client().call(static_cast<uint32_t>(fn), {handle, out ? *n : 0}, &total, 1, nullptr,
                             0, nullptr, 0, nullptr, &blob);
  if (r != CUDA_SUCCESS) return r;
  if (out) {
    size_t k = std::min<size_t>(*n, blob.size() / 8);
    std::memcpy(out, blob.data(), k * 8);
    for (size_t i = k; i < *n; ++i) out[i] = nullptr; // as the driver does past the end
    if (edges) std::memset(edges, 0, *n * sizeof(CUgraphEdgeData)); // only default edges here
  }
  *n = total;
  return CUDA_SUCCESS;
}

CUresult edgesOf(CUgraph g, CUgraphNode* from, CUgraphNode* to, CUgraphEdgeData* edges, size_t* n) {
  if (!n || (!from) != (!to)) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  uint64_t total = 0;
  std::string blob;
  CUresult r = client().call(static_cast<uint32_t>(FnId::cuGraphGetEdges), {u(g), from ? *n : 0},
                             &total, 1, nullptr, 0, nullptr, 0, nullptr, &blob);
  if (r != CUDA_SUCCESS) return r;
  if (from) {
    size_t k = std::min<size_t>(*n, blob.size() / 16);
    std::memcpy(from, blob.data(), k * 8);
    std::memcpy(to, blob.data() + k * 8, k * 8);
    for (size_t i = k; i < *n; ++i) from[i] = to[i] = nullptr;
    if (edges) std::memset(edges, 0, *n * sizeof(CUgraphEdgeData));
  }
  *n = total;
  return CUDA_SUCCESS;
}

CUresult handleOut(FnId fn, std::initializer_list<uint64_t> in, uint64_t* out, const Writer* blob = nullptr) {
  TF_READY();
  return client().call(fn, in, out, 1, blob ? blob->data() : nullptr, blob ? blob->size() : 0);
}

CUresult kernelGet(CUgraphNode node, CUDA_KERNEL_NODE_PARAMS_v2* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  uint64_t o[9] = {};
  std::string blob;
  CUresult r = client().call(FnId::cuGraphKernelNodeGetParams_v2, {u(node)}, o, 9, nullptr, 0,
                             nullptr, 0, nullptr, &blob);
  if (r != CUDA_SUCCESS) return r;
  CUfunction f = o[0] ? h<CUfunction>(o[0]) : h<CUfunction>(o[8]);
  Client::Layout layout;
  if ((r = client().paramLayout(f, &layout)) != CUDA_SUCCESS) return r;
  std::lock_guard<std::mutex> lock(nodes().mu);
  KernelValues& k = nodes().kernels[node];
  k.values.assign(blob.begin(), blob.end());
  k.ptrs.assign(layout->size(), nullptr);
  for (size_t i = 0; i < layout->size(); ++i)
    if ((*layout)[i].offset + size_t((*layout)[i].size) <= k.values.size())
      k.ptrs[i] = k.values.data() + (*layout)[i].offset;
  *p = {};
  p->func = h<CUfunction>(o[0]);
  p->gridDimX = unsigned(o[1]), p->gridDimY = unsigned(o[2]), p->gridDimZ = unsigned(o[3]);
  p->blockDimX = unsigned(o[4]), p->blockDimY = unsigned(o[5]), p->blockDimZ = unsigned(o[6]);
  p->sharedMemBytes = unsigned(o[7]);
  p->kernelParams = k.ptrs.empty() ? nullptr : k.ptrs.data();
  p->kern = h<CUkernel>(o[8]); // cudart finds its host stub by it
  p->ctx = currentContext();
  return CUDA_SUCCESS;
}

// exec: 0 for the graph's node itself.
CUresult kernelSet(CUgraphExec exec, CUgraphNode node, const CUDA_KERNEL_NODE_PARAMS_v2* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  CUfunction f = p->func ? p->func : reinterpret_cast<CUfunction>(p->kern);
  if (!f) return CUDA_ERROR_INVALID_VALUE;
  Writer params;
  CUresult r = packLaunch(f, p->kernelParams, p->extra, nullptr, 0, params);
  if (r != CUDA_SUCCESS) return r;
  uint64_t d[9] = {u(f), p->gridDimX, p->gridDimY, p->gridDimZ, p->blockDimX, p->blockDimY,
                   p->blockDimZ, p->sharedMemBytes, p->func ? u(p->kern) : 0};
  if (!exec)
    return client().call(FnId::cuGraphKernelNodeSetParams_v2,
                         {u(node), d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8]}, nullptr,
                         0, params.data(), params.size());
  return client().call(FnId::cuGraphExecKernelNodeSetParams_v2,
                       {u(exec), u(node), d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8]},
                       nullptr, 0, params.data(), params.size());
}

// A host node's new function: a token of its own, run here when the graph gets there.
// exec: 0 for the graph's node itself.
CUresult hostSet(CUgraphExec exec, CUgraphNode node, const CUDA_HOST_NODE_PARAMS* p) {
  if (!p || !p->fn) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  uint64_t token = 0;
  CUresult r = hostNodeToken(*p, &token);
  if (r != CUDA_SUCCESS) return r;
  if (!exec) return client().call(FnId::cuGraphHostNodeSetParams, {u(node), token});
  return client().call(FnId::cuGraphExecHostNodeSetParams, {u(exec), u(node), token});
}

template <typename T> CUresult structGet(FnId fn, CUgraphNode node, T* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  std::string blob;
  CUresult r = client().call(fn, {u(node)}, nullptr, 0, nullptr, 0, nullptr, 0, nullptr, &blob);
  if (r != CUDA_SUCCESS) return r;
  if (blob.size() != sizeof(T)) return CUDA_ERROR_UNKNOWN;
  std::memcpy(p, blob.data(), sizeof(T));
  return CUDA_SUCCESS;
}

} // namespace

namespace tf::remoting::stub {
CUresult hostNodeToken(const CUDA_HOST_NODE_PARAMS& p, uint64_t* token) {
  CUhostFn fn = p.fn;
  void* data = p.userData;
  CUresult r = client().hostToken([fn, data] { fn(data); }, true, token);
  if (r != CUDA_SUCCESS) return r;
  std::lock_guard<std::mutex> lock(nodes().mu);
  nodes().hosts[*token] = p;
  return CUDA_SUCCESS;
}
CUDA_KERNEL_NODE_PARAMS_v2 kernelParamsV2(const CUDA_KERNEL_NODE_PARAMS_v1& p) {
  CUDA_KERNEL_NODE_PARAMS_v2 v2{};
  v2.func = p.func;
  v2.gridDimX = p.gridDimX, v2.gridDimY = p.gridDimY, v2.gridDimZ = p.gridDimZ;
  v2.blockDimX = p.blockDimX, v2.blockDimY = p.blockDimY, v2.blockDimZ = p.blockDimZ;
  v2.sharedMemBytes = p.sharedMemBytes;
  v2.kernelParams = p.kernelParams;
  v2.extra = p.extra;
  return v2;
}
} // namespace tf::remoting::stub

extern "C" {

CUresult tf_rs_cuGraphGetNodes(CUgraph g, CUgraphNode* out, size_t* n) {
  return list(FnId::cuGraphGetNodes, u(g), out, nullptr, n);
}
CUresult tf_rs_cuGraphGetRootNodes(CUgraph g, CUgraphNode* out, size_t* n) {
  return list(FnId::cuGraphGetRootNodes, u(g), out, nullptr, n);
}
CUresult tf_rs_cuGraphNodeGetDependencies(CUgraphNode node, CUgraphNode* out, size_t* n) {
  return list(FnId::cuGraphNodeGetDependencies, u(node), out, nullptr, n);
}
CUresult tf_rs_cuGraphNodeGetDependencies_v2(CUgraphNode node, CUgraphNode* out, CUgraphEdgeData* e, size_t* n) {
  return list(FnId::cuGraphNodeGetDependencies, u(node), out, e, n);
}
CUresult tf_rs_cuGraphNodeGetDependentNodes(CUgraphNode node, CUgraphNode* out, size_t* n) {
  return list(FnId::cuGraphNodeGetDependentNodes, u(node), out, nullptr, n);
}
CUresult tf_rs_cuGraphNodeGetDependentNodes_v2(CUgraphNode node, CUgraphNode* out, CUgraphEdgeData* e, size_t* n) {
  return list(FnId::cuGraphNodeGetDependentNodes, u(node), out, e, n);
}
CUresult tf_rs_cuGraphGetEdges(CUgraph g, CUgraphNode* from, CUgraphNode* to, size_t* n) {
  return edgesOf(g, from, to, nullptr, n);
}
CUresult tf_rs_cuGraphGetEdges_v2(CUgraph g, CUgraphNode* from, CUgraphNode* to, CUgraphEdgeData* e, size_t* n) {
  return edgesOf(g, from, to, e, n);
}

CUresult tf_rs_cuGraphAddChildGraphNode(CUgraphNode* node, CUgraph g, const CUgraphNode* deps,
                                        size_t n, CUgraph child) {
  if (!node || (n && !deps)) return CUDA_ERROR_INVALID_VALUE;
  Writer w;
  w.u32(static_cast<uint32_t>(n));
  for (size_t i = 0; i < n; ++i) w.u64(u(deps[i]));
  uint64_t out = 0;
  CUresult r = handleOut(FnId::cuGraphAddChildGraphNode, {u(g), u(child)}, &out, &w);
  *node = h<CUgraphNode>(out);
  if (r == CUDA_SUCCESS) holdsGraphMemory(u(g), u(child));
  return r;
}
CUresult tf_rs_cuGraphChildGraphNodeGetGraph(CUgraphNode node, CUgraph* g) {
  if (!g) return CUDA_ERROR_INVALID_VALUE;
  uint64_t out = 0;
  CUresult r = handleOut(FnId::cuGraphChildGraphNodeGetGraph, {u(node)}, &out);
  if (r == CUDA_SUCCESS) *g = h<CUgraph>(out);
  return r;
}

CUresult tf_rs_cuGraphKernelNodeGetParams_v2(CUgraphNode node, CUDA_KERNEL_NODE_PARAMS_v2* p) {
  return kernelGet(node, p);
}
CUresult tf_rs_cuGraphKernelNodeGetParams(CUgraphNode node, CUDA_KERNEL_NODE_PARAMS_v1* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  CUDA_KERNEL_NODE_PARAMS_v2 v2;
  CUresult r = kernelGet(node, &v2);
  if (r != CUDA_SUCCESS) return r;
  *p = {};
  p->func = v2.func;
  p->gridDimX = v2.gridDimX, p->gridDimY = v2.gridDimY, p->gridDimZ = v2.gridDimZ;
  p->blockDimX = v2.blockDimX, p->blockDimY = v2.blockDimY, p->blockDimZ = v2.blockDimZ;
  p->sharedMemBytes = v2.sharedMemBytes;
  p->kernelParams = v2.kernelParams;
  return CUDA_SUCCESS;
}
CUresult tf_rs_cuGraphKernelNodeSetParams_v2(CUgraphNode node, const CUDA_KERNEL_NODE_PARAMS_v2* p) {
  return kernelSet(nullptr, node, p);
}
CUresult tf_rs_cuGraphKernelNodeSetParams(CUgraphNode node, const CUDA_KERNEL_NODE_PARAMS_v1* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  CUDA_KERNEL_NODE_PARAMS_v2 v2 = kernelParamsV2(*p);
  return kernelSet(nullptr, node, &v2);
}
CUresult tf_rs_cuGraphExecKernelNodeSetParams_v2(CUgraphExec e, CUgraphNode node,
                                                 const CUDA_KERNEL_NODE_PARAMS_v2* p) {
  if (!e) return CUDA_ERROR_INVALID_VALUE;
  return kernelSet(e, node, p);
}
CUresult tf_rs_cuGraphExecKernelNodeSetParams(CUgraphExec e, CUgraphNode node,
                                              const CUDA_KERNEL_NODE_PARAMS_v1* p) {
  if (!e || !p) return CUDA_ERROR_INVALID_VALUE;
  CUDA_KERNEL_NODE_PARAMS_v2 v2 = kernelParamsV2(*p);
  return kernelSet(e, node, &v2);
}
CUresult tf_rs_cuGraphExecMemsetNodeSetParams(CUgraphExec e, CUgraphNode node,
                                              const CUDA_MEMSET_NODE_PARAMS* p, CUcontext ctx) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  return client().call(FnId::cuGraphExecMemsetNodeSetParams,
                       {u(e), u(node), u(ctx ? ctx : currentContext())}, nullptr, 0, p, sizeof(*p));
}
CUresult tf_rs_cuGraphMemcpyNodeGetParams(CUgraphNode node, CUDA_MEMCPY3D* p) {
  return structGet(FnId::cuGraphMemcpyNodeGetParams, node, p);
}
CUresult tf_rs_cuGraphHostNodeGetParams(CUgraphNode node, CUDA_HOST_NODE_PARAMS* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  uint64_t token = 0;
  CUresult r = handleOut(FnId::cuGraphHostNodeGetParams, {u(node)}, &token);
  if (r != CUDA_SUCCESS) return r;
  std::lock_guard<std::mutex> lock(nodes().mu);
  auto it = nodes().hosts.find(token);
  if (it == nodes().hosts.end()) return CUDA_ERROR_NOT_SUPPORTED; // a captured host function
  *p = it->second;
  return CUDA_SUCCESS;
}
CUresult tf_rs_cuGraphHostNodeSetParams(CUgraphNode node, const CUDA_HOST_NODE_PARAMS* p) {
  return hostSet(nullptr, node, p);
}
CUresult tf_rs_cuGraphExecHostNodeSetParams(CUgraphExec e, CUgraphNode node, const CUDA_HOST_NODE_PARAMS* p) {
  if (!e) return CUDA_ERROR_INVALID_VALUE;
  return hostSet(e, node, p);
}
CUresult tf_rs_cuGraphNodeGetEnabled(CUgraphExec e, CUgraphNode node, unsigned* enabled) {
  if (!enabled) return CUDA_ERROR_INVALID_VALUE;
  uint64_t out = 0;
  CUresult r = handleOut(FnId::cuGraphNodeGetEnabled, {u(e), u(node)}, &out);
  if (r == CUDA_SUCCESS) *enabled = static_cast<unsigned>(out);
  return r;
}
CUresult tf_rs_cuGraphKernelNodeSetAttribute(CUgraphNode node, CUkernelNodeAttrID attr, const CUkernelNodeAttrValue* v) {
  if (!v) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  return client().call(FnId::cuGraphKernelNodeSetAttribute, {u(node), static_cast<uint64_t>(attr)}, nullptr, 0, v,
                       sizeof(*v));
}
CUresult tf_rs_cuGraphNodeSetEnabled(CUgraphExec e, CUgraphNode node, unsigned enabled) {
  TF_READY();
  return client().call(FnId::cuGraphNodeSetEnabled, {u(e), u(node), enabled});
}
CUresult tf_rs_cuGraphExecChildGraphNodeSetParams(CUgraphExec e, CUgraphNode node, CUgraph child) {
  TF_READY();
  return client().call(FnId::cuGraphExecChildGraphNodeSetParams, {u(e), u(node), u(child)});
}
CUresult tf_rs_cuGraphExecUpdate_v2(CUgraphExec e, CUgraph g, CUgraphExecUpdateResultInfo* info) {
  if (!info) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  uint64_t o[3] = {};
  CUresult r = client().call(FnId::cuGraphExecUpdate_v2, {u(e), u(g)}, o, 3);
  if (r == CUDA_SUCCESS) holdsGraphMemory(u(e), u(g));
  info->result = static_cast<CUgraphExecUpdateResult>(o[0]);
  info->errorNode = h<CUgraphNode>(o[1]);
  info->errorFromNode = h<CUgraphNode>(o[2]);
  return r;
}
CUresult tf_rs_cuGraphExecUpdate(CUgraphExec e, CUgraph g, CUgraphNode* errorNode,
                                 CUgraphExecUpdateResult* result) {
  if (!errorNode || !result) return CUDA_ERROR_INVALID_VALUE;
  CUgraphExecUpdateResultInfo info{};
  CUresult r = tf_rs_cuGraphExecUpdate_v2(e, g, &info);
  *errorNode = info.errorNode;
  *result = info.result;
  return r;
}

} // extern "C"
