#include "remoting/worker/worker.h"
#include "remoting/tls.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <signal.h>
#include <algorithm>
#include <thread>

#include "common/log.h"
#include "cuda/catalog.h"

namespace tf::remoting {

Result<std::unique_ptr<Worker>> Worker::start(const WorkerOptions& o) {
  std::unique_ptr<Worker> w(new Worker());
  for (const std::string* admin : {&o.adminToken, &o.migrationToken})
    if (!admin->empty() &&
        (*admin == o.token || std::find(o.moreTokens.begin(), o.moreTokens.end(), *admin) != o.moreTokens.end()))
      return invalidArgument("an admin or migration token must not be a tenant's token");
  if (!o.migrationToken.empty() && o.migrationToken == o.adminToken)
    return invalidArgument("the migration token must not be the admin token");
  auto api = DriverApi::load(o.driver);
  if (!api) return api.status();
  w->shared_.driver = std::move(*api);
  w->shared_.tokens = {o.token};
  w->shared_.tokens.insert(w->shared_.tokens.end(), o.moreTokens.begin(), o.moreTokens.end());
  w->shared_.verbose = o.verbose;
  w->shared_.tiers = o.tiers;
  w->shared_.tiers.enabled = o.tiers.enabled || o.tiers.freezeIdleMs > 0;
  w->shared_.adminToken = o.adminToken;
  w->shared_.migrationToken = o.migrationToken;
  w->shared_.remapHandles = o.remapHandles;
  auto init = w->shared_.driver->fn<decltype(&::cuInit)>(cuda::FnId::cuInit);
  CUresult r = init(0);
  if (r != CUDA_SUCCESS) return unavailable("cuInit failed on " + o.driver + ": " + std::to_string(r));
  auto l = listen(o.listen, o.tls);
  if (!l) return l.status();
  w->listener_ = std::move(*l);
  Worker* self = w.get();
  w->gate_ = std::make_unique<Gate>(o.gate, [self](TransportPtr t, Status framing,
                                                   const FrameHeader& h, std::vector<uint8_t>& args) {
    self->onFirstFrame(std::move(t), std::move(framing), h, args);
  });
  return w;
}

void Worker::onFirstFrame(TransportPtr t, Status framing, const FrameHeader& h,
                          std::vector<uint8_t>& args) {
  std::shared_ptr<Session> s = std::make_shared<Session>(shared_, std::move(t));
  Session::Role role = s->handshake(std::move(framing), h, args);
  if (role == Session::Role::Refused) return; // answered; the connection closes here
  if (role == Session::Role::Resume) { // a session moved here: it takes over the connection
    s = s->resumed();
    role = Session::Role::Calls;
  }
  active_.fetch_add(1);
  std::thread([this, s = std::move(s), role]() mutable {
    s->run(role);
    // Everything the thread holds goes before it counts itself out: the process may end as
    // soon as no session is active (worker_main.cpp).
    s.reset();
    tlsThreadDone();
    active_.fetch_sub(1);
  }).detach();
}

void Worker::serve() {
  while (!stopping_.load()) {
    auto t = listener_->accept();
    if (!t) {
      if (stopping_.load()) break;
      TF_LOG(Warn, "worker: %s", t.status().toString().c_str());
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    gate_->admit(std::move(*t));
  }
}

void Worker::stop() {
  stopping_.store(true);
  listener_->close();
  gate_->stop();
}

namespace {

void usage() {
  fprintf(stderr,
          "usage: tensor-fusion-worker --listen tcp://HOST:PORT|tls://HOST:PORT|shm://NAME\n"
          "         --driver /path/libcuda.so.1 [--token T [--token T2 ...]] [--verbose]\n"
          "         [--tls-cert CERT.pem --tls-key KEY.pem]      (for tls://)\n"
          "         [--handshake-timeout-ms 5000] [--max-pending 64] [--max-pending-per-peer 8]\n"
          "  the token may also come from TF_REMOTE_TOKEN; each further --token is a tenant of\n"
          "  its own (clients of different tenants cannot open each other's IPC handles). A connection that has not sent its\n"
          "  Hello within the timeout is closed; when more are waiting than allowed (in all, or\n"
          "  from one address), the oldest waiting one is closed.\n"
          "         [--freeze-idle-ms N [--cold-after-ms N] [--cold-dir /var/tmp] [--thaw-wait-ms 5000]]\n"
          "  VRAM tiers: a client idle for N ms has its cuMemAlloc memory moved to host memory (and\n"
          "  after --cold-after-ms more to an unlinked file in --cold-dir), giving the device memory\n"
          "  back; its next call brings it back at the same addresses. Its memory cannot be exported\n"
          "  by IPC handle then.\n"
          "         [--tiers] [--alloc-wait-ms N] [--admin-token T]\n"
          "  --tiers makes cuMemAlloc memory tiered without idle freezes; the admin (the node's\n"
          "  hypervisor, token also from TF_WORKER_ADMIN_TOKEN) reads each client's tiers and\n"
          "  orders freezes and thaws; an allocation finding no room waits up to --alloc-wait-ms.\n"
          "         [--migration-token T]\n"
          "  (also TF_WORKER_MIGRATION_TOKEN) lets another node's hypervisor move a client here (Adopt\n"
          "  only: it cannot read or order the worker's clients).\n"
          "         [--remap-handles]\n"
          "  every handle a client gets (context, stream, event, module, function, graph, node, array...)\n"
          "  has a value of its own, not the driver's, translated by the worker: how a session moved\n"
          "  from another worker runs (texture and surface objects keep the driver's values).\n");
}

// A positive integer option, or -1.
long positive(const char* v) {
  char* end = nullptr;
  long n = strtol(v, &end, 10);
  return end && *end == 0 && n > 0 ? n : -1;
}

} // namespace

int runWorker(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  WorkerOptions o;
  if (const char* t = getenv("TF_REMOTE_TOKEN")) o.token = t;
  if (const char* t = getenv("TF_WORKER_ADMIN_TOKEN")) o.adminToken = t;
  if (const char* t = getenv("TF_WORKER_MIGRATION_TOKEN")) o.migrationToken = t;
  bool tokenGiven = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--listen" && (v = value())) o.listen = v;
    else if (a == "--driver" && (v = value())) o.driver = v;
    else if (a == "--token" && (v = value())) {
      if (tokenGiven) o.moreTokens.push_back(v);
      else o.token = v;
      tokenGiven = true;
    }
    else if (a == "--verbose") o.verbose = true;
    else if (a == "--remap-handles") o.remapHandles = true;
    else if (a == "--tls-cert" && (v = value())) o.tls.certFile = v;
    else if (a == "--tls-key" && (v = value())) o.tls.keyFile = v;
    else if (a == "--handshake-timeout-ms" && (v = value()) && positive(v) > 0)
      o.gate.handshakeTimeoutMs = static_cast<int>(std::min(positive(v), 3600000L));
    else if (a == "--max-pending" && (v = value()) && positive(v) > 0)
      o.gate.maxPending = static_cast<size_t>(positive(v));
    else if (a == "--max-pending-per-peer" && (v = value()) && positive(v) > 0)
      o.gate.maxPendingPerPeer = static_cast<size_t>(positive(v));
    else if (a == "--freeze-idle-ms" && (v = value()) && positive(v) > 0)
      o.tiers.freezeIdleMs = static_cast<int>(std::min(positive(v), 86400000L));
    else if (a == "--cold-after-ms" && (v = value()) && positive(v) > 0)
      o.tiers.coldAfterMs = static_cast<int>(std::min(positive(v), 86400000L));
    else if (a == "--thaw-wait-ms" && (v = value()) && positive(v) > 0)
      o.tiers.thawWaitMs = static_cast<int>(std::min(positive(v), 3600000L));
    else if (a == "--cold-dir" && (v = value()) && *v)
      o.tiers.coldDir = v;
    else if (a == "--tiers")
      o.tiers.enabled = true;
    else if (a == "--alloc-wait-ms" && (v = value()) && positive(v) > 0)
      o.tiers.allocWaitMs = static_cast<int>(std::min(positive(v), 3600000L));
    else if (a == "--admin-token" && (v = value()) && *v)
      o.adminToken = v;
    else if (a == "--migration-token" && (v = value()) && *v)
      o.migrationToken = v;
    else {
      usage();
      return 2;
    }
  }
  // SIGTERM and SIGINT stop the worker cleanly: serve() returns and the process leaves through
  // exit(), so exit handlers run (LeakSanitizer's, in a sanitizer build). Blocked before any
  // thread starts, so that every thread inherits the mask and one thread waits for them.
  sigset_t stopSignals;
  sigemptyset(&stopSignals);
  sigaddset(&stopSignals, SIGTERM);
  sigaddset(&stopSignals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);
  auto w = Worker::start(o);
  if (!w) {
    fprintf(stderr, "tensor-fusion-worker: %s\n", w.status().toString().c_str());
    return 1;
  }
  printf("listening on %s\n", (*w)->address().c_str());
  fflush(stdout);
  std::thread stopper([stopSignals, worker = w->get()] {
    int sig = 0;
    while (sigwait(&stopSignals, &sig) != 0) {
    }
    worker->stop();
  });
  (*w)->serve(); // returns once stop() has been called: the stopper is finishing it
  stopper.join();
  // Sessions still closing (a client that has just left) finish before the worker goes. One
  // still open after 20 s is not waited for, and the worker is not destroyed under its thread.
  for (int i = 0; i < 2000 && (*w)->activeClients() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (int open = (*w)->activeClients(); open > 0) {
    TF_LOG(Warn, "worker: %d session(s) still open at exit", open);
    (void)w->release();
  }
  return 0;
}

} // namespace tf::remoting
