// CUDA graphs without kernels: stream capture of copies, memsets and host functions, replayed
// several times; fork/join capture across two streams with events; explicitly built graphs with
// memset, host and empty nodes and added dependencies; capture status; synchronous calls
// during a capture fail and invalidate it.
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "check.h"

static std::atomic<int> hostCalls{0};
static void CUDART_CB countFn(void*) { hostCalls++; }

// Host node body: copies what it sees in pinned memory (written by an earlier memset node).
struct Snapshot {
  const unsigned char* src;
  unsigned char seen[256];
  std::atomic<int> calls{0};
};
static void CUDART_CB snapshotFn(void* p) {
  auto* s = static_cast<Snapshot*>(p);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::memcpy(s->seen, s->src, sizeof s->seen);
  s->calls++;
}

static void captureAndReplay(tf_test::Rng& rng) {
  const size_t N = 1 << 18;
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  unsigned char *hin = nullptr, *hout = nullptr, *a = nullptr, *b = nullptr;
  CHECK(cudaMallocHost(&hin, N));
  CHECK(cudaMallocHost(&hout, N));
  CHECK(cudaMalloc(&a, N));
  CHECK(cudaMalloc(&b, N));
  std::memset(hout, 0xEE, N);
  rng.fill(hin, N);

  cudaStreamCaptureStatus st = cudaStreamCaptureStatusInvalidated;
  CHECK(cudaStreamIsCapturing(s, &st));
  EXPECT_EQ_INT(st, cudaStreamCaptureStatusNone);
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  CHECK(cudaStreamIsCapturing(s, &st));
  EXPECT_EQ_INT(st, cudaStreamCaptureStatusActive);
  CHECK(cudaMemcpyAsync(a, hin, N, cudaMemcpyHostToDevice, s));
  CHECK(cudaMemsetAsync(a + 100, 0x5A, 1000, s));
  CHECK(cudaLaunchHostFunc(s, countFn, nullptr));
  CHECK(cudaMemcpyAsync(b, a, N, cudaMemcpyDeviceToDevice, s));
  CHECK(cudaMemsetAsync(b, 0x01, 10, s));
  CHECK(cudaMemcpyAsync(hout, b, N, cudaMemcpyDeviceToHost, s));
  cudaGraph_t g = nullptr;
  CHECK(cudaStreamEndCapture(s, &g));
  REQUIRE(g != nullptr);
  CHECK(cudaStreamIsCapturing(s, &st));
  EXPECT_EQ_INT(st, cudaStreamCaptureStatusNone);
  // Capturing ran nothing.
  CHECK(cudaStreamSynchronize(s));
  EXPECT_EQ_INT(hostCalls.load(), 0);
  EXPECT_TRUE(hout[0] == 0xEE && hout[N - 1] == 0xEE);

  size_t numNodes = 0;
  CHECK(cudaGraphGetNodes(g, nullptr, &numNodes));
  EXPECT_EQ_INT(numNodes, 6);
  std::vector<cudaGraphNode_t> nodes(numNodes);
  CHECK(cudaGraphGetNodes(g, nodes.data(), &numNodes));
  int memsets = 0, hosts = 0, copies = 0;
  for (auto n : nodes) {
    cudaGraphNodeType t;
    CHECK(cudaGraphNodeGetType(n, &t));
    memsets += t == cudaGraphNodeTypeMemset;
    hosts += t == cudaGraphNodeTypeHost;
    copies += t == cudaGraphNodeTypeMemcpy;
  }
  EXPECT_EQ_INT(memsets, 2);
  EXPECT_EQ_INT(hosts, 1);
  EXPECT_EQ_INT(copies, 3);

  cudaGraphExec_t ge = nullptr;
  CHECK(cudaGraphInstantiate(&ge, g, 0));
  for (int iter = 0; iter < 3; ++iter) {
    rng.fill(hin, N); // new input each replay: the graph reads hin when it runs
    std::vector<unsigned char> want(hin, hin + N);
    std::memset(want.data() + 100, 0x5A, 1000);
    std::memset(want.data(), 0x01, 10);
    CHECK(cudaGraphLaunch(ge, s));
    CHECK(cudaStreamSynchronize(s));
    EXPECT_EQ_BYTES(hout, want.data(), N, "captured graph replay");
    EXPECT_EQ_INT(hostCalls.load(), iter + 1);
  }
  // Launches queue in stream order: two back to back then one sync.
  CHECK(cudaGraphLaunch(ge, s));
  CHECK(cudaGraphLaunch(ge, s));
  CHECK(cudaStreamSynchronize(s));
  EXPECT_EQ_INT(hostCalls.load(), 5);

  CHECK(cudaGraphExecDestroy(ge));
  CHECK(cudaGraphDestroy(g));
  CHECK(cudaStreamDestroy(s));
  CHECK(cudaFreeHost(hin));
  CHECK(cudaFreeHost(hout));
  CHECK(cudaFree(a));
  CHECK(cudaFree(b));
}

