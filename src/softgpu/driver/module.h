// Modules and libraries (one object serves CUmodule and CUlibrary; Function serves CUfunction
// and CUkernel, since cudart launches a CUkernel as a CUfunction).
#pragma once

#include <map>
#include <optional>
#include <string>

#include "softgpu/driver/api.h"
#include "softgpu/driver/memory.h"

namespace tf::softgpu {

// Where named globals of a module must go: name -> device address
// (cuda/softgpu_extensions.h, ModuleLoadPlaced).
using GlobalPlacements = std::map<std::string, uint64_t>;

// Loads a module from anything the driver accepts (fatbin wrapper, fatbin, PTX text, file
// contents). `size` 0 = unknown (bare pointer). On failure logs why and returns the CUDA error.
// With `placed`, even a library is translated now, its named globals at their addresses.
CUresult loadModule(const void* image, size_t size, bool isLibrary, Module** out,
                    const GlobalPlacements* placed = nullptr);
// Translates a library's code on its first use (no-op afterwards); the result of translating.
// `placed`: where named globals go (the first call only).
CUresult materialize(Module* m, const GlobalPlacements* placed = nullptr);
void unloadModule(Module* m);

// Device memory accounting shared by every allocation path.
CUresult chargeMemory(Device* d, uint64_t bytes);
void creditMemory(Device* d, uint64_t bytes);
// Device memory of the context's device, charged before it exists (api_memory.cpp), and its
// release (credited; `kind` checked when given).
CUresult allocDevice(Context* c, size_t bytes, CUdeviceptr* out, uint64_t alignment = 512);
CUresult freeMemory(uint64_t base, std::optional<AllocKind> kind);

// Registers per thread the function is taken to use: the PTX declares virtual registers, many
// more than ptxas would allocate, so the count is capped where a block of the kernel's largest
// size still fits an SM (a kernel that launches with 1024 threads on a GPU uses at most 64).
int registersPerThread(const Function* f);
// Blocks of `blockSize` threads with `dynamicSmem` bytes that fit on one SM of the function's
// device at once: the occupancy API's answer and the bound on a cooperative grid (per SM).
int maxActiveBlocks(const Function* f, int blockSize, size_t dynamicSmem);


} // namespace tf::softgpu
