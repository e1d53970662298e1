// Entry points only the soft GPU exports, outside the CUDA ABI: components that may run on it
// find them with dlsym on the driver they loaded and do without them on NVIDIA's.
#pragma once

#include <cstddef>
#include <cstdint>

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

// Where the soft GPU keeps device addresses, the same in every process: device d's window is
// [kWindowBase + d * kWindowStride, + kWindowStride), whatever the devices' models and memory
// (a device of more than kWindowStride / 2 bytes takes whole multiples of the stride, and so
// does every device of that process). Every process holds the windows of kMinWindows devices
// at least, so one with fewer devices can still recreate another's addresses (of device 5,
// say). A process where something else holds that range gets its window elsewhere (with a
// warning); DeviceWindow tells which.
inline constexpr uint64_t kWindowBase = 0x2000'0000'0000ull;
inline constexpr uint64_t kWindowStride = 1ull << 40;
inline constexpr int kMinWindows = 8;

// Device `device`'s window of device addresses in this process: *base, *bytes, and *fixed = 1
// when it is where kWindowBase puts it (so another process's addresses can be recreated here),
// 0 when the range was taken and the window went elsewhere. CUDA_ERROR_INVALID_DEVICE for no
// such device.
using DeviceWindow = CUresult (*)(CUdevice device, CUdeviceptr* base, size_t* bytes, int* fixed);
inline constexpr char kDeviceWindow[] = "tfSoftGpuDeviceWindow";

// Module loading with globals at given device addresses (a migrated program's `__device__`
// variables where its cudart cached them). Loads `image` (anything cuModuleLoadData takes) in
// the current context, translated at once even for a library, with each named global
// allocated at exactly its address (anywhere in the window of any device, as
// cuMemAddressReserve takes) and initialised from the image; globals not named go where they
// would. Refused, with nothing left allocated and a log line naming the global and why:
// CUDA_ERROR_NOT_FOUND for a name the module has no global of, CUDA_ERROR_INVALID_VALUE for a
// null or repeated name or an address outside the window or misaligned for the global (page
// alignment at least: each global has pages of its own), CUDA_ERROR_ALREADY_MAPPED for an
// address whose range is not free.
struct GlobalPlacement {
  const char* name;     // the global's name in the PTX (mangled, as cudart registers it)
  CUdeviceptr address;
};
using ModuleLoadPlaced = CUresult (*)(CUmodule* out, const void* image,
                                      const GlobalPlacement* placements, unsigned count);
inline constexpr char kModuleLoadPlaced[] = "tfSoftGpuModuleLoadPlaced";
// The same as a CUlibrary (cuLibraryLoadData's handle; cudart 12 loads its fatbins so).
using LibraryLoadPlaced = CUresult (*)(CUlibrary* out, const void* image,
                                       const GlobalPlacement* placements, unsigned count);
inline constexpr char kLibraryLoadPlaced[] = "tfSoftGpuLibraryLoadPlaced";

} // namespace tf::cuda
