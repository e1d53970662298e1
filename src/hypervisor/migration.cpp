// A vGPU moved, clients and all, to another device of the node (hypervisor.h, migrateVgpu): a
// grant and a worker there, each client moved by its worker (remoting/worker/migration.h), the
// old worker kept until its clients are gone.
#include <algorithm>
#include <ctime>
#include <filesystem>

#include "common/log.h"
#include "common/units.h"
#include "hypervisor/hypervisor.h"
#include "remoting/tier_control.h"

namespace tf::hypervisor {

namespace fs = std::filesystem;

namespace {
// How long a client may take to reach its next synchronous call.
constexpr uint64_t kClientWaitMs = 30000;
// An old worker whose clients never leave is stopped after this long.
constexpr int64_t kDrainSeconds = 24 * 3600;
}  // namespace

Result<Hypervisor::Migration> Hypervisor::migrateVgpu(const std::string& id, const std::string& device) {
  Vgpu moved;
  std::unique_ptr<limiter::QuotaRegion> region;
  WorkerHandle worker;
  std::string oldAddress;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto v = std::find_if(vgpus_.begin(), vgpus_.end(), [&](const Vgpu& x) { return x.id == id; });
    if (v == vgpus_.end()) return notFound("no vGPU " + id);
    if (v->request.isolation == Isolation::Soft)
      return failedPrecondition("vGPU " + id + " is soft-isolated: its memory is in its own processes; only hard "
                                "and remote vGPUs, whose clients a worker serves, can move");
    if (!tieredLocked(*v))
      return failedPrecondition("vGPU " + id + " has no VRAM tiers (start the hypervisor with --vram-tiers): a "
                                "client's memory moves at its addresses only through them");
    if (v->devices.size() != 1) return failedPrecondition("vGPU " + id + " spans several devices: not movable yet");
    if (!v->request.regionPath.empty())
      return failedPrecondition("vGPU " + id + " belongs to a pod (its region is the pod's): not movable yet");
    const auto devs = inventory_->devices();
    const GpuDevice* target = inventory_->find(device);
    char* end = nullptr;
    const long index = strtol(device.c_str(), &end, 10);
    if (!target && end && *end == 0 && index >= 0 && index < static_cast<long>(devs.size()))
      target = &devs[static_cast<size_t>(index)];
    if (!target) return notFound("no device " + device + " on this node");
    if (target->uuid == v->devices[0].deviceUuid) return invalidArgument("vGPU " + id + " is on " + device + " already");
    // The grant there, as if the vGPU were asked for again with that device pinned.
    VgpuRequest pinned = v->request;
    pinned.devices = {target->uuid};
    pinned.count = 1;
    std::vector<Vgpu> others;
    for (const auto& x : vgpus_)
      if (x.id != id) others.push_back(x);
    auto grant = place(pinned, devs, others, options_.oversubscription);
    if (!grant) return grant.status();
    const uint64_t n = migrationStats_[id].done + migrationStats_[id].failed + 1;
    moved = *v;
    moved.devices = std::move(*grant);
    moved.regionPath = (fs::path(options_.regionDir) / ("tf-vgpu-" + id + "-m" + std::to_string(n))).string();
    removeRegion(moved.regionPath);  // a leftover of an earlier run
    auto r = openRegionLocked(moved);
    if (!r) return r.status();
    region = std::move(*r);
    const std::string listen = v->request.isolation == Isolation::Hard ? "shm://tf-" + id + "-m" + std::to_string(n)
                                                                       : "tcp://" + options_.host + ":0";
    auto w = startWorker(workerSpecLocked(moved, listen));
    if (!w) {
      removeRegion(moved.regionPath);
      return w.status();
    }
    worker = *w;
    moved.workerPid = w->pid;
    moved.workerAddress = w->address;
    oldAddress = v->workerAddress;
  }
  Migration out;
  out.vgpu = id;
  out.from = "";
  out.to = moved.devices[0].deviceUuid;
  // Every client of the old worker, one at a time.
  auto abandon = [&](Status why) -> Result<Migration> {
    stopWorker(worker.pid);
    removeRegion(moved.regionPath);
    std::lock_guard<std::mutex> lock(mu_);
    ++migrationStats_[id].failed;
    return why;
  };
  auto admin = remoting::WorkerAdmin::connect(oldAddress, adminToken_);
  if (!admin) return abandon(admin.status());
  auto clients = (*admin)->status();
  if (!clients) return abandon(clients.status());
  out.clients = static_cast<int>(clients->size());
  for (const auto& c : *clients) {
    auto m = (*admin)->migrateOut(c.pid, worker.address, adminToken_, kClientWaitMs);
    if (!m) {
      out.failures.push_back("pid " + std::to_string(c.pid) + ": " + m.status().message());
      continue;
    }
    ++out.moved;
    out.bytes += m->bytes;
    out.maxPauseNs = std::max(out.maxPauseNs, m->pauseNs);
  }
  if (out.clients > 0 && out.moved == 0) return abandon(failedPrecondition(out.failures.front()));
  // The vGPU is on the new device from now on; the old worker serves whoever stayed.
  std::lock_guard<std::mutex> lock(mu_);
  auto v = std::find_if(vgpus_.begin(), vgpus_.end(), [&](const Vgpu& x) { return x.id == id; });
  if (v == vgpus_.end()) {  // deleted meanwhile
    stopWorker(worker.pid);
    removeRegion(moved.regionPath);
    return notFound("vGPU " + id + " was deleted while it moved");
  }
  out.from = v->devices[0].deviceUuid;
  draining_.push_back({id, v->workerAddress, v->regionPath, v->workerPid, static_cast<int64_t>(time(nullptr))});
  v->devices = moved.devices;
  v->regionPath = moved.regionPath;
  v->workerAddress = moved.workerAddress;
  v->workerPid = moved.workerPid;
  adoptRegionLocked(*v, std::move(region));
  MigrationStats& st = migrationStats_[id];
  ++st.done;
  st.bytes += out.bytes;
  st.lastPauseNs = out.maxPauseNs;
  st.pauseNsTotal += out.maxPauseNs;
  if (Status s = saveStateLocked(); !s) TF_LOG(Error, "hypervisor: saving the state: %s", s.toString().c_str());
  TF_LOG(Info, "hypervisor: moved %s from %s to %s: %d of %d client(s), %s, longest pause %.1f ms", id.c_str(),
         out.from.c_str(), out.to.c_str(), out.moved, out.clients, units::formatBytes(out.bytes).c_str(),
         out.maxPauseNs / 1e6);
  return out;
}

void Hypervisor::retireDrainedWorkers() {
  std::vector<Draining> draining;
  {
    std::lock_guard<std::mutex> lock(mu_);
    draining = draining_;
  }
  for (const Draining& d : draining) {
    bool empty = !workerAlive(d.pid);
    if (!empty) {
      auto admin = remoting::WorkerAdmin::connect(d.address, adminToken_, 1000);
      auto clients = admin ? (*admin)->status() : Result<std::vector<remoting::TierRecord>>(admin.status());
      empty = clients && clients->empty();
    }
    if (!empty && time(nullptr) - d.since < kDrainSeconds) continue;
    stopWorker(d.pid);
    removeRegion(d.regionPath);
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(draining_, [&](const Draining& x) { return x.pid == d.pid; });
  }
}

}  // namespace tf::hypervisor
