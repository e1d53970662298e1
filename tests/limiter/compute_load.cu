// Keeps the device busy for argv[2] seconds with one launch pattern (argv[1]) and reports, from
// its own timestamps, the GPU time its kernels used over the interval the workload ran:
//
//   compute_load PATTERN SECONDS [KERNEL_THREADS]
//   -> "compute_load: pattern P kernels N busy_ns B interval_ns I loop_ns L peak_share S"
//      (B: -1 off the soft GPU, S then -1)
//
// The interval starts at the first timed launch (after CUDA start-up and a warm-up launch) and
// ends when a launch made after the last kernel has finished is let through: a limiter holds
// that launch until the program's debt is paid, so time a kernel used beyond its share counts
// against the interval it belongs to. Busy time is the soft GPU's own accounting
// (tfSoftGpuProcessStats), so the figure is the program's share of the device's time. L ends
// when the last kernel has finished, before that launch: time used beyond the share and not yet
// paid back shows there (a limiter that only charged, never held, would reach its share over I
// by holding the last launch, but not over L). S is the largest share over any half second of
// the loop, sampled every 50 ms: a burst (work queued past the bucket, repaid later) shows there.
//
// Patterns: async (back-to-back, 5 sizes), sync (synchronise after every launch), graph (a
// captured graph of 8 kernels, launched in a loop), tiny (KERNEL_THREADS-thread kernels
// back-to-back), long (one KERNEL_THREADS-thread kernel per launch), mixed (one
// KERNEL_THREADS-thread kernel then 16 small ones), streams (4 streams round robin), threads
// (4 host threads, a stream each), cooperative (cudaLaunchCooperativeKernel back-to-back).
//
// Launches that do not synchronise keep at most a few launches in flight (per host thread), as
// NVIDIA's driver blocks a launch when its queue is full: the soft GPU queues without bound, so
// an unlimited run would otherwise queue minutes of kernels in its seconds and then drain them.
//
// SIGTERM ends the loop early, as if its time were up (a test stops a long workload once it has
// seen what it needs). On success, with the soft GPU, a second line gives the share in words:
//   "compute_load: GPU time 1.20 s over 4.00 s = 30.0%"  (scripts/demo.sh reads it)
#include <csignal>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <string>
#include <thread>
#include <vector>

#include <cuda.h>
#include <cuda_runtime.h>

__global__ void work(float* x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] = x[i] * 0.5f + 1.0f;
}

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kSizes[] = {64, 256, 128, 512, 32}; // blocks of 256 threads
float* gBuffer;
const int kBufferFloats = 1 << 20;

#define CHECK(call, code)                                                                        \
  do {                                                                                           \
    cudaError_t e_ = (call);                                                                     \
    if (e_ != cudaSuccess) {                                                                     \
      fprintf(stderr, "compute_load: %s failed: %s\n", #call, cudaGetErrorString(e_));          \
      exit(code);                                                                                \
    }                                                                                            \
  } while (0)

void launch(long threads, cudaStream_t s = 0) {
  long blocks = (threads + 255) / 256;
  int block = threads < 256 ? static_cast<int>(threads) : 256;
  work<<<static_cast<unsigned>(blocks), block, 0, s>>>(gBuffer, static_cast<int>(std::min<long>(threads, kBufferFloats)));
  CHECK(cudaGetLastError(), 3);
}

// At most `depth` launches in flight: before a launch is recorded, the one `depth` launches
// earlier has finished (an event recorded after each launch).
class InFlight {
public:
  explicit InFlight(int depth) : events_(depth) {
    for (auto& e : events_) CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), 2);
  }
  ~InFlight() {
    for (auto& e : events_) cudaEventDestroy(e);
  }
  void launched(cudaStream_t s) {
    cudaEvent_t e = events_[count_++ % events_.size()];
    if (count_ > static_cast<long>(events_.size())) CHECK(cudaEventSynchronize(e), 4);
    CHECK(cudaEventRecord(e, s), 4);
  }

private:
  std::vector<cudaEvent_t> events_;
  long count_ = 0;
};

// -1 where the driver is not the soft GPU (through the remoting stub: the worker's limiter
// charges the time to the vGPU's region, where the test reads it).
int64_t busyNs() {
  using Stats = CUresult (*)(CUdevice, uint64_t*, uint64_t*);
  // cudart loads the driver privately (RTLD_LOCAL): ask that library, not the global scope.
  static void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_NOLOAD);
  static Stats stats = driver ? reinterpret_cast<Stats>(dlsym(driver, "tfSoftGpuProcessStats")) : nullptr;
  if (!stats) return -1;
  uint64_t busy = 0, kernels = 0;
  if (stats(0, &busy, &kernels) != CUDA_SUCCESS) exit(7);
  return static_cast<int64_t>(busy);
}

} // namespace

volatile std::sig_atomic_t gStopped = 0;

