#include "controller/selectors.h"

#include <algorithm>
#include <charconv>

namespace tf::controller {
namespace v1 = k8s::api::v1;

Labels labelsOf(const nlohmann::json& object) {
  Labels out;
  auto meta = object.find("metadata");
  if (meta == object.end()) return out;
  auto labels = meta->find("labels");
  if (labels == meta->end() || !labels->is_object()) return out;
  for (const auto& [k, v] : labels->items())
    if (v.is_string()) out[k] = v.get<std::string>();
  return out;
}

namespace {

bool parseInt(const std::string& text, long long& out) {
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && p == text.data() + text.size();
}

bool valueIn(const std::optional<std::vector<std::string>>& values, const std::string& v) {
  return values && std::find(values->begin(), values->end(), v) != values->end();
}

bool matchesValue(const std::string& op, const std::optional<std::vector<std::string>>& values,
                  const std::string* value) {
  if (op == "In") return value && valueIn(values, *value);
  if (op == "NotIn") return !value || !valueIn(values, *value);
  if (op == "Exists") return value != nullptr;
  if (op == "DoesNotExist") return value == nullptr;
  if (op == "Gt" || op == "Lt") {
    long long have = 0, want = 0;
    if (!value || !values || values->size() != 1 || !parseInt(*value, have) || !parseInt(values->front(), want))
      return false;
    return op == "Gt" ? have > want : have < want;
  }
  return false;  // an unknown operator selects nothing
}

}  // namespace

bool matches(const v1::NodeSelectorRequirement& req, const Labels& labels) {
  auto it = labels.find(req.key);
  return matchesValue(req.operator_, req.values, it == labels.end() ? nullptr : &it->second);
}

bool matches(const v1::NodeSelector& selector, const nlohmann::json& node) {
  const Labels labels = labelsOf(node);
  Labels fields;
  if (auto name = node.value("/metadata/name"_json_pointer, std::string()); !name.empty())
    fields["metadata.name"] = name;
  for (const auto& term : selector.nodeSelectorTerms) {
    const bool hasExprs = term.matchExpressions && !term.matchExpressions->empty();
    const bool hasFields = term.matchFields && !term.matchFields->empty();
    if (!hasExprs && !hasFields) continue;  // an empty term matches nothing
    bool all = true;
    if (hasExprs)
      for (const auto& r : *term.matchExpressions) all = all && matches(r, labels);
    if (hasFields)
      for (const auto& r : *term.matchFields) all = all && matches(r, fields);
    if (all) return true;
  }
  return false;
}

bool matches(const v1::LabelSelector& selector, const Labels& labels) {
  if (selector.matchLabels)
    for (const auto& [k, v] : *selector.matchLabels) {
      auto it = labels.find(k);
      if (it == labels.end() || it->second != v) return false;
    }
  if (selector.matchExpressions)
    for (const auto& e : *selector.matchExpressions) {
      auto it = labels.find(e.key);
      if (!matchesValue(e.operator_, e.values, it == labels.end() ? nullptr : &it->second)) return false;
    }
  return true;
}

bool poolSelectsNode(const v1::GpuPoolSpec& spec, const nlohmann::json& node) {
  const auto& cfg = spec.nodeManagerConfig;
  if (cfg.multiVendorNodeSelector && !cfg.multiVendorNodeSelector->empty()) {
    for (const auto& [vendor, selector] : *cfg.multiVendorNodeSelector)
      if (matches(selector, node)) return true;
    return false;
  }
  return cfg.nodeSelector && matches(*cfg.nodeSelector, node);
}

}  // namespace tf::controller
