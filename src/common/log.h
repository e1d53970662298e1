// Minimal leveled logging to stderr, safe to use inside libcuda.so.1 (no global constructors
// that allocate, no dependency a CUDA program would not already have).
//
//   TF_LOG(Warn, "module %s: %s", name, status.toString().c_str());
//
// The level comes from TF_LOG_LEVEL (error, warn, info, debug); the default is warn.
#pragma once

namespace tf::log {

enum class Level { Error = 0, Warn = 1, Info = 2, Debug = 3 };

bool enabled(Level level);
void write(Level level, const char* component, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

} // namespace tf::log

#ifndef TF_LOG_COMPONENT
#define TF_LOG_COMPONENT "tf"
#endif
#define TF_LOG(level, ...)                                                                        \
  do {                                                                                            \
    if (::tf::log::enabled(::tf::log::Level::level))                                              \
      ::tf::log::write(::tf::log::Level::level, TF_LOG_COMPONENT, __VA_ARGS__);                   \
  } while (0)