static void forkJoin() {
  const size_t N = 4096;
  cudaStream_t s1, s2;
  CHECK(cudaStreamCreate(&s1));
  CHECK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
  cudaEvent_t fork, join;
  CHECK(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming));
  CHECK(cudaEventCreateWithFlags(&join, cudaEventDisableTiming));
  unsigned char *d = nullptr, *h = nullptr;
  CHECK(cudaMalloc(&d, 2 * N));
  CHECK(cudaMallocHost(&h, 2 * N));
  std::memset(h, 0, 2 * N);

  CHECK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeThreadLocal));
  CHECK(cudaEventRecord(fork, s1));
  CHECK(cudaStreamWaitEvent(s2, fork, 0));
  cudaStreamCaptureStatus st;
  CHECK(cudaStreamIsCapturing(s2, &st));
  EXPECT_EQ_INT(st, cudaStreamCaptureStatusActive); // s2 joined the capture
  CHECK(cudaMemsetAsync(d, 0x11, N, s1));
  CHECK(cudaMemsetAsync(d + N, 0x22, N, s2));
  CHECK(cudaLaunchHostFunc(s2, countFn, nullptr));
  CHECK(cudaEventRecord(join, s2));
  CHECK(cudaStreamWaitEvent(s1, join, 0));
  CHECK(cudaMemcpyAsync(h, d, 2 * N, cudaMemcpyDeviceToHost, s1));
  cudaGraph_t g = nullptr;
  CHECK(cudaStreamEndCapture(s1, &g));
  CHECK(cudaStreamIsCapturing(s2, &st));
  EXPECT_EQ_INT(st, cudaStreamCaptureStatusNone);
  size_t numNodes = 0;
  CHECK(cudaGraphGetNodes(g, nullptr, &numNodes));
  EXPECT_EQ_INT(numNodes, 4);

  cudaGraphExec_t ge = nullptr;
  CHECK(cudaGraphInstantiate(&ge, g, 0));
  int before = hostCalls.load();
  for (int iter = 0; iter < 2; ++iter) {
    std::memset(h, 0, 2 * N);
    CHECK(cudaGraphLaunch(ge, s1));
    CHECK(cudaStreamSynchronize(s1));
    std::vector<unsigned char> want(2 * N, 0x11);
    std::memset(want.data() + N, 0x22, N);
    EXPECT_EQ_BYTES(h, want.data(), 2 * N, "fork/join graph");
  }
  EXPECT_EQ_INT(hostCalls.load(), before + 2);

  // A capture that forks and never joins back cannot end.
  CHECK(cudaStreamBeginCapture(s1, cudaStreamCaptureModeThreadLocal));
  CHECK(cudaEventRecord(fork, s1));
  CHECK(cudaStreamWaitEvent(s2, fork, 0));
  CHECK(cudaMemsetAsync(d, 0x33, N, s2));
  cudaGraph_t bad = nullptr;
  EXPECT_ERR(cudaStreamEndCapture(s1, &bad), cudaErrorStreamCaptureUnjoined);
  (void)cudaGetLastError();
  EXPECT_TRUE(bad == nullptr);

  CHECK(cudaGraphExecDestroy(ge));
  CHECK(cudaGraphDestroy(g));
  CHECK(cudaEventDestroy(fork));
  CHECK(cudaEventDestroy(join));
  CHECK(cudaFree(d));
  CHECK(cudaFreeHost(h));
  (void)cudaStreamDestroy(s1);
  (void)cudaStreamDestroy(s2);
}

