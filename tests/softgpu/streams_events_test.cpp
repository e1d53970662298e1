#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "driver_test.h"

namespace {

struct Log {
  std::atomic<int> next{0};
  int order[8] = {};
};

void sleepThenMark(void* p) {
  auto* slot = static_cast<std::pair<Log*, int>*>(p);
  std::this_thread::sleep_for(std::chrono::milliseconds(slot->second));
  slot->first->order[slot->first->next++] = slot->second;
}

// Holds a stream until the test opens it (or 10 s pass, so a broken driver cannot hang the
// test). What must not wait for that stream is seen finishing while it is still held: no
// race between sleeps decides, however loaded the machine.
struct Gate {
  std::atomic<bool> open{false};
};
void waitAtGate(void* p) {
  auto* g = static_cast<Gate*>(p);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!g->open.load() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

TEST_F(DriverTest, WorkInOneStreamRunsInOrder) {
  CUstream s;
  ASSERT_CU(cuStreamCreate(&s, 0));
  Log log;
  Gate gate;
  std::pair<Log*, int> a{&log, 60}, b{&log, 1}, c{&log, 30};
  ASSERT_CU(cuLaunchHostFunc(s, waitAtGate, &gate));
  ASSERT_CU(cuLaunchHostFunc(s, sleepThenMark, &a));
  ASSERT_CU(cuLaunchHostFunc(s, sleepThenMark, &b));
  ASSERT_CU(cuLaunchHostFunc(s, sleepThenMark, &c));
  EXPECT_EQ(cuStreamQuery(s), CUDA_ERROR_NOT_READY);
  gate.open = true;
  ASSERT_CU(cuStreamSynchronize(s));
  EXPECT_EQ(cuStreamQuery(s), CUDA_SUCCESS);
  EXPECT_EQ(log.order[0], 60);
  EXPECT_EQ(log.order[1], 1);
  EXPECT_EQ(log.order[2], 30);
  ASSERT_CU(cuStreamDestroy(s));
}

TEST_F(DriverTest, LegacyStreamWaitsForBlockingStreamsButNotNonBlocking) {
  CUstream blocking, nonBlocking;
  ASSERT_CU(cuStreamCreate(&blocking, CU_STREAM_DEFAULT));
  ASSERT_CU(cuStreamCreate(&nonBlocking, CU_STREAM_NON_BLOCKING));
  Log log;
  Gate held; // the non-blocking stream, until the legacy stream is done
  std::pair<Log*, int> slowBlocking{&log, 80}, nonBlockingMark{&log, 150}, legacy{&log, 2};
  ASSERT_CU(cuLaunchHostFunc(nonBlocking, waitAtGate, &held));
  ASSERT_CU(cuLaunchHostFunc(nonBlocking, sleepThenMark, &nonBlockingMark));
  ASSERT_CU(cuLaunchHostFunc(blocking, sleepThenMark, &slowBlocking));
  ASSERT_CU(cuLaunchHostFunc(CU_STREAM_LEGACY, sleepThenMark, &legacy));
  ASSERT_CU(cuStreamSynchronize(CU_STREAM_LEGACY));
  // The legacy work waited for the blocking stream but not for the non-blocking one.
  EXPECT_EQ(log.next.load(), 2);
  EXPECT_EQ(log.order[0], 80);
  EXPECT_EQ(log.order[1], 2);
  held.open = true;
  ASSERT_CU(cuCtxSynchronize());
  EXPECT_EQ(log.order[2], 150);
  ASSERT_CU(cuStreamDestroy(blocking));
  ASSERT_CU(cuStreamDestroy(nonBlocking));
}

TEST_F(DriverTest, StreamWaitEventOrdersAcrossStreams) {
  CUstream a, b;
  ASSERT_CU(cuStreamCreate(&a, CU_STREAM_NON_BLOCKING));
  ASSERT_CU(cuStreamCreate(&b, CU_STREAM_NON_BLOCKING));
  CUevent e;
  ASSERT_CU(cuEventCreate(&e, CU_EVENT_DISABLE_TIMING));
  Log log;
  Gate gate; // holds stream a: b, waiting on a's event, must not run meanwhile
  std::pair<Log*, int> first{&log, 1}, second{&log, 2};
  ASSERT_CU(cuLaunchHostFunc(a, waitAtGate, &gate));
  ASSERT_CU(cuLaunchHostFunc(a, sleepThenMark, &first));
  ASSERT_CU(cuEventRecord(e, a));
  ASSERT_CU(cuStreamWaitEvent(b, e, 0));
  ASSERT_CU(cuLaunchHostFunc(b, sleepThenMark, &second));
  std::this_thread::sleep_for(std::chrono::milliseconds(100)); // time for b to run, were it free
  EXPECT_EQ(cuStreamQuery(b), CUDA_ERROR_NOT_READY);
  EXPECT_EQ(log.next.load(), 0);
  gate.open = true;
  ASSERT_CU(cuStreamSynchronize(b));
  EXPECT_EQ(log.order[0], 1);
  EXPECT_EQ(log.order[1], 2);
  float ms;
  EXPECT_EQ(cuEventElapsedTime(&ms, e, e), CUDA_ERROR_INVALID_HANDLE); // timing disabled
  ASSERT_CU(cuEventDestroy(e));
  ASSERT_CU(cuStreamDestroy(a));
  ASSERT_CU(cuStreamDestroy(b));
}

TEST_F(DriverTest, EventsTimeTheWorkBetweenThem) {
  CUstream s;
  ASSERT_CU(cuStreamCreate(&s, 0));
  CUevent start, stop;
  ASSERT_CU(cuEventCreate(&start, 0));
  ASSERT_CU(cuEventCreate(&stop, 0));
  float ms = 0;
  EXPECT_EQ(cuEventElapsedTime(&ms, start, stop), CUDA_ERROR_INVALID_HANDLE); // not recorded
  Log log;
  Gate gate; // before the start event, so it holds the stream without being timed
  std::pair<Log*, int> work{&log, 100};
  ASSERT_CU(cuLaunchHostFunc(s, waitAtGate, &gate));
  ASSERT_CU(cuEventRecord(start, s));
  ASSERT_CU(cuLaunchHostFunc(s, sleepThenMark, &work));
  ASSERT_CU(cuEventRecord(stop, s));
  EXPECT_EQ(cuEventQuery(stop), CUDA_ERROR_NOT_READY);
  gate.open = true;
  ASSERT_CU(cuEventSynchronize(stop));
  EXPECT_EQ(cuEventQuery(stop), CUDA_SUCCESS);
  ASSERT_CU(cuEventElapsedTime(&ms, start, stop));
  // At least the 100 ms of work (a sleep never ends early); far less than the 10 s gate, which
  // the start event follows.
  EXPECT_GE(ms, 95.0f);
  EXPECT_LT(ms, 5000.0f);
  ASSERT_CU(cuEventDestroy(start));
  ASSERT_CU(cuEventDestroy(stop));
  EXPECT_EQ(cuEventQuery(stop), CUDA_ERROR_INVALID_HANDLE); // destroyed
  ASSERT_CU(cuStreamDestroy(s));
}

TEST_F(DriverTest, PerThreadDefaultStreamsAreDistinctPerThread) {
  Log log;
  Gate gate; // holds this thread's stream until the other thread's is done
  std::pair<Log*, int> slow{&log, 150}, fast{&log, 1};
  ASSERT_CU(cuLaunchHostFunc(CU_STREAM_PER_THREAD, waitAtGate, &gate));
  ASSERT_CU(cuLaunchHostFunc(CU_STREAM_PER_THREAD, sleepThenMark, &slow));
  std::thread other([&] {
    ASSERT_CU(cuCtxSetCurrent(ctx_));
    ASSERT_CU(cuLaunchHostFunc(CU_STREAM_PER_THREAD, sleepThenMark, &fast));
    ASSERT_CU(cuStreamSynchronize(CU_STREAM_PER_THREAD));
  });
  other.join();
  // The other thread's stream did not wait for this thread's held work.
  EXPECT_EQ(log.next.load(), 1);
  EXPECT_EQ(log.order[0], 1);
  gate.open = true;
  ASSERT_CU(cuStreamSynchronize(CU_STREAM_PER_THREAD));
  EXPECT_EQ(log.order[1], 150);
}

TEST_F(DriverTest, StreamPrioritiesAreClampedToTheRange) {
  int least = 0, greatest = 0;
  ASSERT_CU(cuCtxGetStreamPriorityRange(&least, &greatest));
  EXPECT_LT(greatest, least);
  CUstream s;
  ASSERT_CU(cuStreamCreateWithPriority(&s, 0, greatest - 10));
  int p = 0;
  ASSERT_CU(cuStreamGetPriority(s, &p));
  EXPECT_EQ(p, greatest);
  ASSERT_CU(cuStreamDestroy(s));
}

} // namespace
