// What the stub's NVML sources share.
#pragma once

#include "cuda/nvml_api.h"

namespace tf::remoting::nvml {
// The worker's device an NVML handle stands for, or -1 (not initialised, the connection is
// dead, or not a handle of ours).
int indexOf(nvmlDevice_t device);
// Whether an event set is one this library made and has not freed.
bool eventSetExists(nvmlEventSet_t set);
} // namespace tf::remoting::nvml
