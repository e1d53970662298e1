// Real CUDA programs (nvcc, real cudart) run on the soft GPU with the limiter preloaded, each in
// a vGPU made for the test.
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <array>
#include <map>
#include <sstream>
#include <csignal>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

#include "limiter/quota_region.h"
#include "support/child_process.h"

namespace tf::limiter {
namespace {

namespace fs = std::filesystem;

using test::Child;

class LimiterIntegrationTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tf-limiter-it-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "state");
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string makeVgpu(const std::string& name, uint64_t vram, uint32_t bp, uint64_t host = 0,
                       uint64_t windowNs = 50'000'000) {
    VgpuSpec s;
    s.name = name;
    s.windowNs = windowNs;
    DeviceLimits d;
    d.vramLimit = vram;
    d.computeBasisPoints = bp;
    d.hostAllowance = host;
    s.devices.push_back(d);
    std::string path = (dir_ / ("vgpu-" + name)).string();
    auto r = QuotaRegion::create(path, s);
    EXPECT_TRUE(r) << r.status().toString();
    return path;
  }

  // limited: with the limiter preloaded (the default), else the program alone on the soft GPU.
  Child spawn(const std::string& program, std::vector<std::string> args,
              std::map<std::string, std::string> env, bool limited = true) {
    env["LD_LIBRARY_PATH"] = TF_LIB_DIR;
    if (limited) env["LD_PRELOAD"] = std::string(TF_LIB_DIR) + "/libtensor-fusion-limiter.so";
    env.try_emplace("TF_SOFTGPU_STATE_DIR", (dir_ / "state").string());
    env.try_emplace("TF_SOFTGPU_NODE", "limiter-it");
    Child c = test::spawnChild(program, std::move(args), env, dir_ / ("out-" + std::to_string(counter_++)));
    EXPECT_GT(c.pid, 0) << program;
    return c;
  }

  fs::path dir_;
  int counter_ = 0;
};

constexpr uint64_t MiB = 1 << 20;

TEST_F(LimiterIntegrationTest, EveryAllocationPathIsChargedAndInfoShowsTheVgpu) {
  auto region = makeVgpu("mem", 256 * MiB, 10000);
  Child c = spawn(TF_LIMITER_MEMORY, {}, {{"TF_VGPU_REGION", region}});
  EXPECT_EQ(c.wait(), 0) << c.output();
  auto spillRegion = makeVgpu("spill", 256 * MiB, 10000, 128 * MiB);
  Child s = spawn(TF_LIMITER_MEMORY, {"spill"}, {{"TF_VGPU_REGION", spillRegion}});
  EXPECT_EQ(s.wait(), 0) << s.output();
}

// What visible_devices printed: per device, its UUID (hex), total memory and whether an
// allocation past the total succeeded.
struct Seen {
  std::string uuid;
  uint64_t total = 0;
  bool over = false;
};

std::vector<Seen> seenDevices(Child& c) {
  EXPECT_EQ(c.wait(), 0) << c.output();
  std::vector<Seen> out;
  std::istringstream in(c.output());
  std::string line;
  while (std::getline(in, line)) {
    char uuid[33] = {};
    unsigned long long total = 0, freeB = 0;
    int d = 0, over = 0;
    if (sscanf(line.c_str(), "device %d uuid=%32s total=%llu free=%llu over=%d", &d, uuid, &total, &freeB, &over) == 5)
      out.push_back({uuid, total, over != 0});
  }
  return out;
}

