// Streams and events: ordering within a stream, cross-stream waits, the legacy default stream's
// implicit synchronisation with blocking (but not non-blocking) streams, stream callbacks,
// event timing, event and stream queries, priorities. Ordering is observed with host functions
// that sleep and record timestamps, so a missing dependency shows as a wrong order.
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "check.h"

using Clock = std::chrono::steady_clock;

static double nowMs() {
  return std::chrono::duration<double, std::milli>(Clock::now().time_since_epoch()).count();
}

struct Sleeper {
  int ms = 0;
  std::atomic<double> endMs{0};
};
static void CUDART_CB sleepFn(void* p) {
  auto* s = static_cast<Sleeper*>(p);
  std::this_thread::sleep_for(std::chrono::milliseconds(s->ms));
  s->endMs = nowMs();
}
static void CUDART_CB stampFn(void* p) { static_cast<std::atomic<double>*>(p)->store(nowMs()); }

// Sleeps, then overwrites a pinned host buffer: a copy queued after it must see new bytes.
struct Refill {
  unsigned char* buf;
  size_t n;
  unsigned char value;
};
static void CUDART_CB refillFn(void* p) {
  auto* r = static_cast<Refill*>(p);
  std::this_thread::sleep_for(std::chrono::milliseconds(80));
  std::memset(r->buf, r->value, r->n);
}

