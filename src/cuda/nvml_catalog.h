// The NVML surface as data (from nvml_catalog.inc): for tests that walk every exported function
// and for tools that list what our NVML answers.
//
//   for (const tf::nvml::Entry& e : tf::nvml::catalog())
//     if (e.family == tf::nvml::Family::Default) ...   // e.name, e.expect, e.kinds[0..e.arity)
#pragma once

#include <cstdint>
#include <span>

#include "cuda/nvml_api.h"

namespace tf::nvml {

enum class Family : uint8_t { System, Device, Usage, Sensors, Events, Default };
enum class InitRule : uint8_t { Init, Any, Lifecycle };
enum class Kind : uint8_t {
  Device, Peer, Unit, GpuInstance, ComputeInstance, EventSet, VgpuInstance, VgpuType,
  Out, Opt, Count, In, Buf, Len, Size, U32, U64,
};

inline constexpr int kMaxArity = 6; // all in integer registers (see nvml_catalog.inc)

struct Entry {
  const char* name;
  Family family;
  InitRule init;
  nvmlReturn_t expect;
  uint8_t arity;
  Kind kinds[kMaxArity];
};

// A pointer the caller must pass (NULL is NVML_ERROR_INVALID_ARGUMENT).
constexpr bool isRequiredPointer(Kind k) {
  return k == Kind::Out || k == Kind::Count || k == Kind::In || k == Kind::Buf;
}

namespace internal {
// The kinds by their bare names, as the table writes them.
namespace kinds {
#define TF_NVML_KIND(k) inline constexpr Kind k = Kind::k;
TF_NVML_KIND(Device) TF_NVML_KIND(Peer) TF_NVML_KIND(Unit) TF_NVML_KIND(GpuInstance)
TF_NVML_KIND(ComputeInstance) TF_NVML_KIND(EventSet) TF_NVML_KIND(VgpuInstance) TF_NVML_KIND(VgpuType)
TF_NVML_KIND(Out) TF_NVML_KIND(Opt) TF_NVML_KIND(Count) TF_NVML_KIND(In) TF_NVML_KIND(Buf)
TF_NVML_KIND(Len) TF_NVML_KIND(Size) TF_NVML_KIND(U32) TF_NVML_KIND(U64)
#undef TF_NVML_KIND
} // namespace kinds

template <typename... K>
constexpr Entry entry(const char* name, Family f, InitRule i, nvmlReturn_t e, K... kinds) {
  static_assert(sizeof...(K) <= kMaxArity, "an NVML function with more than six arguments");
  return Entry{name, f, i, e, uint8_t(sizeof...(K)), {kinds...}};
}

using namespace kinds;
inline constexpr Entry kCatalog[] = {
#define TF_NVML(name, family, init, expect, ...)                                                    \
  entry(#name, Family::family, InitRule::init, NVML_##expect __VA_OPT__(, ) __VA_ARGS__),
#include "cuda/nvml_catalog.inc"
#undef TF_NVML
};
} // namespace internal

inline std::span<const Entry> catalog() { return internal::kCatalog; }

} // namespace tf::nvml
