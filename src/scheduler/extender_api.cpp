#include "scheduler/extender_api.h"

namespace tf::scheduler {
namespace {

Result<nlohmann::json> parseObject(const std::string& body, const char* what) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalidArgument(std::string(what) + ": the body is not JSON");
  if (!j.is_object()) return invalidArgument(std::string(what) + ": the body is not a JSON object");
  return j;
}

Result<std::string> stringField(const nlohmann::json& j, const char* what, const char* key, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return invalidArgument(std::string(what) + ": " + key + " is missing");
    return std::string();
  }
  if (!it->is_string()) return invalidArgument(std::string(what) + ": " + key + " is not a string");
  return it->get<std::string>();
}

}  // namespace

Result<ExtenderArgs> parseExtenderArgs(const std::string& body) {
  constexpr const char* kWhat = "ExtenderArgs";
  auto j = parseObject(body, kWhat);
  if (!j) return j.status();
  ExtenderArgs args;
  auto pod = j->find("Pod");
  if (pod == j->end() || !pod->is_object()) return invalidArgument("ExtenderArgs: Pod is missing or not an object");
  args.pod = *pod;
  auto names = j->find("NodeNames");
  auto nodes = j->find("Nodes");
  const bool haveNames = names != j->end() && !names->is_null();
  const bool haveNodes = nodes != j->end() && !nodes->is_null();
  if (!haveNames && !haveNodes) return invalidArgument("ExtenderArgs: neither NodeNames nor Nodes is given");
  if (haveNames) {
    if (!names->is_array()) return invalidArgument("ExtenderArgs: NodeNames is not an array");
    for (const auto& n : *names) {
      if (!n.is_string()) return invalidArgument("ExtenderArgs: NodeNames holds a non-string");
      args.nodeNames.push_back(n.get<std::string>());
    }
  } else {
    auto items = nodes->find("items");
    if (!nodes->is_object() || (items != nodes->end() && !items->is_array() && !items->is_null()))
      return invalidArgument("ExtenderArgs: Nodes is not a NodeList");
    if (items != nodes->end() && items->is_array())
      for (const auto& n : *items) {
        const auto name = n.is_object() ? n.value("/metadata/name"_json_pointer, std::string()) : std::string();
        if (name.empty()) return invalidArgument("ExtenderArgs: a node in Nodes has no metadata.name");
        args.nodeNames.push_back(name);
      }
    args.nodes = *nodes;
  }
  return args;
}

nlohmann::json encodeFilterResult(const FilterResult& r, const ExtenderArgs& args) {
  nlohmann::json failed = nlohmann::json::object();
  for (const auto& [node, why] : r.failedNodes) failed[node] = why;
  nlohmann::json out = {{"Nodes", nullptr}, {"NodeNames", nullptr}, {"FailedNodes", failed}, {"Error", r.error}};
  if (args.nodes) {
    nlohmann::json list = *args.nodes;
    nlohmann::json items = nlohmann::json::array();
    if (list.contains("items") && list["items"].is_array())
      for (const auto& n : list["items"])
        if (std::find(r.nodeNames.begin(), r.nodeNames.end(), n["metadata"]["name"].get<std::string>()) !=
            r.nodeNames.end())
          items.push_back(n);
    list["items"] = std::move(items);
    out["Nodes"] = std::move(list);
  } else {
    out["NodeNames"] = r.nodeNames;
  }
  return out;
}

nlohmann::json encodeHostPriorities(const std::vector<HostPriority>& list) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& h : list) out.push_back({{"Host", h.host}, {"Score", h.score}});
  return out;
}

Result<BindingArgs> parseBindingArgs(const std::string& body) {
  constexpr const char* kWhat = "ExtenderBindingArgs";
  auto j = parseObject(body, kWhat);
  if (!j) return j.status();
  BindingArgs b;
  for (auto [key, out, required] : {std::tuple{"PodName", &b.podName, true}, std::tuple{"PodNamespace", &b.podNamespace, true},
                                    std::tuple{"PodUID", &b.podUid, false}, std::tuple{"Node", &b.node, true}}) {
    auto v = stringField(*j, kWhat, key, required);
    if (!v) return v.status();
    if (required && v->empty()) return invalidArgument(std::string(kWhat) + ": " + key + " is empty");
    *out = *v;
  }
  return b;
}

nlohmann::json encodeBindingResult(const std::string& error) { return {{"Error", error}}; }

}  // namespace tf::scheduler
