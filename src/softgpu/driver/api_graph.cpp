// CUDA graphs: stream capture, explicit construction of kernel/memset/host/empty/child nodes,
// instantiation (a topological order) and launch (one piece of stream work).
#include <algorithm>
#include <set>

#include "softgpu/driver/graph.h"
#include "softgpu/driver/launch.h"
#include "softgpu/driver/stream.h"

namespace tf::softgpu {

GraphNode* Graph::add(CUgraphNodeType type, std::function<CUresult()> run,
                      const std::vector<GraphNode*>& deps) {
  auto n = std::make_unique<GraphNode>();
  n->graph = this;
  n->type = type;
  n->run = std::move(run);
  n->deps = deps;
  GraphNode* raw = n.get();
  nodes.push_back(std::move(n));
  registryOf<GraphNode>().add(raw);
  return raw;
}

} // namespace tf::softgpu

using namespace tf::softgpu;

namespace {

std::atomic<unsigned long long> nextCaptureId{1};

CUresult graphOf(CUgraph h, Graph** out) {
  TF_TRY(checkInitialized());
  Graph* g = registryOf<Graph>().find(h);
  if (!g) return CUDA_ERROR_INVALID_VALUE;
  *out = g;
  return CUDA_SUCCESS;
}

CUresult depsOf(Graph* g, const CUgraphNode* deps, size_t n, std::vector<GraphNode*>* out) {
  if (n && !deps) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 0; i < n; ++i) {
    GraphNode* d = registryOf<GraphNode>().find(deps[i]);
    if (!d || d->graph != g) return CUDA_ERROR_INVALID_VALUE;
    out->push_back(d);
  }
  return CUDA_SUCCESS;
}

// Kahn's algorithm; a cycle cannot be built through this API, but check anyway.
CUresult topologicalOrder(Graph* g, std::vector<GraphNode*>* order) {
  std::map<GraphNode*, int> indegree;
  std::map<GraphNode*, std::vector<GraphNode*>> users;
  for (auto& n : g->nodes) {
    indegree[n.get()] += 0;
    for (GraphNode* d : n->deps) {
      ++indegree[n.get()];
      users[d].push_back(n.get());
    }
  }
  std::vector<GraphNode*> ready;
  for (auto& n : g->nodes)
    if (indegree[n.get()] == 0) ready.push_back(n.get());
  while (!ready.empty()) {
    GraphNode* n = ready.front();
    ready.erase(ready.begin());
    order->push_back(n);
    for (GraphNode* u : users[n])
      if (--indegree[u] == 0) ready.push_back(u);
  }
  return order->size() == g->nodes.size() ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult addNode(CUgraphNode* out, CUgraph hg, const CUgraphNode* deps, size_t n,
                 CUgraphNodeType type, std::function<CUresult()> run) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  Graph* g;
  TF_TRY(graphOf(hg, &g));
  std::vector<GraphNode*> d;
  TF_TRY(depsOf(g, deps, n, &d));
  *out = reinterpret_cast<CUgraphNode>(g->add(type, std::move(run), d));
  return CUDA_SUCCESS;
}

} // namespace

