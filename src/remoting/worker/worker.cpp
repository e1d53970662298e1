#include "remoting/worker/worker.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <signal.h>
#include <thread>

#include "common/log.h"
#include "cuda/catalog.h"

namespace tf::remoting {

Result<std::unique_ptr<Worker>> Worker::start(const WorkerOptions& o) {
  std::unique_ptr<Worker> w(new Worker());
  auto api = DriverApi::load(o.driver);
  if (!api) return api.status();
  w->shared_.driver = std::move(*api);
  w->shared_.token = o.token;
  w->shared_.verbose = o.verbose;
  auto init = w->shared_.driver->fn<decltype(&::cuInit)>(cuda::FnId::cuInit);
  CUresult r = init(0);
  if (r != CUDA_SUCCESS) return unavailable("cuInit failed on " + o.driver + ": " + std::to_string(r));
  auto l = listen(o.listen);
  if (!l) return l.status();
  w->listener_ = std::move(*l);
  return w;
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
    active_.fetch_add(1);
    std::thread([this, transport = std::move(*t)]() mutable {
      Session s(shared_, std::move(transport));
      s.run();
      active_.fetch_sub(1);
    }).detach();
  }
}

void Worker::stop() {
  stopping_.store(true);
  listener_->close();
}

namespace {

void usage() {
  fprintf(stderr, "usage: tensor-fusion-worker --listen tcp://HOST:PORT|shm://NAME "
                  "--driver /path/libcuda.so.1 [--token T] [--verbose]\n"
                  "  the token may also come from TF_REMOTE_TOKEN\n");
}

} // namespace

int runWorker(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  WorkerOptions o;
  if (const char* t = getenv("TF_REMOTE_TOKEN")) o.token = t;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (a == "--listen" && (v = value())) o.listen = v;
    else if (a == "--driver" && (v = value())) o.driver = v;
    else if (a == "--token" && (v = value())) o.token = v;
    else if (a == "--verbose") o.verbose = true;
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
