#include "common/status.h"

namespace tf {

const char* codeName(Code code) {
  switch (code) {
  case Code::Ok: return "OK";
  case Code::InvalidArgument: return "INVALID_ARGUMENT";
  case Code::NotFound: return "NOT_FOUND";
  case Code::AlreadyExists: return "ALREADY_EXISTS";
  case Code::OutOfRange: return "OUT_OF_RANGE";
  case Code::ResourceExhausted: return "RESOURCE_EXHAUSTED";
  case Code::FailedPrecondition: return "FAILED_PRECONDITION";
  case Code::Unimplemented: return "UNIMPLEMENTED";
  case Code::Unavailable: return "UNAVAILABLE";
  case Code::Internal: return "INTERNAL";
  case Code::DataLoss: return "DATA_LOSS";
  case Code::PermissionDenied: return "PERMISSION_DENIED";
  }
  return "UNKNOWN";
}

std::string Status::toString() const {
  if (isOk()) return "OK";
  return std::string(codeName(code_)) + ": " + message_;
}

Status Status::withContext(const std::string& context) const {
  if (isOk()) return *this;
  return Status(code_, context + ": " + message_);
}

} // namespace tf
