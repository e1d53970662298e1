// The worker's flow control (docs/remoting.md): asynchronous host-to-device copies it stages
// are capped at 256 MiB per client; past that it synchronises before accepting more. Run
// through the stub (run_remote.sh), this program makes the cap observable without timing:
//   - a host function that waits for this program's say-so holds the stream, then an event;
//   - 4 x 64 MiB async copies from pageable memory fill the staging exactly to the cap; the
//     event is still pending (the gate is closed, nothing has synchronised);
//   - one more copy passes the cap: the worker must synchronise, which it can only finish
//     once the gate opens (a helper thread opens it 300 ms later). An event query sent after
//     that copy is answered in order, so it must say the event is done. A worker without
//     the cap answers at once: not ready.
// Then the copied bytes are checked. Exits non-zero on any failed check (tests/cuda/check.h).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "check.h"

namespace {

struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  std::atomic<bool> entered{false};
};

void CUDA_CB waitAtGate(void* p) {
  auto* g = static_cast<Gate*>(p);
  g->entered = true;
  std::unique_lock<std::mutex> lock(g->mu);
  g->cv.wait(lock, [g] { return g->open; });
}

} // namespace

int main() {
  CU_CHECK(cuInit(0));
  CUcontext ctx;
  CU_CHECK(cuDevicePrimaryCtxRetain(&ctx, 0));
  CU_CHECK(cuCtxSetCurrent(ctx));
  constexpr size_t kMiB = 1 << 20, kPiece = 64 * kMiB;
  CUdeviceptr d;
  CU_CHECK(cuMemAlloc(&d, kPiece));
  std::vector<unsigned char> host(kPiece);
  for (size_t i = 0; i < kPiece; ++i) host[i] = static_cast<unsigned char>(i * 13 + 1);
  CUstream s;
  CU_CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  CUevent afterGate;
  CU_CHECK(cuEventCreate(&afterGate, CU_EVENT_DISABLE_TIMING));

  Gate gate;
  CU_CHECK(cuLaunchHostFunc(s, waitAtGate, &gate));
  CU_CHECK(cuEventRecord(afterGate, s));
  for (int i = 0; i < 4; ++i) CU_CHECK(cuMemcpyHtoDAsync(d, host.data(), kPiece, s)); // 256 MiB staged
  CUresult q = cuEventQuery(afterGate);
  std::printf("at the cap: event query %d (expect %d, not ready)\n", q, CUDA_ERROR_NOT_READY);
  REQUIRE(q == CUDA_ERROR_NOT_READY);

  std::thread opener([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::lock_guard<std::mutex> lock(gate.mu);
    gate.open = true;
    gate.cv.notify_all();
  });
  CU_CHECK(cuMemcpyHtoDAsync(d, host.data(), kMiB, s)); // past the cap
  q = cuEventQuery(afterGate);
  std::printf("past the cap: event query %d (expect %d: the worker synchronised first)\n", q, CUDA_SUCCESS);
  opener.join();
  EXPECT_TRUE(gate.entered.load());
  REQUIRE(q == CUDA_SUCCESS);

  CU_CHECK(cuStreamSynchronize(s));
  std::vector<unsigned char> back(kPiece);
  CU_CHECK(cuMemcpyDtoH(back.data(), d, kPiece));
  EXPECT_EQ_BYTES(back.data(), host.data(), kPiece, "the copied bytes");
  CU_CHECK(cuEventDestroy(afterGate));
  CU_CHECK(cuStreamDestroy(s));
  CU_CHECK(cuMemFree(d));
  return tf_test::summary("staging_cap");
}
