// The seam between the soft GPU (which owns devices, memory, streams and modules) and whatever
// runs kernel code on the CPU (the PTX engine in src/ptx).
//
//   auto exec = ptx::makeExecutor();                       // a KernelExecutor
//   auto mod = exec->load(ModuleSource{ptxText, "vecadd.ptx"});
//   for (auto& g : (*mod)->globals()) (*mod)->bindGlobal(g.name, allocateDevice(g.size));
//   int k = (*mod)->findKernel("_Z6vecAddPfS_S_i");
//   std::string why;
//   CUresult r = (*mod)->launch(k, config, memory, &why);
//
// The soft GPU decides where device memory lives; the executor reaches it only through
// DeviceMemory, so a pointer that is not device memory is an illegal address, never a host
// pointer that happens to work.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <cuda.h>

#include "common/status.h"

namespace tf::cuda {

struct Dim3 {
  uint32_t x = 1, y = 1, z = 1;
  uint64_t count() const { return uint64_t(x) * y * z; }
};

struct KernelParam {
  uint32_t offset = 0; // in the packed parameter buffer
  uint32_t size = 0;
  uint32_t align = 1;
};

struct KernelInfo {
  std::string name;                 // mangled, as in the PTX .entry
  std::vector<KernelParam> params;  // in declaration order; gives cuFuncGetParamInfo
  uint32_t paramBytes = 0;          // size of the packed parameter buffer
  uint32_t staticSharedBytes = 0;   // .shared variables the kernel uses
  uint32_t localBytes = 0;          // per-thread .local
  uint32_t numRegs = 0;             // registers per thread, as declared
  uint32_t maxThreadsPerBlock = 1024; // .maxntid if given
  uint32_t reqNtid[3] = {0, 0, 0};  // .reqntid if given
  // Lazy loads (ModuleSource::lazy): why the kernel cannot run here; empty when it can. A
  // driver refuses the launch with CUDA_ERROR_NOT_SUPPORTED before queueing it.
  std::string unsupported;
};

struct GlobalVariable {
  std::string name;
  uint64_t size = 0;
  uint32_t align = 1;
  bool isConst = false;             // .const state space (__constant__)
  std::vector<uint8_t> initializer; // empty = zero-initialised
};

// A range of memory a kernel may touch: device memory, pinned host memory mapped into the
// device's address space, or managed memory.
struct MemoryRange {
  uint64_t base = 0;     // device address
  uint64_t size = 0;
  uint8_t* host = nullptr; // where the bytes are in this process
};

// Bytes of one channel of a CUDA array or texture format; 0 for formats not held here (block
// compressed, video, packed).
inline uint32_t arrayFormatBytes(CUarray_format f) {
  switch (f) {
  case CU_AD_FORMAT_UNSIGNED_INT8: case CU_AD_FORMAT_SIGNED_INT8: return 1;
  case CU_AD_FORMAT_UNSIGNED_INT16: case CU_AD_FORMAT_SIGNED_INT16: case CU_AD_FORMAT_HALF: return 2;
  case CU_AD_FORMAT_UNSIGNED_INT32: case CU_AD_FORMAT_SIGNED_INT32: case CU_AD_FORMAT_FLOAT: return 4;
  default: return 0;
  }
}

// A texture object as a kernel's tex instructions see it (cuTexObjectCreate): texels of
// `channels` channels of `format`, row after row (`pitch` bytes), slice after slice, and how
// to sample them.
// One mipmap level of a texture: its texels and extent.
struct TextureLevel {
  uint8_t* data = nullptr;
  uint64_t pitch = 0, slicePitch = 0;
  uint32_t width = 0, height = 1, depth = 1;
};

struct TextureView {
  uint8_t* data = nullptr;        // texel (0, 0, 0), in this process
  uint64_t pitch = 0;             // bytes per row
  uint64_t slicePitch = 0;        // bytes per slice
  uint32_t width = 0, height = 1, depth = 1;
  uint32_t layers = 0;            // a layered array: its layers (depth = layers), else 0
  uint32_t channels = 1;
  CUarray_format format = CU_AD_FORMAT_FLOAT;
  CUaddress_mode address[3] = {CU_TR_ADDRESS_MODE_CLAMP, CU_TR_ADDRESS_MODE_CLAMP,
                               CU_TR_ADDRESS_MODE_CLAMP};
  CUfilter_mode filter = CU_TR_FILTER_MODE_POINT;
  bool normalizedCoords = false; // coordinates in [0, 1) rather than texels
  bool readAsInteger = false;    // integer texels read as integers, not as [0, 1] / [-1, 1]
  float border[4] = {0, 0, 0, 0};
  // A mipmapped texture: the fields above are level 0, level[k - 1] is level k. A level of
  // detail plus lodBias, clamped to [minLod, maxLod], picks the nearest level (point) or blends
  // the two around it (linear). Other textures have one level.
  static constexpr uint32_t kMaxLevels = 18;
  uint32_t levels = 1;
  TextureLevel level[kMaxLevels - 1];
  CUfilter_mode mipmapFilter = CU_TR_FILTER_MODE_POINT;
  float lodBias = 0, minLod = 0, maxLod = 0;

