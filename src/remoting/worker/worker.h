// The remoting worker: listens on one address, serves each authenticated client in its own
// thread and context, executing its calls on a dlopen()ed libcuda.so.1. Connections wait at
// the gate (gate.h), with no thread, until their Hello has arrived.
//
//   WorkerOptions o{"tcp://127.0.0.1:0", "/path/libcuda.so.1", "token"};
//   auto w = Worker::start(o);            // loads the driver, cuInit, listens
//   printf("%s\n", (*w)->address().c_str());
//   (*w)->serve();                         // until stop()
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "remoting/transport.h"
#include "remoting/worker/gate.h"
#include "remoting/worker/session.h"

namespace tf::remoting {

struct WorkerOptions {
  std::string listen = "tcp://127.0.0.1:0";
  std::string driver = "libcuda.so.1";
  std::string token;
  // Further tenants, each with a token of its own: clients of different tenants share the
  // worker but never each other's IPC handles (worker/ipc.h).
  std::vector<std::string> moreTokens;
  bool verbose = false;
  TlsOptions tls;   // certificate and key for a tls:// address
  GateOptions gate; // handshake deadline, caps on unauthenticated connections
  TierOptions tiers; // VRAM tiers (off unless enabled or freezeIdleMs > 0)
  std::string adminToken; // the node hypervisor's (tier_control.h); empty: no admin
  // Another node's hypervisor's, to move a client here (Adopt only); empty: none.
  std::string migrationToken;
  // Client handle values differ from the driver's (worker/handle_table.h): a migrated
  // session's mode, and a test that every handler translates.
  bool remapHandles = false;
};

class Worker {
public:
  static Result<std::unique_ptr<Worker>> start(const WorkerOptions& options);
  std::string address() const { return listener_->address(); }
  void serve();
  void stop();
  int activeClients() const { return active_.load(); }

private:
  // On the gate thread: the handshake; an accepted client gets its thread.
  void onFirstFrame(TransportPtr t, Status framing, const FrameHeader& h,
                    std::vector<uint8_t>& args);

  WorkerShared shared_;
  ListenerPtr listener_;
  std::unique_ptr<Gate> gate_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> active_{0};
};

// `tensor-fusion worker` / `tensor-fusion-worker`:
//   --listen tcp://127.0.0.1:0 | tls://HOST:PORT | shm://name   --driver /path/libcuda.so.1
//   --token T [--token T2 ...: one tenant each]   [--tls-cert F --tls-key F]   [--handshake-timeout-ms N] [--max-pending N]
//   [--max-pending-per-peer N]   [--freeze-idle-ms N [--cold-after-ms N] [--cold-dir D] [--thaw-wait-ms N]]
//   [--tiers] [--alloc-wait-ms N] [--admin-token T] [--migration-token T]   [--remap-handles]
int runWorker(int argc, char** argv);

} // namespace tf::remoting
