// cuLaunchKernel, cuLaunchKernelEx, cuLaunchCooperativeKernel.
#include "softgpu/driver/launch.h"

using namespace tf::softgpu;

extern "C" {

CUresult tf_sg_cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                              unsigned by, unsigned bz, unsigned smem, CUstream stream,
                              void** params, void** extra) {
  if (params && extra) return CUDA_ERROR_INVALID_VALUE;
  LaunchRequest r;
  r.function = reinterpret_cast<Function*>(f);
  r.grid = {gx, gy, gz};
  r.block = {bx, by, bz};
  r.sharedBytes = smem;
  r.kernelParams = params;
  r.extra = extra;
  return launch(r, stream);
}

CUresult tf_sg_cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                         unsigned bx, unsigned by, unsigned bz, unsigned smem,
                                         CUstream stream, void** params) {
  LaunchRequest r;
  r.function = reinterpret_cast<Function*>(f);
  r.grid = {gx, gy, gz};
  r.block = {bx, by, bz};
  r.sharedBytes = smem;
  r.kernelParams = params;
  r.cooperative = true;
  return launch(r, stream);
}

CUresult tf_sg_cuLaunchKernelEx(const CUlaunchConfig* config, CUfunction f, void** params,
                                void** extra) {
  if (!config || (params && extra)) return CUDA_ERROR_INVALID_VALUE;
  if (config->numAttrs && !config->attrs) return CUDA_ERROR_INVALID_VALUE;
  LaunchRequest r;
  r.function = reinterpret_cast<Function*>(f);
  r.grid = {config->gridDimX, config->gridDimY, config->gridDimZ};
  r.block = {config->blockDimX, config->blockDimY, config->blockDimZ};
  r.sharedBytes = config->sharedMemBytes;
  r.kernelParams = params;
  r.extra = extra;
  for (unsigned i = 0; i < config->numAttrs; ++i) {
    const CUlaunchAttribute& a = config->attrs[i];
    switch (a.id) {
    case CU_LAUNCH_ATTRIBUTE_COOPERATIVE: r.cooperative = a.value.cooperative != 0; break;
    case CU_LAUNCH_ATTRIBUTE_IGNORE:
    case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW:
    case CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION:
    case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
    case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION:
    case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT:
    case CU_LAUNCH_ATTRIBUTE_PRIORITY:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP:
    case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN: break; // scheduling hints: no effect on the CPU
    default: return CUDA_ERROR_INVALID_VALUE;
    }
  }
  return launch(r, config->hStream);
}

} // extern "C"
