// The exports of every table row the soft GPU does not implement by hand (nvml_catalog.inc):
// checked like the others (nvmlInit, handles, NULL pointers), then the row's answer.
#include "cuda/nvml_defaults.h" // first: nvml_api.h without prototypes in this file

#include "softgpu/nvml/nvml_context.h"

namespace {

struct SoftGpuPolicy {
  template <typename F> static nvmlReturn_t guard(bool needsInit, F&& f) {
    auto& lib = tf::softgpu::nvml::Library::get();
    std::shared_lock lock(lib.mutex());
    if (needsInit && !lib.initialised()) return NVML_ERROR_UNINITIALIZED;
    return f([&](tf::nvml::Kind kind, uint64_t value) {
      if (kind == tf::nvml::Kind::EventSet)
        return tf::softgpu::nvml::eventSetExists(reinterpret_cast<nvmlEventSet_t>(value));
      return lib.owns(reinterpret_cast<nvmlDevice_t>(value));
    });
  }
};

} // namespace

#define TF_NVML_DEFAULTS_POLICY SoftGpuPolicy
#include "cuda/nvml_define_defaults.inc"
