// CUDA graphs: the graph objects, explicit construction of kernel/memset/memcpy/host/empty/child
// nodes, instantiation (a topological order) and launch (one piece of stream work), and stream
// capture. Introspection, setters, cloning and update: api_graph_nodes.cpp.
#include <algorithm>
#include <cstring>
#include <set>

#include "softgpu/driver/graph.h"
#include "softgpu/driver/launch.h"
#include "softgpu/driver/stream.h"
#include "softgpu/driver/vmm.h"

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

Graph::~Graph() {
  for (auto& n : nodes) registryOf<GraphNode>().remove(n.get());
  registryOf<Graph>().remove(this);
}

CUresult graphOf(CUgraph h, Graph** out) {
  TF_TRY(checkInitialized());
  Graph* g = registryOf<Graph>().find(h);
  if (!g) return CUDA_ERROR_INVALID_VALUE;
  *out = g;
  return CUDA_SUCCESS;
}

CUresult nodeOf(CUgraphNode h, GraphNode** out) {
  TF_TRY(checkInitialized());
  GraphNode* n = registryOf<GraphNode>().find(h);
  if (!n) return CUDA_ERROR_INVALID_VALUE;
  *out = n;
  return CUDA_SUCCESS;
}

CUresult edgeOf(Graph* g, CUgraphNode from, CUgraphNode to, GraphNode** a, GraphNode** b) {
  *a = registryOf<GraphNode>().find(from);
  *b = registryOf<GraphNode>().find(to);
  if (!*a || !*b || (*a)->graph != g || (*b)->graph != g || *a == *b) return CUDA_ERROR_INVALID_VALUE;
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

CUresult kernelNodeParams(const CUDA_KERNEL_NODE_PARAMS& k, NodeParams* out) {
  Context* c;
  TF_TRY(requireContext(&c));
  LaunchRequest r;
  r.function = registryOf<Function>().find(k.func ? static_cast<const void*>(k.func)
                                                  : static_cast<const void*>(k.kern));
  if (!r.function) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(materialize(r.function->module));
  r.grid = {k.gridDimX, k.gridDimY, k.gridDimZ};
  r.block = {k.blockDimX, k.blockDimY, k.blockDimZ};
  r.sharedBytes = k.sharedMemBytes;
  r.kernelParams = k.kernelParams;
  r.extra = k.extra;
  TF_TRY(describeKernelNode(r, out)); // the node owns a copy of the arguments, as the driver's does
  out->kernel.func = k.func;           // reads back as the caller gave it (cudart sets both the
  out->kernel.kern = k.kern;           // function and the kernel, and maps the kernel back)
  out->kernel.ctx = k.ctx;
  out->context = c;
  out->described = true;
  return CUDA_SUCCESS;
}

CUresult buildWork(CUgraphNodeType type, const NodeParams& p, std::function<CUresult()>* work) {
  switch (type) {
  case CU_GRAPH_NODE_TYPE_KERNEL: {
    const CUDA_KERNEL_NODE_PARAMS& k = p.kernel;
    LaunchRequest r;
    r.function = registryOf<Function>().find(k.func ? static_cast<const void*>(k.func)
                                                    : static_cast<const void*>(k.kern));
    if (!r.function || !p.context) return CUDA_ERROR_INVALID_VALUE;
    r.grid = {k.gridDimX, k.gridDimY, k.gridDimZ};
    r.block = {k.blockDimX, k.blockDimY, k.blockDimZ};
    r.sharedBytes = k.sharedMemBytes;
    size_t size = p.args.size();
    void* extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, const_cast<uint8_t*>(p.args.data()),
                     CU_LAUNCH_PARAM_BUFFER_SIZE, &size, CU_LAUNCH_PARAM_END};
    r.extra = extra;
    return prepareLaunch(r, p.context, work);
  }
  case CU_GRAPH_NODE_TYPE_MEMSET: {
    const CUDA_MEMSET_NODE_PARAMS q = p.memset;
    if (!q.width || !q.height) return CUDA_ERROR_INVALID_VALUE;
    if (q.elementSize != 1 && q.elementSize != 2 && q.elementSize != 4) return CUDA_ERROR_INVALID_VALUE;
    const size_t row = q.width * q.elementSize;
    const size_t pitch = q.height > 1 ? q.pitch : row;
    if (pitch < row || q.dst % q.elementSize) return CUDA_ERROR_INVALID_VALUE;
    const uint64_t span = (q.height - 1) * pitch + row;
    if (!addressSpace().hostOf(q.dst, span)) return CUDA_ERROR_INVALID_VALUE;
    *work = [q, span, pitch, row] {
      // Looked up again when it runs, as a copy is (memcpy3DWork): freed since is illegal.
      uint8_t* host = addressSpace().hostOf(q.dst, span);
      if (!host) return CUDA_ERROR_ILLEGAL_ADDRESS;
      if (q.value == 0 && pitch == row)
        if (auto r = zeroVmm(q.dst, span)) return *r; // VMM memory: holes (vmm.h)
      for (size_t y = 0; y < q.height; ++y) {
        uint8_t* r = host + y * pitch;
        for (size_t x = 0; x < q.width; ++x) {
          if (q.elementSize == 1) r[x] = static_cast<uint8_t>(q.value);
          else if (q.elementSize == 2) reinterpret_cast<uint16_t*>(r)[x] = static_cast<uint16_t>(q.value);
          else reinterpret_cast<uint32_t*>(r)[x] = q.value;
        }
      }
      return CUDA_SUCCESS;
    };
    return CUDA_SUCCESS;
  }
  case CU_GRAPH_NODE_TYPE_MEMCPY: return memcpy3DWork(p.memcpy, work);
  case CU_GRAPH_NODE_TYPE_HOST: {
    CUhostFn fn = p.host.fn;
    void* data = p.host.userData;
    if (!fn) return CUDA_ERROR_INVALID_VALUE;
    *work = [fn, data] {
      fn(data);
      return CUDA_SUCCESS;
    };
    return CUDA_SUCCESS;
  }
  case CU_GRAPH_NODE_TYPE_EMPTY: *work = nullptr; return CUDA_SUCCESS;
  default: return CUDA_ERROR_NOT_SUPPORTED;
  }
}

