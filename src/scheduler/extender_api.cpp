#include "scheduler/extender_api.h"

#include <algorithm>
#include <unordered_set>

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

// ExtenderArgs' top level, event by event: the Pod and Nodes values go to documents of their
// own, NodeNames' strings straight into the list, anything else is skipped.
class ArgsReader : public nlohmann::json_sax<json> {
public:
  explicit ArgsReader(ExtenderArgs& out) : out_(out) {}

  // What was seen of each field, and the first thing wrong with the arguments ("" if none).
  bool sawPod = false, podIsObject = false, sawNames = false, namesAreNull = false, sawNodes = false,
       nodesAreNull = false;
  // The Nodes NodeList (only when kube-scheduler is not nodeCacheCapable).
  json nodes;
  std::string wrong;

  bool null() override { return scalar([&](auto& d) { return d.null(); }, Kind::Null); }
  bool boolean(bool v) override { return scalar([&](auto& d) { return d.boolean(v); }, Kind::Other); }
  bool number_integer(number_integer_t v) override {
    return scalar([&](auto& d) { return d.number_integer(v); }, Kind::Other);
  }
  bool number_unsigned(number_unsigned_t v) override {
    return scalar([&](auto& d) { return d.number_unsigned(v); }, Kind::Other);
  }
  bool number_float(number_float_t v, const string_t& s) override {
    return scalar([&](auto& d) { return d.number_float(v, s); }, Kind::Other);
  }
  bool string(string_t& v) override {
    if (field_ == Field::Names && depth_ == 2) {
      out_.nodeNames.push_back(std::move(v));
      return true;
    }
    return scalar([&](auto& d) { return d.string(v); }, Kind::String);
  }
  bool binary(binary_t& v) override { return scalar([&](auto& d) { return d.binary(v); }, Kind::Other); }

  bool start_object(std::size_t n) override {
    if (depth_ == 0) {
      ++depth_;
      return true;
    }
    if (!open(Kind::Object)) return false;
    return dom_ ? dom_->start_object(n) : true;
  }
  bool end_object() override { return close([&] { return dom_->end_object(); }); }
  bool start_array(std::size_t n) override {
    if (depth_ == 0) return fail("the body is not a JSON object");
    if (!open(Kind::Array)) return false;
    return dom_ ? dom_->start_array(n) : true;
  }
  bool end_array() override { return close([&] { return dom_->end_array(); }); }
  bool key(string_t& k) override {
    if (depth_ == 1) {
      field_ = k == "Pod" ? Field::Pod : k == "NodeNames" ? Field::Names : k == "Nodes" ? Field::Nodes : Field::Other;
      return true;
    }
    return dom_ ? dom_->key(k) : true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    if (wrong.empty()) wrong = "the body is not JSON";
    return false;
  }

private:
  enum class Field { Other, Pod, Names, Nodes };
  enum class Kind { Null, String, Other, Object, Array };
  using Dom = nlohmann::detail::json_sax_dom_parser<json>;

  bool fail(const char* why) {
    wrong = why;
    return false;
  }
  // A value starting at depth 1 is the value of `field_`.
  void noteTopValue(Kind kind) {
    switch (field_) {
      case Field::Pod:
        sawPod = true;
        podIsObject = kind == Kind::Object;
        break;
      case Field::Names:
        sawNames = true;
        namesAreNull = kind == Kind::Null;
        break;
      case Field::Nodes:
        sawNodes = true;
        nodesAreNull = kind == Kind::Null;
        break;
      case Field::Other: break;
    }
  }
  template <typename F> bool scalar(F&& toDom, Kind kind) {
    if (depth_ == 0) return fail("the body is not a JSON object");
    if (depth_ == 1) {
      noteTopValue(kind);
      if (field_ == Field::Names && kind != Kind::Null) return fail("NodeNames is not an array");
      if (field_ == Field::Nodes && kind != Kind::Null) return fail("Nodes is not a NodeList");
      return true;
    }
    if (field_ == Field::Names && depth_ == 2) return fail("NodeNames holds a non-string");
    return dom_ ? toDom(*dom_) : true;
  }
  bool open(Kind kind) {
    if (depth_ == 1) {
      noteTopValue(kind);
      if (field_ == Field::Names && kind != Kind::Array) return fail("NodeNames is not an array");
      if (field_ == Field::Nodes && kind != Kind::Object) return fail("Nodes is not a NodeList");
      if (field_ == Field::Pod) dom_.emplace(out_.pod, false);
      if (field_ == Field::Nodes) dom_.emplace(nodes, false);
    } else if (field_ == Field::Names && depth_ == 2) {
      return fail("NodeNames holds a non-string");
    }
    ++depth_;
    return true;
  }
  template <typename F> bool close(F&& toDom) {
    --depth_;
    if (depth_ == 0) return true;  // the top-level object
    const bool ok = dom_ ? toDom() : true;
    if (depth_ == 1) dom_.reset();
    return ok;
  }

  ExtenderArgs& out_;
  int depth_ = 0;
  Field field_ = Field::Other;
  std::optional<Dom> dom_;
};

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
  ExtenderArgs args;
  ArgsReader reader(args);
  const bool parsed = json::sax_parse(body, &reader, json::input_format_t::json, /*strict=*/true);
  if (!parsed || !reader.wrong.empty()) return bad(reader.wrong.empty() ? "the body is not JSON" : reader.wrong);
  if (!reader.sawPod || !reader.podIsObject) return bad("Pod is missing or not an object");
  const bool haveNames = reader.sawNames && !reader.namesAreNull;
  const bool haveNodes = reader.sawNodes && !reader.nodesAreNull;
  if (!haveNames && !haveNodes) return bad("neither NodeNames nor Nodes is given");
  if (haveNames) return args;  // NodeNames wins (nodeCacheCapable)
  args.nodeNames.clear();
  json& nodes = reader.nodes;
  auto items = nodes.find("items");
  if (items != nodes.end() && !items->is_array() && !items->is_null()) return bad("Nodes is not a NodeList");
  if (items != nodes.end() && items->is_array())
    for (const auto& n : *items) {
      const auto name = n.is_object() ? n.value("/metadata/name"_json_pointer, std::string()) : std::string();
      if (name.empty()) return bad("a node in Nodes has no metadata.name");
      args.nodeNames.push_back(name);
    }
  args.nodes = std::move(nodes);
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
