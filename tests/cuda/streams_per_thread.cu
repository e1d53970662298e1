// Built with --default-stream per-thread: stream 0 is each host thread's own default stream.
// Two threads' default streams must not serialise with each other, work within one thread's
// default stream stays ordered, and the legacy stream (cudaStreamLegacy) still waits for them.
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "check.h"

#ifndef CUDA_API_PER_THREAD_DEFAULT_STREAM
#error "build with --default-stream per-thread"
#endif

using Clock = std::chrono::steady_clock;
static double nowMs() {
  return std::chrono::duration<double, std::milli>(Clock::now().time_since_epoch()).count();
}

struct Sleeper {
  int ms;
  std::atomic<double> startMs{0}, endMs{0};
};
static void CUDART_CB sleepFn(void* p) {
  auto* s = static_cast<Sleeper*>(p);
  s->startMs = nowMs();
  std::this_thread::sleep_for(std::chrono::milliseconds(s->ms));
  s->endMs = nowMs();
}
static void CUDART_CB stampFn(void* p) { static_cast<std::atomic<double>*>(p)->store(nowMs()); }

int main() {
  TF_CHECK_VGPU(); // in a _limited run: the limiter is there (check.h)
  CHECK(cudaFree(0));
  // Thread 1 puts a 400 ms sleep on its default stream; thread 2's default stream work, queued
  // after that, must finish long before the sleep ends.
  Sleeper sl{400};
  std::atomic<double> t2Done{0}, t2Synced{0};
  std::atomic<bool> t1Queued{false};
  cudaError_t e1 = cudaSuccess, e2 = cudaSuccess, e2b = cudaSuccess, e1b = cudaSuccess;
  std::thread th1([&] {
    e1 = cudaLaunchHostFunc(0, sleepFn, &sl);
    t1Queued = true;
    e1b = cudaStreamSynchronize(0);
  });
  std::thread th2([&] {
    while (!t1Queued) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    unsigned char* d = nullptr;
    e2 = cudaMalloc(&d, 1 << 16);
    if (e2 == cudaSuccess) e2 = cudaMemsetAsync(d, 1, 1 << 16, 0);
    if (e2 == cudaSuccess) e2 = cudaLaunchHostFunc(0, stampFn, &t2Done);
    if (e2 == cudaSuccess) e2b = cudaStreamSynchronize(0);
    t2Synced = nowMs();
    if (d) cudaFree(d);
  });
  th1.join();
  th2.join();
  CHECK(e1);
  CHECK(e1b);
  CHECK(e2);
  CHECK(e2b);
  std::printf("thread 2 done %.1f ms before thread 1's sleep ended\n", sl.endMs - t2Done);
  EXPECT_TRUE(t2Done.load() > 0 && t2Done.load() < sl.endMs.load() - 100);
  EXPECT_TRUE(t2Synced.load() < sl.endMs.load());

  // Ordering inside one thread's default stream.
  Sleeper a{100};
  std::atomic<double> after{0};
  CHECK(cudaLaunchHostFunc(0, sleepFn, &a));
  CHECK(cudaLaunchHostFunc(cudaStreamPerThread, stampFn, &after));
  CHECK(cudaStreamSynchronize(0));
  EXPECT_TRUE(after.load() >= a.endMs.load());

  // The legacy default stream synchronises with a per-thread default stream.
  Sleeper b{200};
  std::atomic<double> legacyAt{0};
  std::thread th3([&] {
    cudaError_t e = cudaLaunchHostFunc(0, sleepFn, &b);
    if (e != cudaSuccess) std::fprintf(stderr, "thread 3 launch: %s\n", cudaGetErrorString(e));
  });
  th3.join();
  CHECK(cudaLaunchHostFunc(cudaStreamLegacy, stampFn, &legacyAt));
  CHECK(cudaDeviceSynchronize());
  EXPECT_TRUE(b.endMs.load() > 0 && legacyAt.load() >= b.endMs.load());
  return tf_test::summary("streams_per_thread");
}
