// tiers_bench: what freezing and thawing a vGPU's memory costs, per GiB, beside a plain copy of
// the same bytes between host and device measured in the same run, and beside what a program
// without tiers pays to get its data back (new device memory, copied in): a thaw is exactly
// that at the old address; a cold one reads the disk too. On the soft GPU, whose
// "device" memory is host memory, both are memory bandwidth; on a GPU they are PCIe.
// Then the same moves of sparse memory (1% written, 4 KiB every 400 KiB, as a program that
// allocated much and touched little) beside the dense ones, for three chunk sizes (the unit a
// freeze skips when it is all zero), with what each stores.
//
//   tiers_bench LIBCUDA [MiB=512] [rounds=3]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "remoting/worker/vram_tiers.h"

namespace {
using namespace tf;
using remoting::VramTiers;
using cuda::FnId;
using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "tiers_bench: %s\n", what.c_str());
  std::exit(1);
}
void check(const Status& s, const char* what) {
  if (!s) die(std::string(what) + ": " + s.toString());
}
void check(CUresult r, const char* what) {
  if (r != CUDA_SUCCESS) die(std::string(what) + ": CUresult " + std::to_string(r));
}

// Seconds spent in each move over all rounds, and what the warm tier stored.
struct Moves {
  double freezeWarm = 0, thawWarm = 0, freezeCold = 0, thawCold = 0;
  uint64_t stored = 0;
};

// Freezes the allocations to host memory and back, then to disk and back.
void moveRound(VramTiers& tiers, Moves& m) {
  auto t0 = Clock::now();
  check(tiers.freeze(VramTiers::Tier::Warm), "freeze warm");
  m.freezeWarm += seconds(t0);
  m.stored = tiers.usage().warmStoredBytes;
  t0 = Clock::now();
  check(tiers.thaw(), "thaw warm");
  m.thawWarm += seconds(t0);
  t0 = Clock::now();
  check(tiers.freeze(VramTiers::Tier::Cold), "freeze cold");
  m.freezeCold += seconds(t0);
  t0 = Clock::now();
  check(tiers.thaw(), "thaw cold");
  m.thawCold += seconds(t0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) die("usage: tiers_bench LIBCUDA [MiB] [rounds]");
  const size_t mib = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 512;
  const int rounds = argc > 3 ? std::atoi(argv[3]) : 3;
  const size_t bytes = mib << 20;
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("tf-tiers-bench-" + std::to_string(getpid()));
  fs::create_directories(dir / "softgpu");
  const std::string devices = "H100:" + std::to_string(2 * mib + 64) + "MiB";
  setenv("TF_SOFTGPU_DEVICES", devices.c_str(), 0);
  setenv("TF_SOFTGPU_STATE_DIR", (dir / "softgpu").c_str(), 0);
  auto api = remoting::DriverApi::load(argv[1]);
  if (!api) die(api.status().toString());
  const auto& d = **api;
  check(d.fn<decltype(&::cuInit)>(FnId::cuInit)(0), "cuInit");
  CUcontext ctx = nullptr;
  check(d.fn<decltype(&::cuDevicePrimaryCtxRetain)>(FnId::cuDevicePrimaryCtxRetain)(&ctx, 0), "context");
  check(d.fn<decltype(&::cuCtxSetCurrent)>(FnId::cuCtxSetCurrent)(ctx), "context");
  auto htod = d.fn<decltype(&::cuMemcpyHtoD_v2)>(FnId::cuMemcpyHtoD_v2);
  auto dtoh = d.fn<decltype(&::cuMemcpyDtoH_v2)>(FnId::cuMemcpyDtoH_v2);

  std::vector<char> host(bytes, 1);
  auto alloc = d.fn<decltype(&::cuMemAlloc_v2)>(FnId::cuMemAlloc_v2);
  auto release = d.fn<decltype(&::cuMemFree_v2)>(FnId::cuMemFree_v2);
  double copyIn = 0, copyOut = 0, upload = 0;
  Moves dense;
  {
    VramTiers tiers(d, 0, {dir.string(), 8u << 20});
    auto p = tiers.allocate(bytes);
    check(p.status(), "allocate");
    for (int r = 0; r < rounds; ++r) {
      auto t0 = Clock::now();
      check(htod(*p, host.data(), bytes), "copy in");
      copyIn += seconds(t0);
      t0 = Clock::now();
      check(dtoh(host.data(), *p, bytes), "copy out");
      copyOut += seconds(t0);
      // What a program without tiers does to get its data back: fresh device memory, copied in.
      CUdeviceptr fresh = 0;
      t0 = Clock::now();
      check(alloc(&fresh, bytes), "cuMemAlloc");
      check(htod(fresh, host.data(), bytes), "upload");
      upload += seconds(t0);
      check(release(fresh), "cuMemFree");
      moveRound(tiers, dense);
    }
  }
  const size_t kPage = 4096, kStride = 100 * kPage;  // 1% written
  const std::vector<char> page(kPage, 3);
  std::vector<std::pair<size_t, Moves>> sparse;
  for (size_t chunk : {size_t{4} << 10, size_t{64} << 10, size_t{2} << 20}) {
    VramTiers tiers(d, 0, {dir.string(), 8u << 20, chunk});
    auto p = tiers.allocate(bytes);
    check(p.status(), "allocate");
    for (size_t at = 0; at + kPage <= bytes; at += kStride) check(htod(*p + at, page.data(), kPage), "write");
    Moves m;
    for (int r = 0; r < rounds; ++r) moveRound(tiers, m);
    sparse.emplace_back(chunk, m);
  }
  fs::remove_all(dir);
  const double gib = static_cast<double>(bytes) / (1u << 30) * rounds;
  const auto line = [&](const char* what, double s, double base, const char* baseName) {
    std::printf("  %-36s %7.3f s/GiB  (%.2fx %s)\n", what, s / gib, s / base, baseName);
  };
  std::printf("VRAM tiers, %zu MiB x %d rounds, per GiB:\n", mib, rounds);
  std::printf("  %-36s %7.3f s/GiB\n", "baseline: copy host -> device", copyIn / gib);
  std::printf("  %-36s %7.3f s/GiB\n", "baseline: copy device -> host", copyOut / gib);
  line("freeze to host memory (warm)", dense.freezeWarm, copyOut, "device -> host copy");
  std::printf("  %-36s %7.3f s/GiB\n", "baseline: new device memory + copy in", upload / gib);
  line("thaw from host memory (warm)", dense.thawWarm, upload, "new memory + copy in");
  line("freeze to disk (cold)", dense.freezeCold, copyOut, "device -> host copy");
  line("thaw from disk (cold)", dense.thawCold, upload, "new memory + copy in");
  std::printf("sparse: 1%% written (4 KiB every 400 KiB), per GiB allocated, beside the dense moves above:\n");
  for (const auto& [chunk, m] : sparse) {
    std::printf(" chunks of %zu KiB: %.1f MiB stored of %zu MiB\n", chunk >> 10, m.stored / 1048576.0, mib);
    line("freeze to host memory (warm)", m.freezeWarm, dense.freezeWarm, "dense");
    line("thaw from host memory (warm)", m.thawWarm, dense.thawWarm, "dense");
    line("freeze to disk (cold)", m.freezeCold, dense.freezeCold, "dense");
    line("thaw from disk (cold)", m.thawCold, dense.thawCold, "dense");
  }
  return 0;
}
