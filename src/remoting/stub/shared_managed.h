// Managed memory both processes use at one address, over shared memory: the worker hands the
// stub a descriptor of its managed allocation (worker/shared_device.cpp, ShareManaged) and the
// stub maps it over its own reservation at the same address. Nothing is mirrored: the host's
// writes and the device's are in the same pages, and a launch or a synchronisation compares and
// sends nothing. Where the worker cannot (TCP, NVIDIA's driver) the allocation is mirrored as
// before (remoting/mirror.h); the worker is then not asked again. TF_REMOTE_SHARE_MANAGED=0,
// read at each allocation, mirrors it anyway (the benchmark's baseline).
//
//   switch (shareManaged(addr, size)) { case ManagedSharing::Shared: ...; case Mirror: ...; }
#pragma once

#include <cstddef>

#include <cuda.h>

namespace tf::remoting::stub {

enum class ManagedSharing {
  Shared, // [addr, addr + size) now maps the worker's pages
  Mirror, // not shared: mirror it (the reservation is untouched)
  Failed, // the worker shares it but it could not be mapped: free it (not mirrored there)
};

// addr: a fresh managed allocation the stub has reserved at its own address, not yet written.
ManagedSharing shareManaged(CUdeviceptr addr, size_t size);

} // namespace tf::remoting::stub
