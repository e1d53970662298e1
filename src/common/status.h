// Status and Result<T>: errors as values inside the project.
//
//   tf::Result<Module> r = parseModule(text);
//   if (!r) return r.status();          // propagate
//   use(*r);
//
// A Status carries a small code and a message. One table (status.cpp) maps codes to the
// CUDA driver's CUresult, to HTTP statuses and to the wire protocol; nothing unwinds into C.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace tf {

enum class Code : uint8_t {
  Ok = 0,
  InvalidArgument,    // bad input from a caller or a peer
  NotFound,           // a name or handle that does not exist
  AlreadyExists,
  OutOfRange,         // an offset or size past the end
  ResourceExhausted,  // out of memory, quota used up
  FailedPrecondition, // wrong state (not initialised, wrong context)
  Unimplemented,      // a feature this build does not have
  Unavailable,        // a peer or device is gone
  Internal,           // a bug or a corrupt state
  DataLoss,           // corrupt input that cannot be understood
  PermissionDenied,
};

const char* codeName(Code code);

class [[nodiscard]] Status {
public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  bool isOk() const { return code_ == Code::Ok; }
  explicit operator bool() const { return isOk(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string toString() const;
  // Adds context in front of the message: "loading module: <message>".
  Status withContext(const std::string& context) const;

private:
  Code code_ = Code::Ok;
  std::string message_;
};

inline Status invalidArgument(std::string m) { return {Code::InvalidArgument, std::move(m)}; }
inline Status notFound(std::string m) { return {Code::NotFound, std::move(m)}; }
inline Status outOfRange(std::string m) { return {Code::OutOfRange, std::move(m)}; }
inline Status resourceExhausted(std::string m) { return {Code::ResourceExhausted, std::move(m)}; }
inline Status failedPrecondition(std::string m) { return {Code::FailedPrecondition, std::move(m)}; }
inline Status unimplemented(std::string m) { return {Code::Unimplemented, std::move(m)}; }
inline Status unavailable(std::string m) { return {Code::Unavailable, std::move(m)}; }
inline Status internalError(std::string m) { return {Code::Internal, std::move(m)}; }
inline Status dataLoss(std::string m) { return {Code::DataLoss, std::move(m)}; }

template <typename T> class [[nodiscard]] Result {
public:
  Result(T value) : v_(std::move(value)) {}
  Result(Status status) : v_(std::move(status)) {}

  bool isOk() const { return v_.index() == 0; }
  explicit operator bool() const { return isOk(); }
  const Status& status() const {
    static const Status ok;
    return isOk() ? ok : std::get<1>(v_);
  }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

private:
  std::variant<T, Status> v_;
};

// Returns early with the status if it is an error.
#define TF_RETURN_IF_ERROR(expr)                                                                  \
  do {                                                                                            \
    ::tf::Status tf_status_ = (expr);                                                             \
    if (!tf_status_.isOk()) return tf_status_;                                                    \
  } while (0)

} // namespace tf
