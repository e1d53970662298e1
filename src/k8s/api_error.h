// Errors from the apiserver as values: the HTTP code and the apiserver's Status (reason,
// message, details), so callers can tell 404, 409 (Conflict vs AlreadyExists), 410 and 422
// apart. ApiResult<T> is tf::Result's twin that carries an ApiError.
//
//   auto pod = client.get(builtin::kPods, "default", "p");
//   if (!pod && pod.error().isNotFound()) ...;
//   if (!pod) return pod.error().toStatus();   // into the project's tf::Status
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace tf::k8s {

struct ApiError {
  int code = 0;         // HTTP status; 0 when no answer came (transport) or it was unreadable
  std::string reason;   // Status.reason: NotFound, AlreadyExists, Conflict, Expired, Invalid...
  std::string message;  // Status.message, or what went wrong on our side
  nlohmann::json details;  // Status.details when the apiserver sent them (e.g. causes of 422)

  bool isNotFound() const { return code == 404; }
  bool isAlreadyExists() const { return code == 409 && reason == "AlreadyExists"; }
  bool isConflict() const { return code == 409 && reason != "AlreadyExists"; }
  bool isGone() const { return code == 410; }  // "Expired" / "Gone": the resourceVersion is too old
  bool isInvalid() const { return code == 422; }
  bool isUnauthorized() const { return code == 401; }
  bool isTransport() const { return code == 0; }

  std::string toString() const;
  tf::Status toStatus() const;

  // From an apiserver answer: a Status object in `body` when there is one, else the raw text.
  static ApiError fromResponse(int httpCode, std::string_view body);
  // From a Status object (an in-band watch ERROR event carries one).
  static ApiError fromStatusObject(const nlohmann::json& status, int fallbackCode);
  static ApiError transport(std::string message) { return {0, "Transport", std::move(message), {}}; }
  static ApiError decode(std::string message) { return {0, "Decode", std::move(message), {}}; }
};

template <typename T> class [[nodiscard]] ApiResult : public tf::Expected<T, ApiError> {
public:
  using tf::Expected<T, ApiError>::Expected;
  const ApiError& error() const { return this->errorValue(); }
};

// For calls whose success carries nothing.
using ApiStatus = ApiResult<std::monostate>;
inline ApiStatus apiOk() { return std::monostate{}; }

}  // namespace tf::k8s
