// CUDA_VISIBLE_DEVICES as NVIDIA's driver reads it, for the soft GPU (which devices a process
// sees) and the limiter (which it may see: those of its vGPU).
//
//   auto seen = selectVisibleDevices("1,GPU-8f2", {"GPU-0a1...", "GPU-8f2...", "GPU-77c..."});
//   // -> {1}: "1" is device 1, and "GPU-8f2" names it again, which ends the list
//
// Entries are separated by commas: a device index, or a device UUID ("GPU-..."), which may be
// shortened to any prefix naming one device. The list ends at the first entry that names no
// device (an index out of range, "-1", an unknown or ambiguous UUID) or names one already listed;
// the devices before it stay visible. An empty list shows no device.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace tf::cuda {

// Indices into `uuids` (the devices in the driver's order), in the order the list names them.
std::vector<int> selectVisibleDevices(std::string_view list, const std::vector<std::string>& uuids);

}  // namespace tf::cuda
