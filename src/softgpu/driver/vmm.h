// VMM-mapped memory (cuMemCreate's memfd behind cuMemMap) read and cleared knowing its file, so
// that memory a program never wrote costs nothing however often it is copied out or cleared:
// a copy out of it skips the memfd's holes (SEEK_DATA) and reads pages not in the page cache
// with pread, writing zeros for holes instead of reading them through the mapping (which would
// commit them), and a zero memset over whole pages punches holes (the mappings then read
// zeros, as a kernel sees them). Both run as the copy or memset they replace (inside its stream
// work), so they are ordered like it.
//
//   if (auto r = copyFromVmm(dst, srcDeviceAddress, n)) return *r;  // else copy as usual
//   if (auto r = zeroVmm(dstDeviceAddress, n)) return *r;           // else memset as usual
#pragma once

#include <cstdint>
#include <optional>

#include <cuda.h>

namespace tf::softgpu {

// Copies n bytes from device address `src` into host memory `dst` (holes as zeros, data
// through the mapping) when [src, src + n) lies inside one VMM mapping and does not overlap
// `dst`; nullopt otherwise (the caller copies through the mapping).
std::optional<CUresult> copyFromVmm(uint8_t* dst, uint64_t src, uint64_t n);

// Zeroes [dst, dst + n) when it lies inside one VMM mapping: whole pages become holes, partial
// ones are written; nullopt otherwise (the caller writes the zeros).
std::optional<CUresult> zeroVmm(uint64_t dst, uint64_t n);

} // namespace tf::softgpu