CUresult nodeWork(GraphNode* n, std::function<CUresult()>* work) {
  if (n->type != CU_GRAPH_NODE_TYPE_GRAPH) {
    *work = n->run;
    return CUDA_SUCCESS;
  }
  std::vector<GraphNode*> order;
  TF_TRY(topologicalOrder(n->child.get(), &order));
  std::vector<std::function<CUresult()>> steps;
  for (GraphNode* c : order) {
    std::function<CUresult()> w;
    TF_TRY(nodeWork(c, &w));
    if (w) steps.push_back(std::move(w));
  }
  *work = [steps = std::move(steps)] {
    for (auto& w : steps)
      if (CUresult r = w(); r != CUDA_SUCCESS) return r;
    return CUDA_SUCCESS;
  };
  return CUDA_SUCCESS;
}

std::unique_ptr<Graph> cloneGraph(const Graph& g) {
  auto out = std::make_unique<Graph>();
  registryOf<Graph>().add(out.get());
  std::map<const GraphNode*, GraphNode*> copies;
  for (auto& n : g.nodes) {
    GraphNode* c = out->add(n->type, n->run, {});
    c->params = n->params;
    c->clonedFrom = n.get();
    if (n->child) {
      c->child = cloneGraph(*n->child);
      c->child->owner = c;
    }
    copies[n.get()] = c;
  }
  for (auto& n : g.nodes)
    for (GraphNode* d : n->deps) copies[n.get()]->deps.push_back(copies[d]);
  return out;
}

GraphExec::Entry* GraphExec::find(const GraphNode* n) {
  for (Entry& e : order)
    if (e.source == n) return &e;
  return nullptr;
}

} // namespace tf::softgpu

using namespace tf::softgpu;

namespace {

std::atomic<unsigned long long> nextCaptureId{1};

CUresult depsOf(Graph* g, const CUgraphNode* deps, size_t n, std::vector<GraphNode*>* out) {
  if (n && !deps) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 0; i < n; ++i) {
    GraphNode* d = registryOf<GraphNode>().find(deps[i]);
    if (!d || d->graph != g) return CUDA_ERROR_INVALID_VALUE;
    out->push_back(d);
  }
  return CUDA_SUCCESS;
}

// Adds a node of `type` doing what `params` say (checked now); the node keeps the parameters.
CUresult addDescribedNode(CUgraphNode* out, CUgraph hg, const CUgraphNode* deps, size_t n,
                          CUgraphNodeType type, NodeParams params) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  Graph* g;
  TF_TRY(graphOf(hg, &g));
  std::vector<GraphNode*> d;
  TF_TRY(depsOf(g, deps, n, &d));
  std::function<CUresult()> work;
  params.described = true;
  TF_TRY(buildWork(type, params, &work));
  GraphNode* node = g->add(type, std::move(work), d);
  node->params = std::move(params);
  *out = reinterpret_cast<CUgraphNode>(node);
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
  if (g->owner) return CUDA_ERROR_INVALID_VALUE; // a child graph belongs to its node
  delete g;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGraphAddEmptyNode(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n) {
  return addDescribedNode(out, g, deps, n, CU_GRAPH_NODE_TYPE_EMPTY, {});
}

