#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "hypervisor/nvml_library.h"
#include "common/units.h"

namespace tf::cli {
using hypervisor::NvmlLibrary;
namespace {

struct GpuInfo {
  unsigned index = 0;
  std::string name, uuid;
  unsigned long long memoryUsed = 0, memoryTotal = 0;
  unsigned utilization = 0;
  unsigned processes = 0;
};

Result<GpuInfo> queryGpu(NvmlLibrary& nvml, unsigned index) {
  GpuInfo gpu;
  gpu.index = index;
  nvmlDevice_t dev;
  auto check = [&](nvmlReturn_t rc, const char* what) -> Status {
    if (rc == NVML_SUCCESS) return Status::ok();
    return unavailable("GPU " + std::to_string(index) + ": " + what + ": " + nvml.errorText(rc));
  };
  TF_RETURN_IF_ERROR(check(nvml.nvmlDeviceGetHandleByIndex_v2(index, &dev), "handle"));
  char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE], uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
  TF_RETURN_IF_ERROR(check(nvml.nvmlDeviceGetName(dev, name, sizeof name), "name"));
  TF_RETURN_IF_ERROR(check(nvml.nvmlDeviceGetUUID(dev, uuid, sizeof uuid), "uuid"));
  gpu.name = name;
  gpu.uuid = uuid;
  nvmlMemory_t mem;
  TF_RETURN_IF_ERROR(check(nvml.nvmlDeviceGetMemoryInfo(dev, &mem), "memory"));
  gpu.memoryUsed = mem.used;
  gpu.memoryTotal = mem.total;
  nvmlUtilization_t util;
  // Some GPUs (and vGPUs) do not report utilization: show 0 rather than failing the listing.
  if (nvml.nvmlDeviceGetUtilizationRates(dev, &util) == NVML_SUCCESS) gpu.utilization = util.gpu;
  unsigned count = 0;
  nvmlReturn_t rc = nvml.nvmlDeviceGetComputeRunningProcesses_v3(dev, &count, nullptr);
  if (rc == NVML_SUCCESS || rc == NVML_ERROR_INSUFFICIENT_SIZE) gpu.processes = count;
  return gpu;
}

int runDevices(bool json) {
  auto nvml = NvmlLibrary::load();
  if (!nvml) {
    fprintf(stderr, "tensor-fusion devices: %s\n", nvml.status().message().c_str());
    return 1;
  }
  NvmlLibrary& lib = **nvml;
  char driver[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE] = "unknown";
  lib.nvmlSystemGetDriverVersion(driver, sizeof driver);
  int cuda = 0;
  lib.nvmlSystemGetCudaDriverVersion(&cuda);
  unsigned count = 0;
  if (nvmlReturn_t rc = lib.nvmlDeviceGetCount_v2(&count); rc != NVML_SUCCESS) {
    fprintf(stderr, "tensor-fusion devices: nvmlDeviceGetCount: %s\n", lib.errorText(rc).c_str());
    return 1;
  }
  std::vector<GpuInfo> gpus;
  for (unsigned i = 0; i < count; ++i) {
    auto gpu = queryGpu(lib, i);
    if (!gpu) {
      fprintf(stderr, "tensor-fusion devices: %s\n", gpu.status().message().c_str());
      return 1;
    }
    gpus.push_back(*gpu);
  }
  if (json) {
    nlohmann::json out = {{"nvml", lib.path()},
                          {"softGpu", lib.isSoftGpu()},
                          {"driverVersion", driver},
                          {"cudaDriverVersion", cuda},
                          {"devices", nlohmann::json::array()}};
    for (const GpuInfo& g : gpus)
      out["devices"].push_back({{"index", g.index}, {"name", g.name}, {"uuid", g.uuid},
                                {"memoryUsedBytes", g.memoryUsed}, {"memoryTotalBytes", g.memoryTotal},
                                {"utilizationPercent", g.utilization}, {"processes", g.processes}});
    printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  printf("NVML: %s (%s)\n", lib.path().c_str(), lib.isSoftGpu() ? "soft GPU" : "system");
  printf("Driver %s, CUDA %d.%d, %u GPU%s\n", driver, cuda / 1000, cuda % 1000 / 10, count,
         count == 1 ? "" : "s");
  for (const GpuInfo& g : gpus)
    printf("GPU %u: %s (%s)  memory %s / %s  utilization %u%%  processes %u\n", g.index,
           g.name.c_str(), g.uuid.c_str(), units::formatBytes(g.memoryUsed).c_str(),
           units::formatBytes(g.memoryTotal).c_str(), g.utilization, g.processes);
  return 0;
}

} // namespace

void addDevicesCommand(CLI::App& app, int& exitCode) {
  auto* cmd = app.add_subcommand("devices", "List the GPUs NVML reports (NVIDIA's or the soft GPU's)");
  static bool json = false; // one app per process
  cmd->add_flag("--json", json, "Machine-readable output");
  cmd->callback([&exitCode] { exitCode = runDevices(json); });
}

} // namespace tf::cli
