// A vGPU moved, clients and all, to other devices of the node or to another node (hypervisor.h,
// migrateVgpu): a grant and a worker there, each client moved by its worker
// (remoting/worker/migration.h), the old worker kept until its clients are gone.
#include <algorithm>
#include <ctime>
#include <filesystem>

#include <httplib.h>

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

namespace {
// host:port of another node's hypervisor (a device's UUID or index has no colon).
bool isNode(const std::string& target) { return target.find(':') != std::string::npos && target.rfind("GPU-", 0) != 0; }

Result<std::pair<std::string, int>> hostPort(const std::string& node) {
  const auto colon = node.rfind(':');
  char* end = nullptr;
  const long port = strtol(node.c_str() + colon + 1, &end, 10);
  if (colon == 0 || !end || *end || port <= 0 || port > 65535) return invalidArgument("not host:port: " + node);
  return std::make_pair(node.substr(0, colon), static_cast<int>(port));
}

// One call to another node's hypervisor: its JSON answer, or the error it gave.
Result<nlohmann::json> callNode(const std::string& node, const std::string& method, const std::string& path,
                                const nlohmann::json* body, int want) {
  auto hp = hostPort(node);
  if (!hp) return hp.status();
  httplib::Client client(hp->first, hp->second);
  client.set_connection_timeout(5);
  client.set_read_timeout(120);
  auto res = method == "POST" ? client.Post(path, body ? body->dump() : std::string("{}"), "application/json")
                              : client.Delete(path);
  if (!res) return unavailable("hypervisor " + node + ": " + httplib::to_string(res.error()));
  nlohmann::json j = nlohmann::json::parse(res->body, nullptr, false);
  if (res->status != want) {
    const std::string why = j.is_object() && j.contains("error") ? j["error"].get<std::string>() : res->body;
    return Status(res->status == 404 ? Code::NotFound : res->status == 409 ? Code::FailedPrecondition : Code::Unavailable,
                  "hypervisor " + node + " answered " + std::to_string(res->status) + ": " + why);
  }
  return j.is_discarded() ? nlohmann::json::object() : j;
}

std::vector<std::string> splitList(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t comma = s.find(',', start);
    out.push_back(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}
}  // namespace

Status returnRemoteVgpu(const std::string& node, const std::string& id) {
  auto r = callNode(node, "DELETE", "/api/v1/vgpus/" + id, nullptr, 204);
  return r ? Status::ok() : r.status();
}

std::optional<std::string> Hypervisor::movedAway(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = movedAway_.find(id);
  if (it == movedAway_.end()) return std::nullopt;
  return it->second.first + " " + it->second.second;
}

Result<Hypervisor::Incoming> Hypervisor::acceptIncoming(VgpuRequest request, const std::string& clientToken) {
  if (clientToken.size() < 16) return invalidArgument("token: the clients' token (16 characters at least)");
  request.isolation = Isolation::Remote;  // its clients are on another node
  request.tiers.enabled = true;           // memory comes back at its addresses only through them
  request.devices.clear();  // this node's own, as many as it had there (count)
  request.workerToken = clientToken;
  request.migrationToken = newToken();
  auto v = createVgpu(request);
  if (!v) return v.status();
  return Incoming{*v, request.migrationToken};
}

Result<Hypervisor::Migration> Hypervisor::migrateToNode(const std::string& id, const std::string& node) {
  VgpuRequest request;
  std::string token, oldAddress, from;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto v = std::find_if(vgpus_.begin(), vgpus_.end(), [&](const Vgpu& x) { return x.id == id; });
    if (v == vgpus_.end()) return notFound("no vGPU " + id);
    TF_RETURN_IF_ERROR(movableLocked(*v));
    if (!v->request.regionPath.empty())
      return failedPrecondition("vGPU " + id + " belongs to a pod, which runs on this node: Kubernetes binds a pod "
                                "to one node for its life, its containers reach the worker through this node's "
                                "directory, and the scheduler's record names this node's GPUs; it moves between "
                                "GPUs of this node only");
    request = v->request;
    request.devices.clear();  // that node's own, as many as here
    request.count = static_cast<int>(v->devices.size());
    token = v->workerToken;
    oldAddress = v->workerAddress;
    from = deviceUuids(v->devices);
  }
  if (request.name.empty()) request.name = id;
  nlohmann::json body = {{"request", toJson(request)}, {"token", token}};
  auto made = callNode(node, "POST", "/api/v1/vgpus/incoming", &body, 201);
  if (!made) return made.status();
  const auto& j = *made;
  if (!j.contains("id") || !j.contains("migration") || !j["migration"].contains("address") ||
      !j["migration"].contains("token"))
    return dataLoss("hypervisor " + node + " answered without the vGPU's worker");
  const std::string remoteId = j["id"].get<std::string>();
  Migration out;
  out.vgpu = id;
  out.from = from;
  out.to = node + " " + remoteId;
  moveClients(oldAddress, j["migration"]["address"].get<std::string>(), j["migration"]["token"].get<std::string>(), &out);
  std::lock_guard<std::mutex> lock(mu_);
  if (out.clients > 0 && out.moved == 0) {
    ++migrationStats_[id].failed;
    (void)returnRemoteVgpu(node, remoteId);
    return failedPrecondition(out.failures.front());
  }
  auto v = std::find_if(vgpus_.begin(), vgpus_.end(), [&](const Vgpu& x) { return x.id == id; });
  if (v == vgpus_.end()) {
    (void)returnRemoteVgpu(node, remoteId);
    return notFound("vGPU " + id + " was deleted while it moved");
  }
  // It lives there now: this node keeps the old worker for whoever stayed, and where it went.
  keepOldWorkerLocked(*v, out);
  vgpus_.erase(v);
  live_.erase(id);
  movedAway_[id] = {node, remoteId};
  saveAndLogMoveLocked(out);
  return out;
}

