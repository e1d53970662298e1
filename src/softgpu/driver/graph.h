// CUDA graphs: nodes built explicitly or captured from streams, instantiated into an ordered
// list of work and launched as one piece of stream work.
//
// A node keeps what it does (NodeParams) beside the work built from it, so that it can be read
// back (cuGraphKernelNodeGetParams...), changed (...SetParams, the exec-node setters,
// cuGraphExecUpdate) and cloned (cuGraphClone). An executable graph holds copies of the work,
// so later changes to the graph do not reach it, as on the driver.
#pragma once

#include "softgpu/driver/driver.h"

namespace tf::softgpu {

struct GraphNode;

// The work of a 3D copy with its sides checked now (api_memcpy.cpp): a memcpy node's body.
CUresult memcpy3DWork(const CUDA_MEMCPY3D& p, std::function<CUresult()>* work);

// What a node does. Which fields count depends on the node's type; a captured node whose kind
// is not described here (event waits, allocations) has `described` false.
struct NodeParams {
  bool described = false;
  Context* context = nullptr;
  CUDA_KERNEL_NODE_PARAMS kernel{}; // kernelParams and extra stay null: the arguments are `args`
  std::vector<uint8_t> args;        // packed as the kernel's PTX signature lays them out
  CUDA_MEMSET_NODE_PARAMS memset{};
  CUDA_MEMCPY3D memcpy{};
  CUDA_HOST_NODE_PARAMS host{};
  // Kernel node attributes, as set (hints without effect here: access policy, priority...).
  std::map<CUkernelNodeAttrID, CUkernelNodeAttrValue> attributes;
};

// Fills the parameters of a node being captured; called only when the stream captures, so a
// launch that is not captured pays nothing for it.
using DescribeNode = std::function<void(NodeParams*)>;

struct Graph {
  std::vector<std::unique_ptr<GraphNode>> nodes; // in creation order
  GraphNode* owner = nullptr;                    // the child-graph node that owns this graph
  GraphNode* add(CUgraphNodeType type, std::function<CUresult()> run,
                 const std::vector<GraphNode*>& deps);
  ~Graph(); // unregisters the graph and its nodes (and their child graphs)
};

struct GraphNode {
  Graph* graph = nullptr;
  CUgraphNodeType type = CU_GRAPH_NODE_TYPE_EMPTY;
  std::function<CUresult()> run; // empty for empty and child-graph nodes
  std::vector<GraphNode*> deps;
  NodeParams params;
  std::unique_ptr<Graph> child;     // child-graph nodes own a copy of the graph they were given
  GraphNode* clonedFrom = nullptr;  // cuGraphNodeFindInClone
  std::vector<void*> argPointers;   // the kernelParams array the getter hands out
};

// Handles to objects: CUDA_ERROR_INVALID_VALUE for anything the driver did not give out.
CUresult graphOf(CUgraph h, Graph** out);
CUresult nodeOf(CUgraphNode h, GraphNode** out);
// The two ends of an edge of g (distinct nodes of g), or INVALID_VALUE.
CUresult edgeOf(Graph* g, CUgraphNode from, CUgraphNode to, GraphNode** a, GraphNode** b);
// Kahn's order of a graph's nodes; INVALID_VALUE for a cycle.
CUresult topologicalOrder(Graph* g, std::vector<GraphNode*>* order);
// A kernel node's parameters from the caller's: the function checked, the arguments packed.
CUresult kernelNodeParams(const CUDA_KERNEL_NODE_PARAMS& k, NodeParams* out);
// The work of a kernel, memset, memcpy or host node with these parameters, checked now.
CUresult buildWork(CUgraphNodeType type, const NodeParams& p, std::function<CUresult()>* work);
// The work a node does when launched, child graphs flattened into it (empty: nothing to do).
CUresult nodeWork(GraphNode* n, std::function<CUresult()>* work);
// A copy of a graph: nodes, parameters, edges and child graphs (each node knows its original).
std::unique_ptr<Graph> cloneGraph(const Graph& g);

struct GraphExec {
  Context* context = nullptr;
  unsigned long long flags = 0;
  struct Entry {
    const GraphNode* source; // the node of the instantiated graph (a key, never dereferenced)
    CUgraphNodeType type;
    std::function<CUresult()> run;
    bool enabled = true;
  };
  std::vector<Entry> order;            // topological
  // By creation index of the instantiated graph's nodes (cuGraphExecUpdate pairs nodes by it):
  // the node's entry, and its dependencies' creation indexes, sorted.
  std::vector<size_t> byCreation;
  std::vector<std::vector<size_t>> depsByCreation;
  Entry* find(const GraphNode* n);     // nullptr if n was not in the instantiated graph
};

struct CaptureState {
  Graph* graph = nullptr;
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
  unsigned long long id = 0;
  bool invalidated = false;
  Stream* origin = nullptr;
  std::map<Stream*, std::vector<GraphNode*>> frontier; // per joined stream
};

} // namespace tf::softgpu
