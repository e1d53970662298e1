// CUDA IPC memory and event handles between two real processes. This process (the exporter)
// fills device memory with a kernel, takes its IPC handle and an interprocess event's, and
// starts a copy of itself (the importer, by fork+exec) that reads both from a pipe, opens them,
// checks the contents with a kernel that adds 1000 to every element in place (held back 300 ms
// on its stream) and records the event after it. The exporter waits for the event on a stream
// and copies: it must see the importer's writes in its own memory. Wrong handles and wrong pointers are refused with the one right
// error, both sides check their vGPU in a _limited run, and each side's exit code counts.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "check.h"

constexpr int kN = 1 << 16;

__global__ void fill(int* a, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) a[i] = 3 * i + 7;
}

// Counts elements that are not 3i+7, then adds 1000 to each.
__global__ void checkAndBump(int* a, int n, int* wrong) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  if (a[i] != 3 * i + 7) atomicAdd(wrong, 1);
  a[i] += 1000;
}

// Moves all n bytes through a pipe end (reading or writing), or fails.
static bool transfer(int fd, void* p, size_t n, bool writing) {
  auto* b = static_cast<char*>(p);
  while (n) {
    ssize_t r = writing ? write(fd, b, n) : read(fd, b, n);
    if (r <= 0) return false;
    b += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}
static bool readAll(int fd, void* p, size_t n) { return transfer(fd, p, n, false); }
static bool writeAll(int fd, const void* p, size_t n) {
  return transfer(fd, const_cast<void*>(p), n, true);
}

static void CUDART_CB holdBack(void*) { usleep(300 * 1000); }

static int importer(int in, int out) {
  CHECK(cudaSetDevice(0));
  TF_CHECK_VGPU();
  cudaIpcMemHandle_t handle;
  cudaIpcEventHandle_t eventHandle;
  if (!readAll(in, &handle, sizeof handle) || !readAll(in, &eventHandle, sizeof eventHandle)) {
    std::fprintf(stderr, "importer: no handles on the pipe\n");
    return 1;
  }
  cudaEvent_t ev;
  CHECK(cudaIpcOpenEventHandle(&ev, eventHandle));
  int* a = nullptr;
  CHECK(cudaIpcOpenMemHandle(reinterpret_cast<void**>(&a), handle, cudaIpcMemLazyEnablePeerAccess));
  // Opened twice: the same pointer, closed twice.
  int* again = nullptr;
  CHECK(cudaIpcOpenMemHandle(reinterpret_cast<void**>(&again), handle, cudaIpcMemLazyEnablePeerAccess));
  EXPECT_TRUE(again == a);
  CHECK(cudaIpcCloseMemHandle(again));
  // IPC memory is not the importer's to free.
  EXPECT_ERR(cudaFree(a), cudaErrorInvalidValue);
  EXPECT_ERR(cudaGetLastError(), cudaErrorInvalidValue); // that error, read and cleared

  int* wrong = nullptr;
  CHECK(cudaMalloc(&wrong, sizeof(int)));
  CHECK(cudaMemset(wrong, 0, sizeof(int)));
  // The exporter waits for this stream's work through the shared event: the work is held back
  // 300 ms first, so an exporter that did not really wait would read the memory unchanged.
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  CHECK(cudaLaunchHostFunc(s, holdBack, nullptr));
  checkAndBump<<<kN / 256, 256, 0, s>>>(a, kN, wrong);
  CHECK(cudaGetLastError());
  CHECK(cudaEventRecord(ev, s));
  char recorded = 'r';
  if (!writeAll(out, &recorded, 1)) return 1;
  CHECK(cudaStreamSynchronize(s));
  CHECK(cudaEventQuery(ev));
  CHECK(cudaEventDestroy(ev));
  CHECK(cudaStreamDestroy(s));
  int bad = -1;
  CHECK(cudaMemcpy(&bad, wrong, sizeof bad, cudaMemcpyDeviceToHost));
  EXPECT_EQ_INT(bad, 0);
  std::vector<int> host(kN);
  CHECK(cudaMemcpy(host.data(), a, kN * sizeof(int), cudaMemcpyDeviceToHost));
  int off = 0;
  for (int i = 0; i < kN; ++i) off += host[i] != 3 * i + 1007;
  EXPECT_EQ_INT(off, 0);
  CHECK(cudaIpcCloseMemHandle(a));
  // Closed: neither a second close nor a close of the importer's own memory is accepted.
  EXPECT_ERR(cudaIpcCloseMemHandle(a), cudaErrorInvalidValue);
  EXPECT_ERR(cudaIpcCloseMemHandle(wrong), cudaErrorInvalidValue);
  CHECK(cudaFree(wrong));
  char done = 'd';
  if (!writeAll(out, &done, 1)) return 1;
  return tf_test::summary("ipc importer");
}

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "importer")
    return importer(std::atoi(argv[2]), std::atoi(argv[3]));

  int toChild[2], toParent[2];
  if (pipe(toChild) != 0 || pipe(toParent) != 0) {
    std::perror("pipe");
    return 1;
  }
  pid_t child = fork();
  if (child < 0) {
    std::perror("fork");
    return 1;
  }
  if (child == 0) {
    close(toChild[1]);
    close(toParent[0]);
    std::string in = std::to_string(toChild[0]), out = std::to_string(toParent[1]);
    execl("/proc/self/exe", argv[0], "importer", in.c_str(), out.c_str(), static_cast<char*>(nullptr));
    std::perror("exec");
    _exit(127);
  }
  close(toChild[0]);
  close(toParent[1]);

  CHECK(cudaSetDevice(0));
  TF_CHECK_VGPU();
  int* a = nullptr;
  CHECK(cudaMalloc(&a, kN * sizeof(int)));
  int hostInt = -1;
  fill<<<kN / 256, 256>>>(a, kN);
  CHECK(cudaGetLastError());

  // Wrong pointers: inside the allocation, and host memory.
  cudaIpcMemHandle_t handle;
  EXPECT_ERR(cudaIpcGetMemHandle(&handle, a + 1), cudaErrorInvalidValue);
  EXPECT_ERR(cudaIpcGetMemHandle(&handle, &hostInt), cudaErrorInvalidValue);
  CHECK(cudaIpcGetMemHandle(&handle, a));
  // A handle cannot be opened in the process that made it; garbage is no handle.
  int* self = nullptr;
  EXPECT_ERR(cudaIpcOpenMemHandle(reinterpret_cast<void**>(&self), handle, cudaIpcMemLazyEnablePeerAccess),
             cudaErrorDeviceUninitialized); // CUDA_ERROR_INVALID_CONTEXT, as cudart names it
  cudaIpcMemHandle_t garbage;
  std::memset(&garbage, 0x5a, sizeof garbage);
  EXPECT_ERR(cudaIpcOpenMemHandle(reinterpret_cast<void**>(&self), garbage, cudaIpcMemLazyEnablePeerAccess),
             cudaErrorInvalidValue);
  // After the handle was taken the memory is still this process's, unchanged.
  std::vector<int> host(kN);
  CHECK(cudaMemcpy(host.data(), a, kN * sizeof(int), cudaMemcpyDeviceToHost));
  int off = 0;
  for (int i = 0; i < kN; ++i) off += host[i] != 3 * i + 7;
  EXPECT_EQ_INT(off, 0);

  // An event both processes hold: only an interprocess one has a handle, and not in its own
  // process.
  cudaEvent_t plain, ev;
  cudaIpcEventHandle_t eventHandle;
  CHECK(cudaEventCreate(&plain));
  EXPECT_ERR(cudaIpcGetEventHandle(&eventHandle, plain), cudaErrorInvalidValue);
  CHECK(cudaEventCreateWithFlags(&ev, cudaEventInterprocess | cudaEventDisableTiming));
  CHECK(cudaIpcGetEventHandle(&eventHandle, ev));
  cudaEvent_t own;
  EXPECT_ERR(cudaIpcOpenEventHandle(&own, eventHandle), cudaErrorDeviceUninitialized);
  CHECK(cudaEventQuery(ev)); // never recorded: done

  if (!writeAll(toChild[1], &handle, sizeof handle) ||
      !writeAll(toChild[1], &eventHandle, sizeof eventHandle)) {
    std::fprintf(stderr, "exporter: cannot send the handles\n");
    kill(child, SIGKILL);
  }
  // Once the importer has recorded the event (after its kernel, held back 300 ms), a copy on a
  // stream that waits for the event sees the importer's writes.
  char step = 0;
  bool recorded = readAll(toParent[0], &step, 1) && step == 'r';
  EXPECT_TRUE(recorded);
  cudaStream_t s;
  CHECK(cudaStreamCreate(&s));
  CHECK(cudaStreamWaitEvent(s, ev, 0));
  CHECK(cudaMemcpyAsync(host.data(), a, kN * sizeof(int), cudaMemcpyDeviceToHost, s));
  CHECK(cudaStreamSynchronize(s));
  off = 0;
  for (int i = 0; i < kN; ++i) off += host[i] != 3 * i + 1007;
  EXPECT_EQ_INT(off, 0);
  CHECK(cudaEventSynchronize(ev));
  CHECK(cudaEventQuery(ev));

  char done = 0;
  bool signalled = readAll(toParent[0], &done, 1);
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(signalled && done == 'd');
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  // The importer's writes, in the exporter's memory, after it closed its mapping.
  CHECK(cudaMemcpy(host.data(), a, kN * sizeof(int), cudaMemcpyDeviceToHost));
  off = 0;
  for (int i = 0; i < kN; ++i) off += host[i] != 3 * i + 1007;
  EXPECT_EQ_INT(off, 0);
  CHECK(cudaStreamDestroy(s));
  CHECK(cudaEventDestroy(ev));
  CHECK(cudaEventDestroy(plain));
  // A handle taken again names the same memory; freed, the memory is gone for good.
  cudaIpcMemHandle_t second;
  CHECK(cudaIpcGetMemHandle(&second, a));
  EXPECT_TRUE(std::memcmp(&second, &handle, sizeof handle) == 0);
  CHECK(cudaFree(a));
  EXPECT_ERR(cudaIpcGetMemHandle(&second, a), cudaErrorInvalidValue);
  return tf_test::summary("ipc");
}
