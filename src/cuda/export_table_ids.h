// The hidden export tables a driver hands out through cuGetExportTable, named once.
// Their contents (which slot does what) are facts from ../shared/reference/cuda-driver.md;
// each component that answers cuGetExportTable (soft GPU, client stub) fills them.
#pragma once

#include <cstring>

#include <cuda.h>

namespace tf::cuda {

// X(name, uuid string, slot count)
#define TF_EXPORT_TABLES(X)                                                                       \
  X(CudartInterface, "6BD5FB6C-5BF4-E74A-8987-D93912FD9DF9", 13)                                  \
  X(ToolsRuntimeCallbackHooks, "A094798C-2E74-2E74-93F2-0800200C0A66", 7)                          \
  X(ToolsTls, "42D85A81-23F6-CB47-8298-F6E78A3AECDC", 4)                                          \
  X(ContextLocalStorage, "C693336E-1121-DF11-A8C3-68F355D89593", 4)                               \
  X(ContextChecks, "263E8860-7CD2-6143-92F6-BBD5006DFA7E", 4)                                     \
  X(IntegrityCheck, "D4082055-BDE6-704B-8D34-BA123C66E1F2", 3)                                    \
  X(CtxCreateBypass, "0CA50B8C-1004-929A-89A7-D0DF10E77286", 2)                                   \
  X(HeapAccess, "195BCBF4-D67D-024A-ACC5-1D29CEA631AE", 3)                                        \
  X(DeviceExtendedRt, "B10541E1-F7C7-C74A-9F64-F223BE99F1E2", 26)

enum class ExportTable {
#define TF_X(name, uuid, slots) name,
  TF_EXPORT_TABLES(TF_X)
#undef TF_X
      Unknown
};

// Which table a UUID names (Unknown for any other).
ExportTable exportTableFor(const CUuuid* id);
const char* exportTableName(ExportTable table);
int exportTableSlots(ExportTable table);
// "6BD5FB6C-5BF4-..." for logs.
void formatUuid(const CUuuid* id, char out[37]);

} // namespace tf::cuda
