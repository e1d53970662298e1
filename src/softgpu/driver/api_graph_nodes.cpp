// CUDA graphs, after construction: reading nodes back (types, parameters, edges, child graphs),
// changing them (node setters, the executable graph's setters, cuGraphExecUpdate), cloning, and
// the generic cuGraphAddNode / cuGraphNodeSetParams forms.
#include <algorithm>
#include <cstring>

#include "softgpu/driver/api.h"
#include "softgpu/driver/graph.h"

using namespace tf::softgpu;

namespace {

CUresult execOf(CUgraphExec h, GraphExec** out) {
  TF_TRY(checkInitialized());
  GraphExec* e = registryOf<GraphExec>().find(h);
  if (!e) return CUDA_ERROR_INVALID_VALUE;
  *out = e;
  return CUDA_SUCCESS;
}

// The node's parameters, or INVALID_VALUE when it is of another type; NOT_SUPPORTED for a
// captured node whose kind the soft GPU does not describe.
CUresult describedNode(CUgraphNode h, CUgraphNodeType type, GraphNode** out) {
  TF_TRY(nodeOf(h, out));
  if ((*out)->type != type) return CUDA_ERROR_INVALID_VALUE;
  if (!(*out)->params.described) return CUDA_ERROR_NOT_SUPPORTED;
  return CUDA_SUCCESS;
}

// The driver's list convention: with no array, the count; else up to *count entries, the
// rest of the array nulled, and *count set to what was written.
template <typename T>
CUresult fillList(const std::vector<T>& items, T* out, CUgraphEdgeData* edges, size_t* count) {
  if (!count) return CUDA_ERROR_INVALID_VALUE;
  if (!out) {
    *count = items.size();
    return CUDA_SUCCESS;
  }
  size_t n = std::min(*count, items.size());
  for (size_t i = 0; i < *count; ++i) {
    out[i] = i < n ? items[i] : T{};
    if (edges) edges[i] = CUgraphEdgeData{}; // every edge is a default edge
  }
  *count = n;
  return CUDA_SUCCESS;
}

template <typename P> CUresult getParams(CUgraphNode h, CUgraphNodeType type, P NodeParams::*field, P* out) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  GraphNode* n;
  TF_TRY(describedNode(h, type, &n));
  *out = n->params.*field;
  return CUDA_SUCCESS;
}

std::vector<CUgraphNode> handles(const std::vector<GraphNode*>& nodes) {
  std::vector<CUgraphNode> out;
  for (GraphNode* n : nodes) out.push_back(reinterpret_cast<CUgraphNode>(n));
  return out;
}

std::vector<GraphNode*> dependentsOf(GraphNode* n) {
  std::vector<GraphNode*> out;
  for (auto& other : n->graph->nodes)
    if (std::find(other->deps.begin(), other->deps.end(), n) != other->deps.end()) out.push_back(other.get());
  return out;
}

// New parameters for a node of `type`: checked and turned into work before anything changes.
struct NodeUpdate {
  NodeParams params;
  std::function<CUresult()> run;
};

CUresult makeUpdate(CUgraphNodeType type, NodeParams params, NodeUpdate* out) {
  params.described = true;
  TF_TRY(buildWork(type, params, &out->run));
  out->params = std::move(params);
  return CUDA_SUCCESS;
}

CUresult kernelUpdate(const CUDA_KERNEL_NODE_PARAMS* p, NodeUpdate* out) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  NodeParams params;
  TF_TRY(kernelNodeParams(*p, &params));
  return makeUpdate(CU_GRAPH_NODE_TYPE_KERNEL, std::move(params), out);
}

CUDA_KERNEL_NODE_PARAMS fromV1(const CUDA_KERNEL_NODE_PARAMS_v1& p) {
  CUDA_KERNEL_NODE_PARAMS v2{};
  memcpy(&v2, &p, sizeof(p)); // v1 is v2 without its last two fields
  return v2;
}

template <typename P> CUresult paramsUpdate(CUgraphNodeType type, const P* p, P NodeParams::*field,
                                            NodeUpdate* out) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  NodeParams params;
  params.*field = *p;
  params.context = currentContext();
  return makeUpdate(type, std::move(params), out);
}

