// Remoting benchmark: each figure beside a baseline measured in the same run.
//
//   bench_remoting WORKER_BIN SOFTGPU_LIB STUB_LIB
//
// Starts a worker on shm, one on TCP and one on TLS over TCP (all serving the soft GPU), then
// measures, in child processes (the stub connects once per process):
//   - round trip of a small synchronous call (cuStreamQuery) through the stub, over shm and TCP,
//     beside a ping-pong of the same frame sizes over the bare transport between two
//     processes (same run);
//   - the rate of asynchronous null-kernel launches through the stub beside the soft GPU's own;
//   - 64 MiB host-to-device and device-to-host copies through the stub beside a plain memcpy
//     (shm) and beside a plain TCP client/server pair in two processes moving the same 64 MiB
//     each way with large writes (TCP), and beside the soft GPU's own copies;
//   - the cost of TLS: the same figures over tls:// beside plain TCP (same run).
// Any failure (a worker that does not start, a client that fails or omits a figure, a baseline
// that cannot run) fails the benchmark with a non-zero exit; no figure is ever printed as 0.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <map>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string>
#include <tuple>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <cuda.h>

#include "support/many_kernels_ptx.h"
#include "remoting/protocol.h"
#include "remoting/tls.h"
#include "remoting/transport.h"

namespace {

using Clock = std::chrono::steady_clock;
using tf::Status;
double now() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

// What the benchmark started, stopped on every way out.
std::vector<pid_t> gWorkers;
std::string gStateDir;

void stopWorkers() {
  for (pid_t pid : gWorkers) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  gWorkers.clear();
  if (!gStateDir.empty()) {
    std::string rm = "rm -rf " + gStateDir;
    (void)!system(rm.c_str());
    gStateDir.clear();
  }
}

[[noreturn]] void fail(const std::string& what) {
  fprintf(stderr, "bench_remoting: FAILED: %s\n", what.c_str());
  stopWorkers();
  exit(1);
}

const char kNopPtx[] = R"(
.version 7.0
.target sm_50
.address_size 64
.visible .entry nop()
{
  ret;
}
)";

struct Api {
  void* lib;
  template <typename F> F get(const char* n) {
    auto f = reinterpret_cast<F>(dlsym(lib, n));
    if (!f) {
      fprintf(stderr, "missing %s\n", n);
      exit(2);
    }
    return f;
  }
};

