// The hidden export tables. Which slot does what is documented in
// ../shared/reference/cuda-driver.md; slots nobody has seen called answer
// CUDA_ERROR_NOT_SUPPORTED and log, rather than jump to null.
#include "cuda/export_tables.h"

#include <cstring>
#include <pthread.h>
#include <unistd.h>
#include <utility>

#include "common/log.h"
#include "cuda/export_table_ids.h"

namespace tf::cuda {
namespace {

ExportTableHooks hooks;

template <int Table, int Slot> CUresult unknownSlot() {
  TF_LOG(Info, "export table %s slot %d called (not implemented)",
         exportTableName(static_cast<ExportTable>(Table)), Slot);
  return CUDA_ERROR_NOT_SUPPORTED;
}

// Fills a table with unknownSlot entries.
template <int Table, size_t N, size_t... I>
void fillUnknown(void* (&t)[N], std::index_sequence<I...>) {
  ((t[I] = reinterpret_cast<void*>(&unknownSlot<Table, static_cast<int>(I)>)), ...);
}

CUresult notInstalled() { return CUDA_ERROR_NOT_SUPPORTED; }

// ---- CUDART_INTERFACE ---------------------------------------------------------------------

CUresult moduleFromFatbin(CUmodule* out, const void* wrapper) {
  if (!out || !wrapper) return CUDA_ERROR_INVALID_VALUE;
  return hooks.moduleFromFatbin ? hooks.moduleFromFatbin(out, wrapper) : notInstalled();
}
CUresult cudartSlot1(CUmodule* out, const void* wrapper) { return moduleFromFatbin(out, wrapper); }
CUresult cudartSlot2(CUcontext* pctx, CUdevice dev) {
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  return hooks.primaryContext ? hooks.primaryContext(pctx, dev) : notInstalled();
}
CUresult cudartSlot6(CUmodule* out, const void* wrapper, void*, void*, unsigned) {
  return moduleFromFatbin(out, wrapper);
}
CUresult cudartSlot7(size_t) { return CUDA_SUCCESS; }
CUresult cudartSlot8(const void* wrapper, CUmodule* out, void*, void*, unsigned) {
  return moduleFromFatbin(out, wrapper);
}
CUresult cudartSlot12() { return CUDA_SUCCESS; } // "load compilers": nothing to load

// ---- TOOLS_RUNTIME_CALLBACK_HOOKS -----------------------------------------------------------

alignas(64) uint64_t hooksBuffer2[1024];
alignas(64) uint64_t hooksBuffer6[1024];
void hooksSlot2(void** ptr, size_t* size) {
  if (ptr) *ptr = hooksBuffer2;
  if (size) *size = 1024 * sizeof(uint32_t);
}
void hooksSlot6(void** ptr, size_t* size) {
  if (ptr) *ptr = hooksBuffer6;
  if (size) *size = 14;
}

// ---- CONTEXT_LOCAL_STORAGE ----------------------------------------------------------------

CUresult clsPut(CUcontext ctx, void* key, void* value, void* dtor) {
  return hooks.clsPut ? hooks.clsPut(ctx, key, value, dtor) : notInstalled();
}
CUresult clsDelete(CUcontext ctx, void* key) {
  return hooks.clsDelete ? hooks.clsDelete(ctx, key) : notInstalled();
}
CUresult clsGet(void** value, CUcontext ctx, void* key) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  *value = nullptr;
  return hooks.clsGet ? hooks.clsGet(value, ctx, key) : notInstalled();
}

// ---- CONTEXT_CHECKS -----------------------------------------------------------------------

CUresult contextCheck(CUcontext, uint32_t* result1, const void** result2) {
  if (result1) *result1 = 0;
  if (result2) *result2 = nullptr;
  return CUDA_SUCCESS;
}
uint32_t checkSlot3() { return 0; }

// ---- INTEGRITY_CHECK ----------------------------------------------------------------------

void* cudartTable[13];
void* integrityTable[3];

CUresult integritySlot1(uint32_t version, uint64_t unixSeconds, uint64_t out[2]) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  std::vector<IntegrityDevice> devices;
  if (hooks.integrityDevices) hooks.integrityDevices(&devices);
  integrityCheckAnswer(hooks.driverVersion, version, static_cast<uint32_t>(getpid()),
                       static_cast<uint32_t>(pthread_self()), cudartTable, integrityTable,
                       reinterpret_cast<const void*>(&integritySlot1), unixSeconds, devices, out);
  return CUDA_SUCCESS;
}

