#include "k8s/api_error.h"

namespace tf::k8s {

std::string ApiError::toString() const {
  std::string s = code ? "HTTP " + std::to_string(code) : std::string("no HTTP answer");
  if (!reason.empty()) s += " " + reason;
  if (!message.empty()) s += ": " + message;
  return s;
}

tf::Status ApiError::toStatus() const {
  Code c = Code::Internal;
  switch (code) {
  case 0: c = reason == "Decode" ? Code::DataLoss : Code::Unavailable; break;
  case 400: case 422: c = Code::InvalidArgument; break;
  case 401: case 403: c = Code::PermissionDenied; break;
  case 404: c = Code::NotFound; break;
  case 409: c = isAlreadyExists() ? Code::AlreadyExists : Code::FailedPrecondition; break;
  case 410: c = Code::OutOfRange; break;
  case 429: c = Code::ResourceExhausted; break;
  default: c = code >= 500 ? Code::Unavailable : Code::Internal; break;
  }
  return {c, toString()};
}

ApiError ApiError::fromStatusObject(const nlohmann::json& status, int fallbackCode) {
  ApiError e;
  e.code = status.value("code", fallbackCode);
  e.reason = status.value("reason", "");
  e.message = status.value("message", "");
  if (status.contains("details")) e.details = status["details"];
  return e;
}

ApiError ApiError::fromResponse(int httpCode, std::string_view body) {
  auto parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object() && parsed.value("kind", "") == "Status") {
    ApiError e = fromStatusObject(parsed, httpCode);
    e.code = httpCode;  // the HTTP code is the truth; the body's code is informational
    return e;
  }
  ApiError e;
  e.code = httpCode;
  e.message = std::string(body.substr(0, 512));
  return e;
}

}  // namespace tf::k8s
