// Quantity: a Kubernetes resource quantity ("80Gi", "312", "500m", "1.5e3"), exact to 10^-9.
//
//   tf::Result<Quantity> q = Quantity::parse("1.5Gi");
//   if (!q) return q.status();               // "invalid quantity \"1.5Gx\": ..."
//   q->value();                              // 1610612736 (rounded up to a whole unit)
//   q->toString();                           // "1536Mi" (the apiserver's canonical form)
//   (*q + Quantity::fromInt(512, Quantity::Format::BinarySI)) > *q;
//
// Grammar (k8s.io/apimachinery resource.Quantity):
//   quantity ::= [+-] number suffix
//   number   ::= digits | digits "." [digits] | "." digits
//   suffix   ::= "" | n | u | m | k | M | G | T | P | E            (powers of 1000)
//              | Ki | Mi | Gi | Ti | Pi | Ei                     (powers of 1024)
//              | (e|E) [+-] digits                               (power of ten)
// The value is kept as a count of nano-units in 128 bits, so bytes up to exbibytes and
// TFLOPS with fractions are exact; finer fractions round up (away from zero), as the
// apiserver does. Magnitudes above 2^63 units are refused rather than approximated. The
// format (binary, decimal, exponent) comes from the suffix and only affects toString().
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tf::k8s::api {

class Quantity {
public:
  enum class Format : uint8_t { DecimalSI, BinarySI, DecimalExponent };
  using Nanos = __int128;

  Quantity() = default;
  static Result<Quantity> parse(std::string_view text);
  static Quantity fromInt(int64_t units, Format format = Format::DecimalSI);
  static Quantity fromMilli(int64_t milli, Format format = Format::DecimalSI);
  static Quantity fromNanos(Nanos nanos, Format format = Format::DecimalSI);

  // Canonical text: the largest suffix of the quantity's format that keeps an integer
  // mantissa ("1536Mi", "1500m", "2k", "1e3"); a binary value that is not a whole number
  // of units, or is below 1024, is written in decimal form ("500m", "512").
  std::string toString() const;

  Nanos nanos() const { return nanos_; }
  Format format() const { return format_; }
  // Whole units, rounded up (away from zero); saturates at the int64 range.
  int64_t value() const;
  // Thousandths of a unit, rounded up (away from zero); saturates at the int64 range.
  int64_t milliValue() const;
  double toDouble() const;
  bool isZero() const { return nanos_ == 0; }
  int sign() const { return nanos_ < 0 ? -1 : (nanos_ > 0 ? 1 : 0); }

  // Values compare by amount; the format is presentation only ("1Ki" == "1024").
  friend bool operator==(const Quantity& a, const Quantity& b) { return a.nanos_ == b.nanos_; }
  friend std::strong_ordering operator<=>(const Quantity& a, const Quantity& b) {
    return a.nanos_ <=> b.nanos_;
  }

  // Sums keep the left operand's format (the right one's when the left is zero), as the
  // apiserver's Add does. Parsed magnitudes are below 2^63 units, so sums of billions of
  // them cannot overflow.
  Quantity operator+(const Quantity& other) const;
  Quantity operator-(const Quantity& other) const;
  Quantity operator-() const { return fromNanos(-nanos_, format_); }
  Quantity& operator+=(const Quantity& other) { return *this = *this + other; }
  Quantity& operator-=(const Quantity& other) { return *this = *this - other; }
  // this * num / den, rounded up (away from zero): "tflops × 500 / 100" for an oversell
  // ratio in percent. A zero denominator or a result beyond the range is an error.
  Result<Quantity> scaled(int64_t num, int64_t den) const;

private:
  Quantity(Nanos nanos, Format format) : nanos_(nanos), format_(format) {}
  Nanos nanos_ = 0;
  Format format_ = Format::DecimalSI;
};

} // namespace tf::k8s::api
