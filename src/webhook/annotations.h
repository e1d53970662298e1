// The pod annotations the webhook reads and writes, described once (reference §2.1, §3.3):
// each key's kind and range. Parsing, the deny messages and the normalised text the webhook
// writes back all come from this one table.
//
//   auto values = parseAnnotations(pod["metadata"]["annotations"]);
//   if (!values) return deny(values.status().message());  // "tensor-fusion.ai/vram-limit: ..."
//   values->quantity(Field::VramLimit);                   // std::optional<Quantity>
//   formatAnnotations(*values);                           // {"tensor-fusion.ai/vram-limit": "1Gi", ...}
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "k8s/api/quantity.h"

namespace tf::webhook {

enum class Kind : uint8_t {
  Quantity,  // a Kubernetes quantity, not negative ("10", "500m", "1Gi")
  Percent,   // an integer 0..100
  Int,       // an integer in [min, max]
  Bool,      // "true" or "false"
  Enum,      // one of `choices`
  Duration,  // a Go duration, not negative ("30s", "1h30m", "0")
  Name,      // a Kubernetes object name (DNS-1123 subdomain)
  Text,      // free text, not empty (a GPU model, a vendor)
  Csv,       // comma-separated names, none empty
  IntCsv,    // comma-separated integers >= 0
};

// X(Field, key constant in k8s/api/well_known.h, kind, min, max, choices ("a|b|c"), who writes it)
// who: User = the user may set it (the webhook validates and normalises it);
//      Webhook = only the webhook writes it (a user's value is replaced).
#define TF_WEBHOOK_ANNOTATIONS(X)                                                              \
  X(GpuPool, kAnnotationGpuPool, Name, 0, 0, "", User)                                         \
  X(TflopsRequest, kAnnotationTflopsRequest, Quantity, 0, 0, "", User)                         \
  X(TflopsLimit, kAnnotationTflopsLimit, Quantity, 0, 0, "", User)                             \
  X(VramRequest, kAnnotationVramRequest, Quantity, 0, 0, "", User)                             \
  X(VramLimit, kAnnotationVramLimit, Quantity, 0, 0, "", User)                                 \
  X(ComputeRequest, kAnnotationComputeRequest, Percent, 0, 100, "", User)                      \
  X(ComputeLimit, kAnnotationComputeLimit, Percent, 0, 100, "", User)                          \
  X(Qos, kAnnotationQos, Enum, 0, 0, "low|medium|high|critical", User)                         \
  X(IsLocalGpu, kAnnotationIsLocalGpu, Bool, 0, 0, "", User)                                   \
  X(Isolation, kAnnotationIsolation, Enum, 0, 0, "shared|soft|hard|partitioned", User)         \
  X(GpuCount, kAnnotationGpuCount, Int, 1, 128, "", User)                                      \
  X(GpuIndices, kAnnotationGpuIndices, IntCsv, 0, 0, "", User)                                 \
  X(GpuModel, kAnnotationGpuModel, Text, 0, 0, "", User)                                       \
  X(Vendor, kAnnotationVendor, Text, 0, 0, "", User)                                           \
  X(DedicatedGpu, kAnnotationDedicatedGpu, Bool, 0, 0, "", User)                               \
  X(Workload, kAnnotationWorkload, Name, 0, 0, "", User)                                       \
  X(WorkloadProfile, kAnnotationWorkloadProfile, Name, 0, 0, "", User)                         \
  X(EvictionProtection, kAnnotationEvictionProtection, Duration, 0, 0, "", User)               \
  X(GangEnabled, kAnnotationGangEnabled, Bool, 0, 0, "", User)                                 \
  X(GangMinMembers, kAnnotationGangMinMembers, Int, 0, 2147483647, "", User)                   \
  X(GangTimeout, kAnnotationGangTimeout, Duration, 0, 0, "", User)                             \
  X(GangGroupKey, kAnnotationGangGroupKey, Text, 0, 0, "", Webhook)                            \
  X(GangRequiredMembers, kAnnotationGangRequiredMembers, Int, 2, 2147483647, "", Webhook)      \
  X(InjectContainer, kAnnotationInjectContainer, Csv, 0, 0, "", User)                          \
  X(SidecarWorker, kAnnotationSidecarWorker, Bool, 0, 0, "", User)

enum class Field : uint8_t {
#define TF_WEBHOOK_FIELD_ENUM(f, key, kind, min, max, choices, who) f,
  TF_WEBHOOK_ANNOTATIONS(TF_WEBHOOK_FIELD_ENUM)
#undef TF_WEBHOOK_FIELD_ENUM
      Count
};

enum class Who : uint8_t { User, Webhook };

struct AnnotationSpec {
  Field field;
  const char* key;  // "tensor-fusion.ai/vram-limit"
  Kind kind;
  int64_t min, max;  // Int and Percent
  std::string_view choices;  // Enum: "a|b|c"
  Who who;
};

// The table, in Field order.
const std::vector<AnnotationSpec>& annotationTable();
const AnnotationSpec& specOf(Field field);

// A parsed value: Quantity, an integer (Int, Percent), bool, a string (Enum, Duration, Name,
// Text), a list of names (Csv) or of integers (IntCsv).
using Value = std::variant<k8s::api::Quantity, int64_t, bool, std::string, std::vector<std::string>,
                           std::vector<int64_t>>;

class Values {
public:
  bool has(Field f) const { return values_.count(f) != 0; }
  void set(Field f, Value v) { values_[f] = std::move(v); }
  void erase(Field f) { values_.erase(f); }
  std::optional<k8s::api::Quantity> quantity(Field f) const { return get<k8s::api::Quantity>(f); }
  std::optional<int64_t> integer(Field f) const { return get<int64_t>(f); }
  std::optional<bool> boolean(Field f) const { return get<bool>(f); }
  std::optional<std::string> text(Field f) const { return get<std::string>(f); }
  std::optional<std::vector<std::string>> list(Field f) const { return get<std::vector<std::string>>(f); }
  std::optional<std::vector<int64_t>> ints(Field f) const { return get<std::vector<int64_t>>(f); }
  const std::map<Field, Value>& all() const { return values_; }

private:
  template <typename T> std::optional<T> get(Field f) const {
    auto it = values_.find(f);
    if (it == values_.end()) return std::nullopt;
    if (const T* v = std::get_if<T>(&it->second)) return *v;
    return std::nullopt;
  }
  std::map<Field, Value> values_;
};

// One annotation's text by its spec; the error names the key and says what was expected.
Result<Value> parseValue(const AnnotationSpec& spec, std::string_view text);
// Every user annotation of the table found in `annotations` (a JSON object of strings, or
// null); the first bad one is the error. Webhook-only keys are ignored (they are rewritten).
Result<Values> parseAnnotations(const nlohmann::json& annotations);
// The normalised text of every value, keyed by annotation.
std::map<std::string, std::string> formatAnnotations(const Values& values);
std::string formatValue(const Value& value);

// A Go duration ("300ms", "1h30m", "-1.5s", "0") in nanoseconds, or an error.
Result<int64_t> parseGoDuration(std::string_view text);

}  // namespace tf::webhook
