#include "allocator/types.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "k8s/api/codec.h"
#include "k8s/api/quantity.h"
#include "k8s/api/v1/types.h"
#include "k8s/api/well_known.h"
#include <ctime>

namespace tf::allocator {
namespace api = k8s::api;
namespace v1 = k8s::api::v1;

namespace {

const nlohmann::json& field(const nlohmann::json& j, const char* key) {
  static const nlohmann::json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

std::string stringAt(const nlohmann::json& j, const char* key) {
  const auto& v = field(j, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

Status annotationError(const char* key, const std::string& value, const std::string& why) {
  return invalidArgument(std::string(key) + ": \"" + value + "\" " + why);
}

Result<int64_t> parseInt(const char* key, const std::string& s, int64_t lo, int64_t hi) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return annotationError(key, s, "is not an integer");
  if (v < lo || v > hi)
    return annotationError(key, s, "is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}

// metav1.Time: "2006-01-02T15:04:05Z" (fractions and offsets other than Z are not written by
// the apiserver; fractions are ignored).
std::optional<Clock::time_point> parseTime(const std::string& s) {
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &consumed) != 6)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return Clock::from_time_t(timegm(&tm));
}

Amount amountOf(const v1::Resource& r) { return {r.tflops.milliValue(), r.vram.value()}; }

}  // namespace

std::string describe(const Amount& a) {
  return api::Quantity::fromMilli(a.milliTflops).toString() + " TFLOPS, " +
         api::Quantity::fromInt(a.vramBytes, api::Quantity::Format::BinarySI).toString() + " VRAM";
}

Amount Slice::on(const Amount& capacity) const {
  if (computePercent < 0) return {milliTflops, vramBytes};
  // TensorFusion: compute% × capacity TFLOPS, rounded up so a booking never undercounts.
  const __int128 t = static_cast<__int128>(capacity.milliTflops) * computePercent;
  return {static_cast<int64_t>((t + 99) / 100), vramBytes};
}

namespace {

// The wire names of each enum, in the enum's order.
constexpr const char* kQosNames[] = {"low", "medium", "high", "critical"};
constexpr const char* kIsolationNames[] = {"shared", "soft", "hard", "partitioned"};
constexpr const char* kPlacementNames[] = {"CompactFirst", "LowLoadFirst", "NodeCompactGPULowLoad"};

template <typename E, size_t N>
Result<E> parseNamed(std::string_view s, const char* const (&names)[N], const char* what) {
  std::string all;
  for (size_t i = 0; i < N; ++i) {
    if (s == names[i]) return static_cast<E>(i);
    all += std::string(i ? ", " : "") + names[i];
  }
  return invalidArgument("unknown " + std::string(what) + " \"" + std::string(s) + "\" (" + all + ")");
}

}  // namespace

const char* qosName(Qos q) { return kQosNames[static_cast<size_t>(q)]; }
const char* isolationName(Isolation i) { return kIsolationNames[static_cast<size_t>(i)]; }
const char* placementName(Placement p) { return kPlacementNames[static_cast<size_t>(p)]; }
Result<Qos> parseQos(std::string_view s) { return parseNamed<Qos>(s, kQosNames, "QoS"); }
Result<Isolation> parseIsolation(std::string_view s) { return parseNamed<Isolation>(s, kIsolationNames, "isolation"); }
Result<Placement> parsePlacement(std::string_view s) {
  return parseNamed<Placement>(s, kPlacementNames, "placement mode");
}

Result<Duration> parseGoDuration(std::string_view text) {
  std::string_view s = text;
  const auto bad = [&] { return invalidArgument("invalid duration \"" + std::string(text) + "\""); };
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return Duration(0);
  if (s.empty()) return bad();
  static const std::pair<std::string_view, double> kUnits[] = {
      {"ns", 1}, {"us", 1e3}, {"µs", 1e3}, {"μs", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
  long double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (i == 0) return bad();
    const std::string number(s.substr(0, i));
    if (number == "." ) return bad();
    s.remove_prefix(i);
    size_t u = 0;
    while (u < s.size() && !std::isdigit(static_cast<unsigned char>(s[u])) && s[u] != '.') ++u;
    const std::string_view unit = s.substr(0, u);
    s.remove_prefix(u);
    double scale = 0;
    for (const auto& [name, ns] : kUnits)
      if (unit == name) scale = ns;
    if (scale == 0) return bad();
    char* end = nullptr;
    const long double v = std::strtold(number.c_str(), &end);
    if (end != number.c_str() + number.size()) return bad();
    total += v * scale;
  }
  if (total > 9.2e18L) return bad();
  const auto ns = static_cast<int64_t>(std::llround(static_cast<double>(total)));
  return Duration(negative ? -ns : ns);
}

bool isWorkerPod(const nlohmann::json& pod) {
  const auto& labels = field(field(pod, "metadata"), "labels");
  return stringAt(labels, api::kLabelComponent) == api::kComponentWorker;
}

bool isTerminal(const nlohmann::json& pod) {
  const auto& status = field(pod, "status");
  const std::string phase = stringAt(status, "phase");
  if (phase == "Succeeded" || phase == "Failed") return true;
  if (stringAt(field(pod, "metadata"), "deletionTimestamp").empty()) return false;
  if (stringAt(field(pod, "spec"), "nodeName").empty()) return true;  // never ran
  const auto& containers = field(status, "containerStatuses");
  if (!containers.is_array() || containers.empty()) return false;  // no word from the kubelet yet
  for (const auto& c : containers)
    if (!field(field(c, "state"), "terminated").is_object()) return false;
  return true;
}

Result<Request> requestFromPod(const nlohmann::json& pod) {
  const auto& meta = field(pod, "metadata");
  const auto& ann = field(meta, "annotations");
  Request r;
  r.uid = stringAt(meta, "uid");
  r.ns = stringAt(meta, "namespace");
  r.name = stringAt(meta, "name");
  if (r.name.empty()) return invalidArgument("pod has no metadata.name");
  r.workload = stringAt(field(meta, "labels"), api::kLabelWorkload);
  const auto get = [&](const char* key) { return stringAt(ann, key); };
  r.pool = get(api::kAnnotationGpuPool);

  const auto quantity = [&](const char* key, bool milli, int64_t& out) -> Status {
    const std::string v = get(key);
    if (v.empty()) return Status::ok();
    auto q = api::Quantity::parse(v);
    if (!q) return annotationError(key, v, "is not a quantity: " + q.status().message());
    if (q->sign() < 0) return annotationError(key, v, "is negative");
    out = milli ? q->milliValue() : q->value();
    return Status::ok();
  };
  const auto percent = [&](const char* key, int& out) -> Status {
    const std::string v = get(key);
    if (v.empty()) return Status::ok();
    auto n = parseInt(key, v, 0, 100);
    if (!n) return n.status();
    out = static_cast<int>(*n);
    return Status::ok();
  };
  for (Status s : {quantity(api::kAnnotationTflopsRequest, true, r.request.milliTflops),
                   quantity(api::kAnnotationTflopsLimit, true, r.limit.milliTflops),
                   quantity(api::kAnnotationVramRequest, false, r.request.vramBytes),
                   quantity(api::kAnnotationVramLimit, false, r.limit.vramBytes)})
    if (!s) return s;
  // Percentages count only when TFLOPS are not given (the webhook writes one or the other).
  if (get(api::kAnnotationTflopsRequest).empty())
    if (Status s = percent(api::kAnnotationComputeRequest, r.request.computePercent); !s) return s;
  if (get(api::kAnnotationTflopsLimit).empty())
    if (Status s = percent(api::kAnnotationComputeLimit, r.limit.computePercent); !s) return s;

  if (std::string v = get(api::kAnnotationGpuCount); !v.empty()) {
    auto n = parseInt(api::kAnnotationGpuCount, v, 1, 128);
    if (!n) return n.status();
    r.count = static_cast<int>(*n);
  }
  if (std::string v = get(api::kAnnotationQos); !v.empty()) {
    auto q = parseQos(v);
    if (!q) return annotationError(api::kAnnotationQos, v, q.status().message());
    r.qos = *q;
  }
  if (std::string v = get(api::kAnnotationIsolation); !v.empty()) {
    auto i = parseIsolation(v);
    if (!i) return annotationError(api::kAnnotationIsolation, v, i.status().message());
    r.isolation = *i;
  }
  r.model = get(api::kAnnotationGpuModel);
  r.vendor = get(api::kAnnotationVendor);
  if (std::string v = get(api::kAnnotationGpuIndices); !v.empty()) {
    size_t start = 0;
    while (start <= v.size()) {
      size_t comma = v.find(',', start);
      if (comma == std::string::npos) comma = v.size();
      auto n = parseInt(api::kAnnotationGpuIndices, v.substr(start, comma - start), 0, 1 << 20);
      if (!n) return annotationError(api::kAnnotationGpuIndices, v, "is not a comma list of indices");
      r.indices.push_back(static_cast<int>(*n));
      start = comma + 1;
    }
  }
  if (std::string v = get(api::kAnnotationDedicatedGpu); !v.empty()) {
    if (v != "true" && v != "false") return annotationError(api::kAnnotationDedicatedGpu, v, "is not true or false");
    r.dedicated = v == "true";
  }
  if (std::string v = get(api::kAnnotationEvictionProtection); !v.empty()) {
    auto d = parseGoDuration(v);
    if (!d || d->count() < 0) return annotationError(api::kAnnotationEvictionProtection, v, "is not a Go duration");
    r.evictionProtection = *d;
  }
  r.gangKey = get(api::kAnnotationGangGroupKey);
  if (std::string v = get(api::kAnnotationGangRequiredMembers); !v.empty()) {
    auto n = parseInt(api::kAnnotationGangRequiredMembers, v, 0, 1 << 20);
    if (!n) return n.status();
    r.gangRequired = static_cast<int>(*n);
  }
  if (std::string v = get(api::kAnnotationGangTimeout); !v.empty()) {
    auto d = parseGoDuration(v);
    if (!d || d->count() < 0) return annotationError(api::kAnnotationGangTimeout, v, "is not a Go duration");
    r.gangTimeout = *d;
  }
  if (std::string v = get(api::kAnnotationGpuIds); !v.empty()) {
    size_t start = 0;
    while (start <= v.size()) {
      size_t comma = v.find(',', start);
      if (comma == std::string::npos) comma = v.size();
      std::string id = v.substr(start, comma - start);
      if (id.empty()) return annotationError(api::kAnnotationGpuIds, v, "has an empty GPU name");
      r.gpuIds.push_back(std::move(id));
      start = comma + 1;
    }
  }
  if (const std::string ts = stringAt(meta, "creationTimestamp"); !ts.empty()) {
    auto t = parseTime(ts);
    if (!t) return invalidArgument("metadata.creationTimestamp: \"" + ts + "\" is not a time");
    r.created = *t;
  }
  return r;
}

Result<Gpu> gpuFromObject(const nlohmann::json& object) {
  auto g = api::decode<v1::Gpu>(object);
  if (!g) return g.status();
  if (!g->status) return invalidArgument("GPU " + g->metadata.name.value_or("?") + " has no status");
  const auto& st = *g->status;
  Gpu out;
  out.name = g->metadata.name.value_or("");
  if (auto it = st.nodeSelector.find(api::kHostnameLabel); it != st.nodeSelector.end()) out.node = it->second;
  if (g->metadata.labels) {
    if (auto it = g->metadata.labels->find(api::kLabelGpuPool); it != g->metadata.labels->end()) out.pool = it->second;
    if (auto it = g->metadata.labels->find(api::kLabelCordoned); it != g->metadata.labels->end())
      out.cordoned = it->second == "true";
  }
  out.model = st.gpuModel.empty() ? st.model.value_or("") : st.gpuModel;
  out.vendor = st.vendor;
  out.phase = st.phase;
  out.usedBy = st.usedBy.value_or("");
  out.isolationMode = st.isolationMode.value_or("");
  if (g->metadata.annotations)
    if (auto it = g->metadata.annotations->find(api::kAnnotationVirtualizationCapabilities);
        it != g->metadata.annotations->end()) {
      // Unparsable capabilities grant nothing beyond status.isolationMode.
      auto caps = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
      if (caps.is_object() && caps.contains("isolationModes") && caps["isolationModes"].is_array())
        for (const auto& m : caps["isolationModes"])
          if (m.is_string()) out.isolationModes.push_back(m.get<std::string>());
    }
  out.index = st.index.value_or(-1);
  out.capacity = amountOf(st.capacity);
  return out;
}

Result<Quota> quotaFromObject(const nlohmann::json& object) {
  auto q = api::decode<v1::GpuResourceQuota>(object);
  if (!q) return q.status();
  Quota out;
  out.ns = q->metadata.namespace_.value_or("");
  out.name = q->metadata.name.value_or("");
  if (!q->spec) return out;
  if (const auto& t = q->spec->total) {
    if (t->requests) out.totalRequests = amountOf(*t->requests);
    if (t->limits) out.totalLimits = amountOf(*t->limits);
    if (t->maxWorkers) out.maxWorkers = *t->maxWorkers;
  }
  if (const auto& s = q->spec->single) {
    if (s->maxRequests) out.singleMaxRequests = amountOf(*s->maxRequests);
    if (s->maxLimits) out.singleMaxLimits = amountOf(*s->maxLimits);
    if (s->maxGPUCount) out.singleMaxGpuCount = *s->maxGPUCount;
  }
  return out;
}

}  // namespace tf::allocator
