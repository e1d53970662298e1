// Stream capture and graphs: forwarded; the worker's driver builds and runs the graphs. While
// no capture is on, capture queries are answered locally (cudart asks often). Host nodes and
// host functions captured into a graph run here at every launch (host channel); host memory
// (pinned or pageable) a graph copies to or from is mirrored on the worker and used there by
// address: memcpy nodes are added, and their parameters set again (in a graph or an executable
// graph), here.
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "remoting/stub/api.h"

using namespace tf::remoting::stub;
using tf::remoting::Writer;

namespace {

// Pageable host memory that memcpy nodes read or write: mirrored (exactly the bytes a node
// touches) for as long as a graph, or an executable graph instantiated from one, uses it.
class PageableMirrors {
public:
  // The mirror for [addr, addr + n): an existing one of ours that holds it, or a new one.
  // *base: its base, or 0 when the range lies in a mirror we do not own (pinned, managed).
  CUresult acquire(uint64_t addr, uint64_t n, uint64_t* base) {
    std::lock_guard<std::mutex> lock(mu_);
    Client& c = client();
    uint64_t b = 0, size = 0;
    if (c.mirrors().base(addr, &b, &size) && addr - b <= size && n <= size - (addr - b)) {
      *base = refs_.count(b) ? b : 0;
      if (*base) refs_[b]++;
      return CUDA_SUCCESS;
    }
    CUresult r = c.mirrorRange(addr, n);
    if (r != CUDA_SUCCESS) return r;
    refs_[addr] = 1;
    *base = addr;
    return CUDA_SUCCESS;
  }
  void release(uint64_t base) {
    std::lock_guard<std::mutex> lock(mu_);
    releaseLocked(base);
  }
  // Graph or executable graph `user` holds these bases (each already counted once).
  void attach(uint64_t user, const std::vector<uint64_t>& bases) {
    std::lock_guard<std::mutex> lock(mu_);
    for (uint64_t b : bases)
      if (b) users_[user].push_back(b);
  }
  // `user` uses what `graph` uses too: an executable graph instantiated or updated from it, a
  // clone of it, a graph it became a child node of (which embeds a copy).
  void inherit(uint64_t graph, uint64_t user) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = users_.find(graph);
    if (it == users_.end()) return;
    std::vector<uint64_t> bases = it->second;
    for (uint64_t b : bases) refs_[b]++;
    auto& held = users_[user];
    held.insert(held.end(), bases.begin(), bases.end());
  }
  void drop(uint64_t user) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto n = graphOfNode_.begin(); n != graphOfNode_.end();)
      n = n->second == user ? graphOfNode_.erase(n) : std::next(n);
    auto it = users_.find(user);
    if (it == users_.end()) return;
    for (uint64_t b : it->second) releaseLocked(b);
    users_.erase(it);
  }
  // Nodes added here, and their graph: a memcpy node's new parameters are held by its graph.
  void addedNode(uint64_t node, uint64_t graph) {
    std::lock_guard<std::mutex> lock(mu_);
    graphOfNode_[node] = graph;
  }
  uint64_t graphOf(uint64_t node) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = graphOfNode_.find(node);
    return it == graphOfNode_.end() ? 0 : it->second;
  }

private:
  void releaseLocked(uint64_t base) {
    auto it = refs_.find(base);
    if (it == refs_.end() || --it->second > 0) return;
    refs_.erase(it);
    // Not pulled back: the program synchronised after its last launch (which pulled what the
    // device wrote), and it may have freed the memory since.
    client().releaseHostMirror(h<void*>(base), false);
  }
  std::mutex mu_;
  std::map<uint64_t, int> refs_;
  std::map<uint64_t, std::vector<uint64_t>> users_;
  std::map<uint64_t, uint64_t> graphOfNode_;
};
PageableMirrors& pageableMirrors() {
  static auto* p = new PageableMirrors(); // outlives every static destructor that may free graphs
  return *p;
}

// The bytes one side of a 3D copy touches: from its first byte to its last.
void copyExtent(const void* host, size_t x, size_t y, size_t z, size_t pitch, size_t height,
                const CUDA_MEMCPY3D& c, uint64_t* addr, uint64_t* n) {
  size_t depth = c.Depth ? c.Depth : 1, rows = c.Height ? c.Height : 1;
  pitch = pitch ? pitch : c.WidthInBytes;
  height = height ? height : rows;
  *addr = u(host) + x + pitch * (y + height * z);
  *n = pitch * height * (depth - 1) + pitch * (rows - 1) + c.WidthInBytes;
}

