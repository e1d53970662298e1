#include "k8s/api/codec.h"

#include <limits>

namespace tf::k8s::api {
namespace {

using nlohmann::json;

std::string got(const json& j) { return std::string(", got ") + j.type_name(); }

template <typename T> void decodeInteger(const json& j, T& out, const char* what) {
  if (!j.is_number_integer()) throw DecodeError("", std::string("expected ") + what + got(j));
  if (j.is_number_unsigned()) {
    auto v = j.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      throw DecodeError("", std::to_string(v) + " does not fit in " + what);
    }
    out = static_cast<T>(v);
    return;
  }
  auto v = j.get<int64_t>();
  if (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
      (v > 0 && static_cast<uint64_t>(v) > static_cast<uint64_t>(std::numeric_limits<T>::max()))) {
    throw DecodeError("", std::to_string(v) + " does not fit in " + what);
  }
  out = static_cast<T>(v);
}

} // namespace

DecodeError::DecodeError(std::string path, std::string reason)
    : std::runtime_error(reason), path_(std::move(path)), reason_(std::move(reason)),
      message_(path_.empty() ? reason_ : path_ + ": " + reason_) {}

DecodeError DecodeError::within(std::string_view field) const {
  std::string path(field);
  if (!path_.empty()) path += path_[0] == '[' ? path_ : "." + path_;
  return DecodeError(path, reason_);
}

void expectObject(const json& j) {
  if (!j.is_object()) throw DecodeError("", "expected an object" + got(j));
}

void expectKind(const json& j, std::string_view apiVersion, std::string_view kind) {
  auto check = [&](const char* key, std::string_view want) {
    auto it = j.find(key);
    if (it == j.end()) return;
    if (!it->is_string() || it->get_ref<const std::string&>() != want) {
      throw DecodeError(key, "is " + it->dump() + ", expected \"" + std::string(want) + "\"");
    }
  };
  check("apiVersion", apiVersion);
  check("kind", kind);
}

json unknownFields(const json& j, std::initializer_list<std::string_view> known) {
  json extra = json::object();
  for (const auto& [key, value] : j.items()) {
    bool isKnown = false;
    for (std::string_view k : known) isKnown = isKnown || k == key;
    if (!isKnown) extra[key] = value;
  }
  return extra;
}

void decodeValue(const json& j, std::string& out) {
  if (!j.is_string()) throw DecodeError("", "expected a string" + got(j));
  out = j.get<std::string>();
}

void decodeValue(const json& j, bool& out) {
  if (!j.is_boolean()) throw DecodeError("", "expected true or false" + got(j));
  out = j.get<bool>();
}

void decodeValue(const json& j, int32_t& out) { decodeInteger(j, out, "an int32"); }
void decodeValue(const json& j, int64_t& out) { decodeInteger(j, out, "an int64"); }
void decodeValue(const json& j, uint32_t& out) { decodeInteger(j, out, "a uint32"); }
void decodeValue(const json& j, uint64_t& out) { decodeInteger(j, out, "a uint64"); }

void decodeValue(const json& j, Quantity& out) {
  std::string text;
  if (j.is_string()) {
    text = j.get<std::string>();
  } else if (j.is_number()) {
    text = j.dump();
  } else {
    throw DecodeError("", "expected a quantity (string or number)" + got(j));
  }
  Result<Quantity> q = Quantity::parse(text);
  if (!q) throw DecodeError("", q.status().message());
  out = *q;
}

void decodeValue(const json& j, json& out) { out = j; }

void to_json(json& j, const Quantity& q) { j = q.toString(); }

void from_json(const json& j, Quantity& q) { decodeValue(j, q); }

} // namespace tf::k8s::api
