// CUDA graphs: nodes built explicitly or captured from streams, instantiated into an ordered
// list of work and launched as one piece of stream work.
#pragma once

#include "softgpu/driver/driver.h"

namespace tf::softgpu {

// The work of a 3D copy with its sides checked now (api_memcpy.cpp): a memcpy node's body.
CUresult memcpy3DWork(const CUDA_MEMCPY3D& p, std::function<CUresult()>* work);

struct GraphNode {
  Graph* graph = nullptr;
  CUgraphNodeType type = CU_GRAPH_NODE_TYPE_EMPTY;
  std::function<CUresult()> run; // empty for empty nodes
  std::vector<GraphNode*> deps;
};

struct Graph {
  std::vector<std::unique_ptr<GraphNode>> nodes;
  GraphNode* add(CUgraphNodeType type, std::function<CUresult()> run,
                 const std::vector<GraphNode*>& deps);
};

struct GraphExec {
  Context* context = nullptr;
  std::vector<std::function<CUresult()>> order; // topological
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