#define CK(x)                                                                                     \
  do {                                                                                            \
    CUresult r_ = (x);                                                                            \
    if (r_ != CUDA_SUCCESS) {                                                                     \
      fprintf(stderr, "%s failed: %d\n", #x, r_);                                                 \
      exit(3);                                                                                    \
    }                                                                                             \
  } while (0)

// Client mode: prints "key value" lines.
int client(const char* libPath, const char* label) {
  Api a{dlopen(libPath, RTLD_NOW | RTLD_LOCAL)};
  if (!a.lib) {
    fprintf(stderr, "dlopen %s: %s\n", libPath, dlerror());
    return 2;
  }
  auto init = a.get<CUresult (*)(unsigned)>("cuInit");
  auto retain = a.get<CUresult (*)(CUcontext*, CUdevice)>("cuDevicePrimaryCtxRetain");
  auto setCurrent = a.get<CUresult (*)(CUcontext)>("cuCtxSetCurrent");
  auto query = a.get<CUresult (*)(CUstream)>("cuStreamQuery");
  auto load = a.get<CUresult (*)(CUmodule*, const void*)>("cuModuleLoadData");
  auto getf = a.get<CUresult (*)(CUfunction*, CUmodule, const char*)>("cuModuleGetFunction");
  auto launch = a.get<CUresult (*)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
                                   unsigned, unsigned, CUstream, void**, void**)>("cuLaunchKernel");
  auto sync = a.get<CUresult (*)()>("cuCtxSynchronize");
  auto alloc = a.get<CUresult (*)(CUdeviceptr*, size_t)>("cuMemAlloc_v2");
  auto htod = a.get<CUresult (*)(CUdeviceptr, const void*, size_t)>("cuMemcpyHtoD_v2");
  auto dtoh = a.get<CUresult (*)(void*, CUdeviceptr, size_t)>("cuMemcpyDtoH_v2");
  CUcontext ctx;
  CK(init(0));
  CK(retain(&ctx, 0));
  CK(setCurrent(ctx));

  // Small synchronous call.
  std::vector<double> t(20000);
  for (int i = 0; i < 2000; ++i) CK(query(nullptr));
  for (auto& x : t) {
    double s = now();
    CK(query(nullptr));
    x = now() - s;
  }
  std::sort(t.begin(), t.end());
  printf("%s.sync_p50_us %.3f\n", label, t[t.size() / 2] * 1e6);
  printf("%s.sync_p99_us %.3f\n", label, t[t.size() * 99 / 100] * 1e6);

  // Pageable copies, 64 MiB and small (256 KiB), best of several; only these with
  // TF_BENCH_COPIES_ONLY (the runs that compare copy paths, quiet and beside a busy core).
  CUdeviceptr d;
  auto pageableCopies = [&] {
    const size_t n = size_t(64) << 20, small = size_t(256) << 10;
    std::vector<uint8_t> host(n, 7), back(n);
    CK(alloc(&d, n));
    CK(htod(d, host.data(), n));
    CK(dtoh(back.data(), d, n));
    auto best = [&](size_t bytes, int rounds, bool toDevice) {
      double b = 1e9;
      for (int i = 0; i < rounds; ++i) {
        double s = now();
        if (toDevice) CK(htod(d, host.data(), bytes));
        else CK(dtoh(back.data(), d, bytes));
        b = std::min(b, now() - s);
      }
      return bytes / b / 1e9;
    };
    printf("%s.htod_gbps %.3f\n", label, best(n, 5, true));
    printf("%s.dtoh_gbps %.3f\n", label, best(n, 5, false));
    if (memcmp(host.data(), back.data(), n) != 0) {
      fprintf(stderr, "copy mismatch\n");
      exit(4);
    }
    printf("%s.htod_small_gbps %.3f\n", label, best(small, 200, true));
    printf("%s.dtoh_small_gbps %.3f\n", label, best(small, 200, false));
  };
  if (getenv("TF_BENCH_COPIES_ONLY")) {
    pageableCopies();
    return 0;
  }

  // Asynchronous null launches.
  CUmodule m;
  CUfunction f;
  CK(load(&m, kNopPtx));
  CK(getf(&f, m, "nop"));
  for (int i = 0; i < 1000; ++i) CK(launch(f, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr));
  CK(sync());
  const int launches = 200000;
  double s = now();
  for (int i = 0; i < launches; ++i) CK(launch(f, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr));
  double issued = now() - s;
  CK(sync());
  double total = now() - s;
  printf("%s.launch_issue_per_s %.0f\n", label, launches / issued);
  printf("%s.launch_complete_per_s %.0f\n", label, launches / total);

  pageableCopies();
  const size_t n = size_t(64) << 20;
  std::vector<uint8_t> back(n);
  double best, bestBack;

  // The same from pinned memory (over shm the stub shares pinned pages with the worker).
  auto allocHost = a.get<CUresult (*)(void**, size_t)>("cuMemAllocHost_v2");
  void* pinned = nullptr;
  CK(allocHost(&pinned, n));
  memset(pinned, 9, n);
  best = bestBack = 1e9;
  for (int i = 0; i < 5; ++i) {
    s = now();
    CK(htod(d, pinned, n));
    best = std::min(best, now() - s);
    s = now();
    CK(dtoh(pinned, d, n));
    bestBack = std::min(bestBack, now() - s);
  }
  CK(dtoh(back.data(), d, n));
  if (memcmp(pinned, back.data(), n) != 0) {
    fprintf(stderr, "pinned copy mismatch\n");
    return 4;
  }
  printf("%s.pinned_htod_gbps %.3f\n", label, n / best / 1e9);
  printf("%s.pinned_dtoh_gbps %.3f\n", label, n / bestBack / 1e9);

  // Start-up: 20 libraries of 200 kernels each (distinct images), one kernel used. Libraries
  // ship on first use; modules (the baseline) ship and translate at load.
  {
    using LoadLib = CUresult (*)(CUlibrary*, const void*, CUjit_option*, void**, unsigned,
                                 CUlibraryOption*, void**, unsigned);
    auto loadLib = a.get<LoadLib>("cuLibraryLoadData");
    auto getKernel = a.get<CUresult (*)(CUkernel*, CUlibrary, const char*)>("cuLibraryGetKernel");
    auto unloadLib = a.get<CUresult (*)(CUlibrary)>("cuLibraryUnload");
    auto unloadMod = a.get<CUresult (*)(CUmodule)>("cuModuleUnload");
    const int libs = 20, kernels = 200;
    auto image = [&](int round, int lib) {
      return manyKernelsPtx(kernels, std::to_string(round) + "." + std::to_string(lib));
    };
    // Distinct images per round, so the worker's image cache does not hide the cost.
    double lazy = 1e9, eager = 1e9;
    for (int round = 0; round < 3; ++round) {
      std::vector<std::string> texts;
      for (int l = 0; l < libs; ++l) texts.push_back(image(2 * round, l));
      s = now();
      std::vector<CUlibrary> ls(libs);
      for (int l = 0; l < libs; ++l)
        CK(loadLib(&ls[l], texts[l].c_str(), nullptr, nullptr, 0, nullptr, nullptr, 0));
      CUkernel k;
      CK(getKernel(&k, ls[0], "k7"));
      lazy = std::min(lazy, now() - s);
      for (auto l : ls) CK(unloadLib(l));
      texts.clear();
      for (int l = 0; l < libs; ++l) texts.push_back(image(2 * round + 1, l));
      s = now();
      std::vector<CUmodule> ms(libs);
      for (int l = 0; l < libs; ++l) CK(load(&ms[l], texts[l].c_str()));
      CUfunction fk;
      CK(getf(&fk, ms[0], "k7"));
      eager = std::min(eager, now() - s);
      for (auto m2 : ms) CK(unloadMod(m2));
    }
    printf("%s.startup_lazy_ms %.3f\n", label, lazy * 1e3);
    printf("%s.startup_eager_ms %.3f\n", label, eager * 1e3);
  }

  // Launch + synchronise rounds: first with no managed memory, then with 64 MiB of it (fully
  // written once), the host changing one page of it per round. Through the stub over shm the
  // memory is the worker's own pages; elsewhere every round compares the mirror with its
  // shadow on both sides (the written pages only, where the kernel tracks writes).
  auto allocManaged = a.get<CUresult (*)(CUdeviceptr*, size_t, unsigned)>("cuMemAllocManaged");
  auto rounds = [&](int count, uint8_t* touch, size_t span) {
    std::vector<double> r(count);
    for (int i = 0; i < count; ++i) {
      double t0 = now();
      if (touch) touch[(size_t(i) * 4096) % span] = static_cast<uint8_t>(i);
      CK(launch(f, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr));
      CK(sync());
      r[i] = now() - t0;
    }
    std::sort(r.begin(), r.end());
    return r[r.size() / 2];
  };
  (void)rounds(200, nullptr, 0);
  printf("%s.round_us %.3f\n", label, rounds(2000, nullptr, 0) * 1e6);
  CUdeviceptr mm;
  CK(allocManaged(&mm, n, CU_MEM_ATTACH_GLOBAL));
  uint8_t* managed = reinterpret_cast<uint8_t*>(mm);
  memset(managed, 3, n);
  (void)rounds(5, managed, n);
  printf("%s.managed_round_us %.3f\n", label, rounds(100, managed, n) * 1e6);
  // The same with the allocation mirrored even where the stub could share it (over shm): the
  // baseline of the shared managed memory.
  auto memFree = a.get<CUresult (*)(CUdeviceptr)>("cuMemFree_v2");
  CK(memFree(mm));
  setenv("TF_REMOTE_SHARE_MANAGED", "0", 1);
  CUdeviceptr mirrored;
  CK(allocManaged(&mirrored, n, CU_MEM_ATTACH_GLOBAL));
  managed = reinterpret_cast<uint8_t*>(mirrored);
  memset(managed, 3, n);
  (void)rounds(5, managed, n);
  printf("%s.managed_mirrored_round_us %.3f\n", label, rounds(100, managed, n) * 1e6);
  return 0;
}

