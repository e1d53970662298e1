// Floating-point semantics of PTX on the host: rounding modes, flush-to-zero, saturation,
// min/max NaN rules.
#pragma once

#include <cfenv>
#include <cmath>
#include <cstdint>

namespace tf::ptx::fmath {

enum Rnd : uint32_t { kRn = 0, kRz = 1, kRm = 2, kRp = 3 };

inline int feMode(uint32_t r) {
  switch (r) {
  case kRz: return FE_TOWARDZERO;
  case kRm: return FE_DOWNWARD;
  case kRp: return FE_UPWARD;
  default: return FE_TONEAREST;
  }
}

// Sets a rounding mode for the lifetime of the object (for .rz/.rm/.rp arithmetic).
class RoundingScope {
public:
  explicit RoundingScope(uint32_t r) : active_(r != kRn) {
    if (active_) {
      saved_ = std::fegetround();
      std::fesetround(feMode(r));
    }
  }
  ~RoundingScope() {
    if (active_) std::fesetround(saved_);
  }

private:
  bool active_;
  int saved_ = FE_TONEAREST;
};

inline float ftz(float x) {
  return std::fpclassify(x) == FP_SUBNORMAL ? std::copysign(0.0f, x) : x;
}
inline double ftz(double x) { return x; } // .ftz applies to .f32 only
template <class T> inline T sat(T x) {
  if (std::isnan(x)) return T(0);
  if (x < T(0)) return T(0);
  if (x > T(1)) return T(1);
  return x;
}
template <class T> inline T fmin(T a, T b) {
  if (std::isnan(a)) return std::isnan(b) ? T(NAN) : b;
  if (std::isnan(b)) return a;
  if (a == b) return std::signbit(a) ? a : b;
  return a < b ? a : b;
}
template <class T> inline T fmax(T a, T b) {
  if (std::isnan(a)) return std::isnan(b) ? T(NAN) : b;
  if (std::isnan(b)) return a;
  if (a == b) return std::signbit(a) ? b : a;
  return a > b ? a : b;
}
template <class T> inline T fminNaN(T a, T b) {
  if (std::isnan(a) || std::isnan(b)) return T(NAN);
  return fmin(a, b);
}
template <class T> inline T fmaxNaN(T a, T b) {
  if (std::isnan(a) || std::isnan(b)) return T(NAN);
  return fmax(a, b);
}

} // namespace tf::ptx::fmath
