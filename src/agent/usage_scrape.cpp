#include "agent/usage_scrape.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <thread>

#include <httplib.h>

#include "k8s/api/well_known.h"

namespace tf::agent {
namespace {

using nlohmann::json;
namespace api = k8s::api;

double fraction(double part, double whole) { return whole <= 0 ? 0.0 : std::clamp(part / whole, 0.0, 1.0); }

// GPU objects are named by the device UUID in lower case (the hypervisor's node registrar).
std::string gpuObjectName(std::string uuid) {
  std::transform(uuid.begin(), uuid.end(), uuid.begin(), [](unsigned char c) { return std::tolower(c); });
  return uuid;
}

const json* field(const json& o, const char* key) {
  if (!o.is_object()) return nullptr;
  auto it = o.find(key);
  return it == o.end() ? nullptr : &*it;
}
double number(const json& o, const char* key, double otherwise = -1) {
  const json* v = field(o, key);
  return v && v->is_number() ? v->get<double>() : otherwise;
}
// The array at `key`, or an empty one when there is none (or `o` is no object).
const json& listAt(const json& o, const char* key) {
  static const json kEmpty = json::array();
  const json* v = field(o, key);
  return v && v->is_array() ? *v : kEmpty;
}
std::string text(const json& o, const char* key) {
  const json* v = field(o, key);
  return v && v->is_string() ? v->get<std::string>() : std::string();
}

}  // namespace

std::vector<HypervisorEndpoint> hypervisorEndpoints(const std::vector<json>& pods) {
  std::vector<HypervisorEndpoint> out;
  for (const json& p : pods) {
    const json* status = field(p, "status");
    if (!status || text(*status, "phase") != "Running" || text(*status, "podIP").empty()) continue;
    int port = api::kHypervisorPort;
    const json* spec = field(p, "spec");
    for (const json& c : spec ? listAt(*spec, "containers") : listAt(p, "-"))
      for (const json& cp : listAt(c, "ports"))
        if (text(cp, "name") == api::kHypervisorPortName && number(cp, "containerPort") > 0)
          port = static_cast<int>(number(cp, "containerPort"));
    out.push_back({p.value("/metadata/namespace"_json_pointer, std::string()) + "/" +
                       p.value("/metadata/name"_json_pointer, std::string()),
                   text(*status, "podIP"), port});
  }
  return out;
}

std::map<std::string, std::string> podsByVgpuName(const std::vector<protocol::SyncedObject>& objects) {
  std::map<std::string, std::string> out;
  for (const auto& o : objects) {
    if (o.kind != "Pod") continue;
    const std::string uid = o.body.value("/metadata/uid"_json_pointer, std::string());
    if (!uid.empty()) out[api::podVgpuName(uid)] = o.ns + "/" + o.name;
  }
  return out;
}

std::vector<protocol::MetricPoint> usagePoints(const json& devices, const json& vgpus,
                                               const std::map<std::string, std::string>& podsByVgpu, int64_t tsMs) {
  std::vector<protocol::MetricPoint> points;
  for (const json& d : listAt(devices, "devices")) {
    const std::string uuid = text(d, "uuid");
    const json* present = field(d, "present");
    if (uuid.empty() || (present && *present == false)) continue;
    const std::string prefix = "gpu." + gpuObjectName(uuid) + ".";
    if (double u = number(d, "utilization"); u >= 0) points.push_back({prefix + "utilization", tsMs, fraction(u, 100)});
    if (double total = number(d, "memoryTotal"), used = number(d, "memoryUsed"); total > 0 && used >= 0)
      points.push_back({prefix + "memory", tsMs, fraction(used, total)});
  }
  for (const json& v : listAt(vgpus, "vgpus")) {
    const json* request = field(v, "request");
    const json* usage = field(v, "usage");
    if (!request || !usage) continue;
    auto pod = podsByVgpu.find(text(*request, "name"));
    if (pod == podsByVgpu.end()) continue;  // not a pod's vGPU, or a pod this agent does not mirror
    const std::string prefix = "vgpu." + pod->second + ".";
    if (double share = number(*usage, "computeShare"); share >= 0)
      points.push_back({prefix + "compute", tsMs, std::clamp(share, 0.0, 1.0)});
    if (double used = number(*usage, "vramUsed"), limit = number(*request, "vramLimit"); used >= 0 && limit > 0)
      points.push_back({prefix + "vram", tsMs, fraction(used, limit)});
  }
  return points;
}

Result<std::vector<protocol::MetricPoint>> scrapeHypervisor(const HypervisorEndpoint& target,
                                                            const std::map<std::string, std::string>& podsByVgpu,
                                                            int64_t tsMs, std::chrono::milliseconds timeout) {
  httplib::Client client(target.host, target.port);
  client.set_connection_timeout(timeout);
  client.set_read_timeout(timeout);
  client.set_write_timeout(timeout);
  json answers[2];
  const char* paths[2] = {"/api/v1/devices", "/api/v1/vgpus"};
  for (int i = 0; i < 2; ++i) {
    auto r = client.Get(paths[i]);
    if (!r) return unavailable("hypervisor " + target.pod + " (" + target.host + ":" + std::to_string(target.port) +
                               ") " + paths[i] + ": " + httplib::to_string(r.error()));
    if (r->status != 200)
      return unavailable("hypervisor " + target.pod + " " + paths[i] + ": HTTP " + std::to_string(r->status));
    answers[i] = json::parse(r->body, nullptr, false);
    if (!answers[i].is_object()) return dataLoss("hypervisor " + target.pod + " " + paths[i] + ": not a JSON object");
  }
  return usagePoints(answers[0], answers[1], podsByVgpu, tsMs);
}

std::vector<Result<std::vector<protocol::MetricPoint>>> scrapeHypervisors(
    const std::vector<HypervisorEndpoint>& targets, const std::map<std::string, std::string>& podsByVgpu,
    int64_t tsMs, std::chrono::milliseconds timeout, size_t parallel) {
  std::vector<Result<std::vector<protocol::MetricPoint>>> out(targets.size(), unavailable("not asked"));
  std::atomic<size_t> next{0};
  const auto work = [&] {
    for (size_t i; (i = next.fetch_add(1)) < targets.size();)
      out[i] = scrapeHypervisor(targets[i], podsByVgpu, tsMs, timeout);
  };
  std::vector<std::thread> threads;
  const size_t n = std::min(std::max<size_t>(parallel, 1), targets.size());
  for (size_t t = 1; t < n; ++t) threads.emplace_back(work);
  work();  // this thread is one of them
  for (auto& t : threads) t.join();
  return out;
}

}  // namespace tf::agent
