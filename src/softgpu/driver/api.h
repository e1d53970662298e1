// Declarations of every implementation function, tf_sg_<symbol>, expanded from the catalog so
// that an implementation whose signature differs from the ABI does not compile. Implementing a
// driver function means defining its tf_sg_ function in an api_*.cpp file; exports.cpp
// exports every catalog symbol and answers CUDA_ERROR_NOT_SUPPORTED for the ones not defined.
#pragma once

#include <cuda.h>
#include <cudaProfiler.h> // the catalog lists cuProfilerInitialize/Start/Stop too

#include "softgpu/driver/driver.h"

extern "C" {
#define TF_CU_FN(symbol, base, version, perThread, plain, params, args) CUresult tf_sg_##symbol params;
#include "cuda/catalog.inc"
#undef TF_CU_FN
}

namespace tf::softgpu {


CUresult toCuResult(const Status& s);

} // namespace tf::softgpu