Writer nodeBlob(const CUgraphNode* deps, size_t n) {
  Writer w;
  w.u32(static_cast<uint32_t>(n));
  for (size_t i = 0; i < n; ++i) w.u64(u(deps[i]));
  return w;
}

CUresult beginCapture(FnId fn, CUstream s, CUstreamCaptureMode mode) {
  TF_READY();
  if (!client().streamOk(s)) return CUDA_ERROR_INVALID_HANDLE;
  perThreadCall(fn, s);
  CUresult r = client().call(fn, {u(s), static_cast<uint64_t>(mode)});
  if (r == CUDA_SUCCESS) client().captureBegun();
  return r;
}

CUresult endCapture(FnId fn, CUstream s, CUgraph* g) {
  if (!g) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  if (!client().streamOk(s)) return CUDA_ERROR_INVALID_HANDLE;
  perThreadCall(fn, s);
  uint64_t out = 0;
  CUresult r = client().call(fn, {u(s)}, &out, 1);
  // The capture is over whether it produced a graph or failed (invalidated, unjoined).
  if (r != CUDA_ERROR_INVALID_HANDLE && r != CUDA_ERROR_ILLEGAL_STATE &&
      r != CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD && r != CUDA_ERROR_DEVICE_UNAVAILABLE)
    client().captureEnded();
  *g = r == CUDA_SUCCESS ? h<CUgraph>(out) : nullptr;
  return r;
}

CUresult isCapturing(FnId fn, CUstream s, CUstreamCaptureStatus* st) {
  if (!st) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  if (!client().streamOk(s)) return CUDA_ERROR_INVALID_HANDLE;
  if (!client().capturing()) {
    *st = CU_STREAM_CAPTURE_STATUS_NONE;
    return CUDA_SUCCESS;
  }
  perThreadCall(fn, s);
  uint64_t out = 0;
  CUresult r = client().call(fn, {u(s)}, &out, 1);
  *st = static_cast<CUstreamCaptureStatus>(out);
  return r;
}

CUresult captureInfo(bool pt, CUstream s, CUstreamCaptureStatus* st, cuuint64_t* id, CUgraph* g,
                     const CUgraphNode** deps, const CUgraphEdgeData** edges, size_t* n) {
  if (!st) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  if (!client().streamOk(s)) return CUDA_ERROR_INVALID_HANDLE;
  if (edges) *edges = nullptr;
  if (!client().capturing()) {
    *st = CU_STREAM_CAPTURE_STATUS_NONE;
    if (id) *id = 0;
    if (g) *g = nullptr;
    if (deps) *deps = nullptr;
    if (n) *n = 0;
    return CUDA_SUCCESS;
  }
  FnId fn = pt ? FnId::cuStreamGetCaptureInfo_v3_ptsz : FnId::cuStreamGetCaptureInfo_v3;
  perThreadCall(fn, s);
  uint64_t out[3] = {};
  std::string blob;
  CUresult r = client().call(static_cast<uint32_t>(fn), {u(s)}, out, 3, nullptr, 0, nullptr, 0,
                             nullptr, &blob);
  if (r != CUDA_SUCCESS) return r;
  // The dependency array stays valid until this thread's next query, as the driver's does.
  thread_local std::vector<CUgraphNode> nodes;
  nodes.resize(blob.size() / 8);
  std::memcpy(nodes.data(), blob.data(), nodes.size() * 8);
  *st = static_cast<CUstreamCaptureStatus>(out[0]);
  if (id) *id = out[1];
  if (g) *g = h<CUgraph>(out[2]);
  if (deps) *deps = nodes.empty() ? nullptr : nodes.data();
  if (n) *n = nodes.size();
  return CUDA_SUCCESS;
}

CUresult graphLaunch(FnId fn, CUgraphExec e, CUstream s) {
  TF_READY();
  if (!client().streamOk(s)) return CUDA_ERROR_INVALID_HANDLE;
  perThreadCall(fn, s);
  return client().post(fn, {u(e), u(s)});
}

