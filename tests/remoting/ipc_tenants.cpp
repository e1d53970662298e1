// IPC handles through a shared worker (worker/ipc.h), run by run_remote.sh with a worker that
// serves two tenants (TF_TEST_SECOND_TOKEN is the other tenant's token). This process (the
// exporter, first tenant) exports device memory and an interprocess event, then starts copies
// of itself (fork + exec, handles as hex on the command line):
//   - "same": a client of the same tenant opens both, reads the exporter's bytes, writes its
//     own, records the event; a handle with one secret byte changed is refused;
//   - "other": a client of the other tenant (its own token, accepted by the worker) is refused
//     both handles with CUDA_ERROR_INVALID_VALUE, as for garbage, and cannot name the pointer;
//   - "holder": a client of the same tenant opens the memory and holds it while the exporter
//     frees it: the memory stays alive and unchanged for it, and is freed (the device's free
//     memory back where it was) only when it closes;
//   - "leaver": a client of the same tenant exports memory and leaves (its session ends) while
//     this process holds the memory open: it stays alive and unchanged here (checked for 2 s
//     after the leaver exited, long after its session is released), and goes when closed.
// Each child's exit status counts; the program fails on any failed check (tests/cuda/check.h).
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "check.h"

namespace {

constexpr size_t kBytes = 1 << 20;
constexpr unsigned kWords = kBytes / 4;

std::string hex(const void* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<const unsigned char*>(p)[i];
    s += d[c >> 4];
    s += d[c & 15];
  }
  return s;
}
bool unhex(const std::string& s, void* p, size_t n) {
  if (s.size() != 2 * n) return false;
  for (size_t i = 0; i < n; ++i)
    static_cast<unsigned char*>(p)[i] = static_cast<unsigned char>(std::stoi(s.substr(2 * i, 2), nullptr, 16));
  return true;
}

bool allWords(CUdeviceptr p, unsigned want) {
  std::vector<unsigned> host(kWords);
  if (cuMemcpyDtoH(host.data(), p, kBytes) != CUDA_SUCCESS) return false;
  for (unsigned v : host)
    if (v != want) return false;
  return true;
}

CUcontext start() {
  CU_CHECK(cuInit(0));
  CUdevice dev;
  CU_CHECK(cuDeviceGet(&dev, 0));
  CUcontext ctx;
  CU_CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
  CU_CHECK(cuCtxSetCurrent(ctx));
  return ctx;
}

int leaver(int in, int out) {
  start();
  CUdeviceptr p;
  CU_CHECK(cuMemAlloc(&p, kBytes));
  CU_CHECK(cuMemsetD32(p, 0x4321, kWords));
  CU_CHECK(cuCtxSynchronize());
  CUipcMemHandle mem;
  CU_CHECK(cuIpcGetMemHandle(&mem, p));
  REQUIRE(write(out, mem.reserved, sizeof mem.reserved) == sizeof mem.reserved);
  char c = 0;
  REQUIRE(read(in, &c, 1) == 1 && c == 'x'); // opened over there: leave without freeing
  return tf_test::summary("ipc_tenants leaver");
}

int child(const std::string& role, const std::string& memHex, const std::string& eventHex, int in, int out) {
  if (role == "leaver") return leaver(in, out);
  start();
  CUipcMemHandle mem;
  CUipcEventHandle event;
  REQUIRE(unhex(memHex, mem.reserved, sizeof mem.reserved) && unhex(eventHex, event.reserved, sizeof event.reserved));
  CUdeviceptr p = 0;
  CUevent ev = nullptr;
  if (role == "other") {
    CU_EXPECT_ERR(cuIpcOpenMemHandle(&p, mem, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS), CUDA_ERROR_INVALID_VALUE);
    CU_EXPECT_ERR(cuIpcOpenEventHandle(&ev, event), CUDA_ERROR_INVALID_VALUE);
    CU_EXPECT_ERR(cuIpcCloseMemHandle(p), CUDA_ERROR_INVALID_VALUE);
    // Its own memory works as usual.
    CUdeviceptr own;
    CU_CHECK(cuMemAlloc(&own, kBytes));
    CU_CHECK(cuMemsetD32(own, 7, kWords));
    EXPECT_TRUE(allWords(own, 7));
    CU_CHECK(cuMemFree(own));
    return tf_test::summary("ipc_tenants other tenant");
  }
  if (role == "same") {
    CUipcMemHandle forged = mem;
    forged.reserved[30] ^= 1;
    CU_EXPECT_ERR(cuIpcOpenMemHandle(&p, forged, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS), CUDA_ERROR_INVALID_VALUE);
    CU_CHECK(cuIpcOpenMemHandle(&p, mem, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS));
    EXPECT_TRUE(allWords(p, 0x1234));
    CU_CHECK(cuIpcOpenEventHandle(&ev, event));
    CU_CHECK(cuMemsetD32(p, 0x5678, kWords));
    CU_CHECK(cuEventRecord(ev, nullptr));
    CU_CHECK(cuCtxSynchronize());
    CU_CHECK(cuEventDestroy(ev));
    CU_CHECK(cuIpcCloseMemHandle(p));
    return tf_test::summary("ipc_tenants same tenant");
  }
  // holder
  CU_CHECK(cuIpcOpenMemHandle(&p, mem, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS));
  char c = 'o';
  REQUIRE(write(out, &c, 1) == 1);
  REQUIRE(read(in, &c, 1) == 1 && c == 'f'); // the exporter has freed it
  EXPECT_TRUE(allWords(p, 0x5678));
  CU_CHECK(cuMemsetD32(p, 0x9abc, kWords));
  EXPECT_TRUE(allWords(p, 0x9abc));
  CU_CHECK(cuIpcCloseMemHandle(p));
  unsigned word = 0;
  CU_EXPECT_ERR(cuMemcpyDtoH(&word, p, 4), CUDA_ERROR_INVALID_VALUE); // no longer its to name
  c = 'c';
  REQUIRE(write(out, &c, 1) == 1);
  return tf_test::summary("ipc_tenants holder");
}

