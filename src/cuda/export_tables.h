// The hidden export tables a libcuda hands out through cuGetExportTable, built once for every
// driver that answers them (the soft GPU, the client stub). The slots that depend on the
// driver (module from a fatbin, the primary context, context-local storage, the devices the
// integrity check hashes) call the hooks the driver installs; the rest (tool hooks' buffers,
// context checks, the integrity answer itself, logged NOT_SUPPORTED for unknown slots) live here.
//
//   tf::cuda::ExportTableHooks hooks;
//   hooks.moduleFromFatbin = &myLoadWrapper;   ...
//   tf::cuda::installExportTableHooks(hooks);   // once, before cudart asks
//   extern "C" CUresult cuGetExportTable(const void** t, const CUuuid* id) {
//     return tf::cuda::getExportTable(t, id);
//   }
#pragma once

#include <cstdint>
#include <vector>

#include <cuda.h>

#include "cuda/integrity.h"

namespace tf::cuda {

struct ExportTableHooks {
  // CUDART_INTERFACE [1], [6], [8]: a module from the wrapper __cudaRegisterFatBinary got.
  CUresult (*moduleFromFatbin)(CUmodule* out, const void* wrapper) = nullptr;
  // CUDART_INTERFACE [2]: the primary context of a device, retained.
  CUresult (*primaryContext)(CUcontext* out, CUdevice dev) = nullptr;
  // CONTEXT_LOCAL_STORAGE [0..2].
  CUresult (*clsPut)(CUcontext ctx, void* key, void* value, void* dtor) = nullptr;
  CUresult (*clsDelete)(CUcontext ctx, void* key) = nullptr;
  CUresult (*clsGet)(void** value, CUcontext ctx, void* key) = nullptr;
  // CTX_CREATE_BYPASS [1].
  CUresult (*ctxCreate)(CUcontext* out, unsigned flags, CUdevice dev) = nullptr;
  // INTEGRITY_CHECK [1]: what cuDriverGetVersion reports, and the devices to hash.
  uint32_t driverVersion = 13000;
  void (*integrityDevices)(std::vector<IntegrityDevice>* out) = nullptr;
};

void installExportTableHooks(const ExportTableHooks& hooks);
// cuGetExportTable: CUDA_ERROR_NOT_FOUND (and *table = nullptr) for an unknown UUID.
CUresult getExportTable(const void** table, const CUuuid* id);

} // namespace tf::cuda
