// The GPUs of this node, as NVML reports them (NVIDIA's, or the soft GPU's where there is no
// GPU), with what the hypervisor needs to share them: memory, utilization, SM count and the
// FP16 TFLOPS rating (from the table of known models).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "hypervisor/nvml_library.h"

namespace tf::hypervisor {

struct GpuDevice {
  int index = 0;
  std::string uuid;                 // "GPU-..."
  std::array<uint8_t, 16> uuidBytes{};
  std::string name;
  uint64_t memoryTotal = 0, memoryUsed = 0;
  unsigned utilization = 0;         // percent
  int smCount = 0;
  double fp16Tflops = 0;            // 0 when the model is unknown
  int numaNode = -1;
  bool present = true;              // false once the device disappeared
};

nlohmann::json toJson(const GpuDevice& d);

class DeviceInventory {
public:
  static Result<std::unique_ptr<DeviceInventory>> open();
  // Re-reads every device; a device seen before and now missing stays listed, not present.
  Status refresh();
  const std::vector<GpuDevice>& devices() const { return devices_; }
  const GpuDevice* find(const std::string& uuid) const;
  bool isSoftGpu() const { return nvml_->isSoftGpu(); }
  const std::string& nvmlPath() const { return nvml_->path(); }
  // The loaded NVML's entry points, which a test may replace (a device that disappears).
  NvmlLibrary& nvmlForTest() { return *nvml_; }

private:
  std::unique_ptr<NvmlLibrary> nvml_;
  std::vector<GpuDevice> devices_;
};

// "GPU-6bd5fb6c-5bf4-..." -> 16 bytes (false when malformed).
bool parseGpuUuid(const std::string& text, std::array<uint8_t, 16>* out);

} // namespace tf::hypervisor
