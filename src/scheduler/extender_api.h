// The kube-scheduler extender wire types of Kubernetes 1.20 (k8s.io/kube-scheduler/extender/v1:
// no JSON tags, so the keys are the Go field names). Described once here; the handlers and
// the tests use these. Every scheduling decision passes through them twice with every node's
// name (thousands): the arguments are read with simdjson (validated whole, the names taken
// straight from its tape, a document built for the Pod only), and the answers are written
// straight to text.
//
//   filter/prioritize request  {"Pod": {...}, "Nodes": {"items": [...]} | null, "NodeNames": [..] | null}
//   filter response            {"Nodes": null, "NodeNames": [..], "FailedNodes": {"n": "why"}, "Error": ""}
//   prioritize response        [{"Host": "n1", "Score": 7}]            (0..kMaxExtenderPriority)
//   bind request               {"PodName": "p", "PodNamespace": "ns", "PodUID": "..", "Node": "n1"}
//   bind response              {"Error": ""}
// 1.20 has no FailedAndUnresolvableNodes (1.21+), so it is never sent.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace tf::scheduler {

inline constexpr int kMaxExtenderPriority = 10;  // extenderv1.MaxExtenderPriority

struct ExtenderArgs {
  nlohmann::json pod;
  std::vector<std::string> nodeNames;
  std::optional<nlohmann::json> nodes;  // the NodeList, when the scheduler is not nodeCacheCapable
};
Result<ExtenderArgs> parseExtenderArgs(const std::string& body);

struct FilterResult {
  std::vector<std::string> nodeNames;
  std::vector<std::pair<std::string, std::string>> failedNodes;  // node, why (each node once)
  std::string error;
};
// `args` decides the shape: NodeNames in, NodeNames out; Nodes in, the passing Nodes out.
std::string encodeFilterResult(const FilterResult& result, const ExtenderArgs& args);

struct HostPriority {
  std::string host;
  int64_t score = 0;
};
std::string encodeHostPriorities(const std::vector<HostPriority>& list);

struct BindingArgs {
  std::string podName, podNamespace, podUid, node;
};
Result<BindingArgs> parseBindingArgs(const std::string& body);
std::string encodeBindingResult(const std::string& error);

}  // namespace tf::scheduler