CUresult tf_sg_cuGraphAddHostNode(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n,
                                  const CUDA_HOST_NODE_PARAMS* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  NodeParams params;
  params.host = *p;
  return addDescribedNode(out, g, deps, n, CU_GRAPH_NODE_TYPE_HOST, std::move(params));
}

CUresult tf_sg_cuGraphAddKernelNode_v2(CUgraphNode* out, CUgraph g, const CUgraphNode* deps,
                                       size_t n, const CUDA_KERNEL_NODE_PARAMS* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  NodeParams params;
  TF_TRY(kernelNodeParams(*p, &params)); // arguments are copied now, as the driver does
  return addDescribedNode(out, g, deps, n, CU_GRAPH_NODE_TYPE_KERNEL, std::move(params));
}

CUresult tf_sg_cuGraphAddKernelNode(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n,
                                    const CUDA_KERNEL_NODE_PARAMS_v1* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  CUDA_KERNEL_NODE_PARAMS v2{};
  memcpy(&v2, p, sizeof(*p)); // v1 is v2 without its last two fields
  return tf_sg_cuGraphAddKernelNode_v2(out, g, deps, n, &v2);
}

CUresult tf_sg_cuGraphAddMemsetNode(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n,
                                    const CUDA_MEMSET_NODE_PARAMS* p, CUcontext) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  NodeParams params;
  params.memset = *p;
  return addDescribedNode(out, g, deps, n, CU_GRAPH_NODE_TYPE_MEMSET, std::move(params));
}

CUresult tf_sg_cuGraphAddMemcpyNode(CUgraphNode* out, CUgraph g, const CUgraphNode* deps, size_t n,
                                    const CUDA_MEMCPY3D* p, CUcontext) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  NodeParams params;
  params.memcpy = *p;
  return addDescribedNode(out, g, deps, n, CU_GRAPH_NODE_TYPE_MEMCPY, std::move(params));
}

CUresult tf_sg_cuGraphAddChildGraphNode(CUgraphNode* out, CUgraph hg, const CUgraphNode* deps,
                                        size_t n, CUgraph child) {
  Graph* c;
  TF_TRY(graphOf(child, &c));
  std::vector<GraphNode*> order;
  TF_TRY(topologicalOrder(c, &order));
  TF_TRY(addDescribedNode(out, hg, deps, n, CU_GRAPH_NODE_TYPE_EMPTY, {}));
  // The node owns a clone of the child graph (cuGraphChildGraphNodeGetGraph hands it out).
  auto* node = reinterpret_cast<GraphNode*>(*out);
  node->type = CU_GRAPH_NODE_TYPE_GRAPH;
  node->child = cloneGraph(*c);
  node->child->owner = node;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuGraphAddDependencies(CUgraph hg, const CUgraphNode* from, const CUgraphNode* to, size_t n) {
  Graph* g;
  TF_TRY(graphOf(hg, &g));
  if (n && (!from || !to)) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 0; i < n; ++i) {
    GraphNode *a, *b;
    TF_TRY(edgeOf(g, from[i], to[i], &a, &b));
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

CUresult tf_sg_cuGraphInstantiateWithFlags(CUgraphExec* out, CUgraph hg, unsigned long long flags) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  Graph* g;
  TF_TRY(graphOf(hg, &g));
  Context* c;
  TF_TRY(requireContext(&c));
  std::vector<GraphNode*> order;
  TF_TRY(topologicalOrder(g, &order));
  auto e = std::make_unique<GraphExec>();
  e->context = c;
  e->flags = flags;
  std::map<const GraphNode*, size_t> position;
  for (GraphNode* n : order) {
    std::function<CUresult()> work;
    TF_TRY(nodeWork(n, &work));
    position[n] = e->order.size();
    e->order.push_back({n, n->type, std::move(work), true});
  }
  std::map<const GraphNode*, size_t> created;
  for (size_t i = 0; i < g->nodes.size(); ++i) created[g->nodes[i].get()] = i;
  for (auto& n : g->nodes) {
    e->byCreation.push_back(position[n.get()]);
    std::vector<size_t> deps;
    for (GraphNode* d : n->deps) deps.push_back(created[d]);
    std::sort(deps.begin(), deps.end());
    e->depsByCreation.push_back(std::move(deps));
  }
  registryOf<GraphExec>().add(e.get());
  *out = reinterpret_cast<CUgraphExec>(e.release());
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
  auto work = std::make_shared<std::vector<std::function<CUresult()>>>();
  work->reserve(e->order.size());
  for (const GraphExec::Entry& entry : e->order)
    if (entry.enabled && entry.run) work->push_back(entry.run);
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
