#include "hypervisor/vgpu.h"

#include <cmath>

#include "common/units.h"

namespace tf::hypervisor {

const char* qosName(Qos q) {
  switch (q) {
  case Qos::Low: return "low";
  case Qos::Medium: return "medium";
  case Qos::High: return "high";
  case Qos::Critical: return "critical";
  }
  return "medium";
}

const char* isolationName(Isolation i) {
  switch (i) {
  case Isolation::Soft: return "soft";
  case Isolation::Hard: return "hard";
  case Isolation::Remote: return "remote";
  }
  return "soft";
}

Result<Qos> parseQos(const std::string& s) {
  for (Qos q : {Qos::Low, Qos::Medium, Qos::High, Qos::Critical})
    if (s == qosName(q)) return q;
  return invalidArgument("qos '" + s + "' is not one of low, medium, high, critical");
}

Result<Isolation> parseIsolation(const std::string& s) {
  for (Isolation i : {Isolation::Soft, Isolation::Hard, Isolation::Remote})
    if (s == isolationName(i)) return i;
  return invalidArgument("isolation '" + s + "' is not one of soft, hard, remote");
}

int qosWeight(Qos q) {
  switch (q) {
  case Qos::Low: return 1;
  case Qos::Medium: return 2;
  case Qos::High: return 4;
  case Qos::Critical: return 8;
  }
  return 2;
}

namespace {

Result<double> number(const nlohmann::json& body, const char* key, double fallback) {
  if (!body.contains(key)) return fallback;
  const auto& v = body[key];
  if (!v.is_number()) return invalidArgument(std::string(key) + " must be a number");
  double d = v.get<double>();
  if (!std::isfinite(d) || d < 0) return invalidArgument(std::string(key) + " must be >= 0");
  return d;
}

Result<uint64_t> size(const nlohmann::json& body, const char* key) {
  if (!body.contains(key)) return uint64_t(0);
  const auto& v = body[key];
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) {
    if (v.get<int64_t>() < 0) return invalidArgument(std::string(key) + " must not be negative");
    return static_cast<uint64_t>(v.get<int64_t>());
  }
  if (v.is_string()) {
    auto r = units::parseBytes(v.get<std::string>());
    if (!r) return r.status().withContext(key);
    return *r;
  }
  return invalidArgument(std::string(key) + " must be a size (\"4GiB\" or bytes)");
}

} // namespace

