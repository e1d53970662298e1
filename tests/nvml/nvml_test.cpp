#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/units.h"
#include "softgpu/device_state.h"
#include "cuda/nvml_api.h"
#include "tests/support/state_dir.h"

namespace tf::softgpu {
namespace {

using units::GiB;
using units::MiB;

// The library's entry points, resolved by name as a client of the real one would.
struct Nvml {
  void* handle = nullptr;
#define TF_NVML_FN(name) decltype(&::name) name = nullptr;
  TF_NVML_FN(nvmlInit_v2)
  TF_NVML_FN(nvmlShutdown)
  TF_NVML_FN(nvmlErrorString)
  TF_NVML_FN(nvmlSystemGetDriverVersion)
  TF_NVML_FN(nvmlSystemGetCudaDriverVersion_v2)
  TF_NVML_FN(nvmlDeviceGetCount_v2)
  TF_NVML_FN(nvmlDeviceGetHandleByIndex_v2)
  TF_NVML_FN(nvmlDeviceGetHandleByUUID)
  TF_NVML_FN(nvmlDeviceGetHandleByPciBusId_v2)
  TF_NVML_FN(nvmlDeviceGetName)
  TF_NVML_FN(nvmlDeviceGetUUID)
  TF_NVML_FN(nvmlDeviceGetIndex)
  TF_NVML_FN(nvmlDeviceGetPciInfo_v3)
  TF_NVML_FN(nvmlDeviceGetMemoryInfo)
  TF_NVML_FN(nvmlDeviceGetMemoryInfo_v2)
  TF_NVML_FN(nvmlDeviceGetUtilizationRates)
  TF_NVML_FN(nvmlDeviceGetComputeRunningProcesses)
  TF_NVML_FN(nvmlDeviceGetComputeRunningProcesses_v3)
  TF_NVML_FN(nvmlDeviceGetProcessUtilization)
  TF_NVML_FN(nvmlDeviceGetTemperature)
  TF_NVML_FN(nvmlDeviceGetPowerUsage)
  TF_NVML_FN(nvmlDeviceGetPowerManagementLimit)
  TF_NVML_FN(nvmlDeviceGetCudaComputeCapability)
  TF_NVML_FN(nvmlDeviceGetMaxClockInfo)
#undef TF_NVML_FN
};

Nvml& nvml() {
  static Nvml* lib = [] {
    auto* n = new Nvml();
    n->handle = dlopen(TF_NVML_PATH, RTLD_NOW | RTLD_LOCAL);
    if (!n->handle) return n;
#define TF_NVML_FN(name) n->name = reinterpret_cast<decltype(&::name)>(dlsym(n->handle, #name));
    TF_NVML_FN(nvmlInit_v2) TF_NVML_FN(nvmlShutdown) TF_NVML_FN(nvmlErrorString)
    TF_NVML_FN(nvmlSystemGetDriverVersion) TF_NVML_FN(nvmlSystemGetCudaDriverVersion_v2)
    TF_NVML_FN(nvmlDeviceGetCount_v2) TF_NVML_FN(nvmlDeviceGetHandleByIndex_v2)
    TF_NVML_FN(nvmlDeviceGetHandleByUUID) TF_NVML_FN(nvmlDeviceGetHandleByPciBusId_v2)
    TF_NVML_FN(nvmlDeviceGetName) TF_NVML_FN(nvmlDeviceGetUUID) TF_NVML_FN(nvmlDeviceGetIndex)
    TF_NVML_FN(nvmlDeviceGetPciInfo_v3) TF_NVML_FN(nvmlDeviceGetMemoryInfo)
    TF_NVML_FN(nvmlDeviceGetMemoryInfo_v2) TF_NVML_FN(nvmlDeviceGetUtilizationRates)
    TF_NVML_FN(nvmlDeviceGetComputeRunningProcesses) TF_NVML_FN(nvmlDeviceGetComputeRunningProcesses_v3)
    TF_NVML_FN(nvmlDeviceGetProcessUtilization) TF_NVML_FN(nvmlDeviceGetTemperature)
    TF_NVML_FN(nvmlDeviceGetPowerUsage) TF_NVML_FN(nvmlDeviceGetPowerManagementLimit)
    TF_NVML_FN(nvmlDeviceGetCudaComputeCapability) TF_NVML_FN(nvmlDeviceGetMaxClockInfo)
#undef TF_NVML_FN
    return n;
  }();
  return *lib;
}

// Any other entry point, typed from nvml_api.h and resolved by name.
#define TF_NVML(name) reinterpret_cast<decltype(&::name)>(dlsym(nvml().handle, #name))

class NvmlTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_NE(nvml().handle, nullptr) << dlerror();
    ASSERT_NE(nvml().nvmlDeviceGetMaxClockInfo, nullptr) << "missing export";
    ASSERT_FALSE(state_.path().empty());
    setenv("TF_SOFTGPU_DEVICES", "H100:1GiB,2xL4", 1);
    setenv("TF_SOFTGPU_NODE", "nvml-test", 1);
    auto cfg = loadConfig();
    ASSERT_TRUE(cfg);
    config_ = *cfg;
    ASSERT_EQ(nvml().nvmlInit_v2(), NVML_SUCCESS);
    ASSERT_EQ(nvml().nvmlDeviceGetHandleByIndex_v2(0, &h100_), NVML_SUCCESS);
  }
  void TearDown() override { nvml().nvmlShutdown(); } // before state_ goes

