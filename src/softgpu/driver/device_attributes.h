// cuDeviceGetAttribute for a configured soft device: the real model's values.
#pragma once

#include <cuda.h>

#include "softgpu/device_model.h"

namespace tf::softgpu {

// False for an attribute outside the enum (CUDA_ERROR_INVALID_VALUE).
bool deviceAttribute(const DeviceConfig& device, CUdevice_attribute attr, int* out);

} // namespace tf::softgpu
