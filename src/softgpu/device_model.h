// The GPU models the soft GPU can pretend to be, with the attributes the real ones report,
// and the configuration that picks which devices a process sees.
//
//   TF_SOFTGPU_DEVICES="H100,A100-40GB"      two devices
//   TF_SOFTGPU_DEVICES="2xL4"                 two L4s
//   TF_SOFTGPU_DEVICES="H100:16GiB"           an H100 whose memory is 16 GiB (small tests)
//   TF_SOFTGPU_CONFIG=/etc/tf/softgpu.json    {"devices":[{"model":"T4","memory":"8GiB"}],
//                                              "node":"node-a"}
// Default: one H100 SXM 80GB. UUIDs are derived from the node name (TF_SOFTGPU_NODE, default
// the host name), the model and the index, so every process of a node agrees on them.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace tf::softgpu {

struct DeviceModel {
  const char* key;            // "H100", "A100-40GB", "L4", "T4"
  const char* name;           // as cuDeviceGetName / nvmlDeviceGetName report it
  int smCount;
  int ccMajor, ccMinor;
  uint64_t memoryBytes;
  int clockKhz;               // SM boost clock
  int memoryClockKhz;
  int memoryBusWidth;         // bits
  int l2CacheBytes;
  int maxThreadsPerSm;
  int maxBlocksPerSm;
  int sharedPerBlock;         // default 48 KiB
  int sharedPerBlockOptin;
  int sharedPerSm;
  int regsPerSm;
  uint32_t pciDeviceId;       // (device << 16) | vendor, as NVML reports it
  double fp16Tflops;          // dense FP16 tensor rating
  int powerLimitWatts;
};

const std::vector<DeviceModel>& knownModels();
// Accepts keys and common aliases, case-insensitively ("h100", "H100-SXM-80GB", "a100").
const DeviceModel* findModel(const std::string& name);

struct DeviceConfig {
  const DeviceModel* model = nullptr;
  uint64_t memoryBytes = 0;   // model's, or the configured override
  int index = 0;
  std::array<uint8_t, 16> uuid{};
  std::string uuidString;     // "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
  int pciBus = 0;             // domain 0, device 0, bus from the index
};

struct SoftGpuConfig {
  std::string node;
  std::vector<DeviceConfig> devices;
};

// Parses a TF_SOFTGPU_DEVICES-style spec.
Result<SoftGpuConfig> parseDeviceSpec(const std::string& spec, const std::string& node);
// From the environment (TF_SOFTGPU_CONFIG file, else TF_SOFTGPU_DEVICES, else the default).
Result<SoftGpuConfig> loadConfig();

} // namespace tf::softgpu
