#include "k8s/api/quantity.h"

#include <array>
#include <limits>

namespace tf::k8s::api {
namespace {

using Nanos = Quantity::Nanos;

constexpr Nanos kNanosPerUnit = 1'000'000'000;
// Parsed magnitudes stay below 2^63 units (the apiserver's int64 fast path); this leaves
// room in 128 bits for sums and ratios.
constexpr Nanos kMaxNanos = (Nanos{1} << 63) * kNanosPerUnit;

struct Suffix {
  std::string_view text;
  int base;      // 10 or 1024
  int exponent;  // power of the base
};
constexpr std::array<Suffix, 15> kSuffixes{{
    {"Ki", 1024, 1}, {"Mi", 1024, 2}, {"Gi", 1024, 3}, {"Ti", 1024, 4}, {"Pi", 1024, 5},
    {"Ei", 1024, 6}, {"n", 10, -9},   {"u", 10, -6},   {"m", 10, -3},   {"", 10, 0},
    {"k", 10, 3},    {"M", 10, 6},    {"G", 10, 9},    {"T", 10, 12},   {"P", 10, 15},
}};
constexpr Suffix kExa{"E", 10, 18};

Status bad(std::string_view text, std::string_view why) {
  return invalidArgument("invalid quantity \"" + std::string(text) + "\": " + std::string(why));
}

bool mulOverflows(Nanos a, Nanos b, Nanos* out) { return __builtin_mul_overflow(a, b, out); }

Nanos pow10(int n) {
  Nanos r = 1;
  while (n-- > 0) r *= 10;
  return r;
}

// a / b rounded away from zero (b > 0).
Nanos divUp(Nanos a, Nanos b) {
  Nanos q = a / b;
  if (a % b != 0) q += a < 0 ? -1 : 1;
  return q;
}

std::string toDecimal(Nanos v) {
  if (v == 0) return "0";
  bool neg = v < 0;
  unsigned __int128 u = neg ? static_cast<unsigned __int128>(-(v + 1)) + 1 : v;
  std::string digits;
  while (u != 0) {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(u % 10)));
    u /= 10;
  }
  return neg ? "-" + digits : digits;
}

int64_t saturate(Nanos v) {
  if (v > std::numeric_limits<int64_t>::max()) return std::numeric_limits<int64_t>::max();
  if (v < std::numeric_limits<int64_t>::min()) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(v);
}

// Mantissa and power of ten (a multiple of 3 in [-9, 18]) with an integer mantissa and the
// largest such power: 1500000000000n → (1500, 0), 2000 units → (2, 3).
std::pair<Nanos, int> decimalParts(Nanos nanos) {
  if (nanos == 0) return {0, 0};
  int exponent = -9;
  while (exponent < 18 && nanos % 1000 == 0) {
    nanos /= 1000;
    exponent += 3;
  }
  return {nanos, exponent};
}

} // namespace

