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

// A value or an error of type E; Result<T> (E = Status) and k8s::ApiResult<T> (E = ApiError)
// add the accessor for their error.
template <typename T, typename E> class [[nodiscard]] Expected {
public:
  Expected(T value) : v_(std::move(value)) {}
  Expected(E error) : v_(std::move(error)) {}

  bool isOk() const { return v_.index() == 0; }
  explicit operator bool() const { return isOk(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

protected:
  const E& errorValue() const { return std::get<1>(v_); }

private:
  std::variant<T, E> v_;
};

template <typename T> class [[nodiscard]] Result : public Expected<T, Status> {
public:
  using Expected<T, Status>::Expected;
  const Status& status() const {
    static const Status ok;
    return this->isOk() ? ok : this->errorValue();
  }
};

// Returns early with the status if it is an error.
#define TF_RETURN_IF_ERROR(expr)                                                                  \
  do {                                                                                            \
    ::tf::Status tf_status_ = (expr);                                                             \
    if (!tf_status_.isOk()) return tf_status_;                                                    \
  } while (0)

} // namespace tf
