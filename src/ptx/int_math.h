// Integer semantics of PTX, free of undefined behaviour on the host (no SIGFPE, no signed
// overflow): division by zero and INT_MIN / -1 give the PTX results, shifts clamp.
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>

namespace tf::ptx::imath {

template <class T> using U = std::make_unsigned_t<T>;

template <class T> inline T add(T a, T b) { return static_cast<T>(U<T>(a) + U<T>(b)); }
template <class T> inline T sub(T a, T b) { return static_cast<T>(U<T>(a) - U<T>(b)); }
template <class T> inline T mulLo(T a, T b) {
  if constexpr (sizeof(T) < 4) {
    return static_cast<T>(uint32_t(U<T>(a)) * uint32_t(U<T>(b)));
  } else {
    return static_cast<T>(U<T>(a) * U<T>(b));
  }
}
template <class T> inline T mulHi(T a, T b) {
  if constexpr (sizeof(T) == 8) {
    if constexpr (std::is_signed_v<T>) {
      return static_cast<T>((__int128(a) * __int128(b)) >> 64);
    } else {
      return static_cast<T>((static_cast<unsigned __int128>(a) * b) >> 64);
    }
  } else {
    using W = std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>;
    return static_cast<T>((W(a) * W(b)) >> (8 * sizeof(T)));
  }
}
template <class T> inline T div(T a, T b) {
  if (b == 0) return static_cast<T>(~U<T>(0));
  if constexpr (std::is_signed_v<T>) {
    if (a == std::numeric_limits<T>::min() && b == -1) return a;
  }
  return static_cast<T>(a / b);
}
template <class T> inline T rem(T a, T b) {
  if (b == 0) return a;
  if constexpr (std::is_signed_v<T>) {
    if (b == -1) return 0;
  }
  return static_cast<T>(a % b);
}
template <class T> inline T neg(T a) { return static_cast<T>(U<T>(0) - U<T>(a)); }
template <class T> inline T abs(T a) {
  if constexpr (std::is_signed_v<T>) {
    return a < 0 ? neg(a) : a;
  } else {
    return a;
  }
}
template <class T> inline T shl(T a, uint32_t s) {
  return s >= 8 * sizeof(T) ? T(0) : static_cast<T>(U<T>(a) << s);
}
template <class T> inline T shr(T a, uint32_t s) {
  if constexpr (std::is_signed_v<T>) {
    if (s >= 8 * sizeof(T)) return a < 0 ? T(-1) : T(0);
    return static_cast<T>(a >> s);
  } else {
    return s >= 8 * sizeof(T) ? T(0) : static_cast<T>(a >> s);
  }
}
template <class T> inline T satAdd(T a, T b) {
  int64_t r = int64_t(a) + int64_t(b);
  if (r > std::numeric_limits<T>::max()) return std::numeric_limits<T>::max();
  if (r < std::numeric_limits<T>::min()) return std::numeric_limits<T>::min();
  return static_cast<T>(r);
}
template <class T> inline T satSub(T a, T b) {
  int64_t r = int64_t(a) - int64_t(b);
  if (r > std::numeric_limits<T>::max()) return std::numeric_limits<T>::max();
  if (r < std::numeric_limits<T>::min()) return std::numeric_limits<T>::min();
  return static_cast<T>(r);
}

} // namespace tf::ptx::imath
