// JSON conversion shared by the generated tensor-fusion.ai/v1 types: decode errors that name
// the field ("status.capacity.tflops: invalid quantity \"1x\": ..."), and the helpers the
// generated to_json/from_json call. Use decode<T>() and encode() from outside:
//
//   tf::Result<v1::Gpu> gpu = tf::k8s::api::decode<v1::Gpu>(json);
//   if (!gpu) return gpu.status();         // InvalidArgument, message names the field
//   nlohmann::json back = tf::k8s::api::encode(*gpu);
//
// Unset optional fields are omitted on output; JSON null reads as unset.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "k8s/api/quantity.h"

namespace tf::k8s::api {

// Thrown inside the generated from_json only; decode<T>() turns it into a Status.
class DecodeError : public std::runtime_error {
public:
  DecodeError(std::string path, std::string reason);
  const std::string& path() const { return path_; }
  const std::string& reason() const { return reason_; }
  // A new error one level further out: prefix "spec" on "gpuCount" gives "spec.gpuCount".
  DecodeError within(std::string_view field) const;
  const char* what() const noexcept override { return message_.c_str(); }

private:
  std::string path_, reason_, message_;
};

void expectObject(const nlohmann::json& j);
// A present apiVersion or kind must match; an absent one is taken as the expected one.
void expectKind(const nlohmann::json& j, std::string_view apiVersion, std::string_view kind);
// The members of `j` not in `known`, as an object.
nlohmann::json unknownFields(const nlohmann::json& j, std::initializer_list<std::string_view> known);

void decodeValue(const nlohmann::json& j, std::string& out);
void decodeValue(const nlohmann::json& j, bool& out);
void decodeValue(const nlohmann::json& j, int32_t& out);
void decodeValue(const nlohmann::json& j, int64_t& out);
void decodeValue(const nlohmann::json& j, uint32_t& out);
void decodeValue(const nlohmann::json& j, uint64_t& out);
// A string in the quantity grammar, or a JSON number (the schema allows int-or-string).
void decodeValue(const nlohmann::json& j, Quantity& out);
void decodeValue(const nlohmann::json& j, nlohmann::json& out);
template <typename T> void decodeValue(const nlohmann::json& j, std::vector<T>& out);
template <typename T> void decodeValue(const nlohmann::json& j, std::map<std::string, T>& out);
// Generated structs: their from_json (found by argument-dependent lookup).
template <typename T> void decodeValue(const nlohmann::json& j, T& out) { from_json(j, out); }

template <typename T> void decodeValue(const nlohmann::json& j, std::vector<T>& out) {
  if (!j.is_array()) throw DecodeError("", std::string("expected a list, got ") + j.type_name());
  out.clear();
  out.resize(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    try {
      decodeValue(j[i], out[i]);
    } catch (const DecodeError& e) {
      throw e.within("[" + std::to_string(i) + "]");
    }
  }
}

template <typename T> void decodeValue(const nlohmann::json& j, std::map<std::string, T>& out) {
  if (!j.is_object()) throw DecodeError("", std::string("expected an object, got ") + j.type_name());
  out.clear();
  for (const auto& [key, value] : j.items()) {
    try {
      decodeValue(value, out[key]);
    } catch (const DecodeError& e) {
      throw e.within("[\"" + key + "\"]");
    }
  }
}

// A required field: absent or null is an error naming it.
template <typename T> void getField(const nlohmann::json& j, const char* key, T& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) throw DecodeError(key, "required field is missing");
  try {
    decodeValue(*it, out);
  } catch (const DecodeError& e) {
    throw e.within(key);
  }
}

// An optional field: absent or null leaves it unset.
template <typename T> void getField(const nlohmann::json& j, const char* key, std::optional<T>& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    out.reset();
    return;
  }
  try {
    decodeValue(*it, out.emplace());
  } catch (const DecodeError& e) {
    throw e.within(key);
  }
}

// A field that is always written but may be absent on input (metadata, items).
template <typename T> void getFieldOrDefault(const nlohmann::json& j, const char* key, T& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    out = T{};
    return;
  }
  try {
    decodeValue(*it, out);
  } catch (const DecodeError& e) {
    throw e.within(key);
  }
}

template <typename T> void putField(nlohmann::json& j, const char* key, const T& value) { j[key] = value; }
template <typename T> void putField(nlohmann::json& j, const char* key, const std::optional<T>& value) {
  if (value) j[key] = *value;
}

// nlohmann hooks for Quantity: canonical text out, quantity grammar in.
void to_json(nlohmann::json& j, const Quantity& q);
void from_json(const nlohmann::json& j, Quantity& q);

namespace internal {
template <typename T> std::string kindOf() {
  if constexpr (requires { T::kResource; }) {
    return T::kResource.kind + ": ";
  } else {
    return "";
  }
}
} // namespace internal

// Reads a generated type from JSON. Wrong types, malformed quantities, missing required
// fields and a mismatched kind are InvalidArgument errors naming the field.
template <typename T> Result<T> decode(const nlohmann::json& j) {
  T value;
  try {
    decodeValue(j, value);
  } catch (const DecodeError& e) {
    return invalidArgument(internal::kindOf<T>() + e.what());
  } catch (const nlohmann::json::exception& e) {
    return invalidArgument(internal::kindOf<T>() + e.what());
  }
  return value;
}

template <typename T> nlohmann::json encode(const T& value) {
  nlohmann::json j;
  to_json(j, value);
  return j;
}

} // namespace tf::k8s::api