// Starts a copy of this program in `role`; pipes to and from it unless null.
pid_t spawn(const char* self, const std::string& role, const std::string& memHex,
            const std::string& eventHex, const char* token, int* toChild, int* fromChild) {
  int down[2] = {-1, -1}, up[2] = {-1, -1};
  if (toChild && (pipe(down) != 0 || pipe(up) != 0)) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    if (token) setenv("TF_REMOTE_TOKEN", token, 1);
    std::string in = std::to_string(down[0]), out = std::to_string(up[1]);
    execl("/proc/self/exe", self, role.c_str(), memHex.c_str(), eventHex.c_str(), in.c_str(),
          out.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  if (toChild) {
    close(down[0]);
    close(up[1]);
    *toChild = down[1];
    *fromChild = up[0];
  }
  return pid;
}

bool exitedOk(pid_t pid) {
  int status = 0;
  return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc == 6) return child(argv[1], argv[2], argv[3], std::atoi(argv[4]), std::atoi(argv[5]));
  const char* other = std::getenv("TF_TEST_SECOND_TOKEN");
  if (!other || !*other) {
    std::fprintf(stderr, "FAIL: TF_TEST_SECOND_TOKEN (the worker's second tenant) is not set\n");
    return 1;
  }
  start();
  size_t freeBefore = 0, total = 0;
  CU_CHECK(cuMemGetInfo(&freeBefore, &total));
  CUdeviceptr p;
  CU_CHECK(cuMemAlloc(&p, kBytes));
  CU_CHECK(cuMemsetD32(p, 0x1234, kWords));
  CUipcMemHandle mem;
  CU_CHECK(cuIpcGetMemHandle(&mem, p));
  CUevent ev;
  CU_CHECK(cuEventCreate(&ev, CU_EVENT_INTERPROCESS | CU_EVENT_DISABLE_TIMING));
  CUipcEventHandle event;
  CU_CHECK(cuIpcGetEventHandle(&event, ev));
  CU_CHECK(cuCtxSynchronize());
  const std::string memHex = hex(mem.reserved, sizeof mem.reserved);
  const std::string eventHex = hex(event.reserved, sizeof event.reserved);

  EXPECT_TRUE(exitedOk(spawn(argv[0], "other", memHex, eventHex, other, nullptr, nullptr)));
  EXPECT_TRUE(allWords(p, 0x1234)); // the other tenant changed nothing
  EXPECT_TRUE(exitedOk(spawn(argv[0], "same", memHex, eventHex, nullptr, nullptr, nullptr)));
  CU_CHECK(cuEventSynchronize(ev));
  EXPECT_TRUE(allWords(p, 0x5678)); // the same tenant's writes, in the exporter's memory

  int toHolder = -1, fromHolder = -1;
  pid_t holder = spawn(argv[0], "holder", memHex, eventHex, nullptr, &toHolder, &fromHolder);
  char c = 0;
  REQUIRE(read(fromHolder, &c, 1) == 1 && c == 'o');
  CU_CHECK(cuMemFree(p)); // the holder keeps it alive
  CU_EXPECT_ERR(cuIpcGetMemHandle(&mem, p), CUDA_ERROR_INVALID_VALUE);
  size_t freeHeld = 0;
  CU_CHECK(cuMemGetInfo(&freeHeld, &total));
  EXPECT_TRUE(freeHeld + kBytes <= freeBefore);
  c = 'f';
  REQUIRE(write(toHolder, &c, 1) == 1);
  REQUIRE(read(fromHolder, &c, 1) == 1 && c == 'c');
  EXPECT_TRUE(exitedOk(holder));
  size_t freeAfter = 0;
  CU_CHECK(cuMemGetInfo(&freeAfter, &total));
  EXPECT_EQ_INT(freeAfter, freeBefore); // freed with the last close

  int toLeaver = -1, fromLeaver = -1;
  pid_t leaverPid = spawn(argv[0], "leaver", "-", "-", nullptr, &toLeaver, &fromLeaver);
  CUipcMemHandle left;
  REQUIRE(read(fromLeaver, left.reserved, sizeof left.reserved) == sizeof left.reserved);
  CUdeviceptr q = 0;
  CU_CHECK(cuIpcOpenMemHandle(&q, left, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS));
  c = 'x';
  REQUIRE(write(toLeaver, &c, 1) == 1);
  EXPECT_TRUE(exitedOk(leaverPid));
  // The leaver's session ends within milliseconds of its exit; its memory must outlive it.
  bool intact = true;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
       intact && std::chrono::steady_clock::now() < until;)
    intact = allWords(q, 0x4321);
  EXPECT_TRUE(intact);
  CU_CHECK(cuIpcCloseMemHandle(q));
  // Released with the close (the leaver's session may still be finishing: a ceiling).
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       std::chrono::steady_clock::now() < until;) {
    CU_CHECK(cuMemGetInfo(&freeAfter, &total));
    if (freeAfter == freeBefore) break;
  }
  EXPECT_EQ_INT(freeAfter, freeBefore);
  CU_CHECK(cuEventDestroy(ev));
  return tf_test::summary("ipc_tenants");
}
