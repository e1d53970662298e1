// One per node: owns the devices, the vGPUs granted on them (each backed by a quota region),
// the compute quota controller, the state kept on disk, metrics, and the HTTP API.
//
//   Hypervisor h(options);
//   TF_RETURN_IF_ERROR(h.start());      // discovers devices, restores state, serves HTTP
//   auto v = h.createVgpu(request);     // or POST /api/v1/vgpus
//   h.stop();
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "hypervisor/allocator.h"
#include "hypervisor/device_inventory.h"
#include "hypervisor/tier_policy.h"
#include "hypervisor/vgpu.h"
#include "hypervisor/worker_process.h"
#include "limiter/quota_region.h"

namespace httplib {
class Server;
}

namespace tf::hypervisor {

struct HypervisorOptions {
  std::string stateDir;          // state.json, hypervisor.json (pid, address), the log
  std::string regionDir;         // quota regions (default /dev/shm)
  std::string host = "127.0.0.1";
  int port = 0;                  // 0: any free port (written to hypervisor.json)
  unsigned tickMs = 200;         // quota controller and device refresh period
  Oversubscription oversubscription;
  std::string influxLog;         // append Influx line protocol here every tick (optional)
  std::string node;              // node name in metrics (default: host name)
  TierPolicy tiers;              // VRAM tiers of hard/remote vGPUs (off by default)
};

// One device of a vGPU as its quota region counts it.
struct VgpuDeviceUsage {
  std::string deviceUuid;
  uint64_t vramUsed = 0, hostUsed = 0;
  double computeShare = 0;       // share of the device used in the last tick (0-1)
  uint32_t allowedBp = 0;        // share the controller currently allows
  uint64_t busyNs = 0, throttledNs = 0, launches = 0;
};

// A vGPU's use: memory, time and launches summed over its devices; the compute shares are the
// mean of its devices' (one device: that device's).
struct VgpuUsage {
  uint64_t vramUsed = 0, hostUsed = 0;
  double computeShare = 0;
  uint32_t allowedBp = 0;
  uint64_t busyNs = 0, throttledNs = 0, launches = 0;
  std::vector<int> pids;
  std::vector<VgpuDeviceUsage> devices;
  std::optional<TierView> tiers;  // hard/remote vGPUs with tiers, once their worker answered
};

class Hypervisor {
public:
  explicit Hypervisor(HypervisorOptions options);
  ~Hypervisor();

  Status start();
  void stop();
  int port() const { return port_; }
  std::string address() const;
  bool ready() const { return ready_.load(); }

  std::vector<GpuDevice> devices();
  bool softGpu() const;
  Result<Vgpu> createVgpu(const VgpuRequest& request);
  Status deleteVgpu(const std::string& id);
  std::vector<Vgpu> vgpus();
  std::optional<Vgpu> vgpu(const std::string& id);
  VgpuUsage usage(const std::string& id);

  // Freezes (or thaws) every client of a tiered vGPU now: TensorFusion's snapshot and resume.
  // Returns how many clients moved; FailedPrecondition for a vGPU without tiers.
  Result<int> moveTiers(const std::string& id, remoting::TierAction action);
  // One round of the tier manager (public for tests): reads every tiered worker's clients,
  // then freezes idle vGPUs where another waits for device memory; stops the workers
  // migrations left behind once their clients are gone.
  void tierTick();

  // Moves a hard or remote vGPU with VRAM tiers, running clients and all, to other devices of
  // this node (`device`: a UUID or an index for each of its devices, comma-separated, in its
  // devices' order: its device i goes to the i-th named, so its clients' device ordinals stay):
  // it is granted there, a worker starts on them, every client moves at its next synchronous
  // call (remoting/worker/migration.h) and the old worker stops once its clients have left. A
  // client that cannot move stays on the old worker, which then keeps serving it; the outcome
  // says who moved and the longest pause. A pod's vGPU keeps its region and worker socket in
  // the pod's directory, and the name its programs start with (worker.sock) is pointed at the
  // new worker.
  struct Migration {
    std::string vgpu, from, to;    // device UUIDs, comma-separated (to: or node and id there)
    int clients = 0, moved = 0;
    uint64_t bytes = 0, maxPauseNs = 0;
    std::vector<std::string> failures;  // one line per client that stayed
  };
  // `device` may also be another node's hypervisor (host:port): the vGPU is made there as a
  // remote vGPU (acceptIncoming) and the clients move over TCP; this node keeps only a note of
  // where it went, so that returning it (DELETE) reaches that node. Pods' vGPUs stay on their
  // node (refused).
  Result<Migration> migrateVgpu(const std::string& id, const std::string& device);
  // A vGPU moving here from another node: made as a remote vGPU with VRAM tiers, its clients'
  // token kept, its worker open to that node's Adopt with the migration token returned.
  struct Incoming {
    Vgpu vgpu;
    std::string migrationToken;
  };
  Result<Incoming> acceptIncoming(VgpuRequest request, const std::string& clientToken);
  // Told of every move between devices of this node once it is recorded (outside the lock):
  // cluster mode updates the pod's record and tells the pod (cluster/pod_vgpus.h). Once
  // onMoved(nullptr) returns, no call of the listener it replaced is running or will run.
  void onMoved(std::function<void(const Vgpu&, const Migration&)> listener);
  // Where a vGPU that moved to another node went ("host:port id"), if it did.
  std::optional<std::string> movedAway(const std::string& id);

