// Device addresses are the same in every process (issue 15: a migrated program's pointers stay
// valid). This process and two copies of itself (fork+exec), one with the devices in the
// other order and other memory sizes, run one allocation sequence on device 0 and one on
// device 1, and must all print the same addresses, inside the windows
// cuda/softgpu_extensions.h names. A third copy first takes part of that range for itself:
// its soft GPU must still work, with its window elsewhere and saying so.
#include <dlfcn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "check.h"
#include "cuda/softgpu_extensions.h"

using tf::cuda::kWindowBase;
using tf::cuda::kWindowStride;

namespace {

tf::cuda::DeviceWindow deviceWindow() {
  auto fn = reinterpret_cast<tf::cuda::DeviceWindow>(dlsym(RTLD_DEFAULT, tf::cuda::kDeviceWindow));
  REQUIRE(fn != nullptr);
  return fn;
}

void append(std::string& out, const char* what, uint64_t v) {
  char line[96];
  std::snprintf(line, sizeof line, "%s 0x%llx\n", what, static_cast<unsigned long long>(v));
  out += line;
}

// Bytes written at `p` read back the same (the memory is usable wherever its window is).
void expectUsable(CUdeviceptr p, size_t bytes) {
  std::vector<unsigned char> want(bytes), got(bytes);
  tf_test::Rng(p).fill(want.data(), bytes);
  CU_CHECK(cuMemcpyHtoD(p, want.data(), bytes));
  CU_CHECK(cuMemcpyDtoH(got.data(), p, bytes));
  EXPECT_EQ_BYTES(got.data(), want.data(), bytes, "device memory round trip");
}

// One allocation sequence on device 0 then device 1; its addresses and windows, one a line.
// Everything is freed again, so that the process can run it after other work.
std::string allocationSequence(bool expectFixed) {
  CU_CHECK(cuInit(0));
  CUcontext ctx[2] = {};
  for (int d = 0; d < 2; ++d) CU_CHECK(cuDevicePrimaryCtxRetain(&ctx[d], d));
  std::string out;
  for (int d = 0; d < 2; ++d) {
    CUdeviceptr base = 0;
    size_t bytes = 0;
    int fixed = -1;
    CU_CHECK(deviceWindow()(d, &base, &bytes, &fixed));
    EXPECT_EQ_INT(fixed, expectFixed ? 1 : 0);
    if (expectFixed) {
      EXPECT_EQ_INT(base, kWindowBase + d * kWindowStride);
      EXPECT_EQ_INT(bytes, kWindowStride);
    } else {
      EXPECT_TRUE(base + bytes <= kWindowBase ||
                  base >= kWindowBase + tf::cuda::kMinWindows * kWindowStride);
    }
    append(out, "window", base);
  }
  CU_CHECK(cuCtxSetCurrent(ctx[0]));
  CUdeviceptr a = 0, b = 0, c = 0, r = 0, d1 = 0;
  CU_CHECK(cuMemAlloc(&a, 1 << 20));
  CU_CHECK(cuMemAlloc(&b, (3 << 20) + 5));
  CU_CHECK(cuMemFree(a));
  CU_CHECK(cuMemAlloc(&c, 512 << 10));
  CU_CHECK(cuMemAddressReserve(&r, 8 << 20, 0, 0, 0));
  expectUsable(b, (3 << 20) + 5);
  CU_CHECK(cuCtxSetCurrent(ctx[1]));
  CU_CHECK(cuMemAlloc(&d1, 1 << 20));
  expectUsable(d1, 1 << 20);
  append(out, "device0 alloc", a);
  append(out, "device0 alloc", b);
  append(out, "device0 alloc", c);
  append(out, "device0 reserve", r);
  append(out, "device1 alloc", d1);
  if (expectFixed) {
    for (CUdeviceptr p : {a, b, c, r}) EXPECT_TRUE(p >= kWindowBase && p < kWindowBase + kWindowStride);
    EXPECT_TRUE(d1 >= kWindowBase + kWindowStride && d1 < kWindowBase + 2 * kWindowStride);
  }
  CU_CHECK(cuMemFree(d1));
  CU_CHECK(cuCtxSetCurrent(ctx[0]));
  CU_CHECK(cuMemAddressFree(r, 8 << 20));
  CU_CHECK(cuMemFree(c));
  CU_CHECK(cuMemFree(b));
  return out;
}

// A copy of this program with `devices` as its soft GPU: its output (and exit status).
std::string runCopy(const char* self, const char* devices, const char* mode, int* status) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  std::fflush(stdout);
  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    setenv("TF_SOFTGPU_DEVICES", devices, 1);
    execl("/proc/self/exe", self, mode, static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  REQUIRE(waitpid(child, status, 0) == child);
  return out;
}

constexpr char kSequenceEnd[] = "end of sequence\n";

int copyMain(bool blocked) {
  if (blocked) {
    // Something else holds a page inside device 1's window before the driver starts.
    void* p = mmap(reinterpret_cast<void*>(kWindowBase + kWindowStride + (1ull << 30)), 4096,
                   PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    REQUIRE(p != MAP_FAILED);
  }
  std::string out = allocationSequence(!blocked);
  std::fputs(out.c_str(), stdout);
  std::fputs(kSequenceEnd, stdout);
  CUcontext ctx = nullptr;
  CU_CHECK(cuDevicePrimaryCtxRetain(&ctx, 0));
  CU_CHECK(cuCtxSetCurrent(ctx));
  TF_CHECK_VGPU(); // a copy of a _limited run is limited too
  return tf_test::summary(blocked ? "addresses_driver (blocked copy)" : "addresses_driver (copy)");
}

} // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--copy") return copyMain(false);
  if (argc == 2 && std::string(argv[1]) == "--blocked") return copyMain(true);
  const std::string mine = allocationSequence(true);
  std::printf("this process:\n%s", mine.c_str());
  {
    CUcontext ctx = nullptr;
    CU_CHECK(cuDevicePrimaryCtxRetain(&ctx, 0));
    CU_CHECK(cuCtxSetCurrent(ctx));
    TF_CHECK_VGPU(); // in a _limited run: the limiter is there (check.h)
  }
  // The same devices, and the same two in the other order with other memory sizes: the
  // windows do not depend on the models or their memory.
  for (const char* devices : {"H100:8GiB,L4", "L4,A100-40GB:20GiB"}) {
    int status = -1;
    std::string theirs = runCopy(argv[0], devices, "--copy", &status);
    std::printf("a copy with TF_SOFTGPU_DEVICES=%s (exit status %d):\n%s", devices, status,
                theirs.c_str());
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    const size_t end = theirs.find(kSequenceEnd);
    EXPECT_TRUE(end != std::string::npos);
    EXPECT_TRUE(theirs.substr(0, end) == mine);
  }
  int status = -1;
  std::string blocked = runCopy(argv[0], "H100:8GiB,L4", "--blocked", &status);
  std::printf("a copy whose window range is taken (exit status %d):\n%s", status, blocked.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(blocked.find(kSequenceEnd) != std::string::npos);
  return tf_test::summary("addresses_driver");
}
