// The stub's exports of every NVML table row it does not implement (src/cuda/nvml_catalog.inc):
// checked against the worker's devices, then NOT_SUPPORTED (or the table's answer for features
// no device here has).
#include "cuda/nvml_defaults.h" // first: nvml_api.h without prototypes in this file

#include "remoting/nvml/nvml_stub.h"
#include "remoting/stub/client.h"

namespace {

struct StubPolicy {
  template <typename F> static nvmlReturn_t guard(bool needsInit, F&& f) {
    if (needsInit && !tf::remoting::stub::client().initialized()) return NVML_ERROR_UNINITIALIZED;
    return f([](tf::nvml::Kind kind, uint64_t value) {
      if (kind == tf::nvml::Kind::EventSet)
        return tf::remoting::nvml::eventSetExists(reinterpret_cast<nvmlEventSet_t>(value));
      return tf::remoting::nvml::indexOf(reinterpret_cast<nvmlDevice_t>(value)) >= 0;
    });
  }
};

} // namespace

#define TF_NVML_DEFAULTS_POLICY StubPolicy
#include "cuda/nvml_define_defaults.inc"
