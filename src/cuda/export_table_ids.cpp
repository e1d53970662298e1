#include "cuda/export_table_ids.h"

#include <cstdio>

namespace tf::cuda {
namespace {

constexpr int hexValue(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c - 'A' + 10;
}

// The UUID's bytes in the order the string writes them (as the driver compares them).
struct UuidBytes {
  unsigned char b[16] = {};
  constexpr explicit UuidBytes(const char* s) {
    int n = 0;
    for (int i = 0; s[i] && n < 32; ++i) {
      if (s[i] == '-') continue;
      if (n % 2 == 0) b[n / 2] = static_cast<unsigned char>(hexValue(s[i]) << 4);
      else b[n / 2] |= static_cast<unsigned char>(hexValue(s[i]));
      ++n;
    }
  }
};

struct TableId {
  ExportTable table;
  const char* name;
  UuidBytes uuid;
  int slots;
};

constexpr TableId kTables[] = {
#define TF_X(name, uuid, slots) {ExportTable::name, #name, UuidBytes(uuid), slots},
    TF_EXPORT_TABLES(TF_X)
#undef TF_X
};

} // namespace

ExportTable exportTableFor(const CUuuid* id) {
  if (!id) return ExportTable::Unknown;
  for (const auto& t : kTables)
    if (std::memcmp(t.uuid.b, id->bytes, 16) == 0) return t.table;
  return ExportTable::Unknown;
}

const char* exportTableName(ExportTable table) {
  for (const auto& t : kTables)
    if (t.table == table) return t.name;
  return "unknown";
}

int exportTableSlots(ExportTable table) {
  for (const auto& t : kTables)
    if (t.table == table) return t.slots;
  return 0;
}

void formatUuid(const CUuuid* id, char out[37]) {
  const auto* b = reinterpret_cast<const unsigned char*>(id->bytes);
  snprintf(out, 37, "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-%02X%02X%02X%02X%02X%02X", b[0],
           b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
           b[15]);
}

} // namespace tf::cuda
