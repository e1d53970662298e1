// CHECK for the programs the migration tests move (migrate_program.cu, and the hypervisor's
// two_device_program.cu): a failed CUDA call prints "FAIL <call>: <error> (line N)" and main
// returns 1, so the test sees both the line and the exit code.
#pragma once

#include <cstdio>

#include <cuda_runtime.h>

#define CHECK(x)                                                                             \
  do {                                                                                       \
    cudaError_t err_ = (x);                                                                  \
    if (err_ != cudaSuccess) {                                                               \
      printf("FAIL %s: %s (line %d)\n", #x, cudaGetErrorString(err_), __LINE__);             \
      return 1;                                                                              \
    }                                                                                        \
  } while (0)
