#include "controller/conditions.h"

#include <chrono>

#include "k8s/time_format.h"

namespace tf::controller {

std::string nowRfc3339() { return k8s::formatTime(std::chrono::system_clock::now()); }

const k8s::api::v1::Condition* findCondition(const std::optional<std::vector<k8s::api::v1::Condition>>& conditions,
                                             const std::string& type) {
  if (!conditions) return nullptr;
  for (const auto& c : *conditions)
    if (c.type == type) return &c;
  return nullptr;
}

void setCondition(std::optional<std::vector<k8s::api::v1::Condition>>& conditions, const std::string& type,
                  bool status, const std::string& reason, const std::string& message,
                  std::optional<int64_t> observedGeneration) {
  if (!conditions) conditions.emplace();
  const std::string s = status ? "True" : "False";
  for (auto& c : *conditions) {
    if (c.type != type) continue;
    if (c.status != s) c.lastTransitionTime = nowRfc3339();
    c.status = s;
    c.reason = reason;
    c.message = message;
    c.observedGeneration = observedGeneration;
    return;
  }
  k8s::api::v1::Condition c;
  c.type = type;
  c.status = s;
  c.reason = reason;
  c.message = message;
  c.lastTransitionTime = nowRfc3339();
  c.observedGeneration = observedGeneration;
  conditions->push_back(std::move(c));
}

}  // namespace tf::controller
