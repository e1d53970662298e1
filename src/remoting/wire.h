// How a scalar travels on the wire: every by-value parameter and every scalar output is one
// u64. Handles and pointers by address, integers and enums by value (signed ones sign-extend,
// so the other side's cast back gives the same value). Used by the code gen_wire.py generates
// for both sides.
#pragma once

#include <cstdint>
#include <type_traits>

namespace tf::remoting::wire {

template <typename T> uint64_t toWire(T v) {
  static_assert(std::is_pointer_v<T> || std::is_integral_v<T> || std::is_enum_v<T>,
                "only handles, pointers, integers and enums travel as scalars");
  if constexpr (std::is_pointer_v<T>) return reinterpret_cast<uint64_t>(v);
  else return static_cast<uint64_t>(v);
}

template <typename T> T fromWire(uint64_t v) {
  static_assert(std::is_pointer_v<T> || std::is_integral_v<T> || std::is_enum_v<T>,
                "only handles, pointers, integers and enums travel as scalars");
  if constexpr (std::is_pointer_v<T>) return reinterpret_cast<T>(v);
  else return static_cast<T>(v);
}

} // namespace tf::remoting::wire