CUresult setNode(CUgraphNode h, CUgraphNodeType type, CUresult built, NodeUpdate& u) {
  GraphNode* n;
  TF_TRY(nodeOf(h, &n));
  if (n->type != type) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(built);
  u.params.attributes = std::move(n->params.attributes); // attributes are not parameters
  n->params = std::move(u.params);
  n->run = std::move(u.run);
  return CUDA_SUCCESS;
}

CUresult setExecNode(CUgraphExec he, CUgraphNode h, CUgraphNodeType type, CUresult built, NodeUpdate& u) {
  GraphExec* e;
  TF_TRY(execOf(he, &e));
  GraphNode* n;
  TF_TRY(nodeOf(h, &n));
  GraphExec::Entry* entry = e->find(n);
  if (!entry || entry->type != type) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(built);
  entry->run = std::move(u.run); // launches already queued keep the work they copied
  return CUDA_SUCCESS;
}

// The generic form (cuGraphAddNode, cuGraphNodeSetParams): the node types the soft GPU builds.
CUresult genericUpdate(const CUgraphNodeParams* p, NodeUpdate* out) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  switch (p->type) {
  case CU_GRAPH_NODE_TYPE_KERNEL: {
    CUDA_KERNEL_NODE_PARAMS k;
    static_assert(sizeof(k) == sizeof(p->kernel), "kernel node parameters v2 and v3 agree");
    memcpy(&k, &p->kernel, sizeof(k));
    return kernelUpdate(&k, out);
  }
  case CU_GRAPH_NODE_TYPE_MEMSET: {
    const auto& m = p->memset;
    CUDA_MEMSET_NODE_PARAMS v1{m.dst, m.pitch, m.value, m.elementSize, m.width, m.height};
    return paramsUpdate(p->type, &v1, &NodeParams::memset, out);
  }
  case CU_GRAPH_NODE_TYPE_MEMCPY:
    return paramsUpdate(p->type, &p->memcpy.copyParams, &NodeParams::memcpy, out);
  case CU_GRAPH_NODE_TYPE_HOST: {
    CUDA_HOST_NODE_PARAMS v1{p->host.fn, p->host.userData};
    return paramsUpdate(p->type, &v1, &NodeParams::host, out);
  }
  case CU_GRAPH_NODE_TYPE_EMPTY: return makeUpdate(p->type, {}, out);
  default: return CUDA_ERROR_NOT_SUPPORTED;
  }
}

void setResult(CUgraphExecUpdateResultInfo* info, CUgraphExecUpdateResult r, GraphNode* node,
               GraphNode* from) {
  info->result = r;
  info->errorNode = reinterpret_cast<CUgraphNode>(node);
  info->errorFromNode = reinterpret_cast<CUgraphNode>(from);
}

} // namespace

