#include "controller/capacity.h"

#include <gtest/gtest.h>

namespace tf::controller {
namespace {
namespace v1 = k8s::api::v1;
using nlohmann::json;

Quantity q(const char* s) { return Quantity::parse(s).value(); }

TEST(Capacity, TensorFusionDefaultsWhenThePoolSaysNothing) {
  const Oversubscription r = ratiosOf(nullptr);
  EXPECT_EQ(r.tflopsOversellRatio, 500);
  EXPECT_EQ(r.vramExpandToHostMem, 50);
  EXPECT_EQ(r.vramExpandToHostDisk, 70);
  EXPECT_EQ(virtualTflops(q("100"), r), q("500"));
  EXPECT_EQ(virtualVram(q("80Gi"), q("64Gi"), q("100Gi"), r), q("80Gi") + q("32Gi") + q("70Gi"));
  EXPECT_EQ(virtualVram(q("80Gi"), std::nullopt, std::nullopt, r), q("80Gi"));
  // Lent host memory counts in whole MiB: 50% of 3 MiB + 1 byte is 1 MiB, not 1.5 MiB and a bit.
  EXPECT_EQ(virtualVram(q("1Gi"), Quantity::fromInt(3 * (1 << 20) + 1), std::nullopt, r), q("1Gi") + q("1Mi"));
  EXPECT_EQ(virtualVram(q("1Gi"), q("64Gi"), std::nullopt, r).toString(), "33Gi");
}

TEST(Capacity, PoolRatiosApply) {
  auto spec = k8s::api::decode<v1::GpuPoolSpec>(json{
      {"nodeManagerConfig", json::object()},
      {"capacityConfig", {{"oversubscription", {{"tflopsOversellRatio", 150}, {"vramExpandToHostMem", 0}}}}}}).value();
  const Oversubscription r = ratiosOf(&spec);
  EXPECT_EQ(r.tflopsOversellRatio, 150);
  EXPECT_EQ(r.vramExpandToHostMem, 0);
  EXPECT_EQ(r.vramExpandToHostDisk, 70);  // unset: the default
  EXPECT_EQ(virtualTflops(q("989.4"), r), q("1484.1"));
  EXPECT_EQ(virtualVram(q("1Gi"), q("1Gi"), std::nullopt, r), q("1Gi"));
}

TEST(Capacity, TotalsAddCapacityAndAvailability) {
  auto gpu = [](const char* tf, const char* vram, const char* atf, const char* avram) {
    return k8s::api::decode<v1::GpuStatus>(json{{"phase", "Running"}, {"vendor", "NVIDIA"}, {"uuid", "u"},
                                                {"gpuModel", "H100"}, {"message", ""}, {"nodeSelector", json::object()},
                                                {"capacity", {{"tflops", tf}, {"vram", vram}}},
                                                {"available", {{"tflops", atf}, {"vram", avram}}}}).value();
  };
  Totals t;
  t.addGpu(gpu("989.4", "80Gi", "900", "60Gi"));
  t.addGpu(gpu("121", "23034Mi", "121", "23034Mi"));
  EXPECT_EQ(t.gpus, 2);
  EXPECT_EQ(t.tflops, q("1110.4"));
  EXPECT_EQ(t.vram, q("80Gi") + q("23034Mi"));
  EXPECT_EQ(t.availableTflops, q("1021"));
  EXPECT_EQ(t.availableVram, q("60Gi") + q("23034Mi"));
}

}  // namespace
}  // namespace tf::controller