// The host sides of a memcpy node, by address: device memory, or host memory mirrored (or
// shared) on the worker, since the node reads and writes it every time the graph runs. Pinned
// memory is mirrored whole; of pageable memory, the bytes the node touches (*pageable: the
// mirrors acquired, to be held by a graph or executable graph, or released: heldBy).
CUresult memcpyNodeSides(CUDA_MEMCPY3D& copy, std::vector<uint64_t>* pageable) {
  Client& c = client();
  auto side = [&](CUmemorytype& type, const void*& host, CUdeviceptr& dev, size_t x, size_t y,
                  size_t z, size_t pitch, size_t height) -> CUresult {
    if (type == CU_MEMORYTYPE_UNIFIED) {
      Client::Allocation a{};
      bool device = c.findDevice(dev, nullptr, &a) &&
                    (a.kind == Client::Memory::Device || a.kind == Client::Memory::Managed);
      type = device ? CU_MEMORYTYPE_DEVICE : CU_MEMORYTYPE_HOST;
      if (!device) host = h<const void*>(dev);
    }
    if (type == CU_MEMORYTYPE_ARRAY) return CUDA_ERROR_NOT_SUPPORTED;
    if (type != CU_MEMORYTYPE_HOST) return CUDA_SUCCESS;
    if (!host) return CUDA_ERROR_INVALID_VALUE;
    if (c.findHost(host, nullptr, nullptr, nullptr)) return c.mirrorHost(host);
    uint64_t addr = 0, bytes = 0, base = 0;
    copyExtent(host, x, y, z, pitch, height, copy, &addr, &bytes);
    CUresult r = pageableMirrors().acquire(addr, bytes, &base);
    if (r == CUDA_SUCCESS) pageable->push_back(base);
    return r;
  };
  const void* srcHost = copy.srcHost;
  const void* dstHost = copy.dstHost;
  CUresult r = side(copy.srcMemoryType, srcHost, copy.srcDevice, copy.srcXInBytes, copy.srcY,
                    copy.srcZ, copy.srcPitch, copy.srcHeight);
  if (r == CUDA_SUCCESS)
    r = side(copy.dstMemoryType, dstHost, copy.dstDevice, copy.dstXInBytes, copy.dstY, copy.dstZ,
             copy.dstPitch, copy.dstHeight);
  copy.srcHost = srcHost;
  copy.dstHost = const_cast<void*>(dstHost);
  return r;
}

// After the call that gave a memcpy node its sides (result r): on success `user` (a graph or
// an executable graph) holds the pageable mirrors; otherwise they are released. Returns r.
CUresult heldBy(CUresult r, uint64_t user, const std::vector<uint64_t>& pageable) {
  if (r == CUDA_SUCCESS) {
    pageableMirrors().attach(user, pageable);
  } else {
    for (uint64_t b : pageable)
      if (b) pageableMirrors().release(b);
  }
  return r;
}

CUresult addNode(FnId fn, CUgraphNode* node, std::initializer_list<uint64_t> in, Writer& blob) {
  if (!node) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  uint64_t out = 0;
  CUresult r = client().call(fn, in, &out, 1, blob.data(), blob.size());
  *node = h<CUgraphNode>(out);
  if (r == CUDA_SUCCESS) pageableMirrors().addedNode(out, *in.begin()); // in: graph first
  return r;
}

// Edges added or removed (fn): from..., to... in one list; programmatic edges are not forwarded.
CUresult changeEdges(FnId fn, CUgraph g, const CUgraphNode* from, const CUgraphNode* to, const CUgraphEdgeData* edges,
                     size_t n) {
  if (n && (!from || !to)) return CUDA_ERROR_INVALID_VALUE;
  if (edges)
    for (size_t i = 0; i < n; ++i)
      if (edges[i].type != CU_GRAPH_DEPENDENCY_TYPE_DEFAULT || edges[i].from_port || edges[i].to_port)
        return CUDA_ERROR_NOT_SUPPORTED;
  TF_READY();
  Writer w;
  w.u32(static_cast<uint32_t>(2 * n));
  for (size_t i = 0; i < n; ++i) w.u64(u(from[i]));
  for (size_t i = 0; i < n; ++i) w.u64(u(to[i]));
  return client().call(fn, {u(g)}, nullptr, 0, w.data(), w.size());
}

} // namespace

