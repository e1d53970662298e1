#include "softgpu/driver/launch.h"

#include <chrono>
#include <cstring>
#include <thread>

#include "common/log.h"
#include "softgpu/driver/graph.h"
#include "softgpu/driver/stream.h"

namespace tf::softgpu {

CUresult packArguments(const LaunchRequest& req, std::vector<uint8_t>* out) {
  const cuda::KernelInfo& k = *req.function->info;
  // Arguments: kernelParams[i] points at argument i; sizes come from the PTX signature.
  std::vector<uint8_t>& params = *out;
  params.assign(k.paramBytes, 0);
  if (req.kernelParams) {
    for (size_t i = 0; i < k.params.size(); ++i) {
      if (!req.kernelParams[i]) return CUDA_ERROR_INVALID_VALUE;
      memcpy(params.data() + k.params[i].offset, req.kernelParams[i], k.params[i].size);
    }
  } else if (req.extra) {
    const void* buffer = nullptr;
    size_t size = 0;
    for (void** e = req.extra; *e != CU_LAUNCH_PARAM_END; e += 2) {
      if (*e == CU_LAUNCH_PARAM_BUFFER_POINTER) buffer = e[1];
      else if (*e == CU_LAUNCH_PARAM_BUFFER_SIZE) size = *static_cast<size_t*>(e[1]);
      else return CUDA_ERROR_INVALID_VALUE;
    }
    if ((!buffer && k.paramBytes) || size < k.paramBytes) return CUDA_ERROR_INVALID_VALUE;
    if (k.paramBytes) memcpy(params.data(), buffer, k.paramBytes);  // (a kernel without parameters: none)
  } else if (!k.params.empty()) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

CUresult describeKernelNode(const LaunchRequest& req, NodeParams* p) {
  CUDA_KERNEL_NODE_PARAMS& k = p->kernel;
  k = {};
  // cudart launches CUkernels (Function objects here too) and maps a node's `kern` back to its
  // host stub, as for the nodes it adds (where it sets func and kern alike).
  k.func = reinterpret_cast<CUfunction>(req.function);
  k.kern = reinterpret_cast<CUkernel>(req.function);
  k.ctx = reinterpret_cast<CUcontext>(p->context);
  k.gridDimX = req.grid.x;
  k.gridDimY = req.grid.y;
  k.gridDimZ = req.grid.z;
  k.blockDimX = req.block.x;
  k.blockDimY = req.block.y;
  k.blockDimZ = req.block.z;
  k.sharedMemBytes = req.sharedBytes;
  return packArguments(req, &p->args);
}

CUresult prepareLaunch(const LaunchRequest& req, Context* ctx, std::function<CUresult()>* work) {
  Function* f = req.function;
  const cuda::KernelInfo& k = *f->info;
  const DeviceModel& model = *ctx->device->config.model;
  const uint64_t threads = req.block.count();
  if (!k.unsupported.empty()) {
    TF_LOG(Error, "kernel %s cannot run on the soft GPU: %s", k.name.c_str(), k.unsupported.c_str());
    return CUDA_ERROR_NOT_SUPPORTED;
  }
  if (req.grid.x == 0 || req.grid.y == 0 || req.grid.z == 0 || threads == 0)
    return CUDA_ERROR_INVALID_VALUE;
  if (req.block.x > 1024 || req.block.y > 1024 || req.block.z > 64 || threads > 1024 ||
      threads > k.maxThreadsPerBlock)
    return CUDA_ERROR_INVALID_VALUE;
  if (req.grid.y > 65535 || req.grid.z > 65535 || req.grid.x > 2147483647u)
    return CUDA_ERROR_INVALID_VALUE;
  if (k.reqNtid[0] && (req.block.x != k.reqNtid[0] || req.block.y != std::max(1u, k.reqNtid[1]) ||
                       req.block.z != std::max(1u, k.reqNtid[2])))
    return CUDA_ERROR_INVALID_VALUE;
  if (req.sharedBytes > static_cast<uint32_t>(f->maxDynamicShared) ||
      k.staticSharedBytes + req.sharedBytes > static_cast<uint32_t>(model.sharedPerBlockOptin))
    return CUDA_ERROR_INVALID_VALUE;
  if (req.cooperative) {
    // every block resident at once: the occupancy API's bound (threads, registers, shared)
    const int perSm = maxActiveBlocks(f, static_cast<int>(threads), req.sharedBytes);
    if (req.grid.count() > static_cast<uint64_t>(perSm) * model.smCount)
      return CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE;
  }
  std::vector<uint8_t> params;
  TF_TRY(packArguments(req, &params));

  Device* dev = ctx->device;
  Module* module = f->module;
  const int kernel = f->kernel;
  cuda::LaunchConfig cfg;
  cfg.grid = req.grid;
  cfg.block = req.block;
  cfg.dynamicSharedBytes = req.sharedBytes;
  cfg.cooperative = req.cooperative;
  *work = [dev, module, kernel, cfg, params = std::move(params)]() mutable -> CUresult {
    Driver& drv = driver();
    cuda::LaunchConfig c = cfg;
    c.params = params.data();
    c.paramBytes = static_cast<uint32_t>(params.size());
    auto lock = dev->state->lockExecution(dev->slot);
    const auto start = std::chrono::steady_clock::now();
    auto account = [&] {
      dev->localBusyNs += static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                    std::chrono::steady_clock::now() - start)
                                                    .count());
      dev->localKernels.fetch_add(1, std::memory_order_relaxed);
    };
    if (drv.modelTiming) {
      uint64_t ns = drv.modelLaunchNs + drv.modelThreadNs * c.grid.count() * c.block.count();
      std::this_thread::sleep_for(std::chrono::nanoseconds(ns));
      account();
      return CUDA_SUCCESS;
    }
    std::string why;
    CUresult r = module->loaded->launch(kernel, c, addressSpace(), &why);
    account();
    if (r != CUDA_SUCCESS)
      TF_LOG(Error, "kernel %s: %s", module->loaded->kernels()[kernel].name.c_str(), why.c_str());
    return r;
  };
  return CUDA_SUCCESS;
}

CUresult launch(const LaunchRequest& req, CUstream stream) {
  Context* ctx;
  TF_TRY(requireContext(&ctx));
  if (!registryOf<Function>().find(req.function)) return CUDA_ERROR_INVALID_HANDLE;
  Stream* s;
  TF_TRY(resolveStream(stream, ctx, &s));
  std::function<CUresult()> work;
  TF_TRY(prepareLaunch(req, ctx, &work));
  const DescribeNode describe = [&req](NodeParams* p) { (void)describeKernelNode(req, p); };
  return submit(s, OpKind::Kernel, std::move(work), nullptr, {}, &describe);
}

} // namespace tf::softgpu
