// CUDA arrays (api_array.cpp): device memory laid out row after row, slice after slice.
#pragma once

#include "softgpu/driver/api.h"

namespace tf::softgpu {

struct Array {
  CUDA_ARRAY3D_DESCRIPTOR desc{};
  size_t elementBytes = 0; // channels x channel bytes
  size_t pitch = 0;        // bytes per row: Width x elementBytes
  size_t rows = 1;         // rows per slice: Height, or 1 for a 1D array
  size_t slices = 1;       // Depth (or layers), or 1
  CUdeviceptr base = 0;    // the device memory behind it
};

// The array a handle names, or nullptr.
Array* arrayOf(CUarray handle);

} // namespace tf::softgpu