std::array<uint8_t, 16> uuidBytes(const std::string& hex) {
  std::array<uint8_t, 16> b{};
  for (size_t i = 0; i < 16 && 2 * i + 1 < hex.size(); ++i) b[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  return b;
}

// A vGPU of several devices of a bigger board: the process sees exactly its devices, in the
// region's order, each with the vGPU's limit. Before, it saw the whole board, and every device
// outside the vGPU ran unlimited. CUDA_VISIBLE_DEVICES set by the program picks within the vGPU.
TEST_F(LimiterIntegrationTest, AVgpuShowsOnlyItsDevicesEachLimited) {
  const std::map<std::string, std::string> board = {{"TF_SOFTGPU_DEVICES", "3xH100:4GiB"}};
  Child all = spawn(TF_VISIBLE_DEVICES, {}, board, false);
  std::vector<Seen> physical = seenDevices(all);
  ASSERT_EQ(physical.size(), 3u) << all.output();
  // The soft GPU reads CUDA_VISIBLE_DEVICES as NVIDIA's driver does.
  auto envWith = [&](std::map<std::string, std::string> more) {
    more.insert(board.begin(), board.end());
    return more;
  };
  Child picked = spawn(TF_VISIBLE_DEVICES, {}, envWith({{"CUDA_VISIBLE_DEVICES", "2,0"}}), false);
  std::vector<Seen> two = seenDevices(picked);
  ASSERT_EQ(two.size(), 2u) << picked.output();
  EXPECT_EQ(two[0].uuid, physical[2].uuid);
  EXPECT_EQ(two[1].uuid, physical[0].uuid);
  Child none = spawn(TF_VISIBLE_DEVICES, {}, envWith({{"CUDA_VISIBLE_DEVICES", "-1"}}), false);
  EXPECT_EQ(none.wait(), 0);
  EXPECT_NE(none.output().find("count error=cudaErrorNoDevice"), std::string::npos) << none.output();

  // A vGPU over physical devices 2 and 1, 256 MiB each.
  VgpuSpec s;
  s.name = "pair";
  for (int phys : {2, 1}) {
    DeviceLimits d;
    d.uuid = uuidBytes(physical[phys].uuid);
    d.vramLimit = 256 * MiB;
    s.devices.push_back(d);
  }
  const std::string region = (dir_ / "vgpu-pair").string();
  ASSERT_TRUE(QuotaRegion::create(region, s));
  Child limited = spawn(TF_VISIBLE_DEVICES, {}, envWith({{"TF_VGPU_REGION", region}}));
  std::vector<Seen> mine = seenDevices(limited);
  ASSERT_EQ(mine.size(), 2u) << limited.output();
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(mine[i].uuid, physical[i == 0 ? 2 : 1].uuid) << i;
    EXPECT_EQ(mine[i].total, 256 * MiB) << i;
    EXPECT_FALSE(mine[i].over) << i;
  }
  // The program's own list is read within the vGPU: "1" is the vGPU's second device; a device
  // of the board outside the vGPU is not reachable by naming it.
  Child second = spawn(TF_VISIBLE_DEVICES, {}, envWith({{"TF_VGPU_REGION", region}, {"CUDA_VISIBLE_DEVICES", "1"}}));
  std::vector<Seen> one = seenDevices(second);
  ASSERT_EQ(one.size(), 1u) << second.output();
  EXPECT_EQ(one[0].uuid, physical[1].uuid);
  const std::string outside = "GPU-" + physical[0].uuid.substr(0, 8);
  Child escape = spawn(TF_VISIBLE_DEVICES, {},
                       envWith({{"TF_VGPU_REGION", region}, {"CUDA_VISIBLE_DEVICES", outside}}));
  EXPECT_EQ(escape.wait(), 0);
  EXPECT_NE(escape.output().find("count error=cudaErrorNoDevice"), std::string::npos) << escape.output();
}

TEST_F(LimiterIntegrationTest, MissingOrCorruptRegionRefusesToRunUnlimited) {
  Child none = spawn(TF_LIMITER_MEMORY, {}, {{"TF_VGPU_REGION", ""}});
  EXPECT_NE(none.wait(), 0);
  EXPECT_NE(none.output().find("TF_VGPU_REGION is not set"), std::string::npos) << none.output();
  auto bad = dir_ / "corrupt";
  std::ofstream(bad) << "not a region";
  Child corrupt = spawn(TF_LIMITER_MEMORY, {}, {{"TF_VGPU_REGION", bad.string()}});
  EXPECT_NE(corrupt.wait(), 0);
  EXPECT_NE(corrupt.output().find("Refusing to run unlimited"), std::string::npos) << corrupt.output();
  auto region = makeVgpu("ok", 256 * MiB, 10000);
  Child badSource = spawn(TF_LIMITER_MEMORY, {}, {{"TF_VGPU_REGION", region}, {"TF_LIMITER_TIME_SOURCE", "sundial"}});
  EXPECT_NE(badSource.wait(), 0);
  EXPECT_NE(badSource.output().find("TF_LIMITER_TIME_SOURCE='sundial'"), std::string::npos) << badSource.output();
}