Status Hypervisor::movableLocked(const Vgpu& v) const {
  if (v.request.isolation == Isolation::Soft)
    return failedPrecondition("vGPU " + v.id + " is soft-isolated: its memory is in its own processes; only hard "
                              "and remote vGPUs, whose clients a worker serves, can move");
  if (!tieredLocked(v))
    return failedPrecondition("vGPU " + v.id + " has no VRAM tiers (start the hypervisor with --vram-tiers): a "
                              "client's memory moves at its addresses only through them");
  return Status::ok();
}

void Hypervisor::moveClients(const std::string& from, const std::string& to, const std::string& token,
                             Migration* out) {
  auto admin = remoting::WorkerAdmin::connect(from, adminToken_);
  auto clients = admin ? (*admin)->status() : Result<std::vector<remoting::TierRecord>>(admin.status());
  if (!clients) {
    out->clients = 1;  // unknown: counted as one that stayed
    out->failures.push_back(clients.status().message());
    return;
  }
  out->clients = static_cast<int>(clients->size());
  for (const auto& c : *clients) {
    auto m = (*admin)->migrateOut(c.pid, to, token, kClientWaitMs);
    if (!m) {
      out->failures.push_back("pid " + std::to_string(c.pid) + ": " + m.status().message());
      continue;
    }
    ++out->moved;
    out->bytes += m->bytes;
    out->maxPauseNs = std::max(out->maxPauseNs, m->pauseNs);
  }
}

Result<std::vector<std::string>> resolveMoveTargets(const Vgpu& v, const std::string& to,
                                                    const std::vector<GpuDevice>& devices) {
  const std::vector<std::string> names = splitList(to);
  if (names.size() != v.devices.size())
    return invalidArgument("vGPU " + v.id + " spans " + std::to_string(v.devices.size()) + " device(s): name as " +
                           "many GPUs to move to, in its devices' order (" + std::to_string(names.size()) +
                           " named in '" + to + "')");
  std::vector<std::string> uuids;
  for (const std::string& name : names) {
    const GpuDevice* target = nullptr;
    for (const GpuDevice& d : devices)
      if (d.uuid == name) target = &d;
    char* end = nullptr;
    const long index = strtol(name.c_str(), &end, 10);
    if (!target && !name.empty() && end && *end == 0 && index >= 0 && index < static_cast<long>(devices.size()))
      target = &devices[static_cast<size_t>(index)];
    if (!target) return notFound("no device '" + name + "' on this node");
    if (std::find(uuids.begin(), uuids.end(), target->uuid) != uuids.end())
      return invalidArgument("GPU " + name + " (" + target->uuid + ") is named twice in '" + to + "'");
    uuids.push_back(target->uuid);
  }
  bool same = true;
  for (const DeviceGrant& g : v.devices) same &= std::find(uuids.begin(), uuids.end(), g.deviceUuid) != uuids.end();
  if (same) return invalidArgument("vGPU " + v.id + " is on " + to + " already");
  return uuids;
}