extern "C" {

// ---- Reading a graph back -----------------------------------------------------------------

CUresult tf_sg_cuGraphGetNodes(CUgraph h, CUgraphNode* nodes, size_t* count) {
  Graph* g;
  TF_TRY(graphOf(h, &g));
  std::vector<CUgraphNode> all;
  for (auto& n : g->nodes) all.push_back(reinterpret_cast<CUgraphNode>(n.get()));
  return fillList(all, nodes, nullptr, count);
}

CUresult tf_sg_cuGraphGetRootNodes(CUgraph h, CUgraphNode* nodes, size_t* count) {
  Graph* g;
  TF_TRY(graphOf(h, &g));
  std::vector<CUgraphNode> roots;
  for (auto& n : g->nodes)
    if (n->deps.empty()) roots.push_back(reinterpret_cast<CUgraphNode>(n.get()));
  return fillList(roots, nodes, nullptr, count);
}

CUresult tf_sg_cuGraphGetEdges_v2(CUgraph h, CUgraphNode* from, CUgraphNode* to, CUgraphEdgeData* edges,
                                  size_t* count) {
  Graph* g;
  TF_TRY(graphOf(h, &g));
  if (!count || (!from != !to)) return CUDA_ERROR_INVALID_VALUE;
  std::vector<CUgraphNode> a, b;
  for (auto& n : g->nodes)
    for (GraphNode* d : n->deps) {
      a.push_back(reinterpret_cast<CUgraphNode>(d));
      b.push_back(reinterpret_cast<CUgraphNode>(n.get()));
    }
  size_t wanted = *count;
  TF_TRY(fillList(a, from, edges, count));
  return fillList(b, to, nullptr, &wanted);
}

CUresult tf_sg_cuGraphGetEdges(CUgraph h, CUgraphNode* from, CUgraphNode* to, size_t* count) {
  return tf_sg_cuGraphGetEdges_v2(h, from, to, nullptr, count);
}

CUresult tf_sg_cuGraphNodeGetType(CUgraphNode h, CUgraphNodeType* type) {
  if (!type) return CUDA_ERROR_INVALID_VALUE;
  GraphNode* n;
  TF_TRY(nodeOf(h, &n));
  *type = n->type;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGraphNodeGetDependencies_v2(CUgraphNode h, CUgraphNode* deps, CUgraphEdgeData* edges,
                                             size_t* count) {
  GraphNode* n;
  TF_TRY(nodeOf(h, &n));
  return fillList(handles(n->deps), deps, edges, count);
}

CUresult tf_sg_cuGraphNodeGetDependencies(CUgraphNode h, CUgraphNode* deps, size_t* count) {
  return tf_sg_cuGraphNodeGetDependencies_v2(h, deps, nullptr, count);
}

CUresult tf_sg_cuGraphNodeGetDependentNodes_v2(CUgraphNode h, CUgraphNode* out, CUgraphEdgeData* edges,
                                               size_t* count) {
  GraphNode* n;
  TF_TRY(nodeOf(h, &n));
  return fillList(handles(dependentsOf(n)), out, edges, count);
}

CUresult tf_sg_cuGraphNodeGetDependentNodes(CUgraphNode h, CUgraphNode* out, size_t* count) {
  return tf_sg_cuGraphNodeGetDependentNodes_v2(h, out, nullptr, count);
}

CUresult tf_sg_cuGraphKernelNodeGetParams_v2(CUgraphNode h, CUDA_KERNEL_NODE_PARAMS* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  GraphNode* n;
  TF_TRY(describedNode(h, CU_GRAPH_NODE_TYPE_KERNEL, &n));
  const CUDA_KERNEL_NODE_PARAMS& k = n->params.kernel;
  Function* f = registryOf<Function>().find(k.func ? static_cast<const void*>(k.func)
                                                  : static_cast<const void*>(k.kern));
  if (!f) return CUDA_ERROR_INVALID_VALUE; // its module was unloaded
  *p = n->params.kernel;
  // kernelParams[i] points at argument i of the node's own copy.
  n->argPointers.clear();
  for (const auto& param : f->info->params) n->argPointers.push_back(n->params.args.data() + param.offset);
  p->kernelParams = n->argPointers.data();
  p->extra = nullptr;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGraphKernelNodeGetParams(CUgraphNode h, CUDA_KERNEL_NODE_PARAMS_v1* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  CUDA_KERNEL_NODE_PARAMS v2;
  TF_TRY(tf_sg_cuGraphKernelNodeGetParams_v2(h, &v2));
  memcpy(p, &v2, sizeof(*p));
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGraphMemsetNodeGetParams(CUgraphNode h, CUDA_MEMSET_NODE_PARAMS* p) {
  return getParams(h, CU_GRAPH_NODE_TYPE_MEMSET, &NodeParams::memset, p);
}

CUresult tf_sg_cuGraphMemcpyNodeGetParams(CUgraphNode h, CUDA_MEMCPY3D* p) {
  return getParams(h, CU_GRAPH_NODE_TYPE_MEMCPY, &NodeParams::memcpy, p);
}

CUresult tf_sg_cuGraphHostNodeGetParams(CUgraphNode h, CUDA_HOST_NODE_PARAMS* p) {
  return getParams(h, CU_GRAPH_NODE_TYPE_HOST, &NodeParams::host, p);
}

CUresult tf_sg_cuGraphChildGraphNodeGetGraph(CUgraphNode h, CUgraph* out) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  GraphNode* n;
  TF_TRY(nodeOf(h, &n));
  if (n->type != CU_GRAPH_NODE_TYPE_GRAPH) return CUDA_ERROR_INVALID_VALUE;
  *out = reinterpret_cast<CUgraph>(n->child.get());
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGraphKernelNodeGetAttribute(CUgraphNode h, CUkernelNodeAttrID attr, CUkernelNodeAttrValue* value) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  GraphNode* n;
  TF_TRY(nodeOf(h, &n));
  if (n->type != CU_GRAPH_NODE_TYPE_KERNEL) return CUDA_ERROR_INVALID_VALUE;
  auto it = n->params.attributes.find(attr);
  *value = it == n->params.attributes.end() ? CUkernelNodeAttrValue{} : it->second;
  return CUDA_SUCCESS;
}

// ---- Changing a graph ---------------------------------------------------------------------

CUresult tf_sg_cuGraphKernelNodeSetParams_v2(CUgraphNode h, const CUDA_KERNEL_NODE_PARAMS* p) {
  NodeUpdate u;
  return setNode(h, CU_GRAPH_NODE_TYPE_KERNEL, kernelUpdate(p, &u), u);
}

CUresult tf_sg_cuGraphKernelNodeSetParams(CUgraphNode h, const CUDA_KERNEL_NODE_PARAMS_v1* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  CUDA_KERNEL_NODE_PARAMS v2 = fromV1(*p);
  return tf_sg_cuGraphKernelNodeSetParams_v2(h, &v2);
}

CUresult tf_sg_cuGraphMemsetNodeSetParams(CUgraphNode h, const CUDA_MEMSET_NODE_PARAMS* p) {
  NodeUpdate u;
  return setNode(h, CU_GRAPH_NODE_TYPE_MEMSET, paramsUpdate(CU_GRAPH_NODE_TYPE_MEMSET, p, &NodeParams::memset, &u), u);
}

CUresult tf_sg_cuGraphMemcpyNodeSetParams(CUgraphNode h, const CUDA_MEMCPY3D* p) {
  NodeUpdate u;
  return setNode(h, CU_GRAPH_NODE_TYPE_MEMCPY, paramsUpdate(CU_GRAPH_NODE_TYPE_MEMCPY, p, &NodeParams::memcpy, &u), u);
}

CUresult tf_sg_cuGraphHostNodeSetParams(CUgraphNode h, const CUDA_HOST_NODE_PARAMS* p) {
  NodeUpdate u;
  return setNode(h, CU_GRAPH_NODE_TYPE_HOST, paramsUpdate(CU_GRAPH_NODE_TYPE_HOST, p, &NodeParams::host, &u), u);
}

CUresult tf_sg_cuGraphKernelNodeSetAttribute(CUgraphNode h, CUkernelNodeAttrID attr,
                                             const CUkernelNodeAttrValue* value) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  GraphNode* n;
  TF_TRY(nodeOf(h, &n));
  if (n->type != CU_GRAPH_NODE_TYPE_KERNEL) return CUDA_ERROR_INVALID_VALUE;
  n->params.attributes[attr] = *value;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGraphKernelNodeCopyAttributes(CUgraphNode dst, CUgraphNode src) {
  GraphNode *d, *s;
  TF_TRY(nodeOf(dst, &d));
  TF_TRY(nodeOf(src, &s));
  if (d->type != CU_GRAPH_NODE_TYPE_KERNEL || s->type != CU_GRAPH_NODE_TYPE_KERNEL) return CUDA_ERROR_INVALID_VALUE;
  d->params.attributes = s->params.attributes;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGraphNodeSetParams(CUgraphNode h, CUgraphNodeParams* p) {
  NodeUpdate u;
  CUresult built = genericUpdate(p, &u);
  return setNode(h, p ? p->type : CU_GRAPH_NODE_TYPE_EMPTY, built, u);
}

CUresult tf_sg_cuGraphAddNode_v2(CUgraphNode* out, CUgraph hg, const CUgraphNode* deps,
                                 const CUgraphEdgeData* edges, size_t n, CUgraphNodeParams* p) {
  if (!out || !p) return CUDA_ERROR_INVALID_VALUE;
  if (edges)
    for (size_t i = 0; i < n; ++i)
      if (edges[i].type != CU_GRAPH_DEPENDENCY_TYPE_DEFAULT) return CUDA_ERROR_NOT_SUPPORTED;
  if (p->type == CU_GRAPH_NODE_TYPE_GRAPH) return tf_sg_cuGraphAddChildGraphNode(out, hg, deps, n, p->graph.graph);
  NodeUpdate u;
  TF_TRY(genericUpdate(p, &u));
  TF_TRY(tf_sg_cuGraphAddEmptyNode(out, hg, deps, n));
  auto* node = reinterpret_cast<GraphNode*>(*out);
  node->type = p->type;
  node->params = std::move(u.params);
  node->run = std::move(u.run);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGraphAddNode(CUgraphNode* out, CUgraph hg, const CUgraphNode* deps, size_t n,
                              CUgraphNodeParams* p) {
  return tf_sg_cuGraphAddNode_v2(out, hg, deps, nullptr, n, p);
}

CUresult tf_sg_cuGraphRemoveDependencies_v2(CUgraph hg, const CUgraphNode* from, const CUgraphNode* to,
                                            const CUgraphEdgeData*, size_t n) {
  Graph* g;
  TF_TRY(graphOf(hg, &g));
  if (n && (!from || !to)) return CUDA_ERROR_INVALID_VALUE;
  // Check every edge first, so that a bad one changes nothing.
  for (size_t i = 0; i < n; ++i) {
    GraphNode *a, *b;
    TF_TRY(edgeOf(g, from[i], to[i], &a, &b));
    if (std::find(b->deps.begin(), b->deps.end(), a) == b->deps.end()) return CUDA_ERROR_INVALID_VALUE;
  }
  for (size_t i = 0; i < n; ++i) {
    auto* b = reinterpret_cast<GraphNode*>(to[i]);
    b->deps.erase(std::find(b->deps.begin(), b->deps.end(), reinterpret_cast<GraphNode*>(from[i])));
  }
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGraphRemoveDependencies(CUgraph hg, const CUgraphNode* from, const CUgraphNode* to, size_t n) {
  return tf_sg_cuGraphRemoveDependencies_v2(hg, from, to, nullptr, n);
}

CUresult tf_sg_cuGraphDestroyNode(CUgraphNode h) {
  GraphNode* n;
  TF_TRY(nodeOf(h, &n));
  Graph* g = n->graph;
  for (auto& other : g->nodes)
    other->deps.erase(std::remove(other->deps.begin(), other->deps.end(), n), other->deps.end());
  registryOf<GraphNode>().remove(n);
  g->nodes.erase(std::find_if(g->nodes.begin(), g->nodes.end(), [n](auto& p) { return p.get() == n; }));
  return CUDA_SUCCESS;
}

// ---- Cloning ------------------------------------------------------------------------------

CUresult tf_sg_cuGraphClone(CUgraph* out, CUgraph original) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  Graph* g;
  TF_TRY(graphOf(original, &g));
  // As the driver: graphs with memory allocation, memory free or conditional nodes do not clone.
  std::function<bool(const Graph&)> cloneable = [&](const Graph& graph) {
    for (const auto& n : graph.nodes)
      if (n->type == CU_GRAPH_NODE_TYPE_MEM_ALLOC || n->type == CU_GRAPH_NODE_TYPE_MEM_FREE ||
          n->type == CU_GRAPH_NODE_TYPE_CONDITIONAL || (n->child && !cloneable(*n->child)))
        return false;
    return true;
  };
  if (!cloneable(*g)) return CUDA_ERROR_NOT_SUPPORTED;
  *out = reinterpret_cast<CUgraph>(cloneGraph(*g).release());
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGraphNodeFindInClone(CUgraphNode* out, CUgraphNode original, CUgraph clone) {
  if (!out || !original) return CUDA_ERROR_INVALID_VALUE;
  Graph* g;
  TF_TRY(graphOf(clone, &g));
  for (auto& n : g->nodes)
    if (n->clonedFrom == reinterpret_cast<GraphNode*>(original)) {
      *out = reinterpret_cast<CUgraphNode>(n.get());
      return CUDA_SUCCESS;
    }
  return CUDA_ERROR_INVALID_VALUE;
}

// ---- The executable graph -----------------------------------------------------------------

CUresult tf_sg_cuGraphExecKernelNodeSetParams_v2(CUgraphExec e, CUgraphNode h, const CUDA_KERNEL_NODE_PARAMS* p) {
  NodeUpdate u;
  return setExecNode(e, h, CU_GRAPH_NODE_TYPE_KERNEL, kernelUpdate(p, &u), u);
}

CUresult tf_sg_cuGraphExecKernelNodeSetParams(CUgraphExec e, CUgraphNode h, const CUDA_KERNEL_NODE_PARAMS_v1* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  CUDA_KERNEL_NODE_PARAMS v2 = fromV1(*p);
  return tf_sg_cuGraphExecKernelNodeSetParams_v2(e, h, &v2);
}

CUresult tf_sg_cuGraphExecMemsetNodeSetParams(CUgraphExec e, CUgraphNode h, const CUDA_MEMSET_NODE_PARAMS* p,
                                              CUcontext) {
  NodeUpdate u;
  return setExecNode(e, h, CU_GRAPH_NODE_TYPE_MEMSET,
                     paramsUpdate(CU_GRAPH_NODE_TYPE_MEMSET, p, &NodeParams::memset, &u), u);
}

CUresult tf_sg_cuGraphExecMemcpyNodeSetParams(CUgraphExec e, CUgraphNode h, const CUDA_MEMCPY3D* p, CUcontext) {
  NodeUpdate u;
  return setExecNode(e, h, CU_GRAPH_NODE_TYPE_MEMCPY,
                     paramsUpdate(CU_GRAPH_NODE_TYPE_MEMCPY, p, &NodeParams::memcpy, &u), u);
}

CUresult tf_sg_cuGraphExecHostNodeSetParams(CUgraphExec e, CUgraphNode h, const CUDA_HOST_NODE_PARAMS* p) {
  NodeUpdate u;
  return setExecNode(e, h, CU_GRAPH_NODE_TYPE_HOST, paramsUpdate(CU_GRAPH_NODE_TYPE_HOST, p, &NodeParams::host, &u),
                     u);
}

CUresult tf_sg_cuGraphExecNodeSetParams(CUgraphExec e, CUgraphNode h, CUgraphNodeParams* p) {
  NodeUpdate u;
  CUresult built = genericUpdate(p, &u);
  return setExecNode(e, h, p ? p->type : CU_GRAPH_NODE_TYPE_EMPTY, built, u);
}

CUresult tf_sg_cuGraphExecChildGraphNodeSetParams(CUgraphExec he, CUgraphNode h, CUgraph child) {
  GraphExec* e;
  TF_TRY(execOf(he, &e));
  GraphNode* n;
  TF_TRY(nodeOf(h, &n));
  Graph* c;
  TF_TRY(graphOf(child, &c));
  GraphExec::Entry* entry = e->find(n);
  if (!entry || entry->type != CU_GRAPH_NODE_TYPE_GRAPH) return CUDA_ERROR_INVALID_VALUE;
  // The new child must have the topology of the one instantiated.
  if (!n->child || n->child->nodes.size() != c->nodes.size()) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 0; i < c->nodes.size(); ++i)
    if (c->nodes[i]->type != n->child->nodes[i]->type) return CUDA_ERROR_INVALID_VALUE;
  GraphNode probe;
  probe.type = CU_GRAPH_NODE_TYPE_GRAPH;
  probe.child = cloneGraph(*c);
  std::function<CUresult()> work;
  TF_TRY(nodeWork(&probe, &work));
  entry->run = std::move(work);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGraphNodeSetEnabled(CUgraphExec he, CUgraphNode h, unsigned int enabled) {
  GraphExec* e;
  TF_TRY(execOf(he, &e));
  GraphExec::Entry* entry = e->find(reinterpret_cast<GraphNode*>(h));
  if (!entry) return CUDA_ERROR_INVALID_VALUE;
  entry->enabled = enabled != 0;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGraphNodeGetEnabled(CUgraphExec he, CUgraphNode h, unsigned int* enabled) {
  if (!enabled) return CUDA_ERROR_INVALID_VALUE;
  GraphExec* e;
  TF_TRY(execOf(he, &e));
  GraphExec::Entry* entry = e->find(reinterpret_cast<GraphNode*>(h));
  if (!entry) return CUDA_ERROR_INVALID_VALUE;
  *enabled = entry->enabled ? 1 : 0;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGraphExecGetFlags(CUgraphExec he, cuuint64_t* flags) {
  if (!flags) return CUDA_ERROR_INVALID_VALUE;
  GraphExec* e;
  TF_TRY(execOf(he, &e));
  *flags = e->flags;
  return CUDA_SUCCESS;
}

// The graph must have the instantiated graph's topology: as many nodes, made in the same
// order, of the same types, with the same dependencies. Then every node's work is replaced;
// if any node's new work cannot be built, nothing changes.
CUresult tf_sg_cuGraphExecUpdate_v2(CUgraphExec he, CUgraph hg, CUgraphExecUpdateResultInfo* info) {
  if (!info) return CUDA_ERROR_INVALID_VALUE;
  setResult(info, CU_GRAPH_EXEC_UPDATE_ERROR, nullptr, nullptr);
  GraphExec* e;
  TF_TRY(execOf(he, &e));
  Graph* g;
  TF_TRY(graphOf(hg, &g));
  if (g->nodes.size() != e->byCreation.size()) {
    setResult(info, CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED, nullptr, nullptr);
    return CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE;
  }
  std::map<const GraphNode*, size_t> created;
  for (size_t i = 0; i < g->nodes.size(); ++i) created[g->nodes[i].get()] = i;
  std::vector<std::function<CUresult()>> works(g->nodes.size());
  for (size_t i = 0; i < g->nodes.size(); ++i) {
    GraphNode* n = g->nodes[i].get();
    const GraphExec::Entry& entry = e->order[e->byCreation[i]];
    if (n->type != entry.type) {
      setResult(info, CU_GRAPH_EXEC_UPDATE_ERROR_NODE_TYPE_CHANGED, n, nullptr);
      return CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE;
    }
    std::vector<size_t> now;
    for (GraphNode* d : n->deps) now.push_back(created[d]);
    std::sort(now.begin(), now.end());
    const std::vector<size_t>& then = e->depsByCreation[i];
    if (now != then) {
      setResult(info, CU_GRAPH_EXEC_UPDATE_ERROR_TOPOLOGY_CHANGED, n, n->deps.empty() ? nullptr : n->deps[0]);
      return CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE;
    }
    if (CUresult r = nodeWork(n, &works[i]); r != CUDA_SUCCESS) {
      setResult(info, CU_GRAPH_EXEC_UPDATE_ERROR_PARAMETERS_CHANGED, n, nullptr);
      return CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE;
    }
  }
  for (size_t i = 0; i < works.size(); ++i) e->order[e->byCreation[i]].run = std::move(works[i]);
  setResult(info, CU_GRAPH_EXEC_UPDATE_SUCCESS, nullptr, nullptr);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGraphExecUpdate(CUgraphExec he, CUgraph hg, CUgraphNode* errorNode,
                                 CUgraphExecUpdateResult* result) {
  if (!errorNode || !result) return CUDA_ERROR_INVALID_VALUE;
  CUgraphExecUpdateResultInfo info{};
  CUresult r = tf_sg_cuGraphExecUpdate_v2(he, hg, &info);
  *errorNode = info.errorNode;
  *result = info.result;
  return r;
}

} // extern "C"
