// Synchronous copies between pageable memory and device memory with one CPU copy instead of
// two over shared memory: the worker hands this process a mapping of the device allocation
// (worker/shared_device.cpp), waits as the copy would wait for earlier work, and the stub then
// copies between the caller's buffer and the mapping itself; the bytes do not pass through the
// ring and the worker does not copy them again.
//
//   CUresult r;
//   if (copyThroughMapping(true, dst, src, n, &r)) return r;
//   ... send the bytes through the transport ...
//
// Copies of kDirectMin bytes or more into or out of cuMemAlloc memory of up to kMaxMapped
// bytes try it. Where the worker cannot (TCP, NVIDIA's driver, memory it cannot share) the call
// answers false and the caller sends the bytes as before; the worker is not asked again for
// that allocation (for any, over a transport that cannot). TF_REMOTE_PAGEABLE_DIRECT=0 turns
// it off (the benchmark's baseline).
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda.h>

namespace tf::remoting::stub {

inline constexpr size_t kDirectMin = size_t(64) << 10;
inline constexpr size_t kMaxMapped = size_t(4) << 30;

// toDevice: host -> [device, device + n), else the reverse. True when the copy was done this
// way, or failed for its own reasons: *result is then its result.
bool copyThroughMapping(bool toDevice, CUdeviceptr device, void* host, size_t n, CUresult* result);
// cuMemFree's call-out: the allocation at base is gone, and its mapping with it.
void forgetMapping(CUdeviceptr base);

} // namespace tf::remoting::stub