Result<Hypervisor::Migration> Hypervisor::migrateVgpu(const std::string& id, const std::string& device) {
  if (isNode(device)) return migrateToNode(id, device);
  Vgpu moved;
  std::unique_ptr<limiter::QuotaRegion> region;
  WorkerHandle worker;
  std::string oldAddress;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto v = std::find_if(vgpus_.begin(), vgpus_.end(), [&](const Vgpu& x) { return x.id == id; });
    if (v == vgpus_.end()) return notFound("no vGPU " + id);
    TF_RETURN_IF_ERROR(movableLocked(*v));
    const auto devs = inventory_->devices();
    auto targets = resolveMoveTargets(*v, device, devs);
    if (!targets) return targets.status();
    // The grant there, as if the vGPU were asked for again with those devices pinned, in the
    // order named: the new worker's device i (its region's) is the client's device i.
    VgpuRequest pinned = v->request;
    pinned.devices = *targets;
    pinned.count = static_cast<int>(targets->size());
    std::vector<Vgpu> others;
    for (const auto& x : vgpus_)
      if (x.id != id) others.push_back(x);
    auto grant = place(pinned, devs, others, options_.oversubscription);
    if (!grant) return grant.status();
    const std::string n = "m" + std::to_string(migrationStats_[id].done + migrationStats_[id].failed + 1);
    moved = *v;
    moved.devices = std::move(*grant);
    // A pod's region and worker socket stay in the pod's directory, which its containers mount.
    const bool pod = !v->request.regionPath.empty();
    const fs::path podDir = fs::path(v->request.regionPath).parent_path();
    moved.regionPath = pod ? (podDir / ("region-" + n)).string()
                           : (fs::path(options_.regionDir) / ("tf-vgpu-" + id + "-" + n)).string();
    removeRegion(moved.regionPath);  // a leftover of an earlier run
    auto r = openRegionLocked(moved);
    if (!r) return r.status();
    region = std::move(*r);
    const std::string listen = v->request.isolation != Isolation::Hard ? "tcp://" + options_.host + ":0"
                               : pod ? "shm://" + (podDir / ("worker-" + n + ".sock")).string()
                                     : "shm://tf-" + id + "-" + n;
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
  out.to = deviceUuids(moved.devices);
  // Every client of the old worker, one at a time.
  auto abandon = [&](Status why) -> Result<Migration> {
    stopWorker(worker.pid);
    removeRegion(moved.regionPath);
    std::lock_guard<std::mutex> lock(mu_);
    ++migrationStats_[id].failed;
    return why;
  };
  moveClients(oldAddress, worker.address, adminToken_, &out);
  if (out.clients > 0 && out.moved == 0) return abandon(failedPrecondition(out.failures.front()));
  // The vGPU is on the new devices from now on; the old worker serves whoever stayed.
  Vgpu now;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto v = std::find_if(vgpus_.begin(), vgpus_.end(), [&](const Vgpu& x) { return x.id == id; });
    if (v == vgpus_.end()) {  // deleted meanwhile
      stopWorker(worker.pid);
      removeRegion(moved.regionPath);
      return notFound("vGPU " + id + " was deleted while it moved");
    }
    out.from = deviceUuids(v->devices);
    keepOldWorkerLocked(*v, out);
    v->devices = moved.devices;
    v->regionPath = moved.regionPath;
    v->workerAddress = moved.workerAddress;
    v->workerPid = moved.workerPid;
    adoptRegionLocked(*v, std::move(region));
    pointPodSocketLocked(*v);
    saveAndLogMoveLocked(out);
    now = *v;
  }
  {  // held while it runs: onMoved (a listener going away) waits for a call in flight
    std::lock_guard<std::mutex> lock(listenerMu_);
    if (movedListener_) movedListener_(now, out);
  }
  return out;
}

