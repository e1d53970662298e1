// NVML as a vGPU's process sees it: memory total/used/free of the vGPU, and only the vGPU's
// own processes with their memory. Tools find these through dlsym (overridden in
// dlsym_hooks.cpp) or by linking; everything else is NVIDIA's (or the soft GPU's) NVML.
#include <cstdio>
#include <cstring>
#include <dlfcn.h>

#include "cuda/nvml_api.h"
#include "cuda/nvml_text.h"
#include "limiter/interposer/limiter.h"

using namespace tf::limiter;

namespace {

void* realNvml(const char* name) {
  static void* handle = [] {
    void* h = dlopen("libnvidia-ml.so.1", RTLD_LAZY | RTLD_NOLOAD);
    return h ? h : dlopen("libnvidia-ml.so.1", RTLD_LAZY);
  }();
  return handle ? realDlsym(handle, name) : nullptr;
}
#define TF_REAL_NVML(fn) reinterpret_cast<decltype(&fn)>(realNvml(#fn))

// The vGPU device an NVML handle is (by UUID, or by index when the region names none).
int regionDeviceOf(nvmlDevice_t device) {
  Limiter& l = Limiter::get();
  if (l.ready() != CUDA_SUCCESS) return -1;
  char uuid[96] = {};
  unsigned index = 0;
  if (TF_REAL_NVML(nvmlDeviceGetUUID)(device, uuid, sizeof uuid) != NVML_SUCCESS ||
      TF_REAL_NVML(nvmlDeviceGetIndex)(device, &index) != NVML_SUCCESS)
    return -1;
  auto& r = l.region();
  for (int d = 0; d < r.deviceCount(); ++d) {
    auto lim = r.limits(d);
    bool any = false;
    for (uint8_t b : lim.uuid) any |= b != 0;
    if (!any) {
      if (static_cast<unsigned>(d) == index) return d;
      continue;
    }
    if (!strcasecmp(tf::nvml::nvmlUuidString(lim.uuid.data()).c_str(), uuid)) return d;
  }
  return -1;
}

template <typename Info>
nvmlReturn_t processes(nvmlDevice_t device, unsigned int* count, Info* infos,
                       nvmlReturn_t (*real)(nvmlDevice_t, unsigned int*, Info*)) {
  int rd = regionDeviceOf(device);
  if (rd < 0 || !count) return real(device, count, infos);
  // Every live process of the vGPU (it joined at its first CUDA call, as a context would).
  auto procs = Limiter::get().region().processes();
  unsigned n = static_cast<unsigned>(procs.size());
  if (!infos || *count < n) {
    *count = n;
    return n == 0 && !infos ? NVML_SUCCESS : NVML_ERROR_INSUFFICIENT_SIZE;
  }
  unsigned i = 0;
  for (const auto& p : procs) {
    Info info{};
    info.pid = static_cast<unsigned>(p.pid);
    info.usedGpuMemory = p.vram[rd];
    if constexpr (sizeof(Info) > sizeof(nvmlProcessInfo_v1_t)) {
      info.gpuInstanceId = 0xFFFFFFFFu;
      info.computeInstanceId = 0xFFFFFFFFu;
    }
    infos[i++] = info;
  }
  *count = n;
  return NVML_SUCCESS;
}

} // namespace

TF_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  nvmlReturn_t r = TF_REAL_NVML(nvmlDeviceGetMemoryInfo)(device, memory);
  int rd = r == NVML_SUCCESS ? regionDeviceOf(device) : -1;
  if (rd < 0) return r;
  auto& region = Limiter::get().region();
  region.reapDead(); // a process killed a moment ago no longer holds memory
  memory->total = region.vramLimit(rd);
  memory->used = std::min<unsigned long long>(region.used(rd, Pool::Device), memory->total);
  memory->free = memory->total - memory->used;
  return r;
}

TF_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t* memory) {
  nvmlReturn_t r = TF_REAL_NVML(nvmlDeviceGetMemoryInfo_v2)(device, memory);
  int rd = r == NVML_SUCCESS ? regionDeviceOf(device) : -1;
  if (rd < 0) return r;
  auto& region = Limiter::get().region();
  region.reapDead();
  memory->total = region.vramLimit(rd);
  memory->reserved = 0;
  memory->used = std::min<unsigned long long>(region.used(rd, Pool::Device), memory->total);
  memory->free = memory->total - memory->used;
  return r;
}

TF_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int* count,
                                                              nvmlProcessInfo_t* infos) {
  return processes(device, count, infos, TF_REAL_NVML(nvmlDeviceGetComputeRunningProcesses_v3));
}
TF_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device, unsigned int* count,
                                                              nvmlProcessInfo_t* infos) {
  return processes(device, count, infos, TF_REAL_NVML(nvmlDeviceGetComputeRunningProcesses_v2));
}
TF_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device, unsigned int* count,
                                                           nvmlProcessInfo_v1_t* infos) {
  return processes(device, count, infos, TF_REAL_NVML(nvmlDeviceGetComputeRunningProcesses));
}

namespace tf::limiter {
// The NVML functions hooked above, for the dlsym override.
void* nvmlHookFor(const char* symbol) {
  struct Hook { const char* name; void* fn; };
  static const Hook kHooks[] = {
      {"nvmlDeviceGetMemoryInfo", reinterpret_cast<void*>(&nvmlDeviceGetMemoryInfo)},
      {"nvmlDeviceGetMemoryInfo_v2", reinterpret_cast<void*>(&nvmlDeviceGetMemoryInfo_v2)},
      {"nvmlDeviceGetComputeRunningProcesses", reinterpret_cast<void*>(&nvmlDeviceGetComputeRunningProcesses)},
      {"nvmlDeviceGetComputeRunningProcesses_v2", reinterpret_cast<void*>(&nvmlDeviceGetComputeRunningProcesses_v2)},
      {"nvmlDeviceGetComputeRunningProcesses_v3", reinterpret_cast<void*>(&nvmlDeviceGetComputeRunningProcesses_v3)},
  };
  for (const auto& h : kHooks)
    if (!strcmp(h.name, symbol)) return h.fn;
  return nullptr;
}
} // namespace tf::limiter
