// TF_TRACE_ERRORS=1: every exported driver call that fails is logged with its result (the
// soft GPU's and the remoting stub's libcuda.so.1), to find what a library such as cuBLAS
// trips over without a debugger. CUDA_ERROR_NOT_READY (a query's answer) is not a failure.
#pragma once

#include <cstdlib>

#include <cuda.h>

#include "common/log.h"

namespace tf::cuda {

inline CUresult traceResult(const char* symbol, CUresult r) {
  static const bool on = [] {
    const char* v = std::getenv("TF_TRACE_ERRORS");
    return v && *v && *v != '0';
  }();
  if (on && r != CUDA_SUCCESS && r != CUDA_ERROR_NOT_READY)
    TF_LOG(Warn, "%s returned %d", symbol, static_cast<int>(r));
  return r;
}

} // namespace tf::cuda