  // Level l's texels and extent (level 0: the fields above).
  TextureLevel levelAt(uint32_t l) const {
    return l > 0 ? level[l - 1] : TextureLevel{data, pitch, slicePitch, width, height, depth};
  }
  void setLevel0(const TextureLevel& l) {
    data = l.data;
    pitch = l.pitch;
    slicePitch = l.slicePitch;
    width = l.width;
    height = l.height;
    depth = l.depth;
  }
};

// How kernels reach global memory. Implemented by the soft GPU.
class DeviceMemory {
public:
  virtual ~DeviceMemory() = default;
  // The range containing `addr`, or false when `addr` is not memory the device may access.
  // Thread-safe; callers cache the answer, so it need not be fast.
  virtual bool lookup(uint64_t addr, MemoryRange* out) const = 0;
  // The texture or surface object `handle` names, or false when it names none. A surface is
  // a view of a CUDA array with no sampling (suld/sust address its bytes).
  virtual bool texture(uint64_t handle, TextureView* out) const { return false; }
};

struct LaunchConfig {
  Dim3 grid;
  Dim3 block;
  uint32_t dynamicSharedBytes = 0;
  const uint8_t* params = nullptr; // packed per KernelInfo::params (offsets and sizes)
  uint32_t paramBytes = 0;
  bool cooperative = false;        // grid-wide synchronisation allowed
};

class LoadedModule {
public:
  virtual ~LoadedModule() = default;
  virtual const std::vector<KernelInfo>& kernels() const = 0;
  virtual const std::vector<GlobalVariable>& globals() const = 0;
  // Index into kernels(), or -1.
  virtual int findKernel(const std::string& name) const = 0;
  // Tells the module where the loader placed a global; must be called for every global before
  // the first launch. Unknown name: NotFound.
  virtual Status bindGlobal(const std::string& name, uint64_t deviceAddress) = 0;
  // Runs the whole grid and returns when it is done. CUDA_SUCCESS, or the error a real GPU
  // would report (CUDA_ERROR_ILLEGAL_ADDRESS, CUDA_ERROR_LAUNCH_FAILED, CUDA_ERROR_INVALID_VALUE
  // for a bad configuration, CUDA_ERROR_NOT_SUPPORTED for what the executor cannot run), with
  // a message for people in *message.
  virtual CUresult launch(int kernel, const LaunchConfig& config, const DeviceMemory& memory,
                          std::string* message) = 0;
};

struct ModuleSource {
  std::string ptx;   // PTX text (NUL terminator not required)
  std::string name;  // for error messages: file name or "fatbin entry sm_90"
  // Lazy loading, as the driver does for libraries: a function whose body uses a construct
  // the executor lacks does not fail the load; launching a kernel that can reach it fails
  // (CUDA_ERROR_NOT_SUPPORTED, naming the construct). Syntax errors still fail the load.
  bool lazy = false;
};

class KernelExecutor {
public:
  virtual ~KernelExecutor() = default;
  // Parses and translates once. A module that cannot be fully understood is an error naming
  // the line and the construct; never a partial load (except lazily, see ModuleSource::lazy).
  virtual Result<std::unique_ptr<LoadedModule>> load(const ModuleSource& source) = 0;
  virtual const char* name() const = 0;
};

} // namespace tf::cuda
