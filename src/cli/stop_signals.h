// SIGINT and SIGTERM as a daemon's request to stop: block them first (threads started later
// inherit the mask, so none of them is interrupted), then wait for one on the main thread.
//
//   sigset_t stops = blockStopSignals();
//   auto server = start();
//   awaitStopSignal(stops);
#pragma once

#include <csignal>
#include <pthread.h>

namespace tf::cli {

inline sigset_t blockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

inline int awaitStopSignal(const sigset_t& set) {
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

}  // namespace tf::cli