// Bare-transport ping-pong with the frame sizes of a cuStreamQuery call (request: header +
// args; reply: header + args), against an echo server in another process, as the worker is.
double pingPongP50(const std::string& address) {
  using namespace tf::remoting;
  auto l = listen(address);
  if (!l) fail("ping-pong listen on " + address + ": " + l.status().toString());
  std::string where = (*l)->address();
  pid_t echo = fork();
  if (echo == 0) {
    auto t = (*l)->accept();
    if (!t) _exit(1);
    uint8_t buf[256];
    for (;;) {
      if (!(*t)->readExact(buf, kHeaderSize + 18).isOk()) _exit(0);
      iovec v{buf, kHeaderSize + 5};
      if (!(*t)->writeV(&v, 1).isOk()) _exit(1);
    }
  }
  auto c = connect(where, 2000);
  if (!c) fail("ping-pong connect to " + where + ": " + c.status().toString());
  std::vector<double> t(20000);
  uint8_t req[kHeaderSize + 18] = {}, rep[kHeaderSize + 5];
  iovec v{req, sizeof(req)};
  auto exchange = [&] {
    auto w = (*c)->writeV(&v, 1);
    if (!w.isOk()) fail("ping-pong write: " + w.toString());
    auto r = (*c)->readExact(rep, sizeof(rep));
    if (!r.isOk()) fail("ping-pong read: " + r.toString());
  };
  for (int i = 0; i < 2000; ++i) exchange();
  for (auto& x : t) {
    double s = now();
    exchange();
    x = now() - s;
  }
  c->reset();
  (*l)->close();
  int status = 0;
  waitpid(echo, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("ping-pong echo process failed");
  std::sort(t.begin(), t.end());
  return t[t.size() / 2] * 1e6;
}

double plainMemcpyGbps() {
  const size_t n = size_t(64) << 20;
  std::vector<uint8_t> a(n, 1), b(n, 2);
  memcpy(b.data(), a.data(), n);
  double best = 1e9;
  for (int i = 0; i < 5; ++i) {
    double s = now();
    memcpy(b.data(), a.data(), n);
    best = std::min(best, now() - s);
  }
  return n / best / 1e9;
}

// The best plain way to move 64 MiB each way over loopback TCP: a client and a server in two
// processes, plain sockets with the buffers the transport also asks for (8 MiB), no framing,
// one large write per transfer. Host-to-device is the client writing 64 MiB and the server
// answering one byte when it has all of it; device-to-host is the client asking with one byte
// and reading the server's 64 MiB. Best of 6 after one warm-up, as the stub's copies.
struct SocketGbps {
  double up = 0, down = 0;
};

// read(2) or write(2) until all n bytes have moved; false on an error or end of stream.
template <typename Io, typename Byte> bool moveAll(Io io, int fd, Byte* p, size_t n) {
  while (n > 0) {
    ssize_t k = io(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}
bool writeAll(int fd, const uint8_t* p, size_t n) { return moveAll(::write, fd, p, n); }
bool readAll(int fd, uint8_t* p, size_t n) { return moveAll(::read, fd, p, n); }

SocketGbps plainSocketGbps() {
  const size_t n = size_t(64) << 20;
  const int rounds = 7;
  auto tune = [](int fd) {
    int buf = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
  };
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  if (ls < 0) fail("socket baseline: socket()");
  tune(ls); // inherited by the accepted socket, set before the window is agreed
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(ls, 1) != 0 ||
      getsockname(ls, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    fail("socket baseline: bind/listen");
  pid_t server = fork();
  if (server == 0) {
    int fd = accept(ls, nullptr, nullptr);
    if (fd < 0) _exit(1);
    std::vector<uint8_t> in(n), out(n, 5);
    uint8_t one = 1;
    for (int i = 0; i < rounds; ++i) {
      if (!readAll(fd, in.data(), n) || !writeAll(fd, &one, 1)) _exit(1);
      if (in[0] != 3 || in[n - 1] != 3) _exit(2); // what the client sent
      if (!readAll(fd, &one, 1) || !writeAll(fd, out.data(), n)) _exit(1);
    }
    _exit(0);
  }
  close(ls);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("socket baseline: socket()");
  tune(fd);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) fail("socket baseline: connect");
  std::vector<uint8_t> data(n, 3), back(n);
  SocketGbps best;
  uint8_t one = 1;
  for (int i = 0; i < rounds; ++i) {
    double s = now();
    if (!writeAll(fd, data.data(), n) || !readAll(fd, &one, 1)) fail("socket baseline: upload");
    double up = now() - s;
    s = now();
    if (!writeAll(fd, &one, 1) || !readAll(fd, back.data(), n)) fail("socket baseline: download");
    double down = now() - s;
    if (i) {
      best.up = std::max(best.up, n / up / 1e9);
      best.down = std::max(best.down, n / down / 1e9);
    }
  }
  close(fd);
  int status = 0;
  waitpid(server, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("socket baseline: server process failed");
  if (back[0] != 5 || back[n - 1] != 5) fail("socket baseline: wrong bytes received");
  return best;
}

struct Worker {
  pid_t pid = -1;
  std::string address;
};

Worker startWorker(const char* bin, const char* driver, const std::string& listenAt,
                   const std::string& stateDir, const std::vector<std::string>& extra = {}) {
  int out[2];
  if (pipe(out) != 0) exit(2);
  Worker w;
  w.pid = fork();
  if (w.pid > 0) gWorkers.push_back(w.pid);
  if (w.pid == 0) {
    dup2(out[1], 1);
    setenv("TF_SOFTGPU_STATE_DIR", stateDir.c_str(), 1);
    std::vector<const char*> args = {bin, "--listen", listenAt.c_str(), "--driver", driver,
                                     "--token", "bench"};
    for (const auto& a : extra) args.push_back(a.c_str());
    args.push_back(nullptr);
    execv(bin, const_cast<char* const*>(args.data()));
    _exit(127);
  }
  close(out[1]);
  std::string line;
  char c;
  pollfd p{out[0], POLLIN, 0};
  while (poll(&p, 1, 10000) == 1 && read(out[0], &c, 1) == 1 && c != '\n') line += c;
  close(out[0]);
  if (line.rfind("listening on ", 0) == 0) w.address = line.substr(13);
  return w;
}

// Every figure a client prints; runClient fails the benchmark if one is missing or not positive.
const char* const kFigures[] = {"sync_p50_us",      "sync_p99_us",       "launch_issue_per_s", "launch_complete_per_s",
                                "htod_gbps",        "dtoh_gbps",         "pinned_htod_gbps",   "pinned_dtoh_gbps",
                                "startup_lazy_ms",  "startup_eager_ms",  "round_us",           "managed_round_us",
                                "managed_mirrored_round_us"};

const char* const kCopyFigures[] = {"htod_gbps", "dtoh_gbps", "htod_small_gbps", "dtoh_small_gbps"};

// copiesOnly: the client measures pageable copies only; env: more of its environment.
std::map<std::string, double> runClient(const char* self, const char* lib, const char* label,
                                        const std::string& worker, const std::string& stateDir,
                                        const std::string& tlsCa = "", bool copiesOnly = false,
                                        const std::vector<std::pair<std::string, std::string>>& env = {}) {
  int out[2];
  if (pipe(out) != 0) exit(2);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    if (!worker.empty()) setenv("TF_REMOTE_WORKER", worker.c_str(), 1);
    setenv("TF_REMOTE_TOKEN", "bench", 1);
    if (!tlsCa.empty()) setenv("TF_REMOTE_TLS_CA", tlsCa.c_str(), 1);
    setenv("TF_SOFTGPU_STATE_DIR", stateDir.c_str(), 1);
    if (copiesOnly) setenv("TF_BENCH_COPIES_ONLY", "1", 1);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    execl(self, self, "--client", lib, label, static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  std::map<std::string, double> r;
  size_t at = 0;
  while (at < text.size()) {
    size_t nl = text.find('\n', at);
    std::string line = text.substr(at, nl - at);
    size_t sp = line.find(' ');
    if (sp != std::string::npos) r[line.substr(0, sp)] = atof(line.c_str() + sp + 1);
    if (nl == std::string::npos) break;
    at = nl + 1;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail(std::string("client ") + label + " exited with status " + std::to_string(status));
  auto check = [&](const char* key) {
    auto it = r.find(std::string(label) + "." + key);
    if (it == r.end() || !std::isfinite(it->second) || it->second <= 0)
      fail(std::string("client ") + label + " gave no figure for " + key);
  };
  if (!copiesOnly)
    for (const char* key : kFigures) check(key);
  for (const char* key : kCopyFigures) check(key);
  return r;
}

} // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--client") return client(argv[2], argv[3]);
  if (argc != 4) {
    fprintf(stderr, "usage: bench_remoting WORKER_BIN SOFTGPU_LIB STUB_LIB\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  const char* workerBin = argv[1];
  const char* softgpu = argv[2];
  const char* stub = argv[3];
  char dir[] = "/tmp/tf-bench-remoting-XXXXXX";
  if (!mkdtemp(dir)) fail("mkdtemp");
  std::string state = gStateDir = dir;
  std::string shmName = "shm://tf-bench-" + std::to_string(getpid());
  Worker shm = startWorker(workerBin, softgpu, shmName, state);
  Worker tcp = startWorker(workerBin, softgpu, "tcp://127.0.0.1:0", state);
  std::string cert = state + "/worker.pem", key = state + "/worker.key";
  Status certified = tf::remoting::writeSelfSignedCertificateForTest(cert, key);
  Worker tls = startWorker(workerBin, softgpu, "tls://127.0.0.1:0", state,
                           {"--tls-cert", cert, "--tls-key", key});
  if (shm.address.empty() || tcp.address.empty() || !certified.isOk() || tls.address.empty())
    fail("workers did not start " + certified.toString());
  // The bandwidth baselines run before and after the clients, and the better figure counts:
  // on a shared machine a baseline measured only in a quiet (or a busy) moment would flatter
  // (or shame) the stub.
  double memcpyGbps = plainMemcpyGbps();
  SocketGbps plainTcp = plainSocketGbps();
  auto local = runClient(argv[0], softgpu, "local", "", state);
  auto viaShm = runClient(argv[0], stub, "shm", shm.address, state);
  // Pageable copies over shm through the stub's mapping of device memory (one copy) against
  // the same through the ring (two copies, TF_REMOTE_PAGEABLE_DIRECT=0), quiet and then beside
  // a process that keeps one core busy; memcpy measured beside it too.
  const std::vector<std::pair<std::string, std::string>> viaRing = {{"TF_REMOTE_PAGEABLE_DIRECT", "0"}};
  auto ringShm = runClient(argv[0], stub, "ring", shm.address, state, "", true, viaRing);
  pid_t spinner = fork();
  if (spinner == 0)
    for (;;) __asm__ volatile("");
  gWorkers.push_back(spinner);
  double memcpyBusy = plainMemcpyGbps();
  auto busyShm = runClient(argv[0], stub, "busy", shm.address, state, "", true);
  auto busyRing = runClient(argv[0], stub, "busyring", shm.address, state, "", true, viaRing);
  memcpyBusy = std::max(memcpyBusy, plainMemcpyGbps());
  kill(spinner, SIGKILL);
  waitpid(spinner, nullptr, 0);
  gWorkers.pop_back();
  auto viaTcp = runClient(argv[0], stub, "tcp", tcp.address, state);
  auto viaTls = runClient(argv[0], stub, "tls", tls.address, state, cert);
  stopWorkers();
  double pingShm = pingPongP50("shm://tf-bench-pp-" + std::to_string(getpid()));
  double pingTcp = pingPongP50("tcp://127.0.0.1:0");
  memcpyGbps = std::max(memcpyGbps, plainMemcpyGbps());
  SocketGbps after = plainSocketGbps();
  plainTcp.up = std::max(plainTcp.up, after.up);
  plainTcp.down = std::max(plainTcp.down, after.down);

  if (pingShm <= 0 || pingTcp <= 0 || memcpyGbps <= 0 || plainTcp.up <= 0 || plainTcp.down <= 0)
    fail("a baseline measured nothing");
  auto ratio = [](double a, double b) { return a / b; };
  printf("remoting benchmark (soft GPU worker; every baseline from this run)\n\n");
  printf("synchronous call round trip (cuStreamQuery), p50 / p99:\n");
  printf("  stub over shm   %8.2f us / %8.2f us   bare shm ping-pong %7.2f us   ratio %.2fx\n",
         viaShm["shm.sync_p50_us"], viaShm["shm.sync_p99_us"], pingShm,
         ratio(viaShm["shm.sync_p50_us"], pingShm));
  printf("  stub over tcp   %8.2f us / %8.2f us   bare tcp ping-pong %7.2f us   ratio %.2fx\n",
         viaTcp["tcp.sync_p50_us"], viaTcp["tcp.sync_p99_us"], pingTcp,
         ratio(viaTcp["tcp.sync_p50_us"], pingTcp));
  printf("  soft GPU local  %8.2f us\n\n", local["local.sync_p50_us"]);
  printf("asynchronous null-kernel launches, issued/s (completed/s incl. the final sync):\n");
  printf("  soft GPU local  %12.0f (%12.0f)\n", local["local.launch_issue_per_s"],
         local["local.launch_complete_per_s"]);
  printf("  stub over shm   %12.0f (%12.0f)   %.2fx of local completed\n",
         viaShm["shm.launch_issue_per_s"], viaShm["shm.launch_complete_per_s"],
         ratio(viaShm["shm.launch_complete_per_s"], local["local.launch_complete_per_s"]));
  printf("  stub over tcp   %12.0f (%12.0f)   %.2fx of local completed\n\n",
         viaTcp["tcp.launch_issue_per_s"], viaTcp["tcp.launch_complete_per_s"],
         ratio(viaTcp["tcp.launch_complete_per_s"], local["local.launch_complete_per_s"]));
  // 64 MiB copies, from pageable (`kind` "") and pinned ("pinned_") memory.
  auto copies = [&](const char* title, const std::string& kind) {
    auto get = [&](std::map<std::string, double>& r, const char* side, const char* dir) {
      return r[std::string(side) + "." + kind + dir + "_gbps"];
    };
    printf("%s, GB/s (host-to-device / device-to-host):\n", title);
    printf("  soft GPU local  %6.2f / %6.2f\n", get(local, "local", "htod"), get(local, "local", "dtoh"));
    printf("  stub over shm   %6.2f / %6.2f   %.0f%% / %.0f%% of memcpy\n", get(viaShm, "shm", "htod"),
           get(viaShm, "shm", "dtoh"), 100 * ratio(get(viaShm, "shm", "htod"), memcpyGbps),
           100 * ratio(get(viaShm, "shm", "dtoh"), memcpyGbps));
    printf("  stub over tcp   %6.2f / %6.2f   %.0f%% / %.0f%% of the plain TCP pair\n\n",
           get(viaTcp, "tcp", "htod"), get(viaTcp, "tcp", "dtoh"),
           100 * ratio(get(viaTcp, "tcp", "htod"), plainTcp.up),
           100 * ratio(get(viaTcp, "tcp", "dtoh"), plainTcp.down));
  };
  printf("baselines (the better of a run before and one after the stub's): plain memcpy %.2f GB/s;\n"
         "plain TCP client/server pair (two processes, 64 MiB writes) %.2f GB/s client to server /\n"
         "%.2f GB/s server to client\n",
         memcpyGbps, plainTcp.up, plainTcp.down);
  copies("64 MiB copies", "");
  printf("pageable copies over shm: the stub copying through its mapping of the device memory\n"
         "(one copy) / through the ring (two copies: TF_REMOTE_PAGEABLE_DIRECT=0), same run, GB/s\n"
         "and %% of memcpy (%.2f GB/s quiet, %.2f GB/s beside a busy core):\n", memcpyGbps, memcpyBusy);
  for (auto [what, key] : {std::pair{"64 MiB H2D", "htod_gbps"}, std::pair{"64 MiB D2H", "dtoh_gbps"},
                           std::pair{"256 KiB H2D", "htod_small_gbps"},
                           std::pair{"256 KiB D2H", "dtoh_small_gbps"}}) {
    double one = viaShm[std::string("shm.") + key], two = ringShm[std::string("ring.") + key];
    double oneBusy = busyShm[std::string("busy.") + key], twoBusy = busyRing[std::string("busyring.") + key];
    printf("  %-12s quiet %6.2f / %6.2f (%3.0f%% / %3.0f%%)   busy core %6.2f / %6.2f (%3.0f%% / %3.0f%%)\n",
           what, one, two, 100 * one / memcpyGbps, 100 * two / memcpyGbps, oneBusy, twoBusy,
           100 * oneBusy / memcpyBusy, 100 * twoBusy / memcpyBusy);
  }
  printf("\n");
  copies("64 MiB copies from and to pinned memory", "pinned_");
  // Rows of two figures per run (local, shm, tcp) and their ratio.
  auto pairs = [&](const char* first, const char* second, const char* unit) {
    for (auto* r : {&local, &viaShm, &viaTcp}) {
      const char* l = r == &local ? "local" : r == &viaShm ? "shm" : "tcp";
      double a = (*r)[std::string(l) + "." + first], b = (*r)[std::string(l) + "." + second];
      printf("  %-15s %8.2f %s / %8.2f %s   ratio %.2fx\n",
             r == &local ? "soft GPU local" : r == &viaShm ? "stub over shm" : "stub over tcp", a,
             unit, b, unit, ratio(a, b));
    }
  };
  printf("start-up, 20 libraries of 200 kernels, one kernel used: libraries (shipped and\n"
         "translated on first use) / the same images as modules (shipped and translated at load):\n");
  pairs("startup_lazy_ms", "startup_eager_ms", "ms");
  printf("\n");
  printf("launch + synchronise round, p50: with 64 MiB of managed memory (one page changed per\n"
         "round; over shm the worker's pages mapped by the stub, over tcp mirrored) / without:\n");
  pairs("managed_round_us", "round_us", "us");
  printf("the same with the managed memory mirrored over shm too (TF_REMOTE_SHARE_MANAGED=0) / without:\n");
  pairs("managed_mirrored_round_us", "round_us", "us");
  printf("\n");
  struct stat st {};
  printf("the cost of TLS (tls:// / tcp://, both through the stub; kernel TLS module %s):\n",
         stat("/sys/module/tls", &st) == 0 ? "loaded: records may be sealed by the kernel"
                                           : "not loaded: OpenSSL seals records in user space");
  for (auto [key, unit, what] : {std::tuple{"sync_p50_us", "us", "sync call p50"},
                                 std::tuple{"launch_issue_per_s", "/s", "launches issued"},
                                 std::tuple{"htod_gbps", "GB/s", "64 MiB H2D"},
                                 std::tuple{"dtoh_gbps", "GB/s", "64 MiB D2H"},
                                 std::tuple{"round_us", "us", "launch+sync round"}}) {
    double a = viaTls[std::string("tls.") + key], b = viaTcp[std::string("tcp.") + key];
    printf("  %-18s %10.2f %s / %10.2f %s   ratio %.2fx\n", what, a, unit, b, unit, ratio(a, b));
  }
  return 0;
}
