// The generic graph node calls (cuGraphAddNode, cuGraphNodeSetParams, cuGraphExecNodeSetParams:
// one struct for every node type) as the typed calls of their node types, which the wire
// already carries: kernel, memcpy, memset, host, child graph and empty nodes. Other types
// (events, semaphores, memory allocation, batched memory operations, conditionals) and
// programmatic edges are NOT_SUPPORTED, as the typed calls are not forwarded either.
#include "remoting/stub/api.h"

using namespace tf::remoting::stub;

namespace {

bool defaultEdges(const CUgraphEdgeData* edges, size_t n) {
  for (size_t i = 0; edges && i < n; ++i)
    if (edges[i].type != CU_GRAPH_DEPENDENCY_TYPE_DEFAULT || edges[i].from_port || edges[i].to_port) return false;
  return true;
}

CUDA_KERNEL_NODE_PARAMS_v2 kernelOf(const CUDA_KERNEL_NODE_PARAMS_v3& k) {
  CUDA_KERNEL_NODE_PARAMS_v2 v{};
  v.func = k.func;
  v.gridDimX = k.gridDimX;
  v.gridDimY = k.gridDimY;
  v.gridDimZ = k.gridDimZ;
  v.blockDimX = k.blockDimX;
  v.blockDimY = k.blockDimY;
  v.blockDimZ = k.blockDimZ;
  v.sharedMemBytes = k.sharedMemBytes;
  v.kernelParams = k.kernelParams;
  v.extra = k.extra;
  v.kern = k.kern;
  v.ctx = k.ctx;
  return v;
}

CUDA_MEMSET_NODE_PARAMS memsetOf(const CUDA_MEMSET_NODE_PARAMS_v2& m) {
  CUDA_MEMSET_NODE_PARAMS v{};
  v.dst = m.dst;
  v.pitch = m.pitch;
  v.value = m.value;
  v.elementSize = m.elementSize;
  v.width = m.width;
  v.height = m.height;
  return v;
}

CUDA_HOST_NODE_PARAMS hostOf(const CUDA_HOST_NODE_PARAMS_v2& h) { return {h.fn, h.userData}; }

}  // namespace

extern "C" {

CUresult tf_rs_cuGraphAddNode_v2(CUgraphNode* node, CUgraph g, const CUgraphNode* deps, const CUgraphEdgeData* edges,
                                 size_t n, CUgraphNodeParams* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  if (!defaultEdges(edges, n)) return CUDA_ERROR_NOT_SUPPORTED;
  switch (p->type) {
  case CU_GRAPH_NODE_TYPE_EMPTY:
    return tf_rs_cuGraphAddEmptyNode(node, g, deps, n);
  case CU_GRAPH_NODE_TYPE_KERNEL: {
    const CUDA_KERNEL_NODE_PARAMS_v2 k = kernelOf(p->kernel);
    return tf_rs_cuGraphAddKernelNode_v2(node, g, deps, n, &k);
  }
  case CU_GRAPH_NODE_TYPE_MEMCPY:
    if (p->memcpy.flags || p->memcpy.reserved) return CUDA_ERROR_INVALID_VALUE;
    return tf_rs_cuGraphAddMemcpyNode(node, g, deps, n, &p->memcpy.copyParams, p->memcpy.copyCtx);
  case CU_GRAPH_NODE_TYPE_MEMSET: {
    const CUDA_MEMSET_NODE_PARAMS m = memsetOf(p->memset);
    return tf_rs_cuGraphAddMemsetNode(node, g, deps, n, &m, p->memset.ctx);
  }
  case CU_GRAPH_NODE_TYPE_HOST: {
    const CUDA_HOST_NODE_PARAMS h = hostOf(p->host);
    return tf_rs_cuGraphAddHostNode(node, g, deps, n, &h);
  }
  case CU_GRAPH_NODE_TYPE_GRAPH:
    if (p->graph.ownership != CU_GRAPH_CHILD_GRAPH_OWNERSHIP_CLONE) return CUDA_ERROR_NOT_SUPPORTED;
    return tf_rs_cuGraphAddChildGraphNode(node, g, deps, n, p->graph.graph);
  default:
    return CUDA_ERROR_NOT_SUPPORTED;
  }
}

CUresult tf_rs_cuGraphAddNode(CUgraphNode* node, CUgraph g, const CUgraphNode* deps, size_t n, CUgraphNodeParams* p) {
  return tf_rs_cuGraphAddNode_v2(node, g, deps, nullptr, n, p);
}

CUresult tf_rs_cuGraphNodeSetParams(CUgraphNode node, CUgraphNodeParams* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  CUgraphNodeType type = CU_GRAPH_NODE_TYPE_EMPTY;
  if (CUresult r = tf_rs_cuGraphNodeGetType(node, &type); r != CUDA_SUCCESS) return r;
  if (type != p->type) return CUDA_ERROR_INVALID_VALUE;  // a node keeps its type
  switch (p->type) {
  case CU_GRAPH_NODE_TYPE_KERNEL: {
    const CUDA_KERNEL_NODE_PARAMS_v2 k = kernelOf(p->kernel);
    return tf_rs_cuGraphKernelNodeSetParams_v2(node, &k);
  }
  case CU_GRAPH_NODE_TYPE_MEMCPY:
    return tf_rs_cuGraphMemcpyNodeSetParams(node, &p->memcpy.copyParams);
  case CU_GRAPH_NODE_TYPE_MEMSET: {
    const CUDA_MEMSET_NODE_PARAMS m = memsetOf(p->memset);
    return tf_rs_cuGraphMemsetNodeSetParams(node, &m);
  }
  case CU_GRAPH_NODE_TYPE_HOST: {
    const CUDA_HOST_NODE_PARAMS h = hostOf(p->host);
    return tf_rs_cuGraphHostNodeSetParams(node, &h);
  }
  default:
    return CUDA_ERROR_NOT_SUPPORTED;
  }
}

CUresult tf_rs_cuGraphExecNodeSetParams(CUgraphExec e, CUgraphNode node, CUgraphNodeParams* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  switch (p->type) {
  case CU_GRAPH_NODE_TYPE_KERNEL: {
    const CUDA_KERNEL_NODE_PARAMS_v2 k = kernelOf(p->kernel);
    return tf_rs_cuGraphExecKernelNodeSetParams_v2(e, node, &k);
  }
  case CU_GRAPH_NODE_TYPE_MEMCPY:
    return tf_rs_cuGraphExecMemcpyNodeSetParams(e, node, &p->memcpy.copyParams, p->memcpy.copyCtx);
  case CU_GRAPH_NODE_TYPE_MEMSET: {
    const CUDA_MEMSET_NODE_PARAMS m = memsetOf(p->memset);
    return tf_rs_cuGraphExecMemsetNodeSetParams(e, node, &m, p->memset.ctx);
  }
  case CU_GRAPH_NODE_TYPE_HOST: {
    const CUDA_HOST_NODE_PARAMS h = hostOf(p->host);
    return tf_rs_cuGraphExecHostNodeSetParams(e, node, &h);
  }
  case CU_GRAPH_NODE_TYPE_GRAPH:
    return tf_rs_cuGraphExecChildGraphNodeSetParams(e, node, p->graph.graph);
  default:
    return CUDA_ERROR_NOT_SUPPORTED;
  }
}

}  // extern "C"
