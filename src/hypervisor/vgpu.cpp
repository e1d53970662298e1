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
                                 "device"};
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
  if (body.contains("device")) {
    if (!body["device"].is_string()) return invalidArgument("device must be a UUID string");
    r.device = body["device"].get<std::string>();
  }
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
  if (!r.device.empty()) j["device"] = r.device;
  return j;
}

nlohmann::json toJson(const Vgpu& v) {
  return {{"id", v.id},
          {"request", toJson(v.request)},
          {"device", v.deviceUuid},
          {"deviceIndex", v.deviceIndex},
          {"region", v.regionPath},
          {"computeRequestPercent", v.requestBp / 100.0},
          {"computeLimitPercent", v.limitBp / 100.0},
          {"createdAt", v.createdAt},
          {"worker", {{"address", v.workerAddress}, {"token", v.workerToken}, {"pid", v.workerPid},
                      {"restarts", v.workerRestarts}}}};
}

Result<Vgpu> vgpuFromJson(const nlohmann::json& j) {
  try {
    Vgpu v;
    v.id = j.at("id").get<std::string>();
    auto req = parseVgpuRequest(j.at("request"));
    if (!req) return req.status();
    v.request = *req;
    v.deviceUuid = j.at("device").get<std::string>();
    v.deviceIndex = j.at("deviceIndex").get<int>();
    v.regionPath = j.at("region").get<std::string>();
    v.requestBp = static_cast<uint32_t>(std::lround(j.at("computeRequestPercent").get<double>() * 100));
    v.limitBp = static_cast<uint32_t>(std::lround(j.at("computeLimitPercent").get<double>() * 100));
    v.createdAt = j.at("createdAt").get<int64_t>();
    if (j.contains("worker")) {
      const auto& w = j["worker"];
      v.workerAddress = w.value("address", "");
      v.workerToken = w.value("token", "");
      v.workerPid = w.value("pid", 0);
      v.workerRestarts = w.value("restarts", 0);
    }
    return v;
  } catch (const std::exception& e) {
    return dataLoss(std::string("bad vGPU record: ") + e.what());
  }
}

} // namespace tf::hypervisor