// ---- CTX_CREATE_BYPASS, HEAP_ACCESS, DEVICE_EXTENDED_RT -------------------------------------

CUresult ctxCreateBypass(CUcontext* pctx, unsigned flags, CUdevice dev) {
  return hooks.ctxCreate ? hooks.ctxCreate(pctx, flags, dev) : notInstalled();
}
CUresult deviceSomething(unsigned char* result, CUdevice) {
  if (result) *result = 0;
  return CUDA_SUCCESS;
}

void* toolsTlsTable[4];
void* hooksTable[7];
void* clsTable[4];
void* checksTable[4];
void* bypassTable[2];
void* heapTable[3];
void* extendedTable[26];

#define TF_SLOT(table, i, fn) table[i] = reinterpret_cast<void*>(&fn)
#define TF_SIZE(table) table[0] = reinterpret_cast<void*>(sizeof(table))
#define TF_UNKNOWN(table, id)                                                                     \
  fillUnknown<static_cast<int>(ExportTable::id)>(                                                 \
      table, std::make_index_sequence<sizeof(table) / sizeof(void*)>())

struct Tables {
  Tables() {
    TF_UNKNOWN(cudartTable, CudartInterface);
    TF_SIZE(cudartTable);
    TF_SLOT(cudartTable, 1, cudartSlot1);
    TF_SLOT(cudartTable, 2, cudartSlot2);
    TF_SLOT(cudartTable, 6, cudartSlot6);
    TF_SLOT(cudartTable, 7, cudartSlot7);
    TF_SLOT(cudartTable, 8, cudartSlot8);
    TF_SLOT(cudartTable, 12, cudartSlot12);
    TF_UNKNOWN(hooksTable, ToolsRuntimeCallbackHooks);
    TF_SIZE(hooksTable);
    TF_SLOT(hooksTable, 2, hooksSlot2);
    TF_SLOT(hooksTable, 6, hooksSlot6);
    TF_UNKNOWN(toolsTlsTable, ToolsTls);
    TF_SIZE(toolsTlsTable);
    TF_UNKNOWN(clsTable, ContextLocalStorage); // slot 0 is a function here, not a size
    TF_SLOT(clsTable, 0, clsPut);
    TF_SLOT(clsTable, 1, clsDelete);
    TF_SLOT(clsTable, 2, clsGet);
    TF_UNKNOWN(checksTable, ContextChecks);
    TF_SIZE(checksTable);
    TF_SLOT(checksTable, 2, contextCheck);
    TF_SLOT(checksTable, 3, checkSlot3);
    TF_UNKNOWN(integrityTable, IntegrityCheck);
    TF_SIZE(integrityTable);
    TF_SLOT(integrityTable, 1, integritySlot1);
    TF_UNKNOWN(bypassTable, CtxCreateBypass);
    TF_SIZE(bypassTable);
    TF_SLOT(bypassTable, 1, ctxCreateBypass);
    TF_UNKNOWN(heapTable, HeapAccess);
    TF_SIZE(heapTable);
    TF_UNKNOWN(extendedTable, DeviceExtendedRt);
    TF_SIZE(extendedTable);
    TF_SLOT(extendedTable, 13, deviceSomething);
  }
};

void** tableFor(ExportTable t) {
  static Tables once;
  switch (t) {
  case ExportTable::CudartInterface: return cudartTable;
  case ExportTable::ToolsRuntimeCallbackHooks: return hooksTable;
  case ExportTable::ToolsTls: return toolsTlsTable;
  case ExportTable::ContextLocalStorage: return clsTable;
  case ExportTable::ContextChecks: return checksTable;
  case ExportTable::IntegrityCheck: return integrityTable;
  case ExportTable::CtxCreateBypass: return bypassTable;
  case ExportTable::HeapAccess: return heapTable;
  case ExportTable::DeviceExtendedRt: return extendedTable;
  case ExportTable::Unknown: break;
  }
  return nullptr;
}

} // namespace

void installExportTableHooks(const ExportTableHooks& h) { hooks = h; }

CUresult getExportTable(const void** table, const CUuuid* id) {
  if (!table || !id) return CUDA_ERROR_INVALID_VALUE;
  void** t = tableFor(exportTableFor(id));
  if (!t) {
    char s[37];
    formatUuid(id, s);
    TF_LOG(Debug, "cuGetExportTable: unknown table %s", s);
    *table = nullptr;
    return CUDA_ERROR_NOT_FOUND;
  }
  *table = t;
  return CUDA_SUCCESS;
}

} // namespace tf::cuda