TEST_F(LimiterIntegrationTest, ManyProcessesRacingNeverPassTheLimit) {
  const uint64_t limit = 256 * MiB;
  auto region = makeVgpu("race", limit, 10000);
  std::vector<Child> kids;
  for (int p = 0; p < 8; ++p)
    kids.push_back(spawn(TF_VRAM_RACE, {"2000", std::to_string(limit), std::to_string(p + 1)},
                         {{"TF_VGPU_REGION", region}}));
  for (auto& k : kids) EXPECT_EQ(k.wait(), 0) << k.output();
  auto r = QuotaRegion::open(region);
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)->used(0, Pool::Device), 0u); // everything freed or reclaimed
}

// Compute shares, measured by the programs themselves over the interval their workload ran
// (compute_load.cu): the GPU time the soft GPU accounted to them, in its timing mode (kernels
// hold the device for 100 ns per thread without burning the CPU), divided by that interval.
// The ceiling (limit + 3 points) is the limiter's job and must hold whatever the machine does.
// The floor (limit - 3 points) is asked only of what the program could have used under the load
// at the time: its share without any limit, measured by the same program run at the same time
// on a soft GPU of its own (its own state directory), so both see the same machine.
class ComputeShareTest : public LimiterIntegrationTest {
public:
  struct Load {
    std::string pattern;
    long threads = 100;    // kernel size of the tiny, long and mixed patterns

    // GPU time a limited program may hold beyond its share when its loop ends, before it pays
    // back: its launches in flight (two per host thread, of its longest launch at 100 ns a
    // thread; a graph launch is its 8 kernels, 1440 blocks of 256).
    double inFlightNs() const {
      const double largest = 512 * 256 * 100.0; // the largest of the standard sizes
      const double longest = pattern == "tiny" || pattern == "long" ? threads * 100.0
                             : pattern == "mixed"                   ? std::max(threads * 100.0, largest)
                             : pattern == "graph"                   ? 1440 * 256 * 100.0
                                                                    : largest;
      return (pattern == "threads" ? 8 : 2) * longest;
    }
  };
  struct Measured {
    double share = -1;      // GPU time / the workload's interval
    double loopShare = -1;  // GPU time / the loop's interval (debt not yet paid back)
    double peakShare = -1;  // the largest share over half a second of the loop
    double kernelsPerSec = 0;
    long kernels = 0;
    long long intervalNs = 0;
    long long loopNs = 0;
  };

protected:

  static Measured parse(Child& c) {
    const int rc = c.wait();
    const std::string out = c.output();
    EXPECT_EQ(rc, 0) << out;
    Measured m;
    auto at = out.find("compute_load: pattern ");
    EXPECT_NE(at, std::string::npos) << out;
    if (at == std::string::npos) return m;
    char pattern[32];
    long kernels = 0;
    long long busy = 0;
    long long interval = 0, loop = 0;
    double peak = -1;
    if (sscanf(out.c_str() + at,
               "compute_load: pattern %31s kernels %ld busy_ns %lld interval_ns %lld loop_ns %lld peak_share %lf",
               pattern, &kernels, &busy, &interval, &loop, &peak) != 6 || interval <= 0 || loop <= 0) {
      ADD_FAILURE() << "unparsable report: " << out;
      return m;
    }
    m.share = static_cast<double>(busy) / static_cast<double>(interval);
    m.loopShare = static_cast<double>(busy) / static_cast<double>(loop);
    m.loopNs = loop;
    m.peakShare = peak;
    m.kernelsPerSec = kernels / (interval / 1e9);
    m.kernels = kernels;
    m.intervalNs = interval;
    return m;
  }

  // region empty: the program with no limiter at all, on a soft GPU of its own (`device`).
  Child start(const Load& l, double seconds, const std::string& region,
              const std::string& timeSource = "auto", const std::string& device = "") {
    std::map<std::string, std::string> env = {{"TF_VGPU_REGION", region},
                                              {"TF_SOFTGPU_THREAD_TIME_NS", "100"},
                                              {"TF_LIMITER_TIME_SOURCE", timeSource}};
    if (!device.empty()) {
      fs::create_directories(dir_ / device);
      env["TF_SOFTGPU_STATE_DIR"] = (dir_ / device).string();
      env["TF_SOFTGPU_NODE"] = device;
    }
    return spawn(TF_COMPUTE_LOAD, {l.pattern, std::to_string(seconds), std::to_string(l.threads)},
                 env, /*limited=*/!region.empty());
  }