extern "C" {

CUresult tf_sg_cuGraphCreate(CUgraph* ph, unsigned int flags) {
  if (!ph || flags) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkInitialized());
  auto* g = new Graph();
  registryOf<Graph>().add(g);
  *ph = reinterpret_cast<CUgraph>(g);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGraphDestroy(CUgraph h) {
  Graph* g;
  TF_TRY(graphOf(h, &g));
  registryOf<Graph>().remove(g);
  for (auto& n : g->nodes) registryOf<GraphNode>().remove(n.get());
  delete g;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGraphGetNodes(CUgraph h, CUgraphNode* nodes, size_t* count) {
  if (!count) return CUDA_ERROR_INVALID_VALUE;
  Graph* g;
  TF_TRY(graphOf(h, &g));
  if (!nodes) {
    *count = g->nodes.size();
    return CUDA_SUCCESS;
  }
  size_t n = std::min(*count, g->nodes.size());
  for (size_t i = 0; i < n; ++i) nodes[i] = reinterpret_cast<CUgraphNode>(g->nodes[i].get());
  for (size_t i = n; i < *count; ++i) nodes[i] = nullptr;
  *count = n;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGraphNodeGetType(CUgraphNode h, CUgraphNodeType* type) {
  if (!type) return CUDA_ERROR_INVALID_VALUE;
  GraphNode* n = registryOf<GraphNode>().find(h);
  if (!n) return CUDA_ERROR_INVALID_VALUE;
  *type = n->type;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGraphAddEmptyNode(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n) {
  return addNode(out, g, deps, n, CU_GRAPH_NODE_TYPE_EMPTY, nullptr);
}

CUresult tf_sg_cuGraphAddHostNode(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n,
                                  const CUDA_HOST_NODE_PARAMS* p) {
  if (!p || !p->fn) return CUDA_ERROR_INVALID_VALUE;
  CUhostFn fn = p->fn;
  void* data = p->userData;
  return addNode(out, g, deps, n, CU_GRAPH_NODE_TYPE_HOST, [fn, data] {
    fn(data);
    return CUDA_SUCCESS;
  });
}

CUresult tf_sg_cuGraphAddKernelNode_v2(CUgraphNode* out, CUgraph g, const CUgraphNode* deps,
                                       size_t n, const CUDA_KERNEL_NODE_PARAMS* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(requireContext(&c));
  LaunchRequest r;
  r.function = registryOf<Function>().find(p->func ? static_cast<const void*>(p->func)
                                                   : static_cast<const void*>(p->kern));
  if (!r.function) return CUDA_ERROR_INVALID_VALUE;
  r.grid = {p->gridDimX, p->gridDimY, p->gridDimZ};
  r.block = {p->blockDimX, p->blockDimY, p->blockDimZ};
  r.sharedBytes = p->sharedMemBytes;
  r.kernelParams = p->kernelParams;
  r.extra = p->extra;
  std::function<CUresult()> work;
  TF_TRY(prepareLaunch(r, c, &work)); // arguments are copied now, as the driver does
  return addNode(out, g, deps, n, CU_GRAPH_NODE_TYPE_KERNEL, std::move(work));
}

CUresult tf_sg_cuGraphAddMemsetNode(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n,
                                    const CUDA_MEMSET_NODE_PARAMS* p, CUcontext) {
  if (!p || !p->width || !p->height) return CUDA_ERROR_INVALID_VALUE;
  if (p->elementSize != 1 && p->elementSize != 2 && p->elementSize != 4) return CUDA_ERROR_INVALID_VALUE;
  const size_t row = p->width * p->elementSize;
  const size_t pitch = p->height > 1 ? p->pitch : row;
  if (pitch < row) return CUDA_ERROR_INVALID_VALUE;
  uint8_t* host = addressSpace().hostOf(p->dst, (p->height - 1) * pitch + row);
  if (!host) return CUDA_ERROR_INVALID_VALUE;
  CUDA_MEMSET_NODE_PARAMS q = *p;
  return addNode(out, g, deps, n, CU_GRAPH_NODE_TYPE_MEMSET, [q, host, pitch] {
    for (size_t y = 0; y < q.height; ++y) {
      uint8_t* r = host + y * pitch;
      for (size_t x = 0; x < q.width; ++x) {
        if (q.elementSize == 1) r[x] = static_cast<uint8_t>(q.value);
        else if (q.elementSize == 2) reinterpret_cast<uint16_t*>(r)[x] = static_cast<uint16_t>(q.value);
        else reinterpret_cast<uint32_t*>(r)[x] = q.value;
      }
    }
    return CUDA_SUCCESS;
  });
}

CUresult tf_sg_cuGraphAddMemcpyNode(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n,
                                    const CUDA_MEMCPY3D* p, CUcontext) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  std::function<CUresult()> work;
  TF_TRY(memcpy3DWork(*p, &work));
  return addNode(out, g, deps, n, CU_GRAPH_NODE_TYPE_MEMCPY, std::move(work));
}

CUresult tf_sg_cuGraphAddChildGraphNode(CUgraphNode* out, CUgraph g, const CUgraphNode* deps,
                                        size_t n, CUgraph child) {
  Graph* c;
  TF_TRY(graphOf(child, &c));
  std::vector<GraphNode*> order;
  TF_TRY(topologicalOrder(c, &order));
  std::vector<std::function<CUresult()>> work;
  for (GraphNode* node : order)
    if (node->run) work.push_back(node->run);
  return addNode(out, g, deps, n, CU_GRAPH_NODE_TYPE_GRAPH, [work] {
    for (auto& w : work)
      if (CUresult r = w(); r != CUDA_SUCCESS) return r;
    return CUDA_SUCCESS;
  });
}

CUresult tf_sg_cuGraphAddDependencies(CUgraph hg, const CUgraphNode* from, const CUgraphNode* to, size_t n) {
  Graph* g;
  TF_TRY(graphOf(hg, &g));
  if (n && (!from || !to)) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 0; i < n; ++i) {
    GraphNode* a = registryOf<GraphNode>().find(from[i]);
    GraphNode* b = registryOf<GraphNode>().find(to[i]);
    if (!a || !b || a->graph != g || b->graph != g || a == b) return CUDA_ERROR_INVALID_VALUE;
    b->deps.push_back(a);
  }
  std::vector<GraphNode*> order;
  return topologicalOrder(g, &order); // refuse cycles
}

CUresult tf_sg_cuGraphAddDependencies_v2(CUgraph hg, const CUgraphNode* from, const CUgraphNode* to,
                                         const CUgraphEdgeData* edgeData, size_t n) {
  // Edge data (programmatic dependent launch ports) has no effect on a CPU device: only the
  // default edge type is accepted.
  if (edgeData)
    for (size_t i = 0; i < n; ++i)
      if (edgeData[i].type != CU_GRAPH_DEPENDENCY_TYPE_DEFAULT) return CUDA_ERROR_NOT_SUPPORTED;
  return tf_sg_cuGraphAddDependencies(hg, from, to, n);
}

CUresult tf_sg_cuGraphInstantiateWithFlags(CUgraphExec* out, CUgraph hg, unsigned long long) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  Graph* g;
  TF_TRY(graphOf(hg, &g));
  Context* c;
  TF_TRY(requireContext(&c));
  std::vector<GraphNode*> order;
  TF_TRY(topologicalOrder(g, &order));
  auto* e = new GraphExec();
  e->context = c;
  for (GraphNode* n : order)
    if (n->run) e->order.push_back(n->run);
  registryOf<GraphExec>().add(e);
  *out = reinterpret_cast<CUgraphExec>(e);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGraphInstantiate_v2(CUgraphExec* out, CUgraph g, CUgraphNode* errNode, char* log,
                                     size_t logSize) {
  if (errNode) *errNode = nullptr;
  if (log && logSize) log[0] = 0;
  return tf_sg_cuGraphInstantiateWithFlags(out, g, 0);
}

CUresult tf_sg_cuGraphInstantiateWithParams(CUgraphExec* out, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS* p) {
  CUresult r = tf_sg_cuGraphInstantiateWithFlags(out, g, p ? p->flags : 0);
  if (p) {
    p->result_out = r == CUDA_SUCCESS ? CUDA_GRAPH_INSTANTIATE_SUCCESS : CUDA_GRAPH_INSTANTIATE_ERROR;
    p->hErrNode_out = nullptr;
  }
  return r;
}

CUresult tf_sg_cuGraphExecDestroy(CUgraphExec h) {
  TF_TRY(checkInitialized());
  GraphExec* e = registryOf<GraphExec>().find(h);
  if (!e) return CUDA_ERROR_INVALID_VALUE;
  registryOf<GraphExec>().remove(e);
  // Launches already queued hold their own copy of the work list.
  delete e;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGraphLaunch(CUgraphExec h, CUstream hs) {
  Context* c;
  TF_TRY(requireContext(&c));
  GraphExec* e = registryOf<GraphExec>().find(h);
  if (!e) return CUDA_ERROR_INVALID_VALUE;
  Stream* s;
  TF_TRY(resolveStream(hs, c, &s));
  auto work = std::make_shared<std::vector<std::function<CUresult()>>>(e->order);
  return submit(s, OpKind::Graph, [work] {
    for (auto& w : *work)
      if (CUresult r = w(); r != CUDA_SUCCESS) return r;
    return CUDA_SUCCESS;
  });
}

CUresult tf_sg_cuGraphUpload(CUgraphExec h, CUstream hs) {
  Context* c;
  TF_TRY(requireContext(&c));
  if (!registryOf<GraphExec>().find(h)) return CUDA_ERROR_INVALID_VALUE;
  Stream* s;
  return resolveStream(hs, c, &s);
}

// ---- Stream capture -----------------------------------------------------------------------

CUresult tf_sg_cuStreamBeginCapture_v2(CUstream hs, CUstreamCaptureMode mode) {
  Context* c;
  TF_TRY(requireContext(&c));
  Stream* s;
  TF_TRY(resolveStream(hs, c, &s));
  if (s->kind == StreamKind::Legacy) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  std::lock_guard<std::mutex> lock(c->mu);
  if (s->capture) return CUDA_ERROR_ILLEGAL_STATE;
  auto cap = std::make_shared<CaptureState>();
  cap->graph = new Graph();
  registryOf<Graph>().add(cap->graph);
  cap->mode = mode;
  cap->id = nextCaptureId++;
  cap->origin = s;
  cap->frontier[s] = {};
  s->capture = cap;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuStreamBeginCapture(CUstream hs) {
  return tf_sg_cuStreamBeginCapture_v2(hs, CU_STREAM_CAPTURE_MODE_GLOBAL);
}

CUresult tf_sg_cuStreamEndCapture(CUstream hs, CUgraph* out) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(requireContext(&c));
  Stream* s;
  TF_TRY(resolveStream(hs, c, &s));
  std::lock_guard<std::mutex> lock(c->mu);
  if (!s->capture) return CUDA_ERROR_ILLEGAL_STATE;
  auto cap = s->capture;
  if (cap->origin != s) return CUDA_ERROR_STREAM_CAPTURE_UNMATCHED;
  // Work forked into other streams must have been joined back into the origin stream.
  CUresult result = CUDA_SUCCESS;
  {
    std::set<GraphNode*> joined;
    std::vector<GraphNode*> todo(cap->frontier[s].begin(), cap->frontier[s].end());
    while (!todo.empty()) {
      GraphNode* n = todo.back();
      todo.pop_back();
      if (!joined.insert(n).second) continue;
      for (GraphNode* d : n->deps) todo.push_back(d);
    }
    for (auto& [other, front] : cap->frontier)
      for (GraphNode* n : front)
        if (other != s && !joined.count(n)) result = CUDA_ERROR_STREAM_CAPTURE_UNJOINED;
  }
  // Every stream that joined the capture leaves it with the origin.
  for (auto& [joined, front] : cap->frontier) joined->capture.reset();
  if (result != CUDA_SUCCESS) cap->invalidated = true;
  if (cap->invalidated) {
    registryOf<Graph>().remove(cap->graph);
    delete cap->graph;
    *out = nullptr;
    return result != CUDA_SUCCESS ? result : CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  }
  *out = reinterpret_cast<CUgraph>(cap->graph);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuStreamIsCapturing(CUstream hs, CUstreamCaptureStatus* status) {
  if (!status) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(requireContext(&c));
  Stream* s;
  TF_TRY(resolveStream(hs, c, &s));
  std::lock_guard<std::mutex> lock(c->mu);
  *status = !s->capture ? CU_STREAM_CAPTURE_STATUS_NONE
            : s->capture->invalidated ? CU_STREAM_CAPTURE_STATUS_INVALIDATED
                                      : CU_STREAM_CAPTURE_STATUS_ACTIVE;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuStreamGetCaptureInfo_v3(CUstream hs, CUstreamCaptureStatus* status,
                                         cuuint64_t* id, CUgraph* graph,
                                         const CUgraphNode** deps, const CUgraphEdgeData** edges,
                                         size_t* numDeps) {
  TF_TRY(tf_sg_cuStreamIsCapturing(hs, status));
  Context* c = currentContext();
  Stream* s;
  TF_TRY(resolveStream(hs, c, &s));
  std::lock_guard<std::mutex> lock(c->mu);
  if (id) *id = s->capture ? s->capture->id : 0;
  if (graph) *graph = s->capture ? reinterpret_cast<CUgraph>(s->capture->graph) : nullptr;
  if (deps) {
    static thread_local std::vector<CUgraphNode> buffer;
    buffer.clear();
    if (s->capture)
      for (GraphNode* n : s->capture->frontier[s]) buffer.push_back(reinterpret_cast<CUgraphNode>(n));
    *deps = buffer.data();
  }
  if (edges) *edges = nullptr;
  if (numDeps) *numDeps = s->capture ? s->capture->frontier[s].size() : 0;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuStreamGetCaptureInfo_v2(CUstream hs, CUstreamCaptureStatus* status, cuuint64_t* id,
                                         CUgraph* graph, const CUgraphNode** deps, size_t* numDeps) {
  return tf_sg_cuStreamGetCaptureInfo_v3(hs, status, id, graph, deps, nullptr, numDeps);
}

CUresult tf_sg_cuStreamGetCaptureInfo(CUstream hs, CUstreamCaptureStatus* status, cuuint64_t* id) {
  return tf_sg_cuStreamGetCaptureInfo_v3(hs, status, id, nullptr, nullptr, nullptr, nullptr);
}

CUresult tf_sg_cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode* mode) {
  if (!mode) return CUDA_ERROR_INVALID_VALUE;
  thread_local CUstreamCaptureMode current = CU_STREAM_CAPTURE_MODE_GLOBAL;
  std::swap(current, *mode);
  return CUDA_SUCCESS;
}

} // extern "C"
