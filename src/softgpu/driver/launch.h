// Kernel launches: argument packing from the PTX signature, configuration checks, and the
// work that runs the kernel on the executor under the device's execution lock.
#pragma once

#include "softgpu/driver/module.h"

namespace tf::softgpu {

struct LaunchRequest {
  Function* function = nullptr;
  cuda::Dim3 grid, block;
  uint32_t sharedBytes = 0;
  bool cooperative = false;
  void** kernelParams = nullptr;
  void** extra = nullptr;
};

// Packs the arguments (kernelParams or extra) as the PTX signature lays them out.
CUresult packArguments(const LaunchRequest& req, std::vector<uint8_t>* out);
// A kernel node's parameters for the launch (graph.h), arguments packed.
struct NodeParams;
CUresult describeKernelNode(const LaunchRequest& req, NodeParams* p);
// Checks the configuration and packs the arguments into a self-contained piece of work.
CUresult prepareLaunch(const LaunchRequest& req, Context* ctx, std::function<CUresult()>* work);
CUresult launch(const LaunchRequest& req, CUstream stream);

} // namespace tf::softgpu
