// The CUDA driver-API catalog: every exported driver function, its ABI version and stream
// flavour, written once (generated from the toolkit's cudaTypedefs.h into catalog.inc) and
// expanded wherever a component needs the list: the soft GPU's exports, the limiter's hooks,
// the client stub's forwarding, the worker's dispatch and cuGetProcAddress.
//
//   // Expand the list (see catalog.inc for the columns):
//   #define TF_CU_FN(symbol, base, version, perThread, plain, params, args) ...
//   #include "cuda/catalog.inc"
//   #undef TF_CU_FN
//
//   // Resolve a cuGetProcAddress request ("cuMemAlloc", 12000, flags) to a catalog index:
//   int i = tf::cuda::resolveProcAddress("cuMemAlloc", 12000, 0, &status);   // cuMemAlloc_v2
//
// Indexes follow catalog.inc's order, so any table expanded from it can be indexed by them.
#pragma once

#include <cstdint>

#include <cuda.h>
#include <cudaProfiler.h> // cuProfilerStart/Stop are catalog entries too

namespace tf::cuda {

// Every catalog symbol as a compile-time index: FnId::cuMemAlloc_v2 == findSymbol("cuMemAlloc_v2").
enum class FnId : int {
#define TF_CU_FN(symbol, base, version, perThread, plain, params, args) symbol,
#include "cuda/catalog.inc"
#undef TF_CU_FN
  Count
};

struct CatalogEntry {
  const char* symbol;   // exported name: "cuMemcpyHtoD_v2_ptds"
  const char* base;     // name cuGetProcAddress is asked for: "cuMemcpyHtoD"
  int version;          // ABI version that introduced this variant: 7000
  bool perThread;       // per-thread default stream flavour (_ptds / _ptsz)
  int plainIndex;       // the same call with the legacy default stream
};

int catalogSize();
const CatalogEntry& catalogEntry(int index);
// Index of an exported symbol name, or -1.
int findSymbol(const char* symbol);

// What cuGetProcAddress(symbol, &fn, cudaVersion, flags, &status) should hand out: the newest
// variant of `base` whose version is <= cudaVersion, in the per-thread flavour when flags
// asks for it (CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) and one exists. Returns the
// index, or -1 with *status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND or
// CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT.
int resolveProcAddress(const char* base, int cudaVersion, cuuint64_t flags,
                       CUdriverProcAddressQueryResult* status);

} // namespace tf::cuda