  tf::testing::StateDir state_{"nvml-test"};
  SoftGpuConfig config_;
  nvmlDevice_t h100_ = nullptr;
};

TEST_F(NvmlTest, DevicesMatchTheConfiguration) {
  Nvml& n = nvml();
  unsigned count = 0;
  ASSERT_EQ(n.nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
  ASSERT_EQ(count, 3u);
  const char* names[] = {"NVIDIA H100 80GB HBM3", "NVIDIA L4", "NVIDIA L4"};
  for (unsigned i = 0; i < count; ++i) {
    nvmlDevice_t dev;
    ASSERT_EQ(n.nvmlDeviceGetHandleByIndex_v2(i, &dev), NVML_SUCCESS);
    char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE], uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
    ASSERT_EQ(n.nvmlDeviceGetName(dev, name, sizeof name), NVML_SUCCESS);
    EXPECT_STREQ(name, names[i]);
    ASSERT_EQ(n.nvmlDeviceGetUUID(dev, uuid, sizeof uuid), NVML_SUCCESS);
    EXPECT_EQ(uuid, config_.devices[i].uuidString);
    unsigned index = 99;
    EXPECT_EQ(n.nvmlDeviceGetIndex(dev, &index), NVML_SUCCESS);
    EXPECT_EQ(index, i);
    nvmlDevice_t byUuid = nullptr, byBus = nullptr;
    EXPECT_EQ(n.nvmlDeviceGetHandleByUUID(uuid, &byUuid), NVML_SUCCESS);
    EXPECT_EQ(byUuid, dev);
    nvmlPciInfo_t pci;
    ASSERT_EQ(n.nvmlDeviceGetPciInfo_v3(dev, &pci), NVML_SUCCESS);
    EXPECT_EQ(pci.bus, unsigned(config_.devices[i].pciBus));
    EXPECT_EQ(n.nvmlDeviceGetHandleByPciBusId_v2(pci.busId, &byBus), NVML_SUCCESS);
    EXPECT_EQ(byBus, dev);
    EXPECT_EQ(n.nvmlDeviceGetHandleByPciBusId_v2(pci.busIdLegacy, &byBus), NVML_SUCCESS);
    EXPECT_EQ(byBus, dev);
  }
  nvmlPciInfo_t pci;
  ASSERT_EQ(n.nvmlDeviceGetPciInfo_v3(h100_, &pci), NVML_SUCCESS);
  EXPECT_STREQ(pci.busId, "00000000:01:00.0");
  EXPECT_STREQ(pci.busIdLegacy, "0000:01:00.0");
  EXPECT_EQ(pci.pciDeviceId, 0x233010DEu);
  int major = 0, minor = 0;
  EXPECT_EQ(n.nvmlDeviceGetCudaComputeCapability(h100_, &major, &minor), NVML_SUCCESS);
  EXPECT_EQ(major * 10 + minor, 90);
  unsigned mhz = 0, limit = 0;
  EXPECT_EQ(n.nvmlDeviceGetMaxClockInfo(h100_, NVML_CLOCK_SM, &mhz), NVML_SUCCESS);
  EXPECT_EQ(mhz, 1980u);
  EXPECT_EQ(n.nvmlDeviceGetPowerManagementLimit(h100_, &limit), NVML_SUCCESS);
  EXPECT_EQ(limit, 700000u);
  char driver[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
  EXPECT_EQ(n.nvmlSystemGetDriverVersion(driver, sizeof driver), NVML_SUCCESS);
  EXPECT_EQ(std::string(driver).substr(0, 4), "580.");
  int cuda = 0;
  EXPECT_EQ(n.nvmlSystemGetCudaDriverVersion_v2(&cuda), NVML_SUCCESS);
  EXPECT_EQ(cuda, 13000);
}

TEST_F(NvmlTest, MemoryAndProcessesFollowOtherProcesses) {
  Nvml& n = nvml();
  nvmlMemory_t mem;
  ASSERT_EQ(n.nvmlDeviceGetMemoryInfo(h100_, &mem), NVML_SUCCESS);
  EXPECT_EQ(mem.total, 1 * GiB);
  EXPECT_EQ(mem.used, 0u);
  EXPECT_EQ(mem.free, 1 * GiB);

  // The child attaches (what cuInit does) and uses memory; it takes a context only when told.
  int fds[2], go[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(pipe(go), 0);
  pid_t child = fork();
  if (child == 0) {
    auto state = DeviceState::open(config_.devices[0]);
    if (!state) _exit(2);
    auto slot = (*state)->attach();
    if (!slot || !(*state)->reserveMemory(*slot, 256 * MiB)) _exit(3);
    char ok = 1;
    if (write(fds[1], &ok, 1) != 1) _exit(4);
    if (read(go[0], &ok, 1) != 1) _exit(5);
    (*state)->setHoldsContext(*slot, true);
    if (write(fds[1], &ok, 1) != 1) _exit(6);
    for (;;) pause();
  }
  char ok = 0;
  ASSERT_EQ(read(fds[0], &ok, 1), 1);
  // Without a context the process is not listed, as with NVIDIA's driver (its memory counts).
  unsigned none = 7;
  ASSERT_EQ(n.nvmlDeviceGetComputeRunningProcesses_v3(h100_, &none, nullptr), NVML_SUCCESS);
  EXPECT_EQ(none, 0u);
  ASSERT_EQ(write(go[1], &ok, 1), 1);
  ASSERT_EQ(read(fds[0], &ok, 1), 1);
  for (int fd : {fds[0], fds[1], go[0], go[1]}) close(fd);

  ASSERT_EQ(n.nvmlDeviceGetMemoryInfo(h100_, &mem), NVML_SUCCESS);
  EXPECT_EQ(mem.used, 256 * MiB);
  EXPECT_EQ(mem.free, 768 * MiB);
  nvmlMemory_v2_t mem2{};
  mem2.version = nvmlMemory_v2;
  ASSERT_EQ(n.nvmlDeviceGetMemoryInfo_v2(h100_, &mem2), NVML_SUCCESS);
  EXPECT_EQ(mem2.used, 256 * MiB);
  EXPECT_EQ(mem2.total, 1 * GiB);

  // The two-call protocol: ask for the size, then fill.
  unsigned count = 0;
  ASSERT_EQ(n.nvmlDeviceGetComputeRunningProcesses_v3(h100_, &count, nullptr), NVML_ERROR_INSUFFICIENT_SIZE);
  ASSERT_EQ(count, 1u);
  nvmlProcessInfo_t infos[4];
  count = 4;
  ASSERT_EQ(n.nvmlDeviceGetComputeRunningProcesses_v3(h100_, &count, infos), NVML_SUCCESS);
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(infos[0].pid, unsigned(child));
  EXPECT_EQ(infos[0].usedGpuMemory, 256 * MiB);
  EXPECT_EQ(infos[0].gpuInstanceId, 0xFFFFFFFFu);
  nvmlProcessInfo_v1_t v1[2];
  count = 2;
  ASSERT_EQ(n.nvmlDeviceGetComputeRunningProcesses(h100_, &count, v1), NVML_SUCCESS);
  EXPECT_EQ(v1[0].usedGpuMemory, 256 * MiB);
  // Other devices are untouched.
  nvmlDevice_t l4;
  ASSERT_EQ(n.nvmlDeviceGetHandleByIndex_v2(1, &l4), NVML_SUCCESS);
  count = 0;
  EXPECT_EQ(n.nvmlDeviceGetComputeRunningProcesses_v3(l4, &count, nullptr), NVML_SUCCESS);
  EXPECT_EQ(count, 0u);

  kill(child, SIGKILL);
  int status;
  waitpid(child, &status, 0);
  ASSERT_EQ(n.nvmlDeviceGetMemoryInfo(h100_, &mem), NVML_SUCCESS);
  EXPECT_EQ(mem.used, 0u);
  count = 0;
  EXPECT_EQ(n.nvmlDeviceGetComputeRunningProcesses_v3(h100_, &count, nullptr), NVML_SUCCESS);
  EXPECT_EQ(count, 0u);
}

TEST_F(NvmlTest, UtilizationAndSensorsFollowBusyTime) {
  Nvml& n = nvml();
  nvmlUtilization_t util;
  unsigned idleTemp = 0, idlePower = 0, temp = 0, power = 0;
  ASSERT_EQ(n.nvmlDeviceGetUtilizationRates(h100_, &util), NVML_SUCCESS);
  EXPECT_EQ(util.gpu, 0u);
  ASSERT_EQ(n.nvmlDeviceGetTemperature(h100_, NVML_TEMPERATURE_GPU, &idleTemp), NVML_SUCCESS);
  ASSERT_EQ(n.nvmlDeviceGetPowerUsage(h100_, &idlePower), NVML_SUCCESS);
  unsigned samples = 0;
  EXPECT_EQ(n.nvmlDeviceGetProcessUtilization(h100_, nullptr, &samples, 0), NVML_ERROR_NOT_FOUND);

  auto state = DeviceState::open(config_.devices[0]);
  ASSERT_TRUE(state);
  auto slot = (*state)->attach();
  ASSERT_TRUE(slot);
  (*state)->addBusyTime(*slot, 800'000'000);

  ASSERT_EQ(n.nvmlDeviceGetUtilizationRates(h100_, &util), NVML_SUCCESS);
  EXPECT_GE(util.gpu, 70u);
  ASSERT_EQ(n.nvmlDeviceGetTemperature(h100_, NVML_TEMPERATURE_GPU, &temp), NVML_SUCCESS);
  ASSERT_EQ(n.nvmlDeviceGetPowerUsage(h100_, &power), NVML_SUCCESS);
  EXPECT_GT(temp, idleTemp);
  EXPECT_GT(power, idlePower);
  EXPECT_LE(power, 700000u);

  samples = 0;
  ASSERT_EQ(n.nvmlDeviceGetProcessUtilization(h100_, nullptr, &samples, 0), NVML_ERROR_INSUFFICIENT_SIZE);
  ASSERT_EQ(samples, 1u);
  nvmlProcessUtilizationSample_t sample[2];
  samples = 2;
  ASSERT_EQ(n.nvmlDeviceGetProcessUtilization(h100_, sample, &samples, 0), NVML_SUCCESS);
  EXPECT_EQ(sample[0].pid, unsigned(getpid()));
  EXPECT_GE(sample[0].smUtil, 70u);
  // Nothing newer than the last sample.
  EXPECT_EQ(n.nvmlDeviceGetProcessUtilization(h100_, sample, &samples, sample[0].timeStamp),
            NVML_ERROR_NOT_FOUND);
}

TEST_F(NvmlTest, ErrorCases) {
  Nvml& n = nvml();
  nvmlMemory_t mem;
  EXPECT_EQ(n.nvmlDeviceGetMemoryInfo(nullptr, &mem), NVML_ERROR_INVALID_ARGUMENT);
  nvmlDevice_t bogus = reinterpret_cast<nvmlDevice_t>(&mem);
  EXPECT_EQ(n.nvmlDeviceGetMemoryInfo(bogus, &mem), NVML_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(n.nvmlDeviceGetMemoryInfo(h100_, nullptr), NVML_ERROR_INVALID_ARGUMENT);
  nvmlDevice_t dev;
  EXPECT_EQ(n.nvmlDeviceGetHandleByIndex_v2(3, &dev), NVML_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(n.nvmlDeviceGetHandleByUUID("GPU-00000000-0000-0000-0000-000000000000", &dev), NVML_ERROR_NOT_FOUND);
  EXPECT_EQ(n.nvmlDeviceGetHandleByPciBusId_v2("00000000:42:00.0", &dev), NVML_ERROR_NOT_FOUND);
  EXPECT_EQ(n.nvmlDeviceGetHandleByPciBusId_v2("not a bus id", &dev), NVML_ERROR_INVALID_ARGUMENT);
  char small[8];
  EXPECT_EQ(n.nvmlDeviceGetName(h100_, small, sizeof small), NVML_ERROR_INSUFFICIENT_SIZE);
  char uuid[20];
  EXPECT_EQ(n.nvmlDeviceGetUUID(h100_, uuid, sizeof uuid), NVML_ERROR_INSUFFICIENT_SIZE);
  nvmlMemory_v2_t mem2{};
  mem2.version = 1;
  EXPECT_EQ(n.nvmlDeviceGetMemoryInfo_v2(h100_, &mem2), NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
  EXPECT_EQ(n.nvmlDeviceGetComputeRunningProcesses_v3(h100_, nullptr, nullptr), NVML_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(n.nvmlErrorString(NVML_ERROR_INSUFFICIENT_SIZE), "Insufficient Size");

  // Init is reference counted; after the last shutdown every call is uninitialised.
  ASSERT_EQ(n.nvmlInit_v2(), NVML_SUCCESS);
  ASSERT_EQ(n.nvmlShutdown(), NVML_SUCCESS);
  unsigned count;
  EXPECT_EQ(n.nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
  ASSERT_EQ(n.nvmlShutdown(), NVML_SUCCESS);
  EXPECT_EQ(n.nvmlDeviceGetCount_v2(&count), NVML_ERROR_UNINITIALIZED);
  EXPECT_EQ(n.nvmlDeviceGetMemoryInfo(h100_, &mem), NVML_ERROR_UNINITIALIZED);
  EXPECT_EQ(n.nvmlShutdown(), NVML_ERROR_UNINITIALIZED);
  ASSERT_EQ(n.nvmlInit_v2(), NVML_SUCCESS); // for TearDown
}

// What nvidia-smi -q and DCGM read: values from the device model.
TEST_F(NvmlTest, BoardFactsFollowTheModel) {
  nvmlDevice_t l4;
  ASSERT_EQ(nvml().nvmlDeviceGetHandleByIndex_v2(1, &l4), NVML_SUCCESS);
  nvmlDeviceArchitecture_t arch = 0;
  ASSERT_EQ(TF_NVML(nvmlDeviceGetArchitecture)(h100_, &arch), NVML_SUCCESS);
  EXPECT_EQ(arch, NVML_DEVICE_ARCH_HOPPER);
  ASSERT_EQ(TF_NVML(nvmlDeviceGetArchitecture)(l4, &arch), NVML_SUCCESS);
  EXPECT_EQ(arch, NVML_DEVICE_ARCH_ADA);

  unsigned mhz = 0;
  ASSERT_EQ(TF_NVML(nvmlDeviceGetClock)(h100_, NVML_CLOCK_SM, NVML_CLOCK_ID_APP_CLOCK_DEFAULT, &mhz), NVML_SUCCESS);
  EXPECT_EQ(mhz, 1980u);
  EXPECT_EQ(TF_NVML(nvmlDeviceGetClock)(h100_, NVML_CLOCK_SM, nvmlClockId_t(9), &mhz), NVML_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ(TF_NVML(nvmlDeviceGetApplicationsClock)(h100_, NVML_CLOCK_MEM, &mhz), NVML_SUCCESS);
  EXPECT_EQ(mhz, 2619u);
  // The two-call protocol, and graphics clocks only for a supported memory clock.
  unsigned count = 0, clocks[4];
  ASSERT_EQ(TF_NVML(nvmlDeviceGetSupportedMemoryClocks)(h100_, &count, nullptr), NVML_ERROR_INSUFFICIENT_SIZE);
  ASSERT_EQ(count, 1u);
  ASSERT_EQ(TF_NVML(nvmlDeviceGetSupportedMemoryClocks)(h100_, &count, clocks), NVML_SUCCESS);
  EXPECT_EQ(clocks[0], 2619u);
  count = 4;
  ASSERT_EQ(TF_NVML(nvmlDeviceGetSupportedGraphicsClocks)(h100_, 2619, &count, clocks), NVML_SUCCESS);
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(clocks[0], 1980u);
  EXPECT_EQ(TF_NVML(nvmlDeviceGetSupportedGraphicsClocks)(h100_, 1000, &count, clocks), NVML_ERROR_NOT_FOUND);

  unsigned minLimit = 0, maxLimit = 0;
  ASSERT_EQ(TF_NVML(nvmlDeviceGetPowerManagementLimitConstraints)(l4, &minLimit, &maxLimit), NVML_SUCCESS);
  EXPECT_EQ(maxLimit, 72000u);
  EXPECT_EQ(minLimit, 18000u);
  unsigned gen = 0, width = 0;
  ASSERT_EQ(TF_NVML(nvmlDeviceGetCurrPcieLinkGeneration)(h100_, &gen), NVML_SUCCESS);
  EXPECT_EQ(gen, 5u);
  ASSERT_EQ(TF_NVML(nvmlDeviceGetMaxPcieLinkGeneration)(l4, &gen), NVML_SUCCESS);
  EXPECT_EQ(gen, 4u);
  ASSERT_EQ(TF_NVML(nvmlDeviceGetCurrPcieLinkWidth)(l4, &width), NVML_SUCCESS);
  EXPECT_EQ(width, 16u);

  // BAR1 covers the memory (rounded to a power of two) on Ampere and later.
  nvmlBAR1Memory_t bar1{};
  ASSERT_EQ(TF_NVML(nvmlDeviceGetBAR1MemoryInfo)(h100_, &bar1), NVML_SUCCESS);
  EXPECT_EQ(bar1.bar1Total, 1 * GiB);
  ASSERT_EQ(TF_NVML(nvmlDeviceGetBAR1MemoryInfo)(l4, &bar1), NVML_SUCCESS);
  EXPECT_EQ(bar1.bar1Total, 32 * GiB);
  EXPECT_EQ(bar1.bar1Free + bar1.bar1Used, bar1.bar1Total);

  // MIG: supported and off on the H100; an L4 has none. HBM remaps rows, GDDR retires pages.
  unsigned current = 7, pending = 7;
  ASSERT_EQ(TF_NVML(nvmlDeviceGetMigMode)(h100_, &current, &pending), NVML_SUCCESS);
  EXPECT_EQ(current, unsigned(NVML_DEVICE_MIG_DISABLE));
  EXPECT_EQ(pending, unsigned(NVML_DEVICE_MIG_DISABLE));
  EXPECT_EQ(TF_NVML(nvmlDeviceGetMigMode)(l4, &current, &pending), NVML_ERROR_NOT_SUPPORTED);
  unsigned rows[4] = {9, 9, 9, 9};
  ASSERT_EQ(TF_NVML(nvmlDeviceGetRemappedRows)(h100_, &rows[0], &rows[1], &rows[2], &rows[3]), NVML_SUCCESS);
  EXPECT_EQ(rows[0] + rows[1] + rows[2] + rows[3], 0u);
  EXPECT_EQ(TF_NVML(nvmlDeviceGetRemappedRows)(l4, &rows[0], &rows[1], &rows[2], &rows[3]), NVML_ERROR_NOT_SUPPORTED);
  count = 5;
  ASSERT_EQ(TF_NVML(nvmlDeviceGetRetiredPages)(l4, NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR, &count, nullptr),
            NVML_SUCCESS);
  EXPECT_EQ(count, 0u);

  nvmlEnableState_t ecc = NVML_FEATURE_DISABLED, eccPending = NVML_FEATURE_DISABLED;
  ASSERT_EQ(TF_NVML(nvmlDeviceGetEccMode)(h100_, &ecc, &eccPending), NVML_SUCCESS);
  EXPECT_EQ(ecc, NVML_FEATURE_ENABLED);
  unsigned long long errors = 9;
  ASSERT_EQ(TF_NVML(nvmlDeviceGetTotalEccErrors)(h100_, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_AGGREGATE_ECC, &errors),
            NVML_SUCCESS);
  EXPECT_EQ(errors, 0u);
  unsigned threshold = 0;
  ASSERT_EQ(TF_NVML(nvmlDeviceGetTemperatureThreshold)(h100_, NVML_TEMPERATURE_THRESHOLD_SLOWDOWN, &threshold),
            NVML_SUCCESS);
  EXPECT_EQ(threshold, 89u);
  EXPECT_EQ(TF_NVML(nvmlDeviceGetTemperatureThreshold)(h100_, NVML_TEMPERATURE_THRESHOLD_ACOUSTIC_MAX, &threshold),
            NVML_ERROR_NOT_SUPPORTED);
  nvmlPstates_t pstate = NVML_PSTATE_UNKNOWN;
  ASSERT_EQ(TF_NVML(nvmlDeviceGetPerformanceState)(h100_, &pstate), NVML_SUCCESS);
  EXPECT_EQ(pstate, NVML_PSTATE_0);
  unsigned long long reasons = 0;
  ASSERT_EQ(TF_NVML(nvmlDeviceGetCurrentClocksThrottleReasons)(h100_, &reasons), NVML_SUCCESS);
  EXPECT_EQ(reasons, nvmlClocksThrottleReasonGpuIdle); // nothing ran

  // Serial and PCI bus id lead back to the device.
  char serial[NVML_DEVICE_SERIAL_BUFFER_SIZE];
  ASSERT_EQ(TF_NVML(nvmlDeviceGetSerial)(l4, serial, sizeof serial), NVML_SUCCESS);
  nvmlDevice_t found = nullptr;
  ASSERT_EQ(TF_NVML(nvmlDeviceGetHandleBySerial)(serial, &found), NVML_SUCCESS);
  EXPECT_EQ(found, l4);
}

TEST_F(NvmlTest, TopologyAndPeers) {
  nvmlDevice_t l4a, l4b;
  ASSERT_EQ(nvml().nvmlDeviceGetHandleByIndex_v2(1, &l4a), NVML_SUCCESS);
  ASSERT_EQ(nvml().nvmlDeviceGetHandleByIndex_v2(2, &l4b), NVML_SUCCESS);
  nvmlGpuTopologyLevel_t level;
  ASSERT_EQ(TF_NVML(nvmlDeviceGetTopologyCommonAncestor)(h100_, l4a, &level), NVML_SUCCESS);
  EXPECT_EQ(level, NVML_TOPOLOGY_HOSTBRIDGE);
  ASSERT_EQ(TF_NVML(nvmlDeviceGetTopologyCommonAncestor)(l4a, l4a, &level), NVML_SUCCESS);
  EXPECT_EQ(level, NVML_TOPOLOGY_INTERNAL);
  nvmlDevice_t near[4];
  unsigned count = 4;
  ASSERT_EQ(TF_NVML(nvmlDeviceGetTopologyNearestGpus)(h100_, NVML_TOPOLOGY_HOSTBRIDGE, &count, near), NVML_SUCCESS);
  ASSERT_EQ(count, 2u);
  EXPECT_EQ(near[0], l4a);
  EXPECT_EQ(near[1], l4b);
  count = 4;
  ASSERT_EQ(TF_NVML(nvmlDeviceGetTopologyNearestGpus)(h100_, NVML_TOPOLOGY_SINGLE, &count, near), NVML_SUCCESS);
  EXPECT_EQ(count, 0u);
  count = 1;
  ASSERT_EQ(TF_NVML(nvmlSystemGetTopologyGpuSet)(0, &count, near), NVML_ERROR_INSUFFICIENT_SIZE);
  EXPECT_EQ(count, 3u);
  // Peers as cuDeviceCanAccessPeer says: distinct devices yes, itself no, never over NVLink.
  nvmlGpuP2PStatus_t p2p;
  ASSERT_EQ(TF_NVML(nvmlDeviceGetP2PStatus)(h100_, l4a, NVML_P2P_CAPS_INDEX_READ, &p2p), NVML_SUCCESS);
  EXPECT_EQ(p2p, NVML_P2P_STATUS_OK);
  ASSERT_EQ(TF_NVML(nvmlDeviceGetP2PStatus)(h100_, l4a, NVML_P2P_CAPS_INDEX_NVLINK, &p2p), NVML_SUCCESS);
  EXPECT_EQ(p2p, NVML_P2P_STATUS_NOT_SUPPORTED);
  ASSERT_EQ(TF_NVML(nvmlDeviceGetP2PStatus)(h100_, h100_, NVML_P2P_CAPS_INDEX_READ, &p2p), NVML_SUCCESS);
  EXPECT_EQ(p2p, NVML_P2P_STATUS_NOT_SUPPORTED);
  // No NVLink is modelled (what PyTorch's topology probe asks).
  auto remotePci = reinterpret_cast<nvmlReturn_t (*)(nvmlDevice_t, unsigned, nvmlPciInfo_t*)>(
      dlsym(nvml().handle, "nvmlDeviceGetNvLinkRemotePciInfo_v2"));
  ASSERT_NE(remotePci, nullptr);
  nvmlPciInfo_t remote;
  EXPECT_EQ(remotePci(h100_, 0, &remote), NVML_ERROR_NOT_SUPPORTED);
}

// Health monitors wait on events; the soft GPU raises none, so a wait lasts its timeout.
TEST_F(NvmlTest, EventsWaitOutTheirTimeout) {
  nvmlEventSet_t set = nullptr;
  ASSERT_EQ(TF_NVML(nvmlEventSetCreate)(&set), NVML_SUCCESS);
  unsigned long long supported = 0;
  ASSERT_EQ(TF_NVML(nvmlDeviceGetSupportedEventTypes)(h100_, &supported), NVML_SUCCESS);
  EXPECT_NE(supported & nvmlEventTypeXidCriticalError, 0u);
  ASSERT_EQ(TF_NVML(nvmlDeviceRegisterEvents)(h100_, nvmlEventTypeXidCriticalError, set), NVML_SUCCESS);
  EXPECT_EQ(TF_NVML(nvmlDeviceRegisterEvents)(h100_, 1ull << 40, set), NVML_ERROR_NOT_SUPPORTED);
  nvmlEventData_t data{};
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(TF_NVML(nvmlEventSetWait_v2)(set, &data, 50), NVML_ERROR_TIMEOUT);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50)); // a floor
  ASSERT_EQ(TF_NVML(nvmlEventSetFree)(set), NVML_SUCCESS);
  EXPECT_EQ(TF_NVML(nvmlEventSetFree)(set), NVML_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(TF_NVML(nvmlEventSetWait)(set, &data, 0), NVML_ERROR_INVALID_ARGUMENT);
}

TEST_F(NvmlTest, ProcessNamesAndSamples) {
  char name[256];
  ASSERT_EQ(TF_NVML(nvmlSystemGetProcessName)(unsigned(getpid()), name, sizeof name), NVML_SUCCESS);
  EXPECT_NE(std::string(name).find("nvml_test"), std::string::npos) << name;
  EXPECT_EQ(TF_NVML(nvmlSystemGetProcessName)(unsigned(getpid()), name, 3), NVML_ERROR_INSUFFICIENT_SIZE);

  auto state = DeviceState::open(config_.devices[0]);
  ASSERT_TRUE(state);
  auto slot = (*state)->attach();
  ASSERT_TRUE(slot);
  (*state)->addBusyTime(*slot, 800'000'000);

  nvmlValueType_t type;
  nvmlSample_t samples[4];
  unsigned count = 4;
  ASSERT_EQ(TF_NVML(nvmlDeviceGetSamples)(h100_, NVML_GPU_UTILIZATION_SAMPLES, 0, &type, &count, samples), NVML_SUCCESS);
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(type, NVML_VALUE_TYPE_UNSIGNED_INT);
  EXPECT_GE(samples[0].sampleValue.uiVal, 70u);
  EXPECT_EQ(TF_NVML(nvmlDeviceGetSamples)(h100_, NVML_GPU_UTILIZATION_SAMPLES, samples[0].timeStamp + 60'000'000, &type,
                                          &count, samples),
            NVML_ERROR_NOT_FOUND);

  // The versioned per-process API agrees with the original one.
  nvmlProcessUtilizationInfo_v1_t procs[4];
  nvmlProcessesUtilizationInfo_t info{};
  info.version = nvmlProcessesUtilizationInfo_v1;
  ASSERT_EQ(TF_NVML(nvmlDeviceGetProcessesUtilizationInfo)(h100_, &info), NVML_ERROR_INSUFFICIENT_SIZE);
  ASSERT_EQ(info.processSamplesCount, 1u);
  info.procUtilArray = procs;
  ASSERT_EQ(TF_NVML(nvmlDeviceGetProcessesUtilizationInfo)(h100_, &info), NVML_SUCCESS);
  EXPECT_EQ(procs[0].pid, unsigned(getpid()));
  EXPECT_GE(procs[0].smUtil, 70u);
  info.version = 7;
  EXPECT_EQ(TF_NVML(nvmlDeviceGetProcessesUtilizationInfo)(h100_, &info), NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
  (*state)->detach(*slot);
}

TEST_F(NvmlTest, BadConfigurationFailsInit) {
  Nvml& n = nvml();
  ASSERT_EQ(n.nvmlShutdown(), NVML_SUCCESS);
  setenv("TF_SOFTGPU_DEVICES", "H200", 1);
  EXPECT_EQ(n.nvmlInit_v2(), NVML_ERROR_UNKNOWN);
  unsigned count;
  EXPECT_EQ(n.nvmlDeviceGetCount_v2(&count), NVML_ERROR_UNINITIALIZED);
  setenv("TF_SOFTGPU_DEVICES", "H100:1GiB,2xL4", 1);
  ASSERT_EQ(n.nvmlInit_v2(), NVML_SUCCESS);
}

} // namespace
} // namespace tf::softgpu
