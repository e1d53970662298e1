// metav1.Condition bookkeeping: a condition's lastTransitionTime moves only when its status
// does, so writing the same state again changes nothing (and so writes nothing).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "k8s/api/v1/types.h"

namespace tf::controller {

void setCondition(std::optional<std::vector<k8s::api::v1::Condition>>& conditions, const std::string& type,
                  bool status, const std::string& reason, const std::string& message,
                  std::optional<int64_t> observedGeneration = std::nullopt);

const k8s::api::v1::Condition* findCondition(const std::optional<std::vector<k8s::api::v1::Condition>>& conditions,
                                             const std::string& type);

// Now, as the apiserver writes times.
std::string nowRfc3339();

}  // namespace tf::controller