// Blocks until released (bounded, so a broken driver cannot hang the test).
static std::atomic<bool> gate{false};
static void CUDART_CB gateFn(void*) {
  auto until = Clock::now() + std::chrono::seconds(10);
  while (!gate.load() && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

struct CallbackSeen {
  std::atomic<int> calls{0};
  cudaError_t status = cudaErrorUnknown;
  std::atomic<double> at{0};
};
static void CUDART_CB streamCallback(cudaStream_t, cudaError_t status, void* user) {
  auto* c = static_cast<CallbackSeen*>(user);
  c->status = status;
  c->at = nowMs();
  c->calls++;
}

static void orderingWithinStream(tf_test::Rng& rng) {
  const size_t N = 1 << 20;
  const int kStreams = 4;
  cudaStream_t s[kStreams];
  unsigned char *hin[kStreams], *hout[kStreams], *a[kStreams], *b[kStreams];
  Refill refill[kStreams];
  std::vector<unsigned char> want[kStreams];
  for (int i = 0; i < kStreams; ++i) {
    CHECK(cudaStreamCreate(&s[i]));
    CHECK(cudaMallocHost(&hin[i], N));
    CHECK(cudaMallocHost(&hout[i], N));
    CHECK(cudaMalloc(&a[i], N));
    CHECK(cudaMalloc(&b[i], N));
    rng.fill(hin[i], N);
    std::memset(hout[i], 0, N);
    refill[i] = {hin[i], N / 2, static_cast<unsigned char>(0x10 + i)};
    // Model of the chain below.
    std::vector<unsigned char> w(N);
    std::memset(w.data(), refill[i].value, N / 2);
    std::memcpy(w.data() + N / 2, hin[i] + N / 2, N / 2);
    std::memset(w.data() + 1000, 0xF0 + i, 3000);        // memset of a after the first D2D
    std::vector<unsigned char> out(N);
    std::memcpy(out.data(), w.data(), N);                  // b = a (before the memset)
    std::memset(out.data() + 1000, refill[i].value, 3000); // (b keeps the refilled bytes there)
    std::memcpy(out.data() + N / 4, w.data() + 1000, 3000); // then a's memset region into b
    want[i] = out;
  }
  for (int i = 0; i < kStreams; ++i) {
    CHECK(cudaLaunchHostFunc(s[i], refillFn, &refill[i]));                 // 1 sleep, refill
    CHECK(cudaMemcpyAsync(a[i], hin[i], N, cudaMemcpyHostToDevice, s[i])); // 2 needs 1
    CHECK(cudaMemcpyAsync(b[i], a[i], N, cudaMemcpyDeviceToDevice, s[i])); // 3 needs 2
    CHECK(cudaMemsetAsync(a[i] + 1000, 0xF0 + i, 3000, s[i]));            // 4 after 3
    CHECK(cudaMemcpyAsync(b[i] + N / 4, a[i] + 1000, 3000, cudaMemcpyDeviceToDevice, s[i]));
    CHECK(cudaMemcpyAsync(hout[i], b[i], N, cudaMemcpyDeviceToHost, s[i]));
  }
  for (int i = 0; i < kStreams; ++i) {
    CHECK(cudaStreamSynchronize(s[i]));
    EXPECT_EQ_BYTES(hout[i], want[i].data(), N, "stream chain result");
    CHECK(cudaStreamDestroy(s[i]));
    CHECK(cudaFreeHost(hin[i]));
    CHECK(cudaFreeHost(hout[i]));
    CHECK(cudaFree(a[i]));
    CHECK(cudaFree(b[i]));
  }
}

static void crossStreamWait() {
  cudaStream_t A, B;
  CHECK(cudaStreamCreate(&A));
  CHECK(cudaStreamCreateWithFlags(&B, cudaStreamNonBlocking));
  cudaEvent_t e;
  CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  unsigned char* d = nullptr;
  CHECK(cudaMalloc(&d, 4096));
  CHECK(cudaMemset(d, 0, 4096));
  unsigned char* out = nullptr;
  CHECK(cudaMallocHost(&out, 4096));
  Sleeper sl;
  sl.ms = 150;
  CHECK(cudaLaunchHostFunc(A, sleepFn, &sl));
  CHECK(cudaMemsetAsync(d, 7, 4096, A));
  CHECK(cudaEventRecord(e, A));
  CHECK(cudaStreamWaitEvent(B, e, 0));
  CHECK(cudaMemcpyAsync(out, d, 4096, cudaMemcpyDeviceToHost, B));
  std::atomic<double> bDone{0};
  CHECK(cudaLaunchHostFunc(B, stampFn, &bDone));
  CHECK(cudaStreamSynchronize(B));
  std::vector<unsigned char> want(4096, 7);
  EXPECT_EQ_BYTES(out, want.data(), 4096, "B waited for A's event");
  EXPECT_TRUE(bDone.load() >= sl.endMs.load() && sl.endMs.load() > 0);
  CHECK(cudaStreamDestroy(A));
  CHECK(cudaStreamDestroy(B));
  CHECK(cudaEventDestroy(e));
  CHECK(cudaFree(d));
  CHECK(cudaFreeHost(out));
}

static void legacyDefaultStream() {
  // Blocking stream: the legacy stream's work waits for it, and its later work waits for the
  // legacy stream's.
  cudaStream_t blocking, nonBlocking;
  CHECK(cudaStreamCreate(&blocking));
  CHECK(cudaStreamCreateWithFlags(&nonBlocking, cudaStreamNonBlocking));
  unsigned flags = 99;
  CHECK(cudaStreamGetFlags(nonBlocking, &flags));
  EXPECT_EQ_INT(flags, cudaStreamNonBlocking);
  CHECK(cudaStreamGetFlags(blocking, &flags));
  EXPECT_EQ_INT(flags, cudaStreamDefault);

  Sleeper sl;
  sl.ms = 200;
  std::atomic<double> legacyAt{0};
  CHECK(cudaLaunchHostFunc(blocking, sleepFn, &sl));
  CHECK(cudaLaunchHostFunc(0, stampFn, &legacyAt));
  CHECK(cudaDeviceSynchronize());
  EXPECT_TRUE(legacyAt.load() >= sl.endMs.load());

  Sleeper sl2;
  sl2.ms = 200;
  std::atomic<double> blockingAt{0};
  CHECK(cudaLaunchHostFunc(cudaStreamLegacy, sleepFn, &sl2));
  CHECK(cudaLaunchHostFunc(blocking, stampFn, &blockingAt));
  CHECK(cudaDeviceSynchronize());
  EXPECT_TRUE(blockingAt.load() >= sl2.endMs.load());

  // Non-blocking stream: the legacy stream's work does not wait for it. The non-blocking stream
  // is held at a gate that only this thread opens, after the legacy stream is done: no clock
  // decides. A legacy stream that waited would be released only by the gate's 10 s bound, and
  // the non-blocking stream's stamp would then be there already.
  gate = false;
  std::atomic<double> legacyAt2{0}, afterGate{0};
  CHECK(cudaLaunchHostFunc(nonBlocking, gateFn, nullptr));
  CHECK(cudaLaunchHostFunc(nonBlocking, stampFn, &afterGate));
  CHECK(cudaLaunchHostFunc(0, stampFn, &legacyAt2));
  CHECK(cudaStreamSynchronize(0));
  EXPECT_TRUE(legacyAt2.load() > 0 && afterGate.load() == 0); // the other stream is still held
  gate = true;
  CHECK(cudaStreamSynchronize(nonBlocking));
  EXPECT_TRUE(afterGate.load() > legacyAt2.load());
  CHECK(cudaStreamDestroy(blocking));
  CHECK(cudaStreamDestroy(nonBlocking));
}

static void callbacks() {
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  Sleeper sl;
  sl.ms = 50;
  CallbackSeen seen;
  CHECK(cudaLaunchHostFunc(s, sleepFn, &sl));
  CHECK(cudaStreamAddCallback(s, streamCallback, &seen, 0));
  CHECK(cudaStreamSynchronize(s));
  EXPECT_EQ_INT(seen.calls.load(), 1);
  EXPECT_EQ_INT(seen.status, cudaSuccess);
  EXPECT_TRUE(seen.at.load() >= sl.endMs.load());
  CHECK(cudaStreamDestroy(s));
}

static void eventsAndQueries() {
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  cudaEvent_t e0, e1, noTiming;
  CHECK(cudaEventCreate(&e0));
  CHECK(cudaEventCreate(&e1));
  CHECK(cudaEventCreateWithFlags(&noTiming, cudaEventDisableTiming));
  Sleeper sl;
  sl.ms = 100;
  CHECK(cudaEventRecord(e0, s));
  CHECK(cudaLaunchHostFunc(s, sleepFn, &sl));
  CHECK(cudaEventRecord(e1, s));
  CHECK(cudaEventRecord(noTiming, s));
  CHECK(cudaEventSynchronize(e1));
  float ms = 0;
  CHECK(cudaEventElapsedTime(&ms, e0, e1));
  std::printf("elapsed around a 100 ms host function: %.2f ms\n", ms);
  EXPECT_TRUE(ms >= 90.0f && ms < 5000.0f);
  float back = 0;
  CHECK(cudaEventElapsedTime(&back, e1, e0));
  EXPECT_TRUE(back <= -90.0f);
  EXPECT_ERR(cudaEventElapsedTime(&ms, e0, noTiming), cudaErrorInvalidResourceHandle);
  (void)cudaGetLastError();

  // A never-recorded event is complete; one behind blocked work is not, until the work ends.
  cudaEvent_t fresh;
  CHECK(cudaEventCreate(&fresh));
  CHECK(cudaEventQuery(fresh));
  gate = false;
  CHECK(cudaLaunchHostFunc(s, gateFn, nullptr));
  CHECK(cudaEventRecord(e0, s));
  EXPECT_ERR(cudaEventQuery(e0), cudaErrorNotReady);
  EXPECT_ERR(cudaStreamQuery(s), cudaErrorNotReady);
  EXPECT_ERR(cudaEventElapsedTime(&ms, e1, e0), cudaErrorNotReady);
  (void)cudaGetLastError();
  gate = true;
  CHECK(cudaEventSynchronize(e0));
  CHECK(cudaEventQuery(e0));
  CHECK(cudaStreamQuery(s));

  CHECK(cudaEventDestroy(e0));
  CHECK(cudaEventDestroy(e1));
  CHECK(cudaEventDestroy(noTiming));
  CHECK(cudaEventDestroy(fresh));
  CHECK(cudaStreamDestroy(s));
}

static void priorities() {
  int least = 99, greatest = 99;
  CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
  std::printf("stream priorities: least %d, greatest %d\n", least, greatest);
  EXPECT_EQ_INT(least, 0);
  EXPECT_TRUE(greatest < least);
  cudaStream_t hi, lo, clamped;
  CHECK(cudaStreamCreateWithPriority(&hi, cudaStreamNonBlocking, greatest));
  CHECK(cudaStreamCreateWithPriority(&lo, cudaStreamDefault, least));
  CHECK(cudaStreamCreateWithPriority(&clamped, cudaStreamDefault, greatest - 10));
  int p = 99;
  CHECK(cudaStreamGetPriority(hi, &p));
  EXPECT_EQ_INT(p, greatest);
  CHECK(cudaStreamGetPriority(lo, &p));
  EXPECT_EQ_INT(p, least);
  CHECK(cudaStreamGetPriority(clamped, &p));
  EXPECT_EQ_INT(p, greatest);
  unsigned flags = 0;
  CHECK(cudaStreamGetFlags(hi, &flags));
  EXPECT_EQ_INT(flags, cudaStreamNonBlocking);
  // Work on a high-priority stream still runs and completes.
  unsigned char* d = nullptr;
  CHECK(cudaMalloc(&d, 64));
  CHECK(cudaMemsetAsync(d, 9, 64, hi));
  unsigned char h[64];
  CHECK(cudaMemcpyAsync(h, d, 64, cudaMemcpyDeviceToHost, hi));
  CHECK(cudaStreamSynchronize(hi));
  unsigned char w[64];
  std::memset(w, 9, 64);
  EXPECT_EQ_BYTES(h, w, 64, "priority stream work");
  CHECK(cudaFree(d));
  CHECK(cudaStreamDestroy(hi));
  CHECK(cudaStreamDestroy(lo));
  CHECK(cudaStreamDestroy(clamped));
}

int main() {
  TF_CHECK_VGPU(); // in a _limited run: the limiter is there (check.h)
  tf_test::Rng rng(99);
  orderingWithinStream(rng);
  crossStreamWait();
  legacyDefaultStream();
  callbacks();
  eventsAndQueries();
  priorities();
  return tf_test::summary("streams_events");
}
