// Device enumeration and properties with TF_SOFTGPU_DEVICES="H100,L4": two devices whose
// names, SM counts, compute capabilities and limits match the real parts; versions; distinct
// UUIDs; PCI bus id round trip.
#include <cstring>
#include <string>

#include "check.h"

struct Want {
  const char* name;
  int sms, major, minor;
  size_t minMem;
};

int main() {
  TF_CHECK_VGPU(); // in a _limited run: the limiter is there (check.h)
  const Want want[2] = {{"NVIDIA H100 80GB HBM3", 132, 9, 0, 79ull << 30},
                        {"NVIDIA L4", 58, 8, 9, 22ull << 30}};
  int n = 0;
  CHECK(cudaGetDeviceCount(&n));
  REQUIRE(n == 2);

  int drv = 0, rt = 0;
  CHECK(cudaDriverGetVersion(&drv));
  EXPECT_EQ_INT(drv, 13000);
  CHECK(cudaRuntimeGetVersion(&rt));
  EXPECT_EQ_INT(rt / 1000, CUDART_VERSION / 1000);
  EXPECT_TRUE(rt <= drv);

  cudaUUID_t uuids[2];
  for (int d = 0; d < n; ++d) {
    CHECK(cudaSetDevice(d));
    int cur = -1;
    CHECK(cudaGetDevice(&cur));
    EXPECT_EQ_INT(cur, d);
    cudaDeviceProp p;
    CHECK(cudaGetDeviceProperties(&p, d));
    if (std::strcmp(p.name, want[d].name) != 0) {
      std::fprintf(stderr, "device %d name '%s', want '%s'\n", d, p.name, want[d].name);
      ++tf_test::failures();
    }
    EXPECT_EQ_INT(p.multiProcessorCount, want[d].sms);
    EXPECT_EQ_INT(p.major, want[d].major);
    EXPECT_EQ_INT(p.minor, want[d].minor);
    if (tf_test::vgpuVram() != 0)
      EXPECT_EQ_INT(p.totalGlobalMem, tf_test::vgpuVram()); // each device shows the vGPU's VRAM
    else
      EXPECT_TRUE(p.totalGlobalMem >= want[d].minMem);
    EXPECT_EQ_INT(p.warpSize, 32);
    EXPECT_EQ_INT(p.maxThreadsPerBlock, 1024);
    EXPECT_EQ_INT(p.maxThreadsDim[0], 1024);
    EXPECT_EQ_INT(p.maxGridSize[0], 2147483647);
    uuids[d] = p.uuid;

    int v = 0;
    CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, d));
    EXPECT_EQ_INT(v, want[d].sms);
    CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrComputeCapabilityMajor, d));
    EXPECT_EQ_INT(v, want[d].major);
    CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrComputeCapabilityMinor, d));
    EXPECT_EQ_INT(v, want[d].minor);
    CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrWarpSize, d));
    EXPECT_EQ_INT(v, 32);
    CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMaxThreadsPerBlock, d));
    EXPECT_EQ_INT(v, 1024);
    CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrPciBusId, d));
    EXPECT_EQ_INT(v, p.pciBusID);

    size_t freeB = 0, totalB = 0;
    CHECK(cudaMemGetInfo(&freeB, &totalB));
    EXPECT_EQ_INT(totalB, p.totalGlobalMem);
    EXPECT_TRUE(freeB <= totalB && freeB > 0);

    char bus[64] = {};
    CHECK(cudaDeviceGetPCIBusId(bus, sizeof bus, d));
    EXPECT_TRUE(std::strlen(bus) > 0);
    int back = -1;
    CHECK(cudaDeviceGetByPCIBusId(&back, bus));
    EXPECT_EQ_INT(back, d);
    std::printf("device %d: %s, %d SMs, cc %d.%d, %zu MiB, bus %s\n", d, p.name,
                p.multiProcessorCount, p.major, p.minor, p.totalGlobalMem >> 20, bus);
  }
  EXPECT_TRUE(std::memcmp(&uuids[0], &uuids[1], sizeof(cudaUUID_t)) != 0);
  static const cudaUUID_t zero = {};
  EXPECT_TRUE(std::memcmp(&uuids[0], &zero, sizeof zero) != 0);

  EXPECT_ERR(cudaSetDevice(2), cudaErrorInvalidDevice);
  int v = 0;
  EXPECT_ERR(cudaDeviceGetAttribute(&v, cudaDevAttrWarpSize, 7), cudaErrorInvalidDevice);
  int dev = -1;
  EXPECT_ERR(cudaDeviceGetByPCIBusId(&dev, "0000:7f:00.0"), cudaErrorInvalidDevice);
  return tf_test::summary("device_query");
}
