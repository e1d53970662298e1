// The driver the worker executes calls on: any libcuda.so.1 (NVIDIA's or the soft GPU),
// dlopen()ed by path, with every catalog symbol resolved once into a table indexed by FnId.
//
//   auto api = DriverApi::load("/path/libcuda.so.1");
//   auto alloc = api->fn<decltype(&::cuMemAlloc_v2)>(FnId::cuMemAlloc_v2);
//   if (alloc) alloc(&p, 1024);
#pragma once

#include <memory>
#include <string>

#include <cuda.h>

#include "common/status.h"
#include "cuda/catalog.h"
#include "cuda/softgpu_extensions.h"

namespace tf::remoting {

class DriverApi {
public:
  static Result<std::unique_ptr<DriverApi>> load(const std::string& path);
  ~DriverApi();

  void* raw(uint32_t index) const {
    return index < static_cast<uint32_t>(cuda::FnId::Count) ? fns_[index] : nullptr;
  }
  // The function at a catalog index, cast to the signature of its family (the plain and
  // per-thread variants of one call share a signature). Null when the driver lacks it.
  template <typename F> F fn(uint32_t index) const { return reinterpret_cast<F>(raw(index)); }
  template <typename F> F fn(cuda::FnId id) const { return fn<F>(static_cast<uint32_t>(id)); }
  // Whether the driver is the soft GPU (it exports tfSoftGpuProcessStats): its device writes
  // host-visible memory with the CPU, so the kernel's write tracking sees them.
  bool isSoftGpu() const { return softGpu_; }
  // The soft GPU's device memory as a descriptor a client maps (cuda/softgpu_extensions.h);
  // null on other drivers.
  cuda::ShareDeviceMemory shareDeviceMemory() const { return shareDevice_; }
  // Likewise its managed memory, which a client over shared memory maps at the same address.
  cuda::ShareManagedMemory shareManagedMemory() const { return shareManaged_; }
  // Module and library loads with globals at given addresses (a migrated client's); null on
  // drivers that cannot place them.
  cuda::ModuleLoadPlaced moduleLoadPlaced() const { return moduleLoadPlaced_; }
  cuda::LibraryLoadPlaced libraryLoadPlaced() const { return libraryLoadPlaced_; }
  // Replaces one function: tests make the driver behave as another would.
  void setForTest(cuda::FnId id, void* f) { fns_[static_cast<uint32_t>(id)] = f; }

private:
  DriverApi() = default;
  void* handle_ = nullptr;
  bool softGpu_ = false;
  cuda::ShareDeviceMemory shareDevice_ = nullptr;
  cuda::ShareManagedMemory shareManaged_ = nullptr;
  cuda::ModuleLoadPlaced moduleLoadPlaced_ = nullptr;
  cuda::LibraryLoadPlaced libraryLoadPlaced_ = nullptr;
  void* fns_[static_cast<int>(cuda::FnId::Count)] = {};
};

} // namespace tf::remoting
