// The standalone mode: `tensor-fusion hypervisor | up | down | run | ps`.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <memory>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "cli/build_info.h"
#include "cli/commands.h"
#include "cli/standalone.h"
#include "common/self_path.h"
#include "common/units.h"
#include "hypervisor/cluster/node_registrar.h"
#include "hypervisor/cluster/pod_vgpus.h"
#include "k8s/api/well_known.h"
#include "hypervisor/hypervisor.h"
#include "k8s/config.h"
#include "remoting/worker/worker.h"

namespace tf::cli {
namespace {

namespace fs = std::filesystem;

// ---- hypervisor (foreground) ----------------------------------------------------------------

struct HypervisorFlags {
  std::string stateDir = defaultStateDir(), regionDir = "/dev/shm", host = "127.0.0.1", influx;
  int port = 0;
  unsigned tickMs = 200;
  double tflopsOversell = 1.0, vramExpand = 0.0;
  // VRAM tiers: idle TTLs for every QoS (TF_HYPERVISOR_SCHEDULING_CONFIG sets them per QoS).
  bool vramTiers = false;
  std::string freezeToMem, freezeToDisk, coldDir;
  // Cluster mode: register this node's GPUs with Kubernetes.
  bool cluster = false;
  std::string nodeName, kubeconfig, podRoot = k8s::api::kPodVgpuHostDir;
  unsigned heartbeatMs = 5000, missingGraceMs = 10000;
};

// Cluster mode's Kubernetes side, started once the hypervisor runs.
std::unique_ptr<hypervisor::NodeRegistrar> startRegistrar(const HypervisorFlags& f, hypervisor::Hypervisor& h,
                                                          std::unique_ptr<k8s::Client>& client) {
  auto config = f.kubeconfig.empty() ? k8s::loadDefaultConfig() : k8s::loadKubeconfigFiles({f.kubeconfig});
  if (!config) {
    fprintf(stderr, "tensor-fusion hypervisor: %s\n", config.status().toString().c_str());
    return nullptr;
  }
  auto c = k8s::Client::create(*config);
  if (!c) {
    fprintf(stderr, "tensor-fusion hypervisor: %s\n", c.status().toString().c_str());
    return nullptr;
  }
  client = std::move(*c);
  hypervisor::RegistrarOptions ro;
  ro.nodeName = f.nodeName;
  ro.heartbeat = std::chrono::milliseconds(f.heartbeatMs);
  ro.missingGrace = std::chrono::milliseconds(f.missingGraceMs);
  ro.version = TF_BUILD_VERSION;
  ro.diskPath = f.stateDir;
  auto r = std::make_unique<hypervisor::NodeRegistrar>(*client, ro, [&h] { return h.devices(); });
  r->start();
  return r;
}

// VRAM tiers from TensorFusion's scheduling config (env), then the command line over it.
Status tierPolicy(const HypervisorFlags& f, hypervisor::TierPolicy* p) {
  if (const char* config = getenv("TF_HYPERVISOR_SCHEDULING_CONFIG"); config && *config) {
    auto j = nlohmann::json::parse(config, nullptr, false);
    if (j.is_discarded()) return invalidArgument("TF_HYPERVISOR_SCHEDULING_CONFIG is not JSON");
    TF_RETURN_IF_ERROR(hypervisor::applySchedulingConfig(j, p).withContext("TF_HYPERVISOR_SCHEDULING_CONFIG"));
  }
  p->enabled = p->enabled || f.vramTiers || !f.freezeToMem.empty() || !f.freezeToDisk.empty();
  for (auto [text, ttl] : {std::pair{&f.freezeToMem, &p->freezeToMemMs}, std::pair{&f.freezeToDisk, &p->freezeToDiskMs}}) {
    if (text->empty()) continue;
    auto ms = units::parseDurationMs(*text);
    if (!ms) return ms.status().withContext(text == &f.freezeToMem ? "--freeze-to-mem" : "--freeze-to-disk");
    ttl->fill(*ms);
  }
  p->coldDir = f.coldDir;
  return Status::ok();
}

int runHypervisor(const HypervisorFlags& f) {
  hypervisor::HypervisorOptions o;
  o.stateDir = f.stateDir;
  o.regionDir = f.regionDir;
  o.host = f.host;
  o.port = f.port;
  o.tickMs = f.tickMs;
  o.influxLog = f.influx;
  o.oversubscription.tflopsOversell = f.tflopsOversell;
  o.oversubscription.vramExpandToHost = f.vramExpand;
  if (Status s = tierPolicy(f, &o.tiers); !s) {
    fprintf(stderr, "tensor-fusion hypervisor: %s\n", s.message().c_str());
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr); // the server threads inherit the mask
  hypervisor::Hypervisor h(o);
  if (Status s = h.start(); !s) {
    fprintf(stderr, "tensor-fusion hypervisor: %s\n", s.message().c_str());
    return 1;
  }
  printf("hypervisor listening on %s (%s, %zu device(s)), state in %s\n", h.address().c_str(),
         h.softGpu() ? "soft GPU" : "NVIDIA driver", h.devices().size(), f.stateDir.c_str());
  fflush(stdout);
  std::unique_ptr<k8s::Client> client;
  std::unique_ptr<hypervisor::NodeRegistrar> registrar;
  std::unique_ptr<hypervisor::PodVgpuSync> podVgpus;
  if (f.cluster) {
    if (f.nodeName.empty()) {
      fprintf(stderr, "tensor-fusion hypervisor: --cluster needs --node-name (the Kubernetes node)\n");
      h.stop();
      return 2;
    }
    registrar = startRegistrar(f, h, client);
    if (!registrar) {
      h.stop();
      return 1;
    }
    hypervisor::PodVgpuOptions po;
    po.nodeName = f.nodeName;
    po.podRoot = f.podRoot;
    podVgpus = std::make_unique<hypervisor::PodVgpuSync>(*client, h, po);
    podVgpus->start();
    printf("hypervisor registering node %s with Kubernetes; pods' vGPUs under %s\n", f.nodeName.c_str(),
           f.podRoot.c_str());
    fflush(stdout);
  }
  int sig = 0;
  sigwait(&set, &sig);
  if (podVgpus) podVgpus->stop();
  if (registrar) registrar->stop(/*markStopped=*/true);
  h.stop();
  std::error_code ec;
  fs::remove(fs::path(f.stateDir) / "hypervisor.json", ec);
  return 0;
}

// ---- up / down ------------------------------------------------------------------------------

bool healthy(const HypervisorInfo& h) {
  auto r = http(h, "GET", "/readyz");
  return r && r->status == 200;
}

int runUp(const HypervisorFlags& f) {
  if (auto h = findHypervisor(f.stateDir); h && healthy(*h)) {
    printf("a hypervisor is already running at %s:%d (pid %d)\n", h->host.c_str(), h->port, h->pid);
    return 0;
  }
  std::error_code ec;
  fs::create_directories(f.stateDir, ec);
  fs::remove(fs::path(f.stateDir) / "hypervisor.json", ec);
  const std::string self = selfPath();
  if (self.empty()) return 1;
  const char* exe = self.c_str();
  const std::string log = f.stateDir + "/hypervisor.log";
  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0) dup2(nul, 0);
    std::string port = std::to_string(f.port), tick = std::to_string(f.tickMs);
    // Every flag `up` accepts reaches the daemon (the oversubscription ones were once dropped).
    std::vector<std::string> args = {exe, "hypervisor", "--state-dir", f.stateDir, "--region-dir",
                                     f.regionDir, "--host", f.host, "--port", port, "--tick-ms", tick,
                                     "--tflops-oversell", std::to_string(f.tflopsOversell),
                                     "--vram-expand", std::to_string(f.vramExpand)};
    if (!f.influx.empty()) {
      args.push_back("--influx-log");
      args.push_back(f.influx);
    }
    if (f.vramTiers) args.push_back("--vram-tiers");
    for (auto [flag, value] : {std::pair{"--freeze-to-mem", &f.freezeToMem}, std::pair{"--freeze-to-disk", &f.freezeToDisk},
                               std::pair{"--cold-dir", &f.coldDir}})
      if (!value->empty()) args.insert(args.end(), {flag, *value});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(exe, argv.data());
    _exit(127);
  }
  for (int i = 0; i < 300; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    int st;
    if (waitpid(pid, &st, WNOHANG) == pid) {
      fprintf(stderr, "tensor-fusion up: the hypervisor exited; see %s\n", log.c_str());
      return 1;
    }
    auto h = findHypervisor(f.stateDir);
    if (h && h->pid == pid && healthy(*h)) {
      printf("hypervisor running at %s:%d (pid %d, %s), state in %s\n", h->host.c_str(), h->port,
             pid, h->softGpu ? "soft GPU" : "NVIDIA driver", f.stateDir.c_str());
      return 0;
    }
  }
  fprintf(stderr, "tensor-fusion up: the hypervisor did not become ready in 15 s; see %s\n", log.c_str());
  return 1;
}

