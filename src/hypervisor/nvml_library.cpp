#include "hypervisor/nvml_library.h"

#include "common/self_path.h"

#include <climits>
#include <cstdlib>
#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

namespace tf::hypervisor {
namespace {

std::string softGpuNvmlPath() {
  if (selfPath().empty()) return "";
  return selfDir() + "/../lib/libnvidia-ml.so.1";
}

std::string realPath(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) ? std::string(buf) : path;
}

std::string loadedPath(void* handle, const std::string& fallback) {
  link_map* map = nullptr;
  if (dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name && map->l_name[0])
    return realPath(map->l_name);
  return realPath(fallback);
}

} // namespace

NvmlLibrary::~NvmlLibrary() {
  if (initialised_ && nvmlShutdown) nvmlShutdown();
  // The library stays loaded: NVML keeps threads and handlers in some versions.
}

Result<std::unique_ptr<NvmlLibrary>> NvmlLibrary::load() {
  std::unique_ptr<NvmlLibrary> lib(new NvmlLibrary());
  std::string tried = "libnvidia-ml.so.1";
  lib->handle_ = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  std::string firstError = lib->handle_ ? "" : dlerror();
  std::string soft = softGpuNvmlPath();
  if (!lib->handle_ && !soft.empty()) {
    tried = soft;
    lib->handle_ = dlopen(soft.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib->handle_)
      return unavailable("no NVML could be loaded: " + firstError + "; and the soft GPU's: " + dlerror());
  }
  if (!lib->handle_) return unavailable("no NVML could be loaded: " + firstError);
  lib->path_ = loadedPath(lib->handle_, tried);
  // The soft GPU's NVML says so, wherever it was found (LD_LIBRARY_PATH or next to us).
  lib->softGpu_ = dlsym(lib->handle_, "tfSoftGpuNvml") != nullptr;
  TF_RETURN_IF_ERROR(lib->resolve());
  nvmlReturn_t rc = lib->nvmlInit_v2();
  if (rc != NVML_SUCCESS) return unavailable("nvmlInit failed in " + lib->path_ + ": " + lib->errorText(rc));
  lib->initialised_ = true;
  return lib;
}

Status NvmlLibrary::resolve() {
  auto sym = [&](const char* name, const char* fallback = nullptr) {
    void* p = dlsym(handle_, name);
    if (!p && fallback) p = dlsym(handle_, fallback);
    return p;
  };
#define TF_NVML_RESOLVE(name, fallback)                                                           \
  name = reinterpret_cast<decltype(name)>(sym(#name, fallback));                                 \
  if (!name) return unavailable(path_ + " has no " #name);
  TF_NVML_RESOLVE(nvmlInit_v2, "nvmlInit")
  TF_NVML_RESOLVE(nvmlShutdown, nullptr)
  TF_NVML_RESOLVE(nvmlErrorString, nullptr)
  TF_NVML_RESOLVE(nvmlSystemGetDriverVersion, nullptr)
  TF_NVML_RESOLVE(nvmlSystemGetCudaDriverVersion, nullptr)
  TF_NVML_RESOLVE(nvmlDeviceGetCount_v2, "nvmlDeviceGetCount")
  TF_NVML_RESOLVE(nvmlDeviceGetHandleByIndex_v2, "nvmlDeviceGetHandleByIndex")
  TF_NVML_RESOLVE(nvmlDeviceGetName, nullptr)
  TF_NVML_RESOLVE(nvmlDeviceGetUUID, nullptr)
  TF_NVML_RESOLVE(nvmlDeviceGetMemoryInfo, nullptr)
  TF_NVML_RESOLVE(nvmlDeviceGetUtilizationRates, nullptr)
  TF_NVML_RESOLVE(nvmlDeviceGetComputeRunningProcesses_v3, "nvmlDeviceGetComputeRunningProcesses_v2")
#undef TF_NVML_RESOLVE
  return Status::ok();
}

std::string NvmlLibrary::errorText(nvmlReturn_t rc) const {
  std::string text = nvmlErrorString ? nvmlErrorString(rc) : "error";
  return text + " (" + std::to_string(int(rc)) + ")";
}

} // namespace tf::hypervisor