  // Runs each load in its own vGPU (basis points), all on one device, and checks every share
  // against its limit. What load i could have used is measured at the same time on a device of
  // its own (its own state directory, so both see the same machine): the same programs, load i
  // with no limiter, the others under their limits (alone, for a single vGPU). Beside a
  // neighbour, that is less than alone: handing the device over between processes costs time on
  // a loaded machine, which the limiter cannot give back.
  // floor false: only the ceiling is asserted (said where it is used).
  void expectShares(const std::vector<std::pair<uint32_t, Load>>& vgpus, double seconds,
                    const std::string& timeSource = "auto", uint64_t windowNs = 50'000'000,
                    bool floor = true) {
    std::vector<Child> kids;
    std::vector<std::vector<Child>> base(vgpus.size());
    std::vector<std::string> regions;
    for (size_t i = 0; i < vgpus.size(); ++i) {
      regions.push_back(makeVgpu("c" + std::to_string(i), 1024 * MiB, vgpus[i].first, 0, windowNs));
      kids.push_back(start(vgpus[i].second, seconds, regions.back(), timeSource));
    }
    for (size_t i = 0; i < vgpus.size(); ++i)
      for (size_t j = 0; j < vgpus.size(); ++j) {
        const std::string name = "b" + std::to_string(i) + "-" + std::to_string(j);
        base[i].push_back(start(vgpus[j].second, seconds,
                                i == j ? "" : makeVgpu(name, 1024 * MiB, vgpus[j].first, 0, windowNs),
                                timeSource, "alone-" + std::to_string(i)));
      }
    std::vector<Measured> limited, alone;
    for (auto& k : kids) limited.push_back(parse(k));
    for (size_t i = 0; i < vgpus.size(); ++i)
      for (size_t j = 0; j < vgpus.size(); ++j) {
        Measured m = parse(base[i][j]);
        if (i == j) alone.push_back(m);
      }
    for (size_t i = 0; i < vgpus.size(); ++i) {
      const double limit = vgpus[i].first / 10000.0;
      auto r = QuotaRegion::open(regions[i]);
      ASSERT_TRUE(r) << r.status().toString();
      const double throttled = (*r)->usage(0).throttledNs / static_cast<double>(limited[i].intervalNs);
      printf("vGPU %zu (%s): limit %.0f%%, share %.1f%% (over the loop %.1f%%, peak %.1f%%; unlimited "
             "%.1f%%), throughput %.2f of unlimited, throttled %.0f%% of the time\n",
             i, vgpus[i].second.pattern.c_str(), limit * 100, limited[i].share * 100,
             limited[i].loopShare * 100, limited[i].peakShare * 100, alone[i].share * 100,
             limited[i].kernelsPerSec / alone[i].kernelsPerSec, throttled * 100);
      EXPECT_LE(limited[i].share, limit + 0.03) << vgpus[i].second.pattern;
      // Held back during the run, not only paid for at the end: over the loop alone, at most
      // the share, the bucket's first window and the launches in flight when it stopped.
      // Timed by events, a launch is charged only once its event reports it done: on a loaded
      // machine those reports lag, and the launches in flight can run once more before they are.
      const double lent = limit * windowNs + vgpus[i].second.inFlightNs() * (timeSource == "events" ? 2 : 1);
      EXPECT_LE(limited[i].loopShare, limit + 0.03 + lent / limited[i].loopNs)
          << vgpus[i].second.pattern << ": used beyond its share during the run";
      // No bursts: over any half second, the same allowance (work queued past the bucket would
      // run at the whole device's speed and be repaid later). Not asserted where the launches
      // in flight alone may fill half of that half second (kernels of 200 ms).
      if (lent < 0.25e9)
        EXPECT_LE(limited[i].peakShare, limit + 0.03 + lent / 0.5e9)
            << vgpus[i].second.pattern << ": a burst past its share";
      else
        printf("  peak share not asserted: launches in flight of %.0f ms\n", vgpus[i].second.inFlightNs() / 1e6);
      // The floor: what it could have used, unless the limiter never held it back (a program
      // under its share that is not throttled got all the device gave it: beside a neighbour,
      // hand-over gaps on a loaded machine vary between the measured run and its twin). Its
      // share of the time it wanted the device: running kernels or held back by the limiter.
      // Time it spent doing neither (its own host work between synchronisations, a wake-up
      // late on a loaded machine) was the device's to give, and the limiter let it refill the
      // bucket; a limiter that holds it back too long still fails (held back, not running).
      const double wanted = std::min(1.0, limited[i].share + throttled);
      const double want = std::min(limit * wanted, alone[i].share) - 0.03;
      if (floor && limited[i].share < want && throttled < 0.01) {
        printf("  below %.1f%%, never held back by the limiter (throttled %.2f%%): the device's doing\n",
               want * 100, throttled * 100);
      } else if (floor) {
        EXPECT_GE(limited[i].share, want)
            << vgpus[i].second.pattern << ": running or held back " << wanted * 100 << "% of the time";
      }
    }
  }
};

