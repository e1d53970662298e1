// Entry points only the soft GPU exports, outside the CUDA ABI: components that may run on it
// find them with dlsym on the driver they loaded and do without them on NVIDIA's.
#pragma once

#include <cstddef>

#include <cuda.h>

namespace tf::cuda {

// The memory behind device memory allocated with cuMemAlloc (the soft GPU keeps it in host
// pages), as a descriptor another process can map (MAP_SHARED from offset 0): the allocation
// lives in that memory from then on, as for an IPC export. *fd is the caller's to close;
// *bytes: the allocation's size. CUDA_ERROR_INVALID_VALUE for anything but the base of such
// an allocation (pool, imported, managed and host memory are refused).
using ShareDeviceMemory = CUresult (*)(CUdeviceptr base, int* fd, size_t* bytes);
inline constexpr char kShareDeviceMemory[] = "tfSoftGpuShareDeviceMemory";

// The same for managed memory (cuMemAllocManaged, whose device address is its host address),
// for a process that maps it at that address: both then use one memory. *bytes: the allocation's
// size rounded up to whole pages (what to map). CUDA_ERROR_INVALID_VALUE for anything but the
// base of managed memory.
using ShareManagedMemory = CUresult (*)(CUdeviceptr base, int* fd, size_t* bytes);
inline constexpr char kShareManagedMemory[] = "tfSoftGpuShareManagedMemory";

} // namespace tf::cuda