void Hypervisor::onMoved(std::function<void(const Vgpu&, const Migration&)> listener) {
  std::lock_guard<std::mutex> lock(listenerMu_);
  movedListener_ = std::move(listener);
}

void Hypervisor::pointPodSocketLocked(const Vgpu& v) {
  const std::string prefix = "shm://";
  const std::string& named = v.request.workerListen;
  if (named.rfind(prefix, 0) != 0 || v.workerAddress == named || v.workerAddress.rfind(prefix, 0) != 0) return;
  // The name the pod's programs start with names the worker serving the vGPU now: a second
  // link to its socket, put in place at once (the old worker only removes a name still its own).
  const std::string path = named.substr(prefix.size()), target = v.workerAddress.substr(prefix.size());
  const std::string tmp = path + ".new";
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_hard_link(target, tmp, ec);
  if (!ec) fs::rename(tmp, path, ec);
  if (ec) TF_LOG(Error, "hypervisor: pointing %s at the worker of %s: %s", path.c_str(), v.id.c_str(), ec.message().c_str());
}

void Hypervisor::keepOldWorkerLocked(const Vgpu& v, const Migration& out) {
  Draining d{v.id, v.workerAddress, v.regionPath, v.workerPid, static_cast<int64_t>(time(nullptr)), ""};
  // A pod's first worker answers at the name the pod's programs start with, which is about to
  // name the new worker (pointPodSocketLocked): a name of its own keeps it reachable (its
  // clients that stayed are asked for through it) until it goes.
  const std::string prefix = "shm://";
  if (v.workerAddress == v.request.workerListen && v.workerAddress.rfind(prefix, 0) == 0) {
    const std::string path = v.workerAddress.substr(prefix.size());
    const std::string link = path + ".draining-" + std::to_string(v.workerPid);
    std::error_code ec;
    fs::remove(link, ec);
    fs::create_hard_link(path, link, ec);
    if (ec) {
      TF_LOG(Error, "hypervisor: keeping a name for the old worker of %s: %s", v.id.c_str(), ec.message().c_str());
    } else {
      d.address = prefix + link;
      d.link = link;
    }
  }
  draining_.push_back(std::move(d));
  MigrationStats& st = migrationStats_[v.id];
  ++st.done;
  st.bytes += out.bytes;
  st.lastPauseNs = out.maxPauseNs;
  st.pauseNsTotal += out.maxPauseNs;
}

void Hypervisor::saveAndLogMoveLocked(const Migration& out) {
  if (Status s = saveStateLocked(); !s) TF_LOG(Error, "hypervisor: saving the state: %s", s.toString().c_str());
  TF_LOG(Info, "hypervisor: moved %s from %s to %s: %d of %d client(s), %s, longest pause %.1f ms", out.vgpu.c_str(),
         out.from.c_str(), out.to.c_str(), out.moved, out.clients, units::formatBytes(out.bytes).c_str(),
         out.maxPauseNs / 1e6);
}

void Hypervisor::retireDrainedWorkers() {
  std::vector<Draining> draining;
  {
    std::lock_guard<std::mutex> lock(mu_);
    draining = draining_;
  }
  for (const Draining& d : draining) {
    bool empty = !workerAlive(d.pid);
    if (!empty) {  // no session left: neither a client that stayed nor its NVML, which follows at its next call
      auto admin = remoting::WorkerAdmin::connect(d.address, adminToken_, 1000);
      uint64_t sessions = 1;
      auto clients = admin ? (*admin)->status(&sessions) : Result<std::vector<remoting::TierRecord>>(admin.status());
      empty = clients && clients->empty() && sessions == 0;
    }
    if (!empty && time(nullptr) - d.since < kDrainSeconds) continue;
    stopWorker(d.pid);
    removeRegion(d.regionPath);
    if (!d.link.empty()) {
      std::error_code ec;
      fs::remove(d.link, ec);
    }
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(draining_, [&](const Draining& x) { return x.pid == d.pid; });
    (void)saveStateLocked();
  }
}

}  // namespace tf::hypervisor