namespace tf::remoting::stub {
void holdsGraphMemory(uint64_t user, uint64_t graph) { pageableMirrors().inherit(graph, user); }
} // namespace tf::remoting::stub

extern "C" {

CUresult tf_rs_cuStreamBeginCapture_v2(CUstream s, CUstreamCaptureMode m) { return beginCapture(FnId::cuStreamBeginCapture_v2, s, m); }
CUresult tf_rs_cuStreamBeginCapture_v2_ptsz(CUstream s, CUstreamCaptureMode m) { return beginCapture(FnId::cuStreamBeginCapture_v2_ptsz, s, m); }
CUresult tf_rs_cuStreamEndCapture(CUstream s, CUgraph* g) { return endCapture(FnId::cuStreamEndCapture, s, g); }
CUresult tf_rs_cuStreamEndCapture_ptsz(CUstream s, CUgraph* g) { return endCapture(FnId::cuStreamEndCapture_ptsz, s, g); }
CUresult tf_rs_cuStreamIsCapturing(CUstream s, CUstreamCaptureStatus* st) { return isCapturing(FnId::cuStreamIsCapturing, s, st); }
CUresult tf_rs_cuStreamIsCapturing_ptsz(CUstream s, CUstreamCaptureStatus* st) { return isCapturing(FnId::cuStreamIsCapturing_ptsz, s, st); }
CUresult tf_rs_cuStreamGetCaptureInfo_v2(CUstream s, CUstreamCaptureStatus* st, cuuint64_t* id, CUgraph* g,
                                         const CUgraphNode** deps, size_t* n) {
  return captureInfo(false, s, st, id, g, deps, nullptr, n);
}
CUresult tf_rs_cuStreamGetCaptureInfo_v2_ptsz(CUstream s, CUstreamCaptureStatus* st, cuuint64_t* id, CUgraph* g,
                                              const CUgraphNode** deps, size_t* n) {
  return captureInfo(true, s, st, id, g, deps, nullptr, n);
}
CUresult tf_rs_cuStreamGetCaptureInfo_v3(CUstream s, CUstreamCaptureStatus* st, cuuint64_t* id, CUgraph* g,
                                         const CUgraphNode** deps, const CUgraphEdgeData** e, size_t* n) {
  return captureInfo(false, s, st, id, g, deps, e, n);
}
CUresult tf_rs_cuStreamGetCaptureInfo_v3_ptsz(CUstream s, CUstreamCaptureStatus* st, cuuint64_t* id, CUgraph* g,
                                              const CUgraphNode** deps, const CUgraphEdgeData** e, size_t* n) {
  return captureInfo(true, s, st, id, g, deps, e, n);
}

CUresult tf_rs_cuGraphDestroy(CUgraph g) {
  TF_READY();
  CUresult r = client().call(FnId::cuGraphDestroy, {u(g)});
  if (r == CUDA_SUCCESS) pageableMirrors().drop(u(g));
  return r;
}
CUresult tf_rs_cuGraphClone(CUgraph* clone, CUgraph g) {
  if (!clone) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  uint64_t out = 0;
  CUresult r = client().call(FnId::cuGraphClone, {u(g)}, &out, 1);
  *clone = h<CUgraph>(out);
  if (r == CUDA_SUCCESS) pageableMirrors().inherit(u(g), out);
  return r;
}
CUresult tf_rs_cuGraphInstantiateWithFlags(CUgraphExec* e, CUgraph g, unsigned long long flags) {
  if (!e) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  uint64_t out = 0;
  CUresult r = client().call(FnId::cuGraphInstantiateWithFlags, {u(g), flags}, &out, 1);
  *e = h<CUgraphExec>(out);
  if (r == CUDA_SUCCESS) pageableMirrors().inherit(u(g), out);
  return r;
}
// Forwarded as cuGraphInstantiateWithFlags (and an upload, if asked for); the outcome in the
// parameters, as the driver reports it.
CUresult tf_rs_cuGraphInstantiateWithParams(CUgraphExec* e, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS* p) {
  if (!e || !p) return CUDA_ERROR_INVALID_VALUE;
  CUresult r = tf_rs_cuGraphInstantiateWithFlags(e, g, p->flags & ~uint64_t(CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD));
  if (r == CUDA_SUCCESS && (p->flags & CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD)) {
    r = tf_rs_cuGraphUpload(*e, p->hUploadStream);
    if (r != CUDA_SUCCESS) {
      tf_rs_cuGraphExecDestroy(*e);
      *e = nullptr;
    }
  }
  p->hErrNode_out = nullptr;
  p->result_out = r == CUDA_SUCCESS ? CUDA_GRAPH_INSTANTIATE_SUCCESS : CUDA_GRAPH_INSTANTIATE_ERROR;
  return r;
}
CUresult tf_rs_cuGraphInstantiateWithParams_ptsz(CUgraphExec* e, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS* p) {
  return tf_rs_cuGraphInstantiateWithParams(e, g, p);
}
CUresult tf_rs_cuGraphExecDestroy(CUgraphExec e) {
  TF_READY();
  CUresult r = client().call(FnId::cuGraphExecDestroy, {u(e)});
  if (r == CUDA_SUCCESS) pageableMirrors().drop(u(e));
  return r;
}
CUresult tf_rs_cuGraphLaunch(CUgraphExec e, CUstream s) { return graphLaunch(FnId::cuGraphLaunch, e, s); }
CUresult tf_rs_cuGraphLaunch_ptsz(CUgraphExec e, CUstream s) { return graphLaunch(FnId::cuGraphLaunch_ptsz, e, s); }
CUresult tf_rs_cuGraphUpload(CUgraphExec e, CUstream s) { return graphLaunch(FnId::cuGraphUpload, e, s); }
CUresult tf_rs_cuGraphUpload_ptsz(CUgraphExec e, CUstream s) { return graphLaunch(FnId::cuGraphUpload_ptsz, e, s); }

CUresult tf_rs_cuGraphAddEmptyNode(CUgraphNode* node, CUgraph g, const CUgraphNode* deps, size_t n) {
  if (n && !deps) return CUDA_ERROR_INVALID_VALUE;
  Writer w = nodeBlob(deps, n);
  return addNode(FnId::cuGraphAddEmptyNode, node, {u(g)}, w);
}
CUresult tf_rs_cuGraphAddMemsetNode(CUgraphNode* node, CUgraph g, const CUgraphNode* deps, size_t n,
                                    const CUDA_MEMSET_NODE_PARAMS* p, CUcontext ctx) {
  if ((n && !deps) || !p) return CUDA_ERROR_INVALID_VALUE;
  Writer w = nodeBlob(deps, n);
  w.bytes(p, sizeof(*p));
  return addNode(FnId::cuGraphAddMemsetNode, node, {u(g), u(ctx ? ctx : currentContext())}, w);
}
CUresult tf_rs_cuGraphAddHostNode(CUgraphNode* node, CUgraph g, const CUgraphNode* deps, size_t n,
                                  const CUDA_HOST_NODE_PARAMS* p) {
  if ((n && !deps) || !p || !p->fn) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  uint64_t token = 0;
  CUresult r = hostNodeToken(*p, &token);
  if (r != CUDA_SUCCESS) return r;
  Writer w = nodeBlob(deps, n);
  return addNode(FnId::cuGraphAddHostNode, node, {u(g), token}, w);
}
CUresult tf_rs_cuGraphAddKernelNode_v2(CUgraphNode* node, CUgraph g, const CUgraphNode* deps,
                                       size_t n, const CUDA_KERNEL_NODE_PARAMS_v2* p) {
  if ((n && !deps) || !p) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  CUfunction f = p->func ? p->func : reinterpret_cast<CUfunction>(p->kern);
  if (!f) return CUDA_ERROR_INVALID_VALUE;
  Writer params;
  CUresult r = packLaunch(f, p->kernelParams, p->extra, nullptr, 0, params);
  if (r != CUDA_SUCCESS) return r;
  Writer w = nodeBlob(deps, n);
  w.bytes(params.data(), params.size());
  return addNode(FnId::cuGraphAddKernelNode_v2, node,
                 {u(g), u(f), p->gridDimX, p->gridDimY, p->gridDimZ, p->blockDimX, p->blockDimY,
                  p->blockDimZ, p->sharedMemBytes, p->func ? u(p->kern) : 0},
                 w);
}
CUresult tf_rs_cuGraphAddKernelNode(CUgraphNode* node, CUgraph g, const CUgraphNode* deps, size_t n,
                                    const CUDA_KERNEL_NODE_PARAMS_v1* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  CUDA_KERNEL_NODE_PARAMS_v2 v2 = kernelParamsV2(*p);
  return tf_rs_cuGraphAddKernelNode_v2(node, g, deps, n, &v2);
}
CUresult tf_rs_cuGraphAddMemcpyNode(CUgraphNode* node, CUgraph g, const CUgraphNode* deps, size_t n,
                                    const CUDA_MEMCPY3D* p, CUcontext ctx) {
  if ((n && !deps) || !p) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  CUDA_MEMCPY3D copy = *p;
  std::vector<uint64_t> pageable;
  CUresult r = memcpyNodeSides(copy, &pageable);
  if (r == CUDA_SUCCESS) {
    Writer w = nodeBlob(deps, n);
    w.bytes(&copy, sizeof(copy));
    r = addNode(FnId::cuGraphAddMemcpyNode, node, {u(g), u(ctx ? ctx : currentContext())}, w);
  }
  return heldBy(r, u(g), pageable);
}
CUresult tf_rs_cuGraphMemcpyNodeSetParams(CUgraphNode node, const CUDA_MEMCPY3D* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  CUDA_MEMCPY3D copy = *p;
  std::vector<uint64_t> pageable;
  CUresult r = memcpyNodeSides(copy, &pageable);
  // Pageable memory is held by the node's graph, known for the nodes added here (not for
  // captured or cloned ones: NOT_SUPPORTED).
  const uint64_t graph = pageableMirrors().graphOf(u(node));
  if (r == CUDA_SUCCESS && !pageable.empty() && !graph) r = CUDA_ERROR_NOT_SUPPORTED;
  if (r == CUDA_SUCCESS)
    r = client().call(FnId::cuGraphMemcpyNodeSetParams, {u(node)}, nullptr, 0, &copy, sizeof(copy));
  return heldBy(r, graph, pageable);
}
CUresult tf_rs_cuGraphExecMemcpyNodeSetParams(CUgraphExec e, CUgraphNode node, const CUDA_MEMCPY3D* p,
                                              CUcontext ctx) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  CUDA_MEMCPY3D copy = *p;
  std::vector<uint64_t> pageable;
  CUresult r = memcpyNodeSides(copy, &pageable);
  if (r == CUDA_SUCCESS)
    r = client().call(FnId::cuGraphExecMemcpyNodeSetParams, {u(e), u(node), u(ctx ? ctx : currentContext())},
                      nullptr, 0, &copy, sizeof(copy));
  return heldBy(r, u(e), pageable);
}
CUresult tf_rs_cuGraphMemsetNodeSetParams(CUgraphNode node, const CUDA_MEMSET_NODE_PARAMS* p) {
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  return client().call(FnId::cuGraphMemsetNodeSetParams, {u(node)}, nullptr, 0, p, sizeof(*p));
}
CUresult tf_rs_cuGraphAddDependencies_v2(CUgraph g, const CUgraphNode* from, const CUgraphNode* to,
                                         const CUgraphEdgeData* edges, size_t n) {
  return changeEdges(FnId::cuGraphAddDependencies_v2, g, from, to, edges, n);
}
CUresult tf_rs_cuGraphAddDependencies(CUgraph g, const CUgraphNode* from, const CUgraphNode* to, size_t n) {
  return tf_rs_cuGraphAddDependencies_v2(g, from, to, nullptr, n);
}
CUresult tf_rs_cuGraphRemoveDependencies_v2(CUgraph g, const CUgraphNode* from, const CUgraphNode* to,
                                            const CUgraphEdgeData* edges, size_t n) {
  return changeEdges(FnId::cuGraphRemoveDependencies_v2, g, from, to, edges, n);
}
CUresult tf_rs_cuGraphRemoveDependencies(CUgraph g, const CUgraphNode* from, const CUgraphNode* to, size_t n) {
  return tf_rs_cuGraphRemoveDependencies_v2(g, from, to, nullptr, n);
}

} // extern "C"
