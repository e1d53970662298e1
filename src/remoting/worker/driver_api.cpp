#include "remoting/worker/driver_api.h"

#include <cstdlib>
#include <dlfcn.h>

namespace tf::remoting {

Result<std::unique_ptr<DriverApi>> DriverApi::load(const std::string& path) {
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) return unavailable("cannot load the driver " + path + ": " + dlerror());
  std::unique_ptr<DriverApi> api(new DriverApi());
  api->handle_ = h;
  for (int i = 0; i < cuda::catalogSize(); ++i)
    api->fns_[i] = dlsym(h, cuda::catalogEntry(i).symbol);
  if (!api->fns_[static_cast<int>(cuda::FnId::cuInit)])
    return invalidArgument(path + " is not a CUDA driver (no cuInit)");
  api->softGpu_ = dlsym(h, "tfSoftGpuProcessStats") != nullptr;
  // TF_WORKER_SHARE_DEVICE=0: as on a driver without them (the stub's fallbacks, tested).
  const char* share = getenv("TF_WORKER_SHARE_DEVICE");
  if (!share || std::string(share) != "0") {
    api->shareDevice_ = reinterpret_cast<cuda::ShareDeviceMemory>(dlsym(h, cuda::kShareDeviceMemory));
    api->moduleLoadPlaced_ = reinterpret_cast<cuda::ModuleLoadPlaced>(dlsym(h, cuda::kModuleLoadPlaced));
    api->libraryLoadPlaced_ = reinterpret_cast<cuda::LibraryLoadPlaced>(dlsym(h, cuda::kLibraryLoadPlaced));
    api->shareManaged_ = reinterpret_cast<cuda::ShareManagedMemory>(dlsym(h, cuda::kShareManagedMemory));
  }
  return api;
}

DriverApi::~DriverApi() {
  // The driver stays loaded: its threads may outlive us during process exit.
}

} // namespace tf::remoting