static void explicitGraph() {
  // Mapped pinned memory, so host nodes can observe what memset nodes wrote.
  unsigned char* h = nullptr;
  CHECK(cudaHostAlloc(&h, 512, cudaHostAllocMapped));
  unsigned char* hd = nullptr;
  CHECK(cudaHostGetDevicePointer(&hd, h, 0));
  std::memset(h, 0, 512);

  cudaGraph_t g;
  CHECK(cudaGraphCreate(&g, 0));
  cudaMemsetParams m1 = {};
  m1.dst = hd;
  m1.value = 0xAB;
  m1.elementSize = 1;
  m1.width = 128;
  m1.height = 1;
  cudaMemsetParams m2 = m1;
  m2.dst = hd + 128;
  m2.value = 0x01020304;
  m2.elementSize = 4;
  m2.width = 32; // 32 x 4 bytes
  cudaGraphNode_t n1, n2, hostNode, empty;
  CHECK(cudaGraphAddMemsetNode(&n1, g, nullptr, 0, &m1));
  CHECK(cudaGraphAddMemsetNode(&n2, g, nullptr, 0, &m2));
  CHECK(cudaGraphAddEmptyNode(&empty, g, &n1, 1));
  Snapshot snap;
  snap.src = h;
  cudaHostNodeParams hp = {};
  hp.fn = snapshotFn;
  hp.userData = &snap;
  CHECK(cudaGraphAddHostNode(&hostNode, g, &empty, 1, &hp));
  // Second dependency added afterwards: host node also waits for n2.
  EXPECT_OK(cudaGraphAddDependencies(g, &n2, &hostNode, nullptr, 1));
  size_t numNodes = 0;
  CHECK(cudaGraphGetNodes(g, nullptr, &numNodes));
  EXPECT_EQ_INT(numNodes, 4);

  cudaGraphExec_t ge;
  CHECK(cudaGraphInstantiate(&ge, g, 0));
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  for (int iter = 0; iter < 3; ++iter) {
    std::memset(h, 0, 512);
    CHECK(cudaGraphLaunch(ge, s));
    CHECK(cudaStreamSynchronize(s));
    unsigned char want[256];
    std::memset(want, 0xAB, 128);
    for (int i = 0; i < 32; ++i) {
      uint32_t v = 0x01020304;
      std::memcpy(want + 128 + 4 * i, &v, 4);
    }
    EXPECT_EQ_BYTES(snap.seen, want, 256, "host node saw both memsets");
    EXPECT_EQ_INT(snap.calls.load(), iter + 1);
  }
  CHECK(cudaGraphExecDestroy(ge));
  CHECK(cudaGraphDestroy(g));
  CHECK(cudaStreamDestroy(s));
  CHECK(cudaFreeHost(h));
}

static void syncDuringCapture() {
  cudaStream_t s;
  CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  unsigned char* d = nullptr;
  CHECK(cudaMalloc(&d, 1024));
  // Synchronising a capturing stream is not allowed and invalidates the capture.
  CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  CHECK(cudaMemsetAsync(d, 1, 1024, s));
  EXPECT_ERR(cudaStreamSynchronize(s), cudaErrorStreamCaptureUnsupported);
  cudaStreamCaptureStatus st;
  CHECK(cudaStreamIsCapturing(s, &st));
  EXPECT_EQ_INT(st, cudaStreamCaptureStatusInvalidated);
  cudaGraph_t g = nullptr;
  EXPECT_ERR(cudaStreamEndCapture(s, &g), cudaErrorStreamCaptureInvalidated);
  EXPECT_TRUE(g == nullptr);
  (void)cudaGetLastError();

  // A blocking stream under capture: a synchronous copy on the legacy stream would have to
  // wait on it, so it fails.
  cudaStream_t b;
  CHECK(cudaStreamCreate(&b));
  CHECK(cudaStreamBeginCapture(b, cudaStreamCaptureModeGlobal));
  CHECK(cudaMemsetAsync(d, 2, 1024, b));
  unsigned char h[1024];
  EXPECT_ERR(cudaMemcpy(h, d, 1024, cudaMemcpyDeviceToHost), cudaErrorStreamCaptureImplicit);
  g = nullptr;
  EXPECT_ERR(cudaStreamEndCapture(b, &g), cudaErrorStreamCaptureInvalidated);
  (void)cudaGetLastError();

  // After the failed captures the streams work normally.
  CHECK(cudaMemsetAsync(d, 3, 1024, s));
  CHECK(cudaMemcpyAsync(h, d, 1024, cudaMemcpyDeviceToHost, s));
  CHECK(cudaStreamSynchronize(s));
  unsigned char want[1024];
  std::memset(want, 3, sizeof want);
  EXPECT_EQ_BYTES(h, want, 1024, "stream usable after invalidated capture");
  CHECK(cudaStreamDestroy(s));
  CHECK(cudaStreamDestroy(b));
  CHECK(cudaFree(d));
}

int main() {
  TF_CHECK_VGPU(); // in a _limited run: the limiter is there (check.h)
  tf_test::Rng rng(2024);
  captureAndReplay(rng);
  forkJoin();
  explicitGraph();
  syncDuringCapture();
  return tf_test::summary("graphs");
}