int runDown(const std::string& stateDir, bool all) {
  auto h = findHypervisor(stateDir);
  if (!h) {
    printf("no hypervisor is running\n");
    return 0;
  }
  // Workers outlive their hypervisor (their programs keep running through a restart); --all
  // returns every vGPU first, which stops their workers.
  if (all) {
    auto vgpus = http(*h, "GET", "/api/v1/vgpus");
    int returned = 0, failed = 0;
    if (vgpus && vgpus->status == 200)
      for (const auto& v : vgpus->body["vgpus"]) {
        auto r = http(*h, "DELETE", "/api/v1/vgpus/" + v["id"].get<std::string>());
        if (r && r->status == 204) ++returned;
        else ++failed;
      }
    printf("returned %d vGPU(s)%s\n", returned, failed ? (", " + std::to_string(failed) + " could not be").c_str() : "");
  }
  kill(h->pid, SIGTERM);
  for (int i = 0; i < 200 && kill(h->pid, 0) == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (kill(h->pid, 0) == 0) kill(h->pid, SIGKILL);
  std::error_code ec;
  fs::remove(fs::path(stateDir) / "hypervisor.json", ec);
  printf("hypervisor (pid %d) stopped\n", h->pid);
  return 0;
}

// ---- run ------------------------------------------------------------------------------------

struct RunFlags {
  std::string stateDir = defaultStateDir(), compute, tflops, vram, qos = "medium", isolation = "soft",
              remote, name;
  int gpus = 1;
  std::vector<std::string> command;
};

volatile sig_atomic_t childPid = 0;
void forward(int sig) {
  if (childPid > 0) kill(childPid, sig);
}

int runRun(const RunFlags& f) {
  if (f.command.empty()) {
    fprintf(stderr, "tensor-fusion run: give the command after --\n");
    return 2;
  }
  std::string isolation = f.isolation;
  if (!f.remote.empty()) isolation = "remote"; // a vGPU from that node's hypervisor
  if (isolation != "soft" && isolation != "hard" && isolation != "remote") {
    fprintf(stderr, "tensor-fusion run: --isolation must be soft, hard or remote\n");
    return 2;
  }
  if (!f.remote.empty()) setenv("TF_HYPERVISOR", f.remote.c_str(), 1);
  auto h = findHypervisor(f.stateDir);
  if (!h) {
    fprintf(stderr, "tensor-fusion run: %s\n", h.status().message().c_str());
    return 1;
  }
  nlohmann::json req = {{"qos", f.qos}, {"isolation", isolation}};
  if (!f.name.empty()) req["name"] = f.name;
  if (f.gpus != 1) req["count"] = f.gpus;
  if (!f.vram.empty()) {
    auto bytes = units::parseBytes(f.vram);
    if (!bytes) {
      fprintf(stderr, "tensor-fusion run: --vram: %s\n", bytes.status().message().c_str());
      return 2;
    }
    req["vramLimit"] = *bytes;
  } else {
    req["vramLimit"] = "1GiB";
  }
  if (!f.tflops.empty()) req["tflopsLimit"] = atof(f.tflops.c_str());
  if (!f.compute.empty()) {
    std::string c = f.compute;
    if (!c.empty() && c.back() == '%') c.pop_back();
    char* end = nullptr;
    double p = strtod(c.c_str(), &end);
    if (end == c.c_str() || *end) {
      fprintf(stderr, "tensor-fusion run: --compute '%s' is not a percent\n", f.compute.c_str());
      return 2;
    }
    req["computeLimit"] = p;
  }
  auto created = http(*h, "POST", "/api/v1/vgpus", &req);
  if (!created) {
    fprintf(stderr, "tensor-fusion run: %s\n", created.status().message().c_str());
    return 1;
  }
  if (created->status != 201) {
    std::string why = created->body.is_object() ? created->body.value("error", "refused") : "refused";
    fprintf(stderr, "tensor-fusion run: the vGPU was refused: %s\n", why.c_str());
    return 1;
  }
  const std::string id = created->body["id"].get<std::string>();
  const std::string region = created->body["region"].get<std::string>();
  const std::string libs = libraryDir();

  struct sigaction sa{};
  sa.sa_handler = forward;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  // Held until childPid is set, so a signal that arrives right after the fork is forwarded too.
  sigset_t forwarded, oldMask;
  sigemptyset(&forwarded);
  sigaddset(&forwarded, SIGINT);
  sigaddset(&forwarded, SIGTERM);
  sigprocmask(SIG_BLOCK, &forwarded, &oldMask);
  pid_t pid = fork();
  if (pid == 0) {
    sigprocmask(SIG_SETMASK, &oldMask, nullptr);
    setenv("TF_VGPU_ID", id.c_str(), 1);
    std::string first; // library directory that must come first
    if (isolation == "soft") {
      // The application keeps its driver; the limiter goes in front of it.
      std::string preload = libs + "/libtensor-fusion-limiter.so";
      if (const char* old = getenv("LD_PRELOAD"); old && *old) preload += std::string(":") + old;
      setenv("LD_PRELOAD", preload.c_str(), 1);
      setenv("TF_VGPU_REGION", region.c_str(), 1);
      if (h->softGpu) first = libs; // no GPU driver here: the soft GPU's libraries
    } else {
      // The application gets the client stub; its calls run on the vGPU's worker.
      const auto& w = created->body["worker"];
      setenv("TF_REMOTE_WORKER", w["address"].get<std::string>().c_str(), 1);
      setenv("TF_REMOTE_TOKEN", w["token"].get<std::string>().c_str(), 1);
      first = libs + "/remote";
    }
    if (!first.empty()) {
      std::string path = first;
      if (const char* old = getenv("LD_LIBRARY_PATH"); old && *old) path += std::string(":") + old;
      setenv("LD_LIBRARY_PATH", path.c_str(), 1);
    }
    std::vector<char*> argv;
    for (auto& a : const_cast<std::vector<std::string>&>(f.command)) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    fprintf(stderr, "tensor-fusion run: cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  childPid = pid;
  sigprocmask(SIG_SETMASK, &oldMask, nullptr);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  // The hypervisor may have been restarted meanwhile (on another port): look it up again.
  auto now = findHypervisor(f.stateDir);
  auto deleted = http(now ? *now : *h, "DELETE", "/api/v1/vgpus/" + id);
  if (!deleted || deleted->status != 204)
    fprintf(stderr, "tensor-fusion run: could not return vGPU %s to the hypervisor\n", id.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// ---- migrate --------------------------------------------------------------------------------

int runMigrate(const std::string& stateDir, const std::string& vgpu, const std::string& to) {
  auto h = findHypervisor(stateDir);
  if (!h) {
    fprintf(stderr, "tensor-fusion migrate: %s\n", h.status().message().c_str());
    return 1;
  }
  nlohmann::json body = {{"device", to}};
  auto r = http(*h, "POST", "/api/v1/vgpus/" + vgpu + "/migrate", &body);
  if (!r) {
    fprintf(stderr, "tensor-fusion migrate: %s\n", r.status().message().c_str());
    return 1;
  }
  if (r->status != 200) {
    fprintf(stderr, "tensor-fusion migrate: %s\n", r->body.value("error", std::string("failed")).c_str());
    return 1;
  }
  const auto& m = r->body;
  printf("%s moved from %s to %s: %d of %d client(s), %s, longest pause %.1f ms\n",
         m["vgpu"].get<std::string>().c_str(), m["from"].get<std::string>().c_str(), m["to"].get<std::string>().c_str(),
         m["moved"].get<int>(), m["clients"].get<int>(), units::formatBytes(m["bytes"].get<uint64_t>()).c_str(),
         m["maxPauseMs"].get<double>());
  for (const auto& f : m["failures"]) printf("  stayed: %s\n", f.get<std::string>().c_str());
  return 0;
}

// ---- ps -------------------------------------------------------------------------------------

int runPs(const std::string& stateDir, bool json) {
  auto h = findHypervisor(stateDir);
  if (!h) {
    fprintf(stderr, "tensor-fusion ps: %s\n", h.status().message().c_str());
    return 1;
  }
  auto devs = http(*h, "GET", "/api/v1/devices");
  auto vgpus = http(*h, "GET", "/api/v1/vgpus");
  if (!devs || !vgpus) {
    fprintf(stderr, "tensor-fusion ps: %s\n", (!devs ? devs.status() : vgpus.status()).message().c_str());
    return 1;
  }
  if (json) {
    printf("%s\n", nlohmann::json({{"devices", devs->body["devices"]}, {"vgpus", vgpus->body["vgpus"]}}).dump(2).c_str());
    return 0;
  }
  printf("%-4s %-26s %-24s %5s  %s\n", "GPU", "NAME", "MEMORY USED / TOTAL", "UTIL", "UUID");
  for (const auto& d : devs->body["devices"]) {
    std::string mem = units::formatBytes(d["memoryUsed"].get<uint64_t>()) + " / " +
                      units::formatBytes(d["memoryTotal"].get<uint64_t>());
    printf("%-4d %-26s %-24s %4u%%  %s%s\n", d["index"].get<int>(), d["name"].get<std::string>().c_str(),
           mem.c_str(), d["utilization"].get<unsigned>(), d["uuid"].get<std::string>().c_str(),
           d["present"].get<bool>() ? "" : "  (gone)");
  }
  printf("\n%-16s %-4s %-22s %-22s %-9s %-9s %-30s %s\n", "VGPU", "GPU", "COMPUTE LIMIT/NOW/USED",
         "VRAM USED / LIMIT", "QOS", "ISOLATION", "TIER (BYTES PER TIER)", "PIDS");
  if (vgpus->body["vgpus"].empty()) printf("(none)\n");
  for (const auto& v : vgpus->body["vgpus"]) {
    const auto& u = v["usage"];
    char compute[64];
    snprintf(compute, sizeof compute, "%.0f%% / %.0f%% / %.1f%%", v["computeLimitPercent"].get<double>(),
             u["computeAllowedPercent"].get<double>(), u["computeShare"].get<double>() * 100);
    std::string vram = units::formatBytes(u["vramUsed"].get<uint64_t>()) + " / " +
                       units::formatBytes(v["request"]["vramLimit"].get<uint64_t>());
    std::string pids, gpus;
    for (const auto& p : u["pids"]) pids += (pids.empty() ? "" : ",") + std::to_string(p.get<int>());
    for (const auto& g : v["devices"]) gpus += (gpus.empty() ? "" : ",") + std::to_string(g["index"].get<int>());
    // Where a tiered vGPU's memory is: "warm (hot 0 B, warm 2 GiB)".
    std::string tier = "-";
    if (u.contains("tiers")) {
      const auto& t = u["tiers"];
      tier = t["state"].get<std::string>() + " (";
      bool first = true;
      for (const char* k : {"hot", "warm", "cold"}) {
        const uint64_t b = t[std::string(k) + "Bytes"].get<uint64_t>();
        if (b == 0 && std::string(k) != "hot") continue;
        tier += std::string(first ? "" : ", ") + k + " " + units::formatBytes(b);
        first = false;
      }
      tier += ")";
    }
    printf("%-16s %-4s %-22s %-22s %-9s %-9s %-30s %s\n", v["id"].get<std::string>().c_str(), gpus.c_str(), compute,
           vram.c_str(), v["request"]["qos"].get<std::string>().c_str(),
           v["request"]["isolation"].get<std::string>().c_str(), tier.c_str(), pids.empty() ? "-" : pids.c_str());
  }
  return 0;
}

} // namespace

void addStandaloneCommands(CLI::App& app, int& exitCode) {
  static HypervisorFlags hv;
  auto addHypervisorFlags = [](CLI::App* c) {
    c->add_option("--state-dir", hv.stateDir, "State directory (TF_HOME)");
    c->add_option("--region-dir", hv.regionDir, "Where vGPU quota regions are made");
    c->add_option("--host", hv.host, "Address to listen on");
    c->add_option("--port", hv.port, "Port (0: any free port)");
    c->add_option("--tick-ms", hv.tickMs, "Quota controller period")->check(CLI::Range(20u, 10000u));
    c->add_option("--tflops-oversell", hv.tflopsOversell, "Compute requests may add up to this many devices");
    c->add_option("--vram-expand", hv.vramExpand, "VRAM requests may add up to (1 + this) x device memory");
    c->add_option("--influx-log", hv.influx, "Append Influx line-protocol metrics to this file");
    c->add_flag("--vram-tiers", hv.vramTiers,
                "Hard/remote vGPUs' memory can leave the device (to host memory, then disk): idle ones are "
                "frozen to make room for others (with --vram-expand, their VRAM may add up past the device's)");
    c->add_option("--freeze-to-mem", hv.freezeToMem, "Idle this long (e.g. 5m), a vGPU's memory goes to host memory");
    c->add_option("--freeze-to-disk", hv.freezeToDisk, "Idle this long, to disk");
    c->add_option("--cold-dir", hv.coldDir, "Where frozen memory goes on disk (default: <state dir>/cold)");
  };
  auto* hyper = app.add_subcommand("hypervisor", "Run this node's hypervisor in the foreground");
  addHypervisorFlags(hyper);
  hyper->add_flag("--cluster", hv.cluster, "Register this node's GPUs with Kubernetes (GPU objects, GPUNode status)");
  hyper->add_option("--node-name", hv.nodeName, "The Kubernetes node this hypervisor runs on (cluster mode)");
  hyper->add_option("--kubeconfig", hv.kubeconfig, "Kubeconfig (default: KUBECONFIG, ~/.kube/config, in-cluster)");
  hyper->add_option("--pod-root", hv.podRoot,
                    "Cluster mode: host directory of the pods' vGPU regions (<root>/<namespace>/<pod UID>/region)");
  hyper->add_option("--heartbeat-ms", hv.heartbeatMs, "How often the GPUNode heartbeat is written")
      ->check(CLI::Range(200u, 60000u));
  hyper->add_option("--missing-grace-ms", hv.missingGraceMs, "A GPU gone this long (and idle) is removed")
      ->check(CLI::Range(0u, 3600000u));
  hyper->callback([&exitCode] { exitCode = runHypervisor(hv); });
  auto* up = app.add_subcommand("up", "Start the hypervisor in the background (soft GPU if there is no GPU)");
  addHypervisorFlags(up);
  up->callback([&exitCode] { exitCode = runUp(hv); });
  static std::string downDir = defaultStateDir();
  static bool downAll = false;
  auto* down = app.add_subcommand("down", "Stop the hypervisor started by `up`");
  down->add_option("--state-dir", downDir, "State directory (TF_HOME)");
  down->add_flag("--all", downAll, "Return every vGPU first (their workers stop; their programs lose the GPU)");
  down->callback([&exitCode] { exitCode = runDown(downDir, downAll); });

  auto* worker = app.add_subcommand("worker", "Serve GPU calls of remote clients (GPU-over-IP); "
                                               "see tensor-fusion worker --listen ... --driver ...");
  worker->allow_extras();
  worker->prefix_command();
  worker->callback([worker, &exitCode] {
    std::vector<std::string> args = {"tensor-fusion worker"};
    for (const auto& a : worker->remaining()) args.push_back(a);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    exitCode = remoting::runWorker(static_cast<int>(argv.size()), argv.data());
  });

  static RunFlags run;
  auto* r = app.add_subcommand("run", "Run a command inside a vGPU, returned when it exits");
  r->add_option("--compute", run.compute, "Compute limit as a percent of a device (e.g. 30%)");
  r->add_option("--tflops", run.tflops, "Compute limit in FP16 TFLOPS");
  r->add_option("--vram", run.vram, "VRAM limit (default 1GiB)");
  r->add_option("--gpus", run.gpus, "How many devices the vGPU spans (the limits apply to each)")
      ->check(CLI::Range(1, hypervisor::kMaxVgpuDevices));
  r->add_option("--qos", run.qos, "low, medium, high or critical");
  r->add_option("--isolation", run.isolation,
                "soft (limiter preloaded), hard (a limited worker on this node, over shared memory) "
                "or remote (a limited worker over TCP)");
  r->add_option("--remote", run.remote, "host:port of another node's hypervisor: a remote vGPU there");
  r->add_option("--name", run.name, "vGPU name");
  r->add_option("--state-dir", run.stateDir, "State directory (TF_HOME)");
  r->add_option("command", run.command, "The command, after --")->required();
  r->get_option("--tflops")->excludes(r->get_option("--compute"));
  r->callback([&exitCode] { exitCode = runRun(run); });

  static std::string migrateDir = defaultStateDir(), migrateVgpu, migrateTo;
  auto* mig = app.add_subcommand("migrate", "Move a vGPU and its running programs to other GPUs of the node, or to another node");
  mig->add_option("vgpu", migrateVgpu, "The vGPU (its id, as tensor-fusion ps shows)")->required();
  mig->add_option("--to", migrateTo, "The GPU(s) to move to: an index or UUID per device of the vGPU, comma-separated (GPU[,GPU...]), or another node's hypervisor (host:port)")->required();
  mig->add_option("--state-dir", migrateDir, "State directory (TF_HOME)");
  mig->callback([&exitCode] { exitCode = runMigrate(migrateDir, migrateVgpu, migrateTo); });

  static std::string psDir = defaultStateDir();
  static bool psJson = false;
  auto* ps = app.add_subcommand("ps", "Show devices and vGPUs with live usage");
  ps->add_option("--state-dir", psDir, "State directory (TF_HOME)");
  ps->add_flag("--json", psJson, "Machine-readable output");
  ps->callback([&exitCode] { exitCode = runPs(psDir, psJson); });
}

} // namespace tf::cli
