// NVML as a vGPU's process sees it: memory total/used/free of the vGPU, and only the vGPU's
// own processes with their memory (compute lists from the region; graphics and MPS lists and
// per-process utilization samples filtered to the vGPU's processes). Tools find these through dlsym (overridden in
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

bool isVgpuProcess(unsigned pid) {
  for (const auto& p : Limiter::get().region().processes())
    if (static_cast<unsigned>(p.pid) == pid) return true;
  return false;
}

// Keeps, in place, the entries of the vGPU's processes; returns how many.
template <typename T> unsigned keepVgpuProcesses(T* items, unsigned n) {
  unsigned kept = 0;
  for (unsigned i = 0; i < n; ++i)
    if (isVgpuProcess(items[i].pid)) items[kept++] = items[i];
  return kept;
}

// A process list the real NVML fills (graphics, MPS), cut to the vGPU's processes.
template <typename Info>
nvmlReturn_t filteredProcesses(nvmlDevice_t device, unsigned int* count, Info* infos,
                               nvmlReturn_t (*real)(nvmlDevice_t, unsigned int*, Info*)) {
  if (!real) return NVML_ERROR_FUNCTION_NOT_FOUND;
  nvmlReturn_t r = real(device, count, infos);
  if (r != NVML_SUCCESS || !infos || regionDeviceOf(device) < 0) return r;
  *count = keepVgpuProcesses(infos, *count);
  return r;
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

#define TF_FILTERED_LIST(name, Info)                                                             \
  TF_EXPORT nvmlReturn_t name(nvmlDevice_t device, unsigned int* count, Info* infos) {            \
    return filteredProcesses(device, count, infos, TF_REAL_NVML(name));                           \
  }
TF_FILTERED_LIST(nvmlDeviceGetGraphicsRunningProcesses, nvmlProcessInfo_v1_t)
TF_FILTERED_LIST(nvmlDeviceGetGraphicsRunningProcesses_v2, nvmlProcessInfo_t)
TF_FILTERED_LIST(nvmlDeviceGetGraphicsRunningProcesses_v3, nvmlProcessInfo_t)
TF_FILTERED_LIST(nvmlDeviceGetMPSComputeRunningProcesses, nvmlProcessInfo_v1_t)
TF_FILTERED_LIST(nvmlDeviceGetMPSComputeRunningProcesses_v2, nvmlProcessInfo_t)
TF_FILTERED_LIST(nvmlDeviceGetMPSComputeRunningProcesses_v3, nvmlProcessInfo_t)
#undef TF_FILTERED_LIST

// Per-process utilization: only the vGPU's processes' samples (NOT_FOUND when none is left).
TF_EXPORT nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t device, nvmlProcessUtilizationSample_t* samples,
                                                       unsigned int* count, unsigned long long lastSeen) {
  auto real = TF_REAL_NVML(nvmlDeviceGetProcessUtilization);
  if (!real) return NVML_ERROR_FUNCTION_NOT_FOUND;
  nvmlReturn_t r = real(device, samples, count, lastSeen);
  if (r != NVML_SUCCESS || !samples || regionDeviceOf(device) < 0) return r;
  *count = keepVgpuProcesses(samples, *count);
  return *count ? r : NVML_ERROR_NOT_FOUND;
}

TF_EXPORT nvmlReturn_t nvmlDeviceGetProcessesUtilizationInfo(nvmlDevice_t device, nvmlProcessesUtilizationInfo_t* info) {
  auto real = TF_REAL_NVML(nvmlDeviceGetProcessesUtilizationInfo);
  if (!real) return NVML_ERROR_FUNCTION_NOT_FOUND;
  nvmlReturn_t r = real(device, info);
  if (r != NVML_SUCCESS || !info->procUtilArray || regionDeviceOf(device) < 0) return r;
  info->processSamplesCount = keepVgpuProcesses(info->procUtilArray, info->processSamplesCount);
  return info->processSamplesCount ? r : NVML_ERROR_NOT_FOUND;
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
      {"nvmlDeviceGetGraphicsRunningProcesses", reinterpret_cast<void*>(&nvmlDeviceGetGraphicsRunningProcesses)},
      {"nvmlDeviceGetGraphicsRunningProcesses_v2", reinterpret_cast<void*>(&nvmlDeviceGetGraphicsRunningProcesses_v2)},
      {"nvmlDeviceGetGraphicsRunningProcesses_v3", reinterpret_cast<void*>(&nvmlDeviceGetGraphicsRunningProcesses_v3)},
      {"nvmlDeviceGetMPSComputeRunningProcesses", reinterpret_cast<void*>(&nvmlDeviceGetMPSComputeRunningProcesses)},
      {"nvmlDeviceGetMPSComputeRunningProcesses_v2", reinterpret_cast<void*>(&nvmlDeviceGetMPSComputeRunningProcesses_v2)},
      {"nvmlDeviceGetMPSComputeRunningProcesses_v3", reinterpret_cast<void*>(&nvmlDeviceGetMPSComputeRunningProcesses_v3)},
      {"nvmlDeviceGetProcessUtilization", reinterpret_cast<void*>(&nvmlDeviceGetProcessUtilization)},
      {"nvmlDeviceGetProcessesUtilizationInfo", reinterpret_cast<void*>(&nvmlDeviceGetProcessesUtilizationInfo)},
  };
  for (const auto& h : kHooks)
    if (!strcmp(h.name, symbol)) return h.fn;
  return nullptr;
}
} // namespace tf::limiter