Result<VgpuRequest> parseVgpuRequest(const nlohmann::json& body) {
  if (!body.is_object()) return invalidArgument("request body must be a JSON object");
  static const char* kKnown[] = {"name", "tflopsRequest", "tflopsLimit", "computeRequest",
                                 "computeLimit", "vramRequest", "vramLimit", "qos", "isolation",
                                 "device", "devices", "count"};
  for (auto& [k, v] : body.items()) {
    bool known = false;
    for (const char* n : kKnown) known |= k == n;
    if (!known) return invalidArgument("unknown field '" + k + "'");
  }
  VgpuRequest r;
  if (body.contains("name")) {
    if (!body["name"].is_string()) return invalidArgument("name must be a string");
    r.name = body["name"].get<std::string>();
    if (r.name.size() > 40) return invalidArgument("name must be at most 40 characters");
    for (char c : r.name)
      if (!isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_')
        return invalidArgument("name may use letters, digits, '-' and '_'");
  }
  auto tr = number(body, "tflopsRequest", 0), tl = number(body, "tflopsLimit", 0);
  auto pr = number(body, "computeRequest", 0), pl = number(body, "computeLimit", 0);
  for (auto* x : {&tr, &tl, &pr, &pl})
    if (!*x) return x->status();
  r.tflopsRequest = *tr;
  r.tflopsLimit = *tl;
  r.percentRequest = *pr;
  r.percentLimit = *pl;
  const bool tflops = r.tflopsRequest > 0 || r.tflopsLimit > 0;
  const bool percent = r.percentRequest > 0 || r.percentLimit > 0;
  if (tflops && percent) return invalidArgument("give compute as TFLOPS or as a percent, not both");
  if (r.percentLimit > 100 || r.percentRequest > 100) return invalidArgument("compute percent must be at most 100");
  if (!tflops && !percent) r.percentRequest = r.percentLimit = 100; // a whole device's time
  if (r.tflopsLimit == 0) r.tflopsLimit = r.tflopsRequest;
  if (r.tflopsRequest == 0) r.tflopsRequest = r.tflopsLimit;
  if (r.percentLimit == 0) r.percentLimit = r.percentRequest;
  if (r.percentRequest == 0) r.percentRequest = r.percentLimit;
  if (r.tflopsRequest > r.tflopsLimit || r.percentRequest > r.percentLimit)
    return invalidArgument("compute request is more than its limit");
  auto vr = size(body, "vramRequest"), vl = size(body, "vramLimit");
  if (!vr) return vr.status();
  if (!vl) return vl.status();
  r.vramRequest = *vr;
  r.vramLimit = *vl;
  if (r.vramLimit == 0) r.vramLimit = r.vramRequest;
  if (r.vramRequest == 0) r.vramRequest = r.vramLimit;
  if (r.vramLimit == 0) return invalidArgument("vramLimit (or vramRequest) is required");
  if (r.vramRequest > r.vramLimit) return invalidArgument("vramRequest is more than vramLimit");
  if (body.contains("qos")) {
    if (!body["qos"].is_string()) return invalidArgument("qos must be a string");
    auto q = parseQos(body["qos"].get<std::string>());
    if (!q) return q.status();
    r.qos = *q;
  }
  if (body.contains("isolation")) {
    if (!body["isolation"].is_string()) return invalidArgument("isolation must be a string");
    auto i = parseIsolation(body["isolation"].get<std::string>());
    if (!i) return i.status();
    r.isolation = *i;
  }
  if (body.contains("device") && body.contains("devices"))
    return invalidArgument("give device or devices, not both");
  if (body.contains("device")) {
    if (!body["device"].is_string()) return invalidArgument("device must be a UUID string");
    r.devices = {body["device"].get<std::string>()};
  }
  if (body.contains("devices")) {
    const auto& list = body["devices"];
    if (!list.is_array() || list.empty()) return invalidArgument("devices must be a non-empty list of UUIDs");
    for (const auto& d : list) {
      if (!d.is_string()) return invalidArgument("devices must be a list of UUID strings");
      r.devices.push_back(d.get<std::string>());
    }
  }
  if (body.contains("count")) {
    const auto& c = body["count"];
    if (!c.is_number_integer() || c.get<int64_t>() < 1 || c.get<int64_t>() > kMaxVgpuDevices)
      return invalidArgument("count must be a whole number from 1 to " + std::to_string(kMaxVgpuDevices));
    r.count = c.get<int>();
    if (!r.devices.empty() && r.count != static_cast<int>(r.devices.size()))
      return invalidArgument("count is " + std::to_string(r.count) + " but " + std::to_string(r.devices.size()) +
                             " devices are named");
  }
  if (static_cast<int>(r.devices.size()) > kMaxVgpuDevices)
    return invalidArgument("a vGPU spans at most " + std::to_string(kMaxVgpuDevices) + " devices");
  if (!r.devices.empty()) r.count = static_cast<int>(r.devices.size());
  return r;
}

nlohmann::json toJson(const VgpuRequest& r) {
  nlohmann::json j = {{"vramRequest", r.vramRequest}, {"vramLimit", r.vramLimit},
                      {"qos", qosName(r.qos)}, {"isolation", isolationName(r.isolation)}};
  if (!r.name.empty()) j["name"] = r.name;
  if (r.tflopsLimit > 0) {
    j["tflopsRequest"] = r.tflopsRequest;
    j["tflopsLimit"] = r.tflopsLimit;
  } else {
    j["computeRequest"] = r.percentRequest;
    j["computeLimit"] = r.percentLimit;
  }
  if (r.devices.size() == 1) j["device"] = r.devices.front();
  if (r.devices.size() > 1) j["devices"] = r.devices;
  if (r.devices.empty() && r.count != 1) j["count"] = r.count;
  return j;
}

std::string deviceUuids(const std::vector<DeviceGrant>& devices) {
  std::string out;
  for (const DeviceGrant& g : devices) out += (out.empty() ? "" : ",") + g.deviceUuid;
  return out;
}

nlohmann::json toJson(const Vgpu& v) {
  static const DeviceGrant kNone;
  const DeviceGrant& first = v.devices.empty() ? kNone : v.devices.front();
  nlohmann::json devices = nlohmann::json::array();
  for (const auto& g : v.devices)
    devices.push_back({{"uuid", g.deviceUuid},
                       {"index", g.deviceIndex},
                       {"computeRequestPercent", g.requestBp / 100.0},
                       {"computeLimitPercent", g.limitBp / 100.0}});
  return {{"id", v.id},
          {"request", toJson(v.request)},
          {"device", first.deviceUuid},
          {"deviceIndex", first.deviceIndex},
          {"devices", devices},
          {"region", v.regionPath},
          {"computeRequestPercent", first.requestBp / 100.0},
          {"computeLimitPercent", first.limitBp / 100.0},
          {"createdAt", v.createdAt},
          {"worker", {{"address", v.workerAddress}, {"token", v.workerToken}, {"pid", v.workerPid},
                      {"restarts", v.workerRestarts}}},
          {"tierPolicy", {{"enabled", v.request.tiers.enabled},
                          {"freezeToMemMs", v.request.tiers.freezeToMemMs},
                          {"freezeToDiskMs", v.request.tiers.freezeToDiskMs}}}};
}

namespace {

uint32_t basisPoints(const nlohmann::json& j, const char* percentKey) {
  return static_cast<uint32_t>(std::lround(j.at(percentKey).get<double>() * 100));
}

}  // namespace

Result<Vgpu> vgpuFromJson(const nlohmann::json& j) {
  try {
    Vgpu v;
    v.id = j.at("id").get<std::string>();
    auto req = parseVgpuRequest(j.at("request"));
    if (!req) return req.status();
    v.request = *req;
    if (j.contains("devices")) {
      for (const auto& g : j.at("devices"))
        v.devices.push_back({g.at("index").get<int>(), g.at("uuid").get<std::string>(),
                             basisPoints(g, "computeRequestPercent"), basisPoints(g, "computeLimitPercent")});
    } else {  // a one-device record of an older version
      v.devices.push_back({j.at("deviceIndex").get<int>(), j.at("device").get<std::string>(),
                           basisPoints(j, "computeRequestPercent"), basisPoints(j, "computeLimitPercent")});
    }
    if (v.devices.empty() || static_cast<int>(v.devices.size()) > kMaxVgpuDevices)
      return dataLoss("bad vGPU record " + v.id + ": it has " + std::to_string(v.devices.size()) + " devices");
    v.regionPath = j.at("region").get<std::string>();
    v.createdAt = j.at("createdAt").get<int64_t>();
    if (j.contains("worker")) {
      const auto& w = j["worker"];
      v.workerAddress = w.value("address", "");
      v.workerToken = w.value("token", "");
      v.workerPid = w.value("pid", 0);
      v.workerRestarts = w.value("restarts", 0);
    }
    if (j.contains("tierPolicy")) {
      const auto& t = j["tierPolicy"];
      v.request.tiers.enabled = t.value("enabled", false);
      v.request.tiers.freezeToMemMs = t.value("freezeToMemMs", uint64_t{0});
      v.request.tiers.freezeToDiskMs = t.value("freezeToDiskMs", uint64_t{0});
    }
    return v;
  } catch (const std::exception& e) {
    return dataLoss(std::string("bad vGPU record: ") + e.what());
  }
}

} // namespace tf::hypervisor