TEST_F(ComputeShareTest, ThirtySeventySplitHolds) {
  expectShares({{3000, {"async"}}, {7000, {"sync"}}}, 3);
}

TEST_F(ComputeShareTest, TenNinetySplitHolds) {
  expectShares({{1000, {"sync"}}, {9000, {"async"}}}, 3);
}

// The time source used over NVIDIA's driver (events around each limited launch), exercised on
// the soft GPU, which times events like a GPU does. ONLY THE CEILINGS ARE ASSERTED: with two
// vGPUs contending for the device, an event pair also counts the time the device served the
// other vGPU's kernels, so each side is charged more than it used and gets less than its share
// (22% and 57% measured for 30% and 70%; docs/limiter.md, "Not yet"). Alone, the event-timed
// share is held from both sides (EventTimedLongKernelsHold).
TEST_F(ComputeShareTest, EventTimedSplitNeverPassesTheLimits) {
  expectShares({{3000, {"async"}}, {7000, {"sync"}}}, 3, "events", 50'000'000, /*floor=*/false);
}

void PrintTo(const ComputeShareTest::Load& l, std::ostream* os) { *os << l.pattern << " " << l.threads; }

// One program alone in a 30% vGPU, for each launch pattern.
class LaunchPatternTest : public ComputeShareTest, public ::testing::WithParamInterface<ComputeShareTest::Load> {};

TEST_P(LaunchPatternTest, ThirtyPercentHolds) {
  // A 20 ms window: the long kernels (200 ms) are ten windows each.
  expectShares({{3000, GetParam()}}, 2, "auto", 20'000'000);
}

