#include "k8s/api/quantity.h"

#include <gtest/gtest.h>

namespace tf::k8s::api {
namespace {

using Format = Quantity::Format;

Quantity q(std::string_view text) {
  Result<Quantity> r = Quantity::parse(text);
  EXPECT_TRUE(r.isOk()) << text << ": " << r.status().toString();
  return r.isOk() ? *r : Quantity();
}

std::string canonical(std::string_view text) { return q(text).toString(); }

TEST(QuantityTest, ParsesEverySuffix) {
  constexpr Quantity::Nanos kUnit = 1'000'000'000;
  EXPECT_EQ(q("1n").nanos(), 1);
  EXPECT_EQ(q("1u").nanos(), 1000);
  EXPECT_EQ(q("1m").nanos(), 1'000'000);
  EXPECT_EQ(q("1").nanos(), kUnit);
  EXPECT_EQ(q("1k").nanos(), 1000 * kUnit);
  EXPECT_EQ(q("1M").nanos(), 1'000'000 * kUnit);
  EXPECT_EQ(q("1G").value(), 1'000'000'000);
  EXPECT_EQ(q("1T").value(), 1'000'000'000'000);
  EXPECT_EQ(q("1P").value(), 1'000'000'000'000'000);
  EXPECT_EQ(q("1E").value(), 1'000'000'000'000'000'000);
  EXPECT_EQ(q("1Ki").value(), 1024);
  EXPECT_EQ(q("1Mi").value(), 1024 * 1024);
  EXPECT_EQ(q("1Gi").value(), int64_t{1} << 30);
  EXPECT_EQ(q("1Ti").value(), int64_t{1} << 40);
  EXPECT_EQ(q("1Pi").value(), int64_t{1} << 50);
  EXPECT_EQ(q("1Ei").value(), int64_t{1} << 60);
  EXPECT_EQ(q("1e3").value(), 1000);
  EXPECT_EQ(q("1E3").value(), 1000);
  EXPECT_EQ(q("1e-3").milliValue(), 1);
  EXPECT_EQ(q("1e+3").value(), 1000);
  EXPECT_EQ(q("+5").value(), 5);
  EXPECT_EQ(q("-5").value(), -5);
}

TEST(QuantityTest, FractionsAreExactForBytesAndTflops) {
  EXPECT_EQ(q("1.5Gi").value(), 1610612736);
  EXPECT_EQ(q("0.5Ki").value(), 512);
  EXPECT_EQ(q(".5").milliValue(), 500);
  EXPECT_EQ(q("5.").value(), 5);
  EXPECT_EQ(q("312.5").milliValue(), 312500);
  EXPECT_EQ(q("0.000000001").nanos(), 1);
  EXPECT_DOUBLE_EQ(q("989.4").toDouble(), 989.4);
  // 80 GiB of VRAM, exactly.
  EXPECT_EQ(q("80Gi").value(), int64_t{80} << 30);
  EXPECT_EQ(q("81920Mi"), q("80Gi"));
}

TEST(QuantityTest, FinerThanNanoRoundsAwayFromZero) {
  EXPECT_EQ(q("0.0000000001").nanos(), 1);
  EXPECT_EQ(q("-0.0000000001").nanos(), -1);
  EXPECT_EQ(q("1.0000000001").toString(), "1000000001n");
  EXPECT_EQ(q("1.5").value(), 2);     // value() rounds up
  EXPECT_EQ(q("-1.5").value(), -2);
}

TEST(QuantityTest, CanonicalFormsMatchTheApiserver) {
  // {input, what the apiserver writes back}
  const std::pair<const char*, const char*> kCases[] = {
      {"0", "0"},
      {"0Gi", "0"},
      {"1.5", "1500m"},
      {"0.5", "500m"},
      {"1000", "1k"},
      {"1500", "1500"},
      {"1.5k", "1500"},
      {"100M", "100M"},
      {"2000m", "2"},
      {"1.5Gi", "1536Mi"},
      {"1024Mi", "1Gi"},
      {"1024", "1024"},       // decimal input stays decimal
      {"0.5Ki", "512"},       // below 1Ki: decimal form
      {"1023Ki", "1023Ki"},
      {"0.001Ki", "1024m"},   // not a whole number: decimal form
      {"1e3", "1e3"},
      {"1.5e3", "1500"},
      {"12e6", "12e6"},
      {"1e-3", "1e-3"},
      {"-1.5Gi", "-1536Mi"},
      {"-0.5", "-500m"},
      {"5E", "5E"},
      {"5000P", "5E"},
  };
  for (const auto& [text, want] : kCases) EXPECT_EQ(canonical(text), want) << text;
  // Canonical text parses back to the same value and text.
  for (const char* text : {"1536Mi", "1500m", "1k", "12e6", "1000000001n", "-1536Mi"}) {
    EXPECT_EQ(canonical(text), text);
  }
}

TEST(QuantityTest, MalformedInputIsAnErrorNamingTheText) {
  for (const char* text : {"", "+", "-", ".", "abc", "1.2.3", "1Gb", "1KiB", "1 Gi", " 1", "1e",
                           "1e1.5", "1ee3", "1e+", "Gi", "--1", "+-1", "1i", "1K", "0x10", "1e99",
                           "99999999999Ei", "1234567890123456789012345678901234567"}) {
    Result<Quantity> r = Quantity::parse(text);
    ASSERT_FALSE(r.isOk()) << "accepted \"" << text << "\"";
    EXPECT_EQ(r.status().code(), Code::InvalidArgument);
    EXPECT_NE(r.status().message().find("\"" + std::string(text) + "\""), std::string::npos)
        << r.status().message();
  }
  EXPECT_NE(Quantity::parse("1Gb").status().message().find("unknown suffix \"Gb\""), std::string::npos);
}

TEST(QuantityTest, LimitsAreTheInt64Range) {
  EXPECT_TRUE(Quantity::parse("7Ei").isOk());
  EXPECT_TRUE(Quantity::parse("9223372036854775807").isOk());
  EXPECT_FALSE(Quantity::parse("9223372036854775809").isOk());
  EXPECT_FALSE(Quantity::parse("9Ei").isOk());
  EXPECT_EQ(q("7Ei").value(), int64_t{7} << 60);
}

TEST(QuantityTest, ComparesByValueNotFormat) {
  EXPECT_EQ(q("1Ki"), q("1024"));
  EXPECT_EQ(q("1k"), q("1e3"));
  EXPECT_LT(q("999m"), q("1"));
  EXPECT_GT(q("1Gi"), q("1G"));
  EXPECT_LE(q("-1"), q("0"));
  EXPECT_EQ(q("1"), Quantity::fromInt(1));
  EXPECT_EQ(q("250m"), Quantity::fromMilli(250));
}

TEST(QuantityTest, Arithmetic) {
  EXPECT_EQ((q("1Gi") + q("512Mi")).toString(), "1536Mi");
  EXPECT_EQ((q("1Gi") - q("1Gi")).toString(), "0");
  EXPECT_EQ((q("100") - q("150.5")).toString(), "-50500m");
  EXPECT_EQ((Quantity() + q("2Gi")).toString(), "2Gi");  // zero takes the other's format
  Quantity sum;
  for (int i = 0; i < 8; ++i) sum += q("80Gi");
  EXPECT_EQ(sum.toString(), "640Gi");
  sum -= q("40Gi");
  EXPECT_EQ(sum.toString(), "600Gi");
  EXPECT_EQ((-q("1k")).toString(), "-1k");

  // A 5x TFLOPS oversell ratio given in percent.
  Result<Quantity> virt = q("312").scaled(500, 100);
  ASSERT_TRUE(virt.isOk());
  EXPECT_EQ(virt->toString(), "1560");
  EXPECT_EQ(q("1").scaled(1, 3)->nanos(), 333333334);  // rounded up
  EXPECT_EQ(q("1").scaled(-1, 3)->nanos(), -333333334);
  EXPECT_EQ(q("1").scaled(1, -3)->nanos(), -333333334);
  EXPECT_FALSE(q("1").scaled(1, 0).isOk());
  Result<Quantity> huge = q("7Ei").scaled(INT64_MAX, 1);
  EXPECT_FALSE(huge.isOk());
  EXPECT_EQ(huge.status().code(), Code::OutOfRange);
}

TEST(QuantityTest, ValueSaturates) {
  Quantity big = Quantity::fromNanos(Quantity::Nanos{1} << 100);
  EXPECT_EQ(big.value(), INT64_MAX);
  EXPECT_EQ((-big).milliValue(), INT64_MIN);
}

} // namespace
} // namespace tf::k8s::api
