// Running a decoded kernel: the per-warp interpreter loop, CTA scheduling (warps switch at
// barriers), and the grid spread over the thread pool.
#pragma once

#include <string>

#include <cuda.h>

#include "cuda/kernel_executor.h"
#include "ptx/decoder.h"

namespace tf::ptx {

CUresult launchKernel(const DecodedModule& dm, int kernel, const std::vector<uint64_t>& symAddr,
                      const cuda::LaunchConfig& config, const cuda::DeviceMemory& memory,
                      std::string* message);

} // namespace tf::ptx
