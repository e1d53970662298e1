// Calls any function of the NVML table (src/cuda/nvml_catalog.inc) through dlsym with the
// arguments its row's kinds call for, as the table's `expect` column assumes: valid handles,
// zeroed inputs, 0 for integers, Size 4, 256-byte buffers, counts of 16. One argument can be
// made NULL, made a bad handle, or a buffer made one byte long, to check the library's checks.
#pragma once

#include <cstdint>
#include <cstring>
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <vector>

#include "cuda/nvml_catalog.h"

namespace tf::nvml::testing {

struct Variation {
  int nullArg = -1;      // this argument is NULL
  int badArg = -1;       // this handle argument is not a valid handle
  bool shortBuffer = false; // every Len is 1
};

class Walker {
public:
  Walker(void* lib, nvmlDevice_t device) : lib_(lib), device_(device) {}

  void* symbol(const Entry& e) const { return dlsym(lib_, e.name); }

  // Whether the library's export is the generated one (nvml_defaults.h: weak), not its own.
  bool generated(const Entry& e) const {
    Dl_info info;
    void* entry = nullptr;
    void* fn = symbol(e);
    if (!fn || !dladdr1(fn, &info, &entry, RTLD_DL_SYMENT) || !entry) return false;
    return ELF64_ST_BIND(static_cast<const ElfW(Sym)*>(entry)->st_info) == STB_WEAK;
  }

  // What the row answers with the walker's arguments in this library: the table's code, or
  // NOT_SUPPORTED where a library generates a row another family implements in the soft GPU.
  // A library without event sets (the stub) refuses every set handle.
  nvmlReturn_t expected(const Entry& e) {
    for (int i = 0; i < e.arity; ++i) // handles are checked first
      if (e.kinds[i] == Kind::EventSet && !hasEventSets()) return NVML_ERROR_INVALID_ARGUMENT;
    if (generated(e) && e.family != Family::Default) return NVML_ERROR_NOT_SUPPORTED;
    return e.expect;
  }

  bool hasEventSets() {
    nvmlEventSet_t set = newEventSet();
    if (set) freeEventSet(set);
    return set != nullptr;
  }

  nvmlReturn_t call(const Entry& e, Variation v = {}) {
    std::vector<unsigned char> storage(kMaxArity * kSlot, 0);
    uint64_t a[kMaxArity] = {};
    nvmlEventSet_t set = nullptr;
    for (int i = 0; i < e.arity; ++i) {
      unsigned char* slot = storage.data() + i * kSlot;
      switch (e.kinds[i]) {
      case Kind::Device:
      case Kind::Peer: a[i] = reinterpret_cast<uint64_t>(device_); break;
      case Kind::EventSet:
        set = newEventSet();
        a[i] = reinterpret_cast<uint64_t>(set);
        break;
      case Kind::VgpuInstance:
      case Kind::VgpuType: a[i] = 1; break;
      case Kind::Unit:
      case Kind::GpuInstance:
      case Kind::ComputeInstance: a[i] = reinterpret_cast<uint64_t>(slot); break; // none exist
      case Kind::Count: *reinterpret_cast<unsigned*>(slot) = 16; [[fallthrough]];
      case Kind::Out:
      case Kind::Opt:
      case Kind::In:
      case Kind::Buf: a[i] = reinterpret_cast<uint64_t>(slot); break;
      case Kind::Len: a[i] = v.shortBuffer ? 1 : 256; break;
      case Kind::Size: a[i] = 4; break;
      case Kind::U32:
      case Kind::U64: a[i] = 0; break;
      }
      if (i == v.nullArg) a[i] = 0;
      if (i == v.badArg) a[i] = e.kinds[i] == Kind::VgpuInstance ? 0 : reinterpret_cast<uint64_t>(&kBogus);
    }
    nvmlReturn_t r = invoke(symbol(e), e.arity, a);
    if (set) freeEventSet(set);
    return r;
  }

  static bool isHandle(Kind k) {
    return k == Kind::Device || k == Kind::Peer || k == Kind::EventSet || k == Kind::VgpuInstance;
  }

private:
  static constexpr size_t kSlot = 8192; // room for any NVML struct or 16-entry array
  static inline const uint64_t kBogus = 0x5a5a5a5a;

  using Fn0 = nvmlReturn_t (*)();
  using Fn1 = nvmlReturn_t (*)(uint64_t);
  using Fn2 = nvmlReturn_t (*)(uint64_t, uint64_t);
  using Fn3 = nvmlReturn_t (*)(uint64_t, uint64_t, uint64_t);
  using Fn4 = nvmlReturn_t (*)(uint64_t, uint64_t, uint64_t, uint64_t);
  using Fn5 = nvmlReturn_t (*)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
  using Fn6 = nvmlReturn_t (*)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);

  // Integer and pointer arguments all travel in integer registers (nvml_catalog.inc).
  static nvmlReturn_t invoke(void* fn, int arity, const uint64_t* a) {
    switch (arity) {
    case 0: return reinterpret_cast<Fn0>(fn)();
    case 1: return reinterpret_cast<Fn1>(fn)(a[0]);
    case 2: return reinterpret_cast<Fn2>(fn)(a[0], a[1]);
    case 3: return reinterpret_cast<Fn3>(fn)(a[0], a[1], a[2]);
    case 4: return reinterpret_cast<Fn4>(fn)(a[0], a[1], a[2], a[3]);
    case 5: return reinterpret_cast<Fn5>(fn)(a[0], a[1], a[2], a[3], a[4]);
    default: return reinterpret_cast<Fn6>(fn)(a[0], a[1], a[2], a[3], a[4], a[5]);
    }
  }

  nvmlEventSet_t newEventSet() {
    auto create = reinterpret_cast<nvmlReturn_t (*)(nvmlEventSet_t*)>(dlsym(lib_, "nvmlEventSetCreate"));
    nvmlEventSet_t set = nullptr;
    if (create) create(&set);
    return set;
  }
  void freeEventSet(nvmlEventSet_t set) {
    // Already freed when the row was nvmlEventSetFree: the library refuses the second free.
    auto release = reinterpret_cast<nvmlReturn_t (*)(nvmlEventSet_t)>(dlsym(lib_, "nvmlEventSetFree"));
    if (release) release(set);
  }

  void* lib_;
  nvmlDevice_t device_;
};

} // namespace tf::nvml::testing
