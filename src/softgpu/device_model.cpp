#include "softgpu/device_model.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/env.h"
#include "common/units.h"

namespace tf::softgpu {
namespace {

using units::GiB;
using units::KiB;
using units::MiB;

constexpr int kMaxDevices = 64;

const std::vector<DeviceModel>& modelTable() {
  static const std::vector<DeviceModel> kModels = {
      {"H100", "NVIDIA H100 80GB HBM3", 132, 9, 0, 80 * GiB, 1980000, 2619000, 5120,
       int(50 * MiB), 2048, 32, int(48 * KiB), 232448, 233472, 65536, 0x233010DE, 989.4, 700},
      {"A100-40GB", "NVIDIA A100-SXM4-40GB", 108, 8, 0, 40 * GiB, 1410000, 1215000, 5120,
       int(40 * MiB), 2048, 32, int(48 * KiB), 166912, 167936, 65536, 0x20B010DE, 312, 400},
      {"L4", "NVIDIA L4", 58, 8, 9, 23034 * MiB, 2040000, 6251000, 192, int(48 * MiB), 1536, 24,
       int(48 * KiB), 101376, 102400, 65536, 0x27B810DE, 121, 72},
      {"T4", "Tesla T4", 40, 7, 5, 15360 * MiB, 1590000, 5001000, 256, int(4 * MiB), 1024, 16,
       int(48 * KiB), 65536, 65536, 65536, 0x1EB810DE, 65, 70},
  };
  return kModels;
}

struct Alias {
  const char* alias;
  const char* key;
};

// Normalised (lower case, '-' for blanks and underscores) names people write for each model.
constexpr Alias kAliases[] = {
    {"h100", "H100"},           {"h100-sxm", "H100"},        {"h100-sxm5", "H100"},
    {"h100-80gb", "H100"},      {"h100-sxm-80gb", "H100"},   {"h100-sxm5-80gb", "H100"},
    {"a100", "A100-40GB"},      {"a100-40gb", "A100-40GB"},  {"a100-sxm4-40gb", "A100-40GB"},
    {"a100-sxm-40gb", "A100-40GB"}, {"a100-40g", "A100-40GB"}, {"l4", "L4"},
    {"nvidia-l4", "L4"},        {"t4", "T4"},                {"tesla-t4", "T4"},
};

std::string normalise(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == ' ' || c == '_') c = '-';
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\n\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\n\r");
  return s.substr(b, e - b + 1);
}

std::string knownModelList() {
  std::string out;
  for (const auto& m : modelTable()) out += (out.empty() ? "" : ", ") + std::string(m.key);
  return out;
}

// FNV-1a over the bytes, then a splitmix64 finaliser so that near-identical inputs (index 0
// and 1) give unrelated bits.
uint64_t hash64(const std::string& data, uint64_t seed) {
  uint64_t h = 14695981039346656037ull ^ seed;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h += 0x9e3779b97f4a7c15ull;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

void assignIdentity(DeviceConfig& dev, const std::string& node) {
  std::string key = node + '\0' + dev.model->key + '\0' + std::to_string(dev.index);
  uint64_t hi = hash64(key, 0x7466736f66746770ull), lo = hash64(key, 0x6770752d75756964ull);
  for (int i = 0; i < 8; ++i) {
    dev.uuid[i] = static_cast<uint8_t>(hi >> (56 - 8 * i));
    dev.uuid[8 + i] = static_cast<uint8_t>(lo >> (56 - 8 * i));
  }
  std::string hex;
  char buf[3];
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) hex.push_back('-');
    snprintf(buf, sizeof buf, "%02x", dev.uuid[i]);
    hex += buf;
  }
  dev.uuidString = "GPU-" + hex;
  dev.pciBus = dev.index + 1;
}

Status addDevices(SoftGpuConfig& cfg, const DeviceModel* model, uint64_t memory, long count) {
  if (cfg.devices.size() + count > kMaxDevices)
    return invalidArgument("more than " + std::to_string(kMaxDevices) + " soft GPUs configured");
  for (long i = 0; i < count; ++i) {
    DeviceConfig dev;
    dev.model = model;
    dev.memoryBytes = memory ? memory : model->memoryBytes;
    dev.index = static_cast<int>(cfg.devices.size());
    assignIdentity(dev, cfg.node);
    cfg.devices.push_back(std::move(dev));
  }
  return Status::ok();
}

Result<const DeviceModel*> lookupModel(const std::string& name, const std::string& context) {
  const DeviceModel* model = findModel(name);
  if (!model)
    return invalidArgument("unknown GPU model '" + name + "' in '" + context +
                           "'; known models: " + knownModelList());
  return model;
}

Result<uint64_t> parseMemory(const std::string& text, const std::string& context) {
  auto bytes = units::parseBytes(text);
  if (!bytes) return bytes.status().withContext("memory size in '" + context + "'");
  if (*bytes == 0) return invalidArgument("memory size in '" + context + "' is zero");
  return *bytes;
}

// One comma-separated element: "H100", "2xL4", "H100:16GiB", "2xT4:8GiB".
Status parseToken(SoftGpuConfig& cfg, const std::string& raw) {
  std::string token = trim(raw);
  if (token.empty()) return invalidArgument("empty device in device spec");
  std::string rest = token;
  long count = 1;
  size_t digits = 0;
  while (digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[digits]))) ++digits;
  if (digits > 0 && digits < rest.size() && (rest[digits] == 'x' || rest[digits] == 'X')) {
    if (digits > 3) return invalidArgument("device count in '" + token + "' is too large");
    count = std::stol(rest.substr(0, digits));
    if (count < 1) return invalidArgument("device count in '" + token + "' must be at least 1");
    rest = trim(rest.substr(digits + 1));
  }
  uint64_t memory = 0;
  if (size_t colon = rest.find(':'); colon != std::string::npos) {
    auto bytes = parseMemory(trim(rest.substr(colon + 1)), token);
    if (!bytes) return bytes.status();
    memory = *bytes;
    rest = trim(rest.substr(0, colon));
  }
  auto model = lookupModel(rest, token);
  if (!model) return model.status();
  return addDevices(cfg, *model, memory, count);
}

