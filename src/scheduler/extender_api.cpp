#include "scheduler/extender_api.h"

#include <algorithm>
#include <unordered_set>

#include <simdjson.h>

namespace tf::scheduler {
namespace {

using nlohmann::json;

Result<json> parseObject(const std::string& body, const char* what) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalidArgument(std::string(what) + ": the body is not JSON");
  if (!j.is_object()) return invalidArgument(std::string(what) + ": the body is not a JSON object");
  return j;
}

Result<std::string> stringField(const json& j, const char* what, const char* key, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return invalidArgument(std::string(what) + ": " + key + " is missing");
    return std::string();
  }
  if (!it->is_string()) return invalidArgument(std::string(what) + ": " + key + " is not a string");
  return it->get<std::string>();
}

// A simdjson value as a document (numbers as nlohmann's own parser would store them).
json toDocument(simdjson::dom::element e) {
  using simdjson::dom::element_type;
  switch (e.type()) {
    case element_type::ARRAY: {
      const simdjson::dom::array items(e);
      json a = json::array();
      for (simdjson::dom::element v : items) a.push_back(toDocument(v));
      return a;
    }
    case element_type::OBJECT: {
      const simdjson::dom::object fields(e);
      json o = json::object();
      for (auto field : fields) o[std::string(field.key)] = toDocument(field.value);
      return o;
    }
    case element_type::INT64: {
      const int64_t v = e.get_int64().value_unsafe();
      return v >= 0 ? json(static_cast<uint64_t>(v)) : json(v);
    }
    case element_type::UINT64: return e.get_uint64().value_unsafe();
    case element_type::DOUBLE: return e.get_double().value_unsafe();
    case element_type::STRING: return std::string(e.get_string().value_unsafe());
    case element_type::BOOL: return e.get_bool().value_unsafe();
    case element_type::NULL_VALUE: break;
  }
  return nullptr;
}

// A JSON string literal of `s`.
void appendQuoted(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static const char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[(c >> 4) & 0xf];
          out += kHex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

}  // namespace

Result<ExtenderArgs> parseExtenderArgs(const std::string& body) {
  const auto bad = [](const std::string& why) { return invalidArgument("ExtenderArgs: " + why); };
  // The whole body is validated (simdjson's DOM, not its lazy On Demand); a parser per thread
  // keeps its buffers between requests.
  thread_local simdjson::dom::parser parser;
  const simdjson::padded_string padded(body);
  simdjson::dom::element root;
  if (parser.parse(padded).get(root) != simdjson::SUCCESS) return bad("the body is not JSON");
  simdjson::dom::object top;
  if (root.get_object().get(top) != simdjson::SUCCESS) return bad("the body is not a JSON object");
  // Each field's last value wins, as in a document.
  std::optional<simdjson::dom::element> pod, names, nodes;
  for (auto field : top) {
    if (field.key == "Pod") pod = field.value;
    else if (field.key == "NodeNames") names = field.value;
    else if (field.key == "Nodes") nodes = field.value;
  }
  if (names && !names->is_null() && !names->is_array()) return bad("NodeNames is not an array");
  if (nodes && !nodes->is_null() && !nodes->is_object()) return bad("Nodes is not a NodeList");
  if (!pod || !pod->is_object()) return bad("Pod is missing or not an object");
  const bool haveNames = names && !names->is_null();
  const bool haveNodes = nodes && !nodes->is_null();
  if (!haveNames && !haveNodes) return bad("neither NodeNames nor Nodes is given");
  ExtenderArgs args;
  if (haveNames) {  // NodeNames wins (nodeCacheCapable)
    const simdjson::dom::array list(*names);
    args.nodeNames.reserve(list.size());
    for (simdjson::dom::element n : list) {
      std::string_view name;
      if (n.get_string().get(name) != simdjson::SUCCESS) return bad("NodeNames holds a non-string");
      args.nodeNames.emplace_back(name);
    }
    args.pod = toDocument(*pod);
    return args;
  }
  json list = toDocument(*nodes);
  auto items = list.find("items");
  if (items != list.end() && !items->is_array() && !items->is_null()) return bad("Nodes is not a NodeList");
  if (items != list.end() && items->is_array())
    for (const auto& n : *items) {
      const auto name = n.is_object() ? n.value("/metadata/name"_json_pointer, std::string()) : std::string();
      if (name.empty()) return bad("a node in Nodes has no metadata.name");
      args.nodeNames.push_back(name);
    }
  args.pod = toDocument(*pod);
  args.nodes = std::move(list);
  return args;
}

std::string encodeFilterResult(const FilterResult& r, const ExtenderArgs& args) {
  std::string out;
  out.reserve(64 + r.nodeNames.size() * 24 + r.failedNodes.size() * 64);
  out += "{\"Nodes\":";
  if (args.nodes) {
    json list = *args.nodes;
    json items = json::array();
    const std::unordered_set<std::string> pass(r.nodeNames.begin(), r.nodeNames.end());
    if (list.contains("items") && list["items"].is_array())
      for (const auto& n : list["items"])
        if (pass.count(n["metadata"]["name"].get<std::string>())) items.push_back(n);
    list["items"] = std::move(items);
    out += list.dump();
    out += ",\"NodeNames\":null";
  } else {
    out += "null,\"NodeNames\":[";
    for (size_t i = 0; i < r.nodeNames.size(); ++i) {
      if (i) out += ',';
      appendQuoted(out, r.nodeNames[i]);
    }
    out += ']';
  }
  out += ",\"FailedNodes\":{";
  bool first = true;
  for (const auto& [node, why] : r.failedNodes) {
    if (!first) out += ',';
    first = false;
    appendQuoted(out, node);
    out += ':';
    appendQuoted(out, why);
  }
  out += "},\"Error\":";
  appendQuoted(out, r.error);
  out += '}';
  return out;
}

std::string encodeHostPriorities(const std::vector<HostPriority>& list) {
  std::string out;
  out.reserve(2 + list.size() * 40);
  out += '[';
  for (size_t i = 0; i < list.size(); ++i) {
    if (i) out += ',';
    out += "{\"Host\":";
    appendQuoted(out, list[i].host);
    out += ",\"Score\":";
    out += std::to_string(list[i].score);
    out += '}';
  }
  out += ']';
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

std::string encodeBindingResult(const std::string& error) {
  std::string out = "{\"Error\":";
  appendQuoted(out, error);
  out += '}';
  return out;
}

}  // namespace tf::scheduler
