// Helpers shared by the instruction handlers (ops_*.cpp).
#pragma once

#include <cstdint>

#include "ptx/decoder.h"
#include "ptx/runtime.h"
#include "ptx/types.h"

namespace tf::ptx {

#define TF_REG(slot) (w.r + static_cast<size_t>(slot) * 32)

// Runs f(lane) for every lane in m; the full-mask case is a plain counted loop.
template <class F> inline void forLanes(uint32_t m, F&& f) {
  if (m == 0xFFFFFFFFu) {
    for (uint32_t i = 0; i < 32; ++i) f(i);
  } else {
    while (m) {
      uint32_t i = static_cast<uint32_t>(__builtin_ctz(m));
      m &= m - 1;
      f(i);
    }
  }
}

// Pick a handler instantiation by type: H<T> must be a class template with a static `run`.
template <template <class> class H> Handler byIntType(Ty t) {
  switch (t) {
  case Ty::B16: case Ty::U16: return &H<uint16_t>::run;
  case Ty::S16: return &H<int16_t>::run;
  case Ty::B32: case Ty::U32: return &H<uint32_t>::run;
  case Ty::S32: return &H<int32_t>::run;
  case Ty::B64: case Ty::U64: return &H<uint64_t>::run;
  case Ty::S64: return &H<int64_t>::run;
  case Ty::B8: case Ty::U8: return &H<uint8_t>::run;
  case Ty::S8: return &H<int8_t>::run;
  default: return nullptr;
  }
}

template <class T> struct Unsigned { using type = std::make_unsigned_t<T>; };

// cp.async.mbarrier.arrive (ops_async.cpp), reached from the cp.async decoder (ops_mem.cpp).
Status dCpAsyncMbarrierArrive(Builder& b);

} // namespace tf::ptx
