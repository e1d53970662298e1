// Kubernetes selector semantics over a Node's labels, for pools that pick their nodes:
// NodeSelector terms are ORed, a term's requirements ANDed, an empty term matches nothing;
// operators In, NotIn, Exists, DoesNotExist, Gt, Lt; matchFields knows metadata.name.
//
//   if (matches(*pool.spec->nodeManagerConfig.nodeSelector, node)) ...
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "k8s/api/v1/types.h"

namespace tf::controller {

using Labels = std::map<std::string, std::string>;

Labels labelsOf(const nlohmann::json& object);

bool matches(const k8s::api::v1::NodeSelectorRequirement& req, const Labels& labels);
bool matches(const k8s::api::v1::NodeSelector& selector, const nlohmann::json& node);
bool matches(const k8s::api::v1::LabelSelector& selector, const Labels& labels);

// The pool's own rule: any of multiVendorNodeSelector (they take precedence) or nodeSelector.
// A pool with neither selects no node.
bool poolSelectsNode(const k8s::api::v1::GpuPoolSpec& spec, const nlohmann::json& node);

}  // namespace tf::controller
