#include "cuda/catalog.h"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tf::cuda {
namespace {

struct RawEntry {
  const char* symbol;
  const char* base;
  int version;
  bool perThread;
  const char* plain;
};

constexpr RawEntry kRaw[] = {
#define TF_CU_FN(symbol, base, version, perThread, plain, params, args)                            \
  {#symbol, #base, version, perThread != 0, #plain},
#include "cuda/catalog.inc"
#undef TF_CU_FN
};
constexpr int kCount = sizeof(kRaw) / sizeof(kRaw[0]);

struct Index {
  std::vector<CatalogEntry> entries;
  std::unordered_map<std::string_view, int> bySymbol;
  std::unordered_map<std::string_view, std::vector<int>> byBase;

  Index() {
    entries.reserve(kCount);
    for (int i = 0; i < kCount; ++i) bySymbol.emplace(kRaw[i].symbol, i);
    for (int i = 0; i < kCount; ++i) {
      const RawEntry& r = kRaw[i];
      auto plain = bySymbol.find(r.plain);
      entries.push_back({r.symbol, r.base, r.version, r.perThread,
                         plain == bySymbol.end() ? i : plain->second});
      byBase[r.base].push_back(i);
    }
  }
};

const Index& index() {
  static const Index* idx = new Index(); // never destroyed: used until the process ends
  return *idx;
}

} // namespace

int catalogSize() { return kCount; }

const CatalogEntry& catalogEntry(int i) { return index().entries[i]; }

int findSymbol(const char* symbol) {
  if (!symbol) return -1;
  auto it = index().bySymbol.find(symbol);
  return it == index().bySymbol.end() ? -1 : it->second;
}

int resolveProcAddress(const char* base, int cudaVersion, cuuint64_t flags,
                       CUdriverProcAddressQueryResult* status) {
  auto set = [&](CUdriverProcAddressQueryResult s) {
    if (status) *status = s;
  };
  if (!base) {
    set(CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
    return -1;
  }
  auto it = index().byBase.find(base);
  if (it == index().byBase.end()) {
    set(CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
    return -1;
  }
  const bool wantPerThread = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0;
  int best = -1, bestPerThread = -1;
  for (int i : it->second) {
    const CatalogEntry& e = index().entries[i];
    if (e.version > cudaVersion) continue;
    int& slot = e.perThread ? bestPerThread : best;
    if (slot < 0 || index().entries[slot].version <= e.version) slot = i;
  }
  int chosen = (wantPerThread && bestPerThread >= 0) ? bestPerThread : best;
  if (chosen < 0) {
    set(CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
    return -1;
  }
  set(CU_GET_PROC_ADDRESS_SUCCESS);
  return chosen;
}

} // namespace tf::cuda
