// PTX fundamental types as the decoder and the handlers see them.
#pragma once

#include <bit>
#include <cstdint>
#include <string>
#include <type_traits>

namespace tf::ptx {

enum class Ty : uint8_t {
  None, Pred,
  B8, B16, B32, B64, B128,
  U8, U16, U32, U64,
  S8, S16, S32, S64,
  F16, F16x2, BF16, BF16x2, F32, F64, TF32,
};

Ty parseTy(const std::string& mod); // ".f32" -> F32, None if not a type
const char* tyName(Ty t);

inline uint32_t tySize(Ty t) {
  switch (t) {
  case Ty::B8: case Ty::U8: case Ty::S8: case Ty::Pred: return 1;
  case Ty::B16: case Ty::U16: case Ty::S16: case Ty::F16: case Ty::BF16: return 2;
  case Ty::B32: case Ty::U32: case Ty::S32: case Ty::F32: case Ty::F16x2: case Ty::BF16x2:
  case Ty::TF32: return 4;
  case Ty::B64: case Ty::U64: case Ty::S64: case Ty::F64: return 8;
  case Ty::B128: return 16;
  default: return 0;
  }
}
inline bool tyIsSigned(Ty t) { return t == Ty::S8 || t == Ty::S16 || t == Ty::S32 || t == Ty::S64; }
inline bool tyIsFloat(Ty t) {
  return t == Ty::F16 || t == Ty::F16x2 || t == Ty::BF16 || t == Ty::BF16x2 || t == Ty::F32 ||
         t == Ty::F64 || t == Ty::TF32;
}
inline bool tyIsInt(Ty t) { return !tyIsFloat(t) && t != Ty::None && t != Ty::Pred && t != Ty::B128; }

// Register values are kept in 64-bit cells; narrower values sit zero-extended in the low bits.
template <class T> inline T rd(uint64_t v) {
  if constexpr (std::is_same_v<T, float>) {
    return std::bit_cast<float>(static_cast<uint32_t>(v));
  } else if constexpr (std::is_same_v<T, double>) {
    return std::bit_cast<double>(v);
  } else {
    return static_cast<T>(v);
  }
}
template <class T> inline uint64_t wr(T v) {
  if constexpr (std::is_same_v<T, float>) {
    return std::bit_cast<uint32_t>(v);
  } else if constexpr (std::is_same_v<T, double>) {
    return std::bit_cast<uint64_t>(v);
  } else if constexpr (std::is_same_v<T, bool>) {
    return v ? 1 : 0;
  } else {
    return static_cast<uint64_t>(static_cast<std::make_unsigned_t<T>>(v));
  }
}

} // namespace tf::ptx