int main(int argc, char** argv) {
  std::signal(SIGTERM, [](int) { gStopped = 1; });
  if (argc < 3) {
    fprintf(stderr, "usage: compute_load PATTERN SECONDS [KERNEL_THREADS]\n");
    return 1;
  }
  const std::string pattern = argv[1];
  const double seconds = atof(argv[2]);
  const long threads = argc > 3 ? atol(argv[3]) : 100;
  CHECK(cudaMalloc(&gBuffer, kBufferFloats * sizeof(float)), 2);
  launch(256); // warm-up: module loading and the first launch are start-up, not workload
  CHECK(cudaDeviceSynchronize(), 2);

  std::atomic<long> kernels{0};
  const int64_t busy0 = busyNs();
  const auto t0 = Clock::now();
  std::atomic<bool> stop{false};
  // Every 50 ms: busy time, read between two clock readings (the sampler may be descheduled
  // between them on a loaded machine: a window runs from one sample's first to another's last).
  struct Sample {
    Clock::time_point before;
    int64_t busy;
    Clock::time_point after;
  };
  std::vector<Sample> samples;
  std::thread sampler([&] {
    if (busy0 < 0) return;
    while (!stop.load()) {
      Sample x;
      x.before = Clock::now();
      x.busy = busyNs();
      x.after = Clock::now();
      samples.push_back(x);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  const auto end = t0 + std::chrono::duration<double>(seconds);
  auto running = [&end] { return !gStopped && Clock::now() < end; };
  // Launches in flight: about 160 ms of the 5 ms average kernels (far more than a limiter's
  // queue bound lets through, so that bound is exercised); tiny ones are 10 us each.
  const int depth = pattern == "tiny" ? 256 : pattern == "long" ? 2 : 32;
  if (pattern == "async" || pattern == "sync") {
    InFlight q(depth);
    for (long i = 0; running(); ++i) {
      launch(kSizes[i % 5] * 256L);
      if (pattern == "sync") CHECK(cudaDeviceSynchronize(), 4);
      else q.launched(0);
      ++kernels;
    }
  } else if (pattern == "tiny" || pattern == "long") {
    InFlight q(depth);
    while (running()) launch(threads), q.launched(0), ++kernels;
  } else if (pattern == "mixed") {
    InFlight q(34); // two rounds of one large kernel and 16 small ones
    while (running()) {
      launch(threads), q.launched(0), ++kernels;
      for (int i = 0; i < 16; ++i) launch(kSizes[i % 5] * 256L), q.launched(0), ++kernels;
    }
  } else if (pattern == "graph") {
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), 2);
    cudaGraph_t g;
    cudaGraphExec_t exec;
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), 2);
    for (int i = 0; i < 8; ++i) launch(kSizes[i % 5] * 256L, s);
    CHECK(cudaStreamEndCapture(s, &g), 2);
    CHECK(cudaGraphInstantiate(&exec, g, 0), 2);
    // 32 graphs (1.2 s of work): a limiter that did not count a graph launch as its kernels
    // would let them all queue at once, past its bucket.
    InFlight q(32);
    while (running()) {
      CHECK(cudaGraphLaunch(exec, s), 3);
      q.launched(s);
      kernels += 8;
    }
    CHECK(cudaStreamSynchronize(s), 4);
    CHECK(cudaGraphExecDestroy(exec), 5);
    CHECK(cudaGraphDestroy(g), 5);
  } else if (pattern == "streams") {
    cudaStream_t s[4];
    for (auto& st : s) CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking), 2);
    InFlight q(depth);
    for (long i = 0; running(); ++i) launch(kSizes[i % 5] * 256L, s[i % 4]), q.launched(s[i % 4]), ++kernels;
  } else if (pattern == "threads") {
    std::vector<std::thread> pool;
    for (int t = 0; t < 4; ++t)
      pool.emplace_back([&, t] {
        cudaStream_t s;
        CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), 2);
        InFlight q(depth / 4);
        for (long i = t; running(); ++i) launch(kSizes[i % 5] * 256L, s), q.launched(s), ++kernels;
        CHECK(cudaStreamSynchronize(s), 4);
      });
    for (auto& p : pool) p.join();
  } else if (pattern == "cooperative") {
    int n = kBufferFloats;
    InFlight q(depth);
    for (long i = 0; running(); ++i) {
      void* args[] = {&gBuffer, &n};
      CHECK(cudaLaunchCooperativeKernel(reinterpret_cast<void*>(work), dim3(kSizes[i % 5] / 4),
                                        dim3(256), args, 0, 0),
            3);
      q.launched(0);
      ++kernels;
    }
  } else {
    fprintf(stderr, "compute_load: unknown pattern %s\n", pattern.c_str());
    return 1;
  }
  CHECK(cudaDeviceSynchronize(), 5);
  const int64_t busy = busy0 < 0 ? -1 : busyNs() - busy0;
  const auto loopEnd = Clock::now();
  stop = true;
  sampler.join();
  double peak = busy0 < 0 ? -1 : 0;
  for (size_t i = 0, j = 0; i < samples.size(); ++i) {
    while (j < samples.size() && samples[j].after - samples[i].before < std::chrono::milliseconds(500)) ++j;
    if (j == samples.size()) break;
    const double dt = std::chrono::duration<double, std::nano>(samples[j].after - samples[i].before).count();
    peak = std::max(peak, (samples[j].busy - samples[i].busy) / dt);
  }
  launch(1); // held until the time used above has been paid for
  const auto t1 = Clock::now();
  CHECK(cudaDeviceSynchronize(), 5);
  auto ns = [](Clock::duration d) {
    return static_cast<long long>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
  };
  printf("compute_load: pattern %s kernels %ld busy_ns %lld interval_ns %lld loop_ns %lld peak_share %.4f\n",
         pattern.c_str(), kernels.load(), static_cast<long long>(busy), ns(t1 - t0), ns(loopEnd - t0), peak);
  if (busy >= 0)
    printf("compute_load: GPU time %.2f s over %.2f s = %.1f%%\n", busy / 1e9, ns(t1 - t0) / 1e9,
           100.0 * static_cast<double>(busy) / static_cast<double>(ns(t1 - t0)));
  return 0;
}