Result<Quantity> Quantity::parse(std::string_view text) {
  std::string_view s = text;
  if (s.empty()) return bad(text, "empty");
  bool negative = false;
  if (s[0] == '+' || s[0] == '-') {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  // The number: digits, optionally a point and more digits.
  Nanos mantissa = 0;
  int fractionDigits = 0, digits = 0;
  bool point = false;
  size_t i = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '.' && !point) {
      point = true;
      continue;
    }
    if (c < '0' || c > '9') break;
    if (mantissa == 0 && c == '0') {  // leading zeros add nothing
      if (point) ++fractionDigits;
      ++digits;
      continue;
    }
    if (++digits > 36) return bad(text, "too many digits");
    mantissa = mantissa * 10 + (c - '0');
    if (point) ++fractionDigits;
  }
  if (digits == 0) return bad(text, "no digits before the suffix");
  std::string_view suffix = s.substr(i);

  int base = 10, exponent = 0;
  Format format = Format::DecimalSI;
  if (!suffix.empty() && (suffix[0] == 'e' || suffix[0] == 'E') && suffix.size() > 1 && suffix != "Ei") {
    // Exponent form; a lone "E" is the exa suffix.
    std::string_view e = suffix.substr(1);
    bool eneg = false;
    if (e[0] == '+' || e[0] == '-') {
      eneg = e[0] == '-';
      e.remove_prefix(1);
    }
    if (e.empty()) return bad(text, "exponent has no digits");
    int value = 0;
    for (char c : e) {
      if (c < '0' || c > '9') return bad(text, "exponent must be a whole number");
      value = value * 10 + (c - '0');
      if (value > 60) return bad(text, "exponent out of range");
    }
    exponent = eneg ? -value : value;
    format = Format::DecimalExponent;
  } else {
    const Suffix* found = suffix == kExa.text ? &kExa : nullptr;
    for (const Suffix& candidate : kSuffixes) {
      if (candidate.text == suffix) found = &candidate;
    }
    if (found == nullptr) {
      return bad(text, "unknown suffix \"" + std::string(suffix) +
                           "\" (expected one of n u m k M G T P E Ki Mi Gi Ti Pi Ei or e<n>)");
    }
    base = found->base;
    exponent = found->exponent;
    format = base == 1024 ? Format::BinarySI : Format::DecimalSI;
  }

  // nanos = mantissa × base^exponent × 10^(9 - fractionDigits), rounded away from zero.
  Nanos nanos = mantissa;
  int tens = 9 - fractionDigits + (base == 10 ? exponent : 0);
  if (base == 1024 && mulOverflows(nanos, Nanos{1} << (10 * exponent), &nanos)) {
    return bad(text, "out of range");
  }
  if (nanos == 0) {
    // zero in any form
  } else if (tens >= 0) {
    if (tens > 38 || mulOverflows(nanos, pow10(tens), &nanos)) return bad(text, "out of range");
  } else {
    nanos = -tens > 38 ? 1 : divUp(nanos, pow10(-tens));
  }
  if (nanos > kMaxNanos) return bad(text, "out of range (magnitude above 2^63)");
  return Quantity(negative ? -nanos : nanos, format);
}

Quantity Quantity::fromInt(int64_t units, Format format) {
  return Quantity(Nanos{units} * kNanosPerUnit, format);
}

Quantity Quantity::fromMilli(int64_t milli, Format format) {
  return Quantity(Nanos{milli} * 1'000'000, format);
}

Quantity Quantity::fromNanos(Nanos nanos, Format format) { return Quantity(nanos, format); }

std::string Quantity::toString() const {
  if (nanos_ == 0) return "0";
  if (format_ == Format::BinarySI && nanos_ % kNanosPerUnit == 0 &&
      (nanos_ >= 1024 * kNanosPerUnit || nanos_ <= -1024 * kNanosPerUnit)) {
    Nanos units = nanos_ / kNanosPerUnit;
    int power = 0;
    while (power < 6 && units % 1024 == 0) {
      units /= 1024;
      ++power;
    }
    static constexpr std::array<std::string_view, 7> kBinary{"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    return toDecimal(units) + std::string(kBinary[power]);
  }
  auto [mantissa, exponent] = decimalParts(nanos_);
  if (format_ == Format::DecimalExponent) {
    return toDecimal(mantissa) + (exponent == 0 ? "" : "e" + std::to_string(exponent));
  }
  for (const Suffix& s : kSuffixes) {
    if (s.base == 10 && s.exponent == exponent) return toDecimal(mantissa) + std::string(s.text);
  }
  return toDecimal(mantissa) + std::string(kExa.text);  // exponent 18
}

int64_t Quantity::value() const { return saturate(divUp(nanos_, kNanosPerUnit)); }

int64_t Quantity::milliValue() const { return saturate(divUp(nanos_, 1'000'000)); }

double Quantity::toDouble() const { return static_cast<double>(nanos_) / 1e9; }

Quantity Quantity::operator+(const Quantity& other) const {
  return Quantity(nanos_ + other.nanos_, nanos_ == 0 ? other.format_ : format_);
}

Quantity Quantity::operator-(const Quantity& other) const {
  return Quantity(nanos_ - other.nanos_, nanos_ == 0 ? other.format_ : format_);
}

Result<Quantity> Quantity::scaled(int64_t num, int64_t den) const {
  if (den == 0) return invalidArgument("quantity scaled by a ratio with a zero denominator");
  Nanos product;
  if (mulOverflows(nanos_, Nanos{num}, &product)) {
    return outOfRange("quantity " + toString() + " × " + std::to_string(num) + " is out of range");
  }
  Nanos d = den;
  if (d < 0) {
    d = -d;
    product = -product;
  }
  return Quantity(divUp(product, d), format_);
}

} // namespace tf::k8s::api
