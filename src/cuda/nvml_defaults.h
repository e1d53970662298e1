// Exports for every NVML function of nvml_catalog.inc that a library does not implement itself,
// generated from the table: each checks its arguments the way NVIDIA's driver does (not
// initialised, unknown handle, NULL pointer) and then returns the row's answer (Default family),
// or NVML_ERROR_NOT_SUPPORTED for a row another family implements in the soft GPU but this
// library does not (the remoting stub). They are weak: a library's own definition wins.
//
//   struct SoftGpuPolicy {                    // how this library checks what it is given
//     template <typename F> static nvmlReturn_t guard(bool needsInit, F&& f);  // f(owns)
//   };                                        // owns(Kind, uint64_t value) -> bool
//   #define TF_NVML_DEFAULTS_POLICY SoftGpuPolicy    // in one source file, at global scope
//   #include "cuda/nvml_define_defaults.inc"
//
// The generated functions take six integer-register arguments and read only as many as the row
// declares: every NVML argument is an integer or a pointer, so on x86-64 and aarch64 this is the
// callers' calling convention whatever the declared prototype (nvml_catalog.inc). Include this
// header only where nvml_api.h's prototypes are not declared (TF_NVML_TYPES_ONLY).
#pragma once

#define TF_NVML_TYPES_ONLY
#include "cuda/nvml_catalog.h"

namespace tf::nvml {

namespace internal {
enum Row : int {
#define TF_NVML(name, ...) kRow_##name,
#include "cuda/nvml_catalog.inc"
#undef TF_NVML
};
} // namespace internal

// Argument checks in NVIDIA's order: handles first, then required pointers.
template <typename Owns> nvmlReturn_t checkArguments(const Entry& e, const uint64_t* a, Owns&& owns) {
  for (int i = 0; i < e.arity; ++i) {
    switch (e.kinds[i]) {
    case Kind::Device:
    case Kind::Peer:
    case Kind::EventSet:
      if (!owns(e.kinds[i], a[i])) return NVML_ERROR_INVALID_ARGUMENT;
      break;
    case Kind::Unit:
    case Kind::GpuInstance:
    case Kind::ComputeInstance:
    case Kind::VgpuType: return NVML_ERROR_INVALID_ARGUMENT; // none exist
    case Kind::VgpuInstance:
      if (uint32_t(a[i]) == 0) return NVML_ERROR_INVALID_ARGUMENT;
      break;
    default: break;
    }
  }
  for (int i = 0; i < e.arity; ++i)
    if (isRequiredPointer(e.kinds[i]) && a[i] == 0) return NVML_ERROR_INVALID_ARGUMENT;
  return NVML_SUCCESS;
}

template <typename Policy> nvmlReturn_t defaultAnswer(internal::Row row, const uint64_t* a) noexcept {
  const Entry& e = internal::kCatalog[row];
  try {
    return Policy::guard(e.init == InitRule::Init, [&](auto&& owns) -> nvmlReturn_t {
      if (nvmlReturn_t r = checkArguments(e, a, owns); r != NVML_SUCCESS) return r;
      return e.family == Family::Default ? e.expect : NVML_ERROR_NOT_SUPPORTED;
    });
  } catch (...) {
    return NVML_ERROR_UNKNOWN;
  }
}

} // namespace tf::nvml

// Lifecycle rows (init, shutdown, error strings) are every library's own; they are not generated.
#define TF_NVML_DEFAULT_Lifecycle(Policy, name)
#define TF_NVML_DEFAULT_Init(Policy, name) TF_NVML_DEFAULT_FN(Policy, name)
#define TF_NVML_DEFAULT_Any(Policy, name) TF_NVML_DEFAULT_FN(Policy, name)
#define TF_NVML_DEFAULT_FN(Policy, name)                                                          \
  __attribute__((weak, visibility("default"))) nvmlReturn_t name(                                \
      uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5) {             \
    const uint64_t args[] = {a0, a1, a2, a3, a4, a5};                                             \
    return tf::nvml::defaultAnswer<Policy>(tf::nvml::internal::kRow_##name, args);                \
  }