  std::string prometheusMetrics();
  std::string influxLines();
  // One controller tick (public for tests): refresh devices, set compute shares.
  void tick();

private:
  Status loadState();
  Status saveStateLocked();
  Status ensureRegionLocked(const Vgpu& v);
  Result<std::unique_ptr<limiter::QuotaRegion>> openRegionLocked(const Vgpu& v);
  void adoptRegionLocked(const Vgpu& v, std::unique_ptr<limiter::QuotaRegion> region);
  // The old workers of migrated vGPUs, kept until their clients have left (tierTick).
  void retireDrainedWorkers();
  VgpuUsage usageLocked(const std::string& id);
  std::string newIdLocked(const std::string& name);
  WorkerSpec workerSpecLocked(const Vgpu& v, const std::string& listen);
  // Restarts the worker of any hard/remote vGPU whose worker is gone.
  void superviseWorkersLocked();
  bool tieredLocked(const Vgpu& v) const {
    return (options_.tiers.enabled || v.request.tiers.enabled) && v.request.isolation != Isolation::Soft;
  }

  HypervisorOptions options_;
  std::unique_ptr<DeviceInventory> inventory_;
  std::mutex mu_;
  std::vector<Vgpu> vgpus_;
  struct Live {
    std::unique_ptr<limiter::QuotaRegion> region;
    struct PerDevice {
      uint64_t lastBusyNs = 0;
      uint64_t lastLaunches = 0;
      double share = 0;
    };
    std::vector<PerDevice> devices;  // the region's devices, in order
    uint64_t lastTickNs = 0;
  };
  std::map<std::string, Live> live_;
  std::unique_ptr<httplib::Server> server_;
  std::thread serverThread_, controllerThread_, tierThread_;
  std::string adminToken_;                        // the workers' admin token (stateDir/admin-token)
  std::map<std::string, TierView> tierViews_;     // by vGPU, under mu_
  // The tier thread's own connections to the workers, by vGPU (only it uses them).
  std::map<std::string, std::unique_ptr<remoting::WorkerAdmin>> admins_;
  std::map<std::string, std::string> adminAddresses_;  // the worker each is connected to
  // Migrations (migration.cpp): old workers still serving clients, and the figures per vGPU.
  struct Draining {
    std::string vgpu, address, regionPath;
    int pid = 0;
    int64_t since = 0;  // unix seconds
    std::string link;   // a name of its socket made for it while it drains (removed with it)
  };
  std::vector<Draining> draining_;  // under mu_
  struct MigrationStats {
    uint64_t done = 0, failed = 0, bytes = 0, lastPauseNs = 0, pauseNsTotal = 0;
  };
  std::map<std::string, MigrationStats> migrationStats_;  // under mu_
  // vGPUs moved to another node: id -> {that hypervisor's host:port, the id there}; kept in
  // the state file.
  std::map<std::string, std::pair<std::string, std::string>> movedAway_;  // under mu_
  Result<Migration> migrateToNode(const std::string& id, const std::string& node);
  Status movableLocked(const Vgpu& v) const;
  std::mutex listenerMu_;  // held while movedListener_ changes or runs (never with mu_)
  std::function<void(const Vgpu&, const Migration&)> movedListener_;
  // A pod's vGPU whose worker moved: the socket name its programs start with links to it.
  void pointPodSocketLocked(const Vgpu& v);
  // After a move: v's worker kept for whoever stayed, the figures counted; then saved and said.
  void keepOldWorkerLocked(const Vgpu& v, const Migration& out);
  void saveAndLogMoveLocked(const Migration& out);
  // Moves every client of the worker at `from` to the worker at `to` (opened with `token`).
  void moveClients(const std::string& from, const std::string& to, const std::string& token, Migration* out);
  std::atomic<bool> stopping_{false}, ready_{false};
  int port_ = 0;
};

// HTTP routes (http_api.cpp).
void installRoutes(httplib::Server& server, Hypervisor& h);
// Removes a quota region file; a failure is logged (a stale file left behind), not returned.
void removeRegion(const std::string& path);
// The devices of this node a move of `v` names (`to`: a UUID or index per device of v,
// comma-separated), as UUIDs in that order; refused with the reason: not one per device of v,
// a device named twice, an unknown one, or the devices v is on already.
Result<std::vector<std::string>> resolveMoveTargets(const Vgpu& v, const std::string& to,
                                                    const std::vector<GpuDevice>& devices);
// DELETE /api/v1/vgpus/{id} on another node's hypervisor (host:port).
Status returnRemoteVgpu(const std::string& node, const std::string& id);

} // namespace tf::hypervisor
