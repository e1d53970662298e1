// Graphs moving with a session (migration.h, GraphImage): the client's graphs and the bodies
// of its executable graphs walked node by node at capture, each node written as the call a
// client would make to add it; on the target, the same calls made through the handlers (so
// every node is checked as the client's own would be), the executables instantiated again
// from their bodies, and the client's node values made to name the new executables' nodes.
#include <cstring>
#include <functional>

#include "cuda/catalog.h"
#include "remoting/worker/calls.h"

namespace tf::remoting {

namespace {

std::string nodeTypeName(CUgraphNodeType t) {
  switch (t) {
  case CU_GRAPH_NODE_TYPE_GRAPH: return "child graph";
  case CU_GRAPH_NODE_TYPE_WAIT_EVENT: return "event wait";
  case CU_GRAPH_NODE_TYPE_EVENT_RECORD: return "event record";
  case CU_GRAPH_NODE_TYPE_EXT_SEMAS_SIGNAL: return "semaphore signal";
  case CU_GRAPH_NODE_TYPE_EXT_SEMAS_WAIT: return "semaphore wait";
  case CU_GRAPH_NODE_TYPE_MEM_ALLOC: return "memory allocation";
  case CU_GRAPH_NODE_TYPE_MEM_FREE: return "memory free";
  case CU_GRAPH_NODE_TYPE_BATCH_MEM_OP: return "batched memory operation";
  case CU_GRAPH_NODE_TYPE_CONDITIONAL: return "conditional";
  default: return "type " + std::to_string(static_cast<int>(t));
  }
}

std::string noDeps() { return std::string(4, '\0'); }  // u32 0: a node call's dependencies

std::string bytesOf(const void* p, size_t n) { return std::string(static_cast<const char*>(p), n); }

Status cannotMove(const std::string& why) { return failedPrecondition("a graph of the client " + why + ", which cannot migrate yet"); }

}  // namespace

void Session::forgetInBodies(HandleKind k, uint64_t driver) {
  for (auto& [exec, b] : execBodies_) {
    if (k == HandleKind::GraphNode) b.nodeOf.erase(driver);
    if (k == HandleKind::Graph && b.from == driver) {  // its nodes go with it
      b.from = 0;
      b.nodeOf.clear();
    }
  }
}

// ---- the source --------------------------------------------------------------------------------

Status Session::describeGraphs(MigrationImage& img) {
  const DriverApi& api = d();
  auto getEdges = api.fn<decltype(&::cuGraphGetEdges)>(FnId::cuGraphGetEdges);
  auto getType = api.fn<decltype(&::cuGraphNodeGetType)>(FnId::cuGraphNodeGetType);
  auto kernelParams = api.fn<decltype(&::cuGraphKernelNodeGetParams_v2)>(FnId::cuGraphKernelNodeGetParams_v2);
  auto memsetParams = api.fn<decltype(&::cuGraphMemsetNodeGetParams)>(FnId::cuGraphMemsetNodeGetParams);
  auto memcpyParams = api.fn<decltype(&::cuGraphMemcpyNodeGetParams)>(FnId::cuGraphMemcpyNodeGetParams);
  auto hostParams = api.fn<decltype(&::cuGraphHostNodeGetParams)>(FnId::cuGraphHostNodeGetParams);
  if (!getEdges || !getType || !kernelParams || !memsetParams || !memcpyParams || !hostParams)
    return unavailable("the driver cannot describe graphs");
  // Memsets and copies are made in a context: the client's current one (its first otherwise).
  const uint64_t ctx = currentClientValue_ ? currentClientValue_ : img.contexts.empty() ? 0 : img.contexts[0].client;
  auto clientOf = [&](HandleKind first, HandleKind second, uint64_t driver) -> uint64_t {
    if (!driver) return 0;
    if (auto c = handles_.clientValue(first, driver)) return *c;
    return handles_.clientValue(second, driver).value_or(0);
  };

  auto childGraph = api.fn<decltype(&::cuGraphChildGraphNodeGetGraph)>(FnId::cuGraphChildGraphNodeGetGraph);
  std::function<Status(uint64_t, GraphImage*, std::map<uint64_t, uint32_t>*)> describe;
  // One node of gi, as the call that adds it.
  auto describeNode = [&](CUgraphNode n, Recipe* rc, GraphImage* gi) -> Status {
    CUgraphNodeType type = CU_GRAPH_NODE_TYPE_EMPTY;
    if (CUresult r = getType(n, &type); r != CUDA_SUCCESS)
      return unavailable("reading a graph node: CUresult " + std::to_string(r));
    rc->ctx = ctx;
    rc->blob = noDeps();
    if (auto c = handles_.clientValue(HandleKind::GraphNode, reinterpret_cast<uint64_t>(n)))
      rc->made.push_back({HandleKind::GraphNode, *c});
    switch (type) {
    case CU_GRAPH_NODE_TYPE_EMPTY:
      rc->fn = static_cast<uint32_t>(FnId::cuGraphAddEmptyNode);
      rc->args = {0};
      return Status::ok();
    case CU_GRAPH_NODE_TYPE_KERNEL: {
      CUDA_KERNEL_NODE_PARAMS_v2 p{};
      if (CUresult r = kernelParams(n, &p); r != CUDA_SUCCESS)
        return unavailable("reading a kernel node: CUresult " + std::to_string(r));
      if (p.extra) return cannotMove("passes a kernel its arguments by `extra`");
      const uint64_t fn = clientOf(HandleKind::Function, HandleKind::Kernel, reinterpret_cast<uint64_t>(p.func));
      const uint64_t kern = clientOf(HandleKind::Kernel, HandleKind::Function, reinterpret_cast<uint64_t>(p.kern));
      if (!fn) return cannotMove("runs a function the client never asked for");
      const std::vector<ParamSlot>* layout = nullptr;
      const uint64_t driverFn = p.func ? reinterpret_cast<uint64_t>(p.func) : reinterpret_cast<uint64_t>(p.kern);
      if (CUresult r = layoutOf(*this, driverFn, &layout); r != CUDA_SUCCESS)
        return unavailable("reading a kernel's parameters: CUresult " + std::to_string(r));
      const std::string values = packedArguments(*layout, p.kernelParams);
      Writer w;
      encodeLaunch(w, layout->data(), static_cast<uint32_t>(layout->size()), values.data(), values.size(), nullptr, 0,
                   sizeof(CUlaunchAttribute));
      rc->fn = static_cast<uint32_t>(FnId::cuGraphAddKernelNode_v2);
      rc->args = {0, fn, p.gridDimX, p.gridDimY, p.gridDimZ, p.blockDimX, p.blockDimY, p.blockDimZ, p.sharedMemBytes, kern};
      rc->blob += bytesOf(w.data(), w.size());
      return Status::ok();
    }
    case CU_GRAPH_NODE_TYPE_MEMSET: {
      CUDA_MEMSET_NODE_PARAMS p{};
      if (CUresult r = memsetParams(n, &p); r != CUDA_SUCCESS)
        return unavailable("reading a memset node: CUresult " + std::to_string(r));
      rc->fn = static_cast<uint32_t>(FnId::cuGraphAddMemsetNode);
      rc->args = {0, ctx};
      rc->blob += bytesOf(&p, sizeof p);
      return Status::ok();
    }
    case CU_GRAPH_NODE_TYPE_MEMCPY: {
      CUDA_MEMCPY3D p{};
      if (CUresult r = memcpyParams(n, &p); r != CUDA_SUCCESS)
        return unavailable("reading a memcpy node: CUresult " + std::to_string(r));
      if (p.srcMemoryType != CU_MEMORYTYPE_DEVICE || p.dstMemoryType != CU_MEMORYTYPE_DEVICE)
        return cannotMove("copies between host and device memory");
      rc->fn = static_cast<uint32_t>(FnId::cuGraphAddMemcpyNode);
      rc->args = {0, ctx};
      rc->blob += bytesOf(&p, sizeof p);
      return Status::ok();
    }
    case CU_GRAPH_NODE_TYPE_HOST: {
      CUDA_HOST_NODE_PARAMS p{};
      if (CUresult r = hostParams(n, &p); r != CUDA_SUCCESS)
        return unavailable("reading a host node: CUresult " + std::to_string(r));
      if (p.fn != &Session::hostFunctionEntry) return cannotMove("calls a host function the worker did not set");
      rc->fn = static_cast<uint32_t>(FnId::cuGraphAddHostNode);
      rc->args = {0, hostFunctionToken(p.userData)};
      return Status::ok();
    }
    case CU_GRAPH_NODE_TYPE_GRAPH: {  // the graph it embeds, described beside it
      CUgraph embedded = nullptr;
      if (!childGraph || childGraph(n, &embedded) != CUDA_SUCCESS) return unavailable("reading a child graph node");
      GraphImage child;
      child.client = handles_.clientValue(HandleKind::Graph, reinterpret_cast<uint64_t>(embedded)).value_or(0);
      std::map<uint64_t, uint32_t> childIndex;
      TF_RETURN_IF_ERROR(describe(reinterpret_cast<uint64_t>(embedded), &child, &childIndex));
      rc->fn = static_cast<uint32_t>(FnId::cuGraphAddChildGraphNode);
      rc->args = {0, gi->children.size()};
      gi->children.push_back(std::move(child));
      return Status::ok();
    }
    default:
      return cannotMove("has a " + nodeTypeName(type) + " node");
    }
  };

  // A whole graph: nodes in creation order, then the edges between them.
  describe = [&](uint64_t graph, GraphImage* gi, std::map<uint64_t, uint32_t>* index) -> Status {
    gi->ctx = ctx;
    const std::vector<CUgraphNode> nodes = graphNodes(*this, reinterpret_cast<CUgraph>(graph));
    for (CUgraphNode n : nodes) {
      Recipe rc;
      TF_RETURN_IF_ERROR(describeNode(n, &rc, gi));
      index->emplace(reinterpret_cast<uint64_t>(n), static_cast<uint32_t>(gi->nodes.size()));
      gi->nodes.push_back(std::move(rc));
    }
    size_t edges = 0;
    if (CUresult r = getEdges(reinterpret_cast<CUgraph>(graph), nullptr, nullptr, &edges); r != CUDA_SUCCESS)
      return unavailable("reading a graph's edges: CUresult " + std::to_string(r));
    std::vector<CUgraphNode> from(edges), to(edges);
    if (edges && getEdges(reinterpret_cast<CUgraph>(graph), from.data(), to.data(), &edges) != CUDA_SUCCESS)
      return unavailable("reading a graph's edges");
    for (size_t i = 0; i < edges; ++i) {
      auto a = index->find(reinterpret_cast<uint64_t>(from[i])), b = index->find(reinterpret_cast<uint64_t>(to[i]));
      if (a == index->end() || b == index->end()) return unavailable("a graph's edge joins nodes it does not list");
      gi->edges.emplace_back(a->second, b->second);
    }
    return Status::ok();
  };

  for (uint64_t g : handles_.drivers(HandleKind::Graph)) {
    if (childGraphs_.count(g)) continue;  // its parent's node holds it (refused below)
    GraphImage gi;
    gi.client = *handles_.clientValue(HandleKind::Graph, g);
    std::map<uint64_t, uint32_t> index;
    TF_RETURN_IF_ERROR(describe(g, &gi, &index));
    img.graphs.push_back(std::move(gi));
  }
  for (const auto& [exec, b] : execBodies_) {
    auto client = handles_.clientValue(HandleKind::GraphExec, exec);
    if (!client) continue;
    if (!b.unreadable.empty()) return cannotMove("has an executable graph the worker cannot read back: " + b.unreadable);
    GraphImage gi;
    gi.exec = *client;
    gi.flags = b.flags;
    gi.from = b.from ? handles_.clientValue(HandleKind::Graph, b.from).value_or(0) : 0;
    std::map<uint64_t, uint32_t> index;
    TF_RETURN_IF_ERROR(describe(b.body, &gi, &index));
    for (const auto& [node, bodyNode] : b.nodeOf)
      if (auto c = handles_.clientValue(HandleKind::GraphNode, node); c && index.count(bodyNode))
        gi.stands.emplace_back(*c, index[bodyNode]);
    for (uint64_t n : b.disabled)
      if (index.count(n)) gi.disabled.push_back(index[n]);
    img.graphs.push_back(std::move(gi));
  }
  return Status::ok();
}

// ---- the target --------------------------------------------------------------------------------

Result<std::vector<uint64_t>> Session::buildGraph(const GraphImage& gi, uint64_t graph, bool named) {
  auto destroy = d().fn<decltype(&::cuGraphDestroy)>(FnId::cuGraphDestroy);
  auto embeddedOf = d().fn<decltype(&::cuGraphChildGraphNodeGetGraph)>(FnId::cuGraphChildGraphNodeGetGraph);
  if (!destroy || !embeddedOf) return unavailable("the driver cannot build graphs");
  std::vector<uint64_t> nodes;  // client values
  for (const Recipe& n : gi.nodes) {
    std::vector<uint64_t> args = n.args;
    args[0] = graph;
    std::vector<uint64_t> temporary;  // a child node's graph, built first, copied into the node
    if (n.fn == static_cast<uint32_t>(FnId::cuGraphAddChildGraphNode)) {
      CallOut made;
      if (CUresult r = runAsClient(gi.ctx, static_cast<uint32_t>(FnId::cuGraphCreate), {0}, {}, {}, made);
          r != CUDA_SUCCESS)
        return failedPrecondition("creating a child graph here failed (CUresult " + std::to_string(r) + ")");
      auto built = buildGraph(gi.children[args[1]], made.v[0], /*named=*/false);
      if (!built) return built.status();
      args[1] = made.v[0];
      temporary = std::move(*built);
      temporary.push_back(made.v[0]);
    }
    CallOut added;
    bool adopted = false;
    CUresult r = runAsClient(gi.ctx, n.fn, args, n.blob, named ? n.made : std::vector<Recipe::Made>{}, added, &adopted);
    if (!temporary.empty()) {  // the client never knew it
      const uint64_t g = *handles_.resolve(HandleKind::Graph, temporary.back());
      temporary.pop_back();
      destroy(reinterpret_cast<CUgraph>(g));
      for (uint64_t t : temporary) forget(HandleKind::GraphNode, *handles_.resolve(HandleKind::GraphNode, t));
      forget(HandleKind::Graph, g);
    }
    if (r != CUDA_SUCCESS)
      return failedPrecondition(std::string(cuda::catalogEntry(static_cast<int>(n.fn)).symbol) + " here failed (CUresult " +
                                std::to_string(r) + ")");
    if (!adopted) return dataLoss("a graph node appears twice in the image");
    nodes.push_back(added.v[0]);
    if (named && n.fn == static_cast<uint32_t>(FnId::cuGraphAddChildGraphNode)) {
      CUgraph embedded = nullptr;
      if (embeddedOf(reinterpret_cast<CUgraphNode>(*handles_.resolve(HandleKind::GraphNode, added.v[0])), &embedded) !=
          CUDA_SUCCESS)
        return unavailable("reading a child graph node built here");
      TF_RETURN_IF_ERROR(nameEmbedded(gi.children[n.args[1]], embedded));
    }
  }
  if (!gi.edges.empty()) {
    Writer w;  // from..., to... in one list
    w.u32(static_cast<uint32_t>(gi.edges.size() * 2));
    for (auto [from, to] : gi.edges) w.u64(nodes[from]);
    for (auto [from, to] : gi.edges) w.u64(nodes[to]);
    CallOut out;
    if (CUresult r = runAsClient(gi.ctx, static_cast<uint32_t>(FnId::cuGraphAddDependencies), {graph},
                                 bytesOf(w.data(), w.size()), {}, out);
        r != CUDA_SUCCESS)
      return failedPrecondition("joining a graph's nodes here failed (CUresult " + std::to_string(r) + ")");
  }
  return nodes;
}

Status Session::nameEmbedded(const GraphImage& gi, CUgraph embedded) {
  auto embeddedOf = d().fn<decltype(&::cuGraphChildGraphNodeGetGraph)>(FnId::cuGraphChildGraphNodeGetGraph);
  if (gi.client) {
    if (!handles_.adopt(HandleKind::Graph, gi.client, reinterpret_cast<uint64_t>(embedded)))
      return dataLoss("a child graph appears twice in the image");
    childGraphs_.insert(reinterpret_cast<uint64_t>(embedded));
  }
  // The node copies, in creation order as the image lists them.
  const std::vector<CUgraphNode> nodes = graphNodes(*this, embedded);
  if (nodes.size() != gi.nodes.size()) return failedPrecondition("a child graph came out with other nodes here");
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const auto& m : gi.nodes[i].made)
      if (!handles_.adopt(HandleKind::GraphNode, m.client, reinterpret_cast<uint64_t>(nodes[i])))
        return dataLoss("a graph node appears twice in the image");
    if (gi.nodes[i].fn == static_cast<uint32_t>(FnId::cuGraphAddChildGraphNode)) {
      CUgraph inner = nullptr;
      if (!embeddedOf || embeddedOf(nodes[i], &inner) != CUDA_SUCCESS) return unavailable("reading a child graph node built here");
      TF_RETURN_IF_ERROR(nameEmbedded(gi.children[gi.nodes[i].args[1]], inner));
    }
  }
  return Status::ok();
}