INSTANTIATE_TEST_SUITE_P(
    Patterns, LaunchPatternTest,
    ::testing::Values(ComputeShareTest::Load{"async"}, ComputeShareTest::Load{"sync"},
                      ComputeShareTest::Load{"graph"},
                      ComputeShareTest::Load{"tiny", 100},        // 10 us kernels
                      ComputeShareTest::Load{"long", 2'000'000},  // 200 ms: 10 windows
                      ComputeShareTest::Load{"mixed", 100'000},   // half a window + 16 small
                      ComputeShareTest::Load{"streams"}, ComputeShareTest::Load{"threads"},
                      ComputeShareTest::Load{"cooperative"}),
    [](const auto& info) { return info.param.pattern; });

// `vgpu show`'s "throttled" is time the limiter held work back: a program at full speed in a
// 100% vGPU (whose launches still wait on the launch queue's bound) reports about none; in a
// 30% vGPU it is held back most of the time, and with 4 host threads held at once that time
// counts once (it never passes the time the program ran).
TEST_F(ComputeShareTest, ThrottledIsOnlyTimeTheLimiterHeldWorkBack) {
  for (uint32_t bp : {10000u, 3000u}) {
    std::string region = makeVgpu("t" + std::to_string(bp), 1024 * MiB, bp);
    Child c = start({"threads"}, 2, region);
    Measured m = parse(c);
    auto r = QuotaRegion::open(region);
    ASSERT_TRUE(r);
    DeviceUsage u = (*r)->usage(0);
    printf("limit %u bp: share %.1f%%, GPU time %.2f s, throttled %.2f s of %.2f s\n", bp,
           m.share * 100, u.busyNs / 1e9, u.throttledNs / 1e9, m.intervalNs / 1e9);
    EXPECT_GT(u.busyNs, 0u);
    if (bp == 10000) {
      EXPECT_LT(u.throttledNs, 20'000'000u); // under 1% of the run
    } else {
      EXPECT_GT(u.throttledNs, 1'000'000'000u); // ~70% of 2 s: at least half
      EXPECT_LE(u.throttledNs, static_cast<uint64_t>(m.intervalNs));
    }
  }
}

// Hard isolation: the limiter inside a worker, the program reaching the device only through the
// remoting stub (so its GPU time is read from the vGPU's region, where the worker's limiter
// charged it). Alone, it runs through a worker without a limiter; its share is then bounded
// below by its kernels' modelled time (5.08 ms on average for the async pattern's sizes).
TEST_F(ComputeShareTest, ThroughTheWorkerThirtyPercentHolds) {
  auto throughWorker = [&](const std::string& region) {
    std::map<std::string, std::string> env = {{"LD_LIBRARY_PATH", TF_LIB_DIR},
                                              {"TF_SOFTGPU_THREAD_TIME_NS", "100"},
                                              {"TF_SOFTGPU_STATE_DIR", (dir_ / "state").string()},
                                              {"TF_SOFTGPU_NODE", "limiter-it"}};
    if (!region.empty()) {
      env["LD_PRELOAD"] = std::string(TF_LIB_DIR) + "/libtensor-fusion-limiter.so";
      env["TF_VGPU_REGION"] = region;
    }
    const std::string token = "tok-" + std::to_string(getpid());
    Child worker = test::spawnChild(TF_CLI_BIN,
                                    {"worker", "--listen", "shm://tf-limiter-it-" + std::to_string(getpid()) + "-" + std::to_string(counter_),
                                     "--driver", std::string(TF_LIB_DIR) + "/libcuda.so.1", "--token", token},
                                    env, dir_ / ("worker-" + std::to_string(counter_++)));
    std::string address;
    for (int i = 0; i < 200 && address.empty(); ++i) {
      std::string out = worker.output();
      auto at = out.find("listening on ");
      if (at != std::string::npos && out.find('\n', at) != std::string::npos)
        address = out.substr(at + 13, out.find('\n', at) - at - 13);
      else std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_FALSE(address.empty()) << worker.output();
    Child c = test::spawnChild(TF_COMPUTE_LOAD, {"async", region.empty() ? "1" : "3"},
                               {{"LD_LIBRARY_PATH", std::string(TF_LIB_DIR) + "/remote"},
                                {"TF_REMOTE_WORKER", address}, {"TF_REMOTE_TOKEN", token},
                                {"TF_VGPU_REGION", ""}, {"LD_PRELOAD", ""}},
                               dir_ / ("client-" + std::to_string(counter_++)));
    Measured m = parse(c);
    // The worker serves until stopped: alive until then, no crash, and SIGTERM stops it cleanly.
    kill(worker.pid, SIGTERM);
    EXPECT_EQ(worker.wait(), 0) << worker.output();
    return m;
  };
  Measured before = throughWorker("");
  std::string region = makeVgpu("w", 1024 * MiB, 3000);
  Measured limited = throughWorker(region);
  Measured after = throughWorker("");
  auto r = QuotaRegion::open(region);
  ASSERT_TRUE(r);
  ASSERT_GT(limited.intervalNs, 0);
  const double share = (*r)->usage(0).busyNs / static_cast<double>(limited.intervalNs);
  auto modelled = [](const Measured& m) { return m.kernels * 5.0816e-3 / (m.intervalNs / 1e9); };
  const double could = std::min(modelled(before), modelled(after));
  printf("through the worker: limit 30%%, share %.1f%% (alone at least %.1f%% / %.1f%%), "
         "throughput %.2f of alone\n",
         share * 100, modelled(before) * 100, modelled(after) * 100,
         limited.kernelsPerSec / std::max(before.kernelsPerSec, after.kernelsPerSec));
  EXPECT_LE(share, 0.33);
  EXPECT_GE(share, std::min(0.30, could) - 0.03);
  // Held back during the run, not only paid for at the end (as in expectShares).
  const double loopShare = (*r)->usage(0).busyNs / static_cast<double>(limited.loopNs);
  EXPECT_LE(loopShare, 0.33 + (0.3 * 50e6 + Load{"async"}.inFlightNs()) / limited.loopNs);
}

// Timed with events, alone in a 30% vGPU (20 ms window): kernels of ten windows, and one of half
// a window between 16 small ones.
TEST_F(ComputeShareTest, EventTimedLongKernelsHold) {
  expectShares({{3000, {"long", 2'000'000}}}, 2, "events", 20'000'000);
}
TEST_F(ComputeShareTest, EventTimedMixedKernelsHold) {
  expectShares({{3000, {"mixed", 100'000}}}, 2, "events", 20'000'000);
}

} // namespace
} // namespace tf::limiter
