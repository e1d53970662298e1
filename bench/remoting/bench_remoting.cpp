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
//     and beside the soft GPU's own copies;
//   - the cost of TLS: the same figures over tls:// beside plain TCP (same run).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <map>
#include <poll.h>
#include <signal.h>
#include <string>
#include <tuple>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
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

  // 64 MiB copies.
  const size_t n = size_t(64) << 20;
  std::vector<uint8_t> host(n, 7), back(n);
  CUdeviceptr d;
  CK(alloc(&d, n));
  CK(htod(d, host.data(), n));
  CK(dtoh(back.data(), d, n));
  double best = 1e9, bestBack = 1e9;
  for (int i = 0; i < 5; ++i) {
    s = now();
    CK(htod(d, host.data(), n));
    best = std::min(best, now() - s);
    s = now();
    CK(dtoh(back.data(), d, n));
    bestBack = std::min(bestBack, now() - s);
  }
  if (memcmp(host.data(), back.data(), n) != 0) {
    fprintf(stderr, "copy mismatch\n");
    return 4;
  }
  printf("%s.htod_gbps %.3f\n", label, n / best / 1e9);
  printf("%s.dtoh_gbps %.3f\n", label, n / bestBack / 1e9);

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
  // written once), the host changing one page of it per round. Through the stub every round
  // compares the mirror with its shadow on both sides.
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
  return 0;
}

// Bare-transport ping-pong with the frame sizes of a cuStreamQuery call (request: header +
// args; reply: header + args), against an echo server in another process, as the worker is.
double pingPongP50(const std::string& address) {
  using namespace tf::remoting;
  auto l = listen(address);
  if (!l) return -1;
  std::string where = (*l)->address();
  pid_t echo = fork();
  if (echo == 0) {
    auto t = (*l)->accept();
    if (!t) _exit(1);
    uint8_t buf[256];
    for (;;) {
      if (!(*t)->readExact(buf, kHeaderSize + 18).isOk()) _exit(0);
      iovec v{buf, kHeaderSize + 5};
      if (!(*t)->writeV(&v, 1).isOk()) _exit(0);
    }
  }
  auto c = connect(where, 2000);
  if (!c) return -1;
  std::vector<double> t(20000);
  uint8_t req[kHeaderSize + 18] = {}, rep[kHeaderSize + 5];
  iovec v{req, sizeof(req)};
  for (int i = 0; i < 2000; ++i) {
    (void)(*c)->writeV(&v, 1);
    (void)(*c)->readExact(rep, sizeof(rep));
  }
  for (auto& x : t) {
    double s = now();
    (void)(*c)->writeV(&v, 1);
    (void)(*c)->readExact(rep, sizeof(rep));
    x = now() - s;
  }
  c->reset();
  (*l)->close();
  waitpid(echo, nullptr, 0);
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

// TCP stream bandwidth over loopback: 64 MiB through a socket to a reader thread.
double plainSocketGbps() {
  using namespace tf::remoting;
  auto l = listen("tcp://127.0.0.1:0");
  const size_t n = size_t(64) << 20;
  std::thread sink([&] {
    auto t = (*l)->accept();
    std::vector<uint8_t> buf(n);
    for (int i = 0; i < 6; ++i) {
      if (!(*t)->readExact(buf.data(), n).isOk()) return;
      uint8_t ack = 1;
      iovec v{&ack, 1};
      (void)(*t)->writeV(&v, 1);
    }
  });
  auto c = connect((*l)->address(), 2000);
  std::vector<uint8_t> data(n, 3);
  double best = 1e9;
  for (int i = 0; i < 6; ++i) {
    double s = now();
    iovec v{data.data(), n};
    (void)(*c)->writeV(&v, 1);
    uint8_t ack;
    (void)(*c)->readExact(&ack, 1);
    if (i) best = std::min(best, now() - s);
  }
  sink.join();
  return n / best / 1e9;
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

std::map<std::string, double> runClient(const char* self, const char* lib, const char* label,
                                        const std::string& worker, const std::string& stateDir,
                                        const std::string& tlsCa = "") {
  int out[2];
  if (pipe(out) != 0) exit(2);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    if (!worker.empty()) setenv("TF_REMOTE_WORKER", worker.c_str(), 1);
    setenv("TF_REMOTE_TOKEN", "bench", 1);
    if (!tlsCa.empty()) setenv("TF_REMOTE_TLS_CA", tlsCa.c_str(), 1);
    setenv("TF_SOFTGPU_STATE_DIR", stateDir.c_str(), 1);
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
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fprintf(stderr, "client %s failed\n", label);
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
  std::string state = mkdtemp(dir);
  std::string shmName = "shm://tf-bench-" + std::to_string(getpid());
  Worker shm = startWorker(workerBin, softgpu, shmName, state);
  Worker tcp = startWorker(workerBin, softgpu, "tcp://127.0.0.1:0", state);
  std::string cert = state + "/worker.pem", key = state + "/worker.key";
  Status certified = tf::remoting::writeSelfSignedCertificateForTest(cert, key);
  Worker tls = startWorker(workerBin, softgpu, "tls://127.0.0.1:0", state,
                           {"--tls-cert", cert, "--tls-key", key});
  if (shm.address.empty() || tcp.address.empty() || !certified.isOk() || tls.address.empty()) {
    fprintf(stderr, "workers did not start %s\n", certified.toString().c_str());
    return 1;
  }
  auto local = runClient(argv[0], softgpu, "local", "", state);
  auto viaShm = runClient(argv[0], stub, "shm", shm.address, state);
  auto viaTcp = runClient(argv[0], stub, "tcp", tcp.address, state);
  auto viaTls = runClient(argv[0], stub, "tls", tls.address, state, cert);
  for (Worker* w : {&shm, &tcp, &tls}) {
    kill(w->pid, SIGKILL);
    waitpid(w->pid, nullptr, 0);
  }
  double pingShm = pingPongP50("shm://tf-bench-pp-" + std::to_string(getpid()));
  double pingTcp = pingPongP50("tcp://127.0.0.1:0");
  double memcpyGbps = plainMemcpyGbps();
  double socketGbps = plainSocketGbps();
  std::string rm = "rm -rf " + state;
  (void)!system(rm.c_str());

  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0; };
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
    printf("  stub over tcp   %6.2f / %6.2f   %.0f%% / %.0f%% of the socket stream\n\n",
           get(viaTcp, "tcp", "htod"), get(viaTcp, "tcp", "dtoh"),
           100 * ratio(get(viaTcp, "tcp", "htod"), socketGbps),
           100 * ratio(get(viaTcp, "tcp", "dtoh"), socketGbps));
  };
  printf("baselines: plain memcpy %.2f GB/s, plain TCP socket stream %.2f GB/s\n", memcpyGbps, socketGbps);
  copies("64 MiB copies", "");
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
         "round; mirrored through the stub) / without:\n");
  pairs("managed_round_us", "round_us", "us");
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
