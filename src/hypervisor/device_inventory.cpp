#include "hypervisor/device_inventory.h"

#include <cctype>

#include "softgpu/device_model.h"

namespace tf::hypervisor {

nlohmann::json toJson(const GpuDevice& d) {
  return {{"index", d.index},           {"uuid", d.uuid},
          {"name", d.name},             {"memoryTotal", d.memoryTotal},
          {"memoryUsed", d.memoryUsed}, {"utilization", d.utilization},
          {"smCount", d.smCount},       {"fp16Tflops", d.fp16Tflops},
          {"numaNode", d.numaNode},     {"present", d.present}};
}

bool parseGpuUuid(const std::string& text, std::array<uint8_t, 16>* out) {
  std::string hex;
  std::string s = text.rfind("GPU-", 0) == 0 ? text.substr(4) : text;
  for (char c : s)
    if (c != '-') hex.push_back(c);
  if (hex.size() != 32) return false;
  for (int i = 0; i < 16; ++i) {
    auto nibble = [](char c) {
      return std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::tolower(c) - 'a' + 10;
    };
    char a = hex[2 * i], b = hex[2 * i + 1];
    if (!std::isxdigit(static_cast<unsigned char>(a)) || !std::isxdigit(static_cast<unsigned char>(b)))
      return false;
    (*out)[i] = static_cast<uint8_t>(nibble(a) << 4 | nibble(b));
  }
  return true;
}

Result<std::unique_ptr<DeviceInventory>> DeviceInventory::open() {
  auto nvml = NvmlLibrary::load();
  if (!nvml) return nvml.status();
  auto inv = std::unique_ptr<DeviceInventory>(new DeviceInventory());
  inv->nvml_ = std::move(*nvml);
  TF_RETURN_IF_ERROR(inv->refresh());
  return inv;
}

const GpuDevice* DeviceInventory::find(const std::string& uuid) const {
  for (const auto& d : devices_)
    if (d.uuid == uuid) return &d;
  return nullptr;
}

Status DeviceInventory::refresh() {
  NvmlLibrary& n = *nvml_;
  unsigned count = 0;
  if (nvmlReturn_t rc = n.nvmlDeviceGetCount_v2(&count); rc != NVML_SUCCESS)
    return unavailable("NVML device count: " + n.errorText(rc));
  std::vector<GpuDevice> now;
  for (unsigned i = 0; i < count; ++i) {
    nvmlDevice_t h;
    if (n.nvmlDeviceGetHandleByIndex_v2(i, &h) != NVML_SUCCESS) continue;
    GpuDevice d;
    d.index = static_cast<int>(i);
    char buf[128] = {};
    if (n.nvmlDeviceGetUUID(h, buf, sizeof buf) != NVML_SUCCESS) continue;
    d.uuid = buf;
    parseGpuUuid(d.uuid, &d.uuidBytes);
    if (n.nvmlDeviceGetName(h, buf, sizeof buf) == NVML_SUCCESS) d.name = buf;
    nvmlMemory_t mem{};
    if (n.nvmlDeviceGetMemoryInfo(h, &mem) == NVML_SUCCESS) {
      d.memoryTotal = mem.total;
      d.memoryUsed = mem.used;
    }
    nvmlUtilization_t util{};
    if (n.nvmlDeviceGetUtilizationRates(h, &util) == NVML_SUCCESS) d.utilization = util.gpu;
    if (const softgpu::DeviceModel* m = softgpu::findModel(d.name)) {
      d.smCount = m->smCount;
      d.fp16Tflops = m->fp16Tflops;
    }
    d.numaNode = 0;
    now.push_back(d);
  }
  // A device that disappeared stays listed as not present, so its vGPUs can be reported.
  for (const auto& old : devices_) {
    bool seen = false;
    for (const auto& d : now) seen |= d.uuid == old.uuid;
    if (!seen) {
      GpuDevice gone = old;
      gone.present = false;
      now.push_back(gone);
    }
  }
  devices_ = std::move(now);
  return Status::ok();
}

} // namespace tf::hypervisor
