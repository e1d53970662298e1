// CUDA arrays (api_array.cpp): device memory laid out row after row, slice after slice.
#pragma once

#include <vector>

#include "softgpu/driver/api.h"

namespace tf::softgpu {

struct Array {
  CUDA_ARRAY3D_DESCRIPTOR desc{};
  size_t elementBytes = 0; // channels x channel bytes
  size_t pitch = 0;        // bytes per row: Width x elementBytes
  size_t rows = 1;         // rows per slice: Height, or 1 for a 1D array
  size_t slices = 1;       // Depth (or layers), or 1
  CUdeviceptr base = 0;    // the device memory behind it
  bool mipmapLevel = false; // a level of a mipmapped array, destroyed with it
};

// A mipmapped array: its levels, each an Array of half the extent of the one before (at least
// 1; the layer count of a layered array stays).
struct MipmappedArray {
  CUDA_ARRAY3D_DESCRIPTOR desc{};
  std::vector<Array*> levels;
};

// The array a handle names, or nullptr.
Array* arrayOf(CUarray handle);
// The mipmapped array a handle names, or nullptr.
MipmappedArray* mipmappedArrayOf(CUmipmappedArray handle);

} // namespace tf::softgpu