std::string defaultNode() {
  if (auto node = env::get("TF_SOFTGPU_NODE")) return *node;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) == 0 && host[0]) return host;
  return "localhost";
}

Status parseJsonDevice(SoftGpuConfig& cfg, const nlohmann::json& entry, size_t i) {
  std::string where = "devices[" + std::to_string(i) + "]";
  if (entry.is_string()) return parseToken(cfg, entry.get<std::string>());
  if (!entry.is_object()) return invalidArgument(where + " must be a string or an object");
  if (!entry.contains("model") || !entry["model"].is_string())
    return invalidArgument(where + " needs a \"model\" string");
  auto model = lookupModel(entry["model"].get<std::string>(), where);
  if (!model) return model.status();
  uint64_t memory = 0;
  if (entry.contains("memory")) {
    const auto& m = entry["memory"];
    if (m.is_number_unsigned() && m.get<uint64_t>() > 0) {
      memory = m.get<uint64_t>();
    } else if (m.is_string()) {
      auto bytes = parseMemory(m.get<std::string>(), where);
      if (!bytes) return bytes.status();
      memory = *bytes;
    } else {
      return invalidArgument(where + ".memory must be a size such as \"16GiB\" or a byte count");
    }
  }
  long count = 1;
  if (entry.contains("count")) {
    if (!entry["count"].is_number_unsigned() || entry["count"].get<uint64_t>() < 1 ||
        entry["count"].get<uint64_t>() > kMaxDevices)
      return invalidArgument(where + ".count must be an integer from 1 to " +
                             std::to_string(kMaxDevices));
    count = static_cast<long>(entry["count"].get<uint64_t>());
  }
  return addDevices(cfg, *model, memory, count);
}

Result<SoftGpuConfig> parseJsonConfig(const std::string& text, const std::string& path) {
  auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object())
    return invalidArgument(path + " is not a JSON object");
  SoftGpuConfig cfg;
  cfg.node = defaultNode();
  if (json.contains("node")) {
    if (!json["node"].is_string() || json["node"].get<std::string>().empty())
      return invalidArgument(path + ": \"node\" must be a non-empty string");
    cfg.node = json["node"].get<std::string>();
  }
  if (!json.contains("devices")) {
    TF_RETURN_IF_ERROR(addDevices(cfg, findModel("H100"), 0, 1));
    return cfg;
  }
  const auto& devices = json["devices"];
  if (devices.is_string()) {
    auto parsed = parseDeviceSpec(devices.get<std::string>(), cfg.node);
    if (!parsed) return parsed.status().withContext(path);
    return parsed;
  }
  if (!devices.is_array() || devices.empty())
    return invalidArgument(path + ": \"devices\" must be a non-empty array or a spec string");
  for (size_t i = 0; i < devices.size(); ++i) {
    Status s = parseJsonDevice(cfg, devices[i], i);
    if (!s) return s.withContext(path);
  }
  return cfg;
}

} // namespace

const std::vector<DeviceModel>& knownModels() { return modelTable(); }

const DeviceModel* findModel(const std::string& name) {
  std::string n = normalise(trim(name));
  if (n.empty()) return nullptr;
  for (const auto& m : modelTable())
    if (n == normalise(m.key) || n == normalise(m.name)) return &m;
  for (const auto& a : kAliases)
    if (n == a.alias)
      for (const auto& m : modelTable())
        if (std::string(m.key) == a.key) return &m;
  return nullptr;
}

Result<SoftGpuConfig> parseDeviceSpec(const std::string& spec, const std::string& node) {
  if (trim(spec).empty()) return invalidArgument("empty device spec; known models: " + knownModelList());
  SoftGpuConfig cfg;
  cfg.node = node;
  std::stringstream in(spec);
  std::string token;
  while (std::getline(in, token, ',')) TF_RETURN_IF_ERROR(parseToken(cfg, token));
  if (!spec.empty() && spec.back() == ',') return invalidArgument("empty device in device spec");
  return cfg;
}

Result<SoftGpuConfig> loadConfig() {
  try {
    if (auto path = env::get("TF_SOFTGPU_CONFIG")) {
      std::ifstream file(*path);
      if (!file) return notFound("TF_SOFTGPU_CONFIG=" + *path + " cannot be read");
      std::stringstream text;
      text << file.rdbuf();
      return parseJsonConfig(text.str(), *path);
    }
    if (auto spec = env::get("TF_SOFTGPU_DEVICES")) {
      auto cfg = parseDeviceSpec(*spec, defaultNode());
      if (!cfg) return cfg.status().withContext("TF_SOFTGPU_DEVICES");
      return cfg;
    }
    SoftGpuConfig cfg;
    cfg.node = defaultNode();
    TF_RETURN_IF_ERROR(addDevices(cfg, findModel("H100"), 0, 1));
    return cfg;
  } catch (const std::exception& e) {
    return internalError(std::string("loading the soft GPU configuration: ") + e.what());
  }
}

} // namespace tf::softgpu
