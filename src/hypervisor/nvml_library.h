// Loads an NVML at run time: NVIDIA's libnvidia-ml.so.1 on a GPU machine (or whichever the
// dynamic linker finds, e.g. the soft GPU's through LD_LIBRARY_PATH), else the soft GPU's next
// to this binary (<exe dir>/../lib/libnvidia-ml.so.1).
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "cuda/nvml_api.h"

namespace tf::hypervisor {

class NvmlLibrary {
public:
  ~NvmlLibrary();
  // Loads and initialises NVML.
  static Result<std::unique_ptr<NvmlLibrary>> load();

  const std::string& path() const { return path_; }
  bool isSoftGpu() const { return softGpu_; }

#define TF_NVML_ENTRY(name) decltype(&::name) name = nullptr;
  TF_NVML_ENTRY(nvmlInit_v2)
  TF_NVML_ENTRY(nvmlShutdown)
  TF_NVML_ENTRY(nvmlErrorString)
  TF_NVML_ENTRY(nvmlSystemGetDriverVersion)
  TF_NVML_ENTRY(nvmlSystemGetCudaDriverVersion)
  TF_NVML_ENTRY(nvmlDeviceGetCount_v2)
  TF_NVML_ENTRY(nvmlDeviceGetHandleByIndex_v2)
  TF_NVML_ENTRY(nvmlDeviceGetName)
  TF_NVML_ENTRY(nvmlDeviceGetUUID)
  TF_NVML_ENTRY(nvmlDeviceGetMemoryInfo)
  TF_NVML_ENTRY(nvmlDeviceGetUtilizationRates)
  TF_NVML_ENTRY(nvmlDeviceGetComputeRunningProcesses_v3)
#undef TF_NVML_ENTRY

  std::string errorText(nvmlReturn_t rc) const;

private:
  NvmlLibrary() = default;
  Status resolve();

  void* handle_ = nullptr;
  bool initialised_ = false;
  bool softGpu_ = false;
  std::string path_;
};

} // namespace tf::hypervisor