Status Session::adoptGraphs(const MigrationImage& img) {
  auto destroy = d().fn<decltype(&::cuGraphDestroy)>(FnId::cuGraphDestroy);
  auto setEnabled = d().fn<decltype(&::cuGraphNodeSetEnabled)>(FnId::cuGraphNodeSetEnabled);
  if (!destroy || !setEnabled) return unavailable("the driver cannot build graphs");
  auto failed = [](const char* what, CUresult r) {
    return failedPrecondition(std::string(what) + " here failed (CUresult " + std::to_string(r) + ")");
  };
  for (const GraphImage& gi : img.graphs) {
    if (gi.ctx && !handles_.resolve(HandleKind::Context, gi.ctx)) return dataLoss("a graph in a context the image does not have");
    CallOut out;
    bool adopted = false;
    std::vector<Recipe::Made> made;
    if (gi.client) made.push_back({HandleKind::Graph, gi.client});
    if (CUresult r = runAsClient(gi.ctx, static_cast<uint32_t>(FnId::cuGraphCreate), {0}, {}, made, out, &adopted);
        r != CUDA_SUCCESS || !adopted)
      return r != CUDA_SUCCESS ? failed("creating a graph", r) : dataLoss("a graph appears twice in the image");
    const uint64_t graph = out.v[0];
    auto nodes = buildGraph(gi, graph, /*named=*/true);  // client values
    if (!nodes) return nodes.status();
    if (!gi.exec) continue;
    // A body: the executable made from it (with a body of its own), then the body built here
    // goes: the client never knew it.
    CallOut exec;
    if (CUresult r = runAsClient(gi.ctx, static_cast<uint32_t>(FnId::cuGraphInstantiateWithFlags), {graph, gi.flags},
                                 {}, {{HandleKind::GraphExec, gi.exec}}, exec, &adopted);
        r != CUDA_SUCCESS || !adopted)
      return r != CUDA_SUCCESS ? failed("instantiating a graph", r) : dataLoss("an executable graph appears twice in the image");
    const uint64_t driverExec = *handles_.resolve(HandleKind::GraphExec, gi.exec);
    ExecBody& b = execBodies_.at(driverExec);
    if (!b.body) return failedPrecondition("an executable graph's body cannot be copied here");
    std::vector<uint64_t> built;  // driver values of the graph built here, by index
    for (uint64_t n : *nodes) built.push_back(*handles_.resolve(HandleKind::GraphNode, n));
    const std::map<uint64_t, uint64_t> byBuilt = std::move(b.nodeOf);
    b.nodeOf.clear();
    b.from = 0;
    if (gi.from) {
      auto from = handles_.resolve(HandleKind::Graph, gi.from);
      if (!from) return dataLoss("an executable graph made from a graph the image does not have");
      b.from = *from;
    }
    for (auto [client, index] : gi.stands) {
      auto node = handles_.resolve(HandleKind::GraphNode, client);
      auto bodyNode = byBuilt.find(built[index]);
      if (!node || bodyNode == byBuilt.end()) return dataLoss("an executable graph's node names a node the image does not have");
      b.nodeOf[*node] = bodyNode->second;
    }
    for (uint32_t index : gi.disabled) {
      auto bodyNode = byBuilt.find(built[index]);
      if (bodyNode == byBuilt.end()) return dataLoss("an executable graph's disabled node is not in it");
      if (CUresult r = setEnabled(reinterpret_cast<CUgraphExec>(driverExec), reinterpret_cast<CUgraphNode>(bodyNode->second), 0);
          r != CUDA_SUCCESS)
        return failed("disabling a node of an executable graph", r);
      b.disabled.insert(bodyNode->second);
    }
    const uint64_t driverGraph = *handles_.resolve(HandleKind::Graph, graph);
    destroy(reinterpret_cast<CUgraph>(driverGraph));
    for (uint64_t n : built) forget(HandleKind::GraphNode, n);
    forget(HandleKind::Graph, driverGraph);
  }
  return Status::ok();
}

}  // namespace tf::remoting
