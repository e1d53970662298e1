#include "hypervisor/hypervisor.h"

#include <chrono>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include <httplib.h>

#include "common/log.h"
#include "common/units.h"
#include "hypervisor/quota_controller.h"
#include "hypervisor/worker_process.h"

namespace tf::hypervisor {

void removeRegion(const std::string& path) {
  if (Status s = limiter::QuotaRegion::remove(path); !s)
    TF_LOG(Warn, "hypervisor: cannot remove %s: %s", path.c_str(), s.toString().c_str());
}

namespace fs = std::filesystem;

namespace {
uint64_t monotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

Status writeFileAtomically(const fs::path& path, const std::string& text) {
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return internalError("cannot write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return internalError("cannot replace " + path.string() + ": " + ec.message());
  return Status::ok();
}
} // namespace

Hypervisor::Hypervisor(HypervisorOptions options) : options_(std::move(options)) {
  if (options_.regionDir.empty()) options_.regionDir = "/dev/shm";
  if (options_.node.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    options_.node = host;
  }
}

Hypervisor::~Hypervisor() { stop(); }

std::string Hypervisor::address() const { return options_.host + ":" + std::to_string(port_); }

bool Hypervisor::softGpu() const { return inventory_ && inventory_->isSoftGpu(); }

Status Hypervisor::start() {
  std::error_code ec;
  fs::create_directories(options_.stateDir, ec);
  if (ec) return internalError("cannot create " + options_.stateDir + ": " + ec.message());
  fs::create_directories(options_.regionDir, ec);
  auto inv = DeviceInventory::open();
  if (!inv) return inv.status().withContext("discovering devices");
  inventory_ = std::move(*inv);
  TF_RETURN_IF_ERROR(loadState());
  {
    // One admin token for this node's workers, kept across restarts (workers outlive us).
    const fs::path tokenPath = fs::path(options_.stateDir) / "admin-token";
    std::ifstream in(tokenPath);
    std::getline(in, adminToken_);
    if (adminToken_.empty()) {
      adminToken_ = newToken();
      TF_RETURN_IF_ERROR(writeFileAtomically(tokenPath, adminToken_ + "\n"));
      fs::permissions(tokenPath, fs::perms::owner_read | fs::perms::owner_write, ec);
    }
    if (options_.tiers.coldDir.empty()) options_.tiers.coldDir = (fs::path(options_.stateDir) / "cold").string();
    fs::create_directories(options_.tiers.coldDir, ec);
    if (ec) return internalError("cannot create " + options_.tiers.coldDir + ": " + ec.message());
  }

  server_ = std::make_unique<httplib::Server>();
  server_->set_tcp_nodelay(true);  // answers are more than one write: no delayed-ACK waits
  installRoutes(*server_, *this);
  port_ = options_.port ? (server_->bind_to_port(options_.host.c_str(), options_.port) ? options_.port : -1)
                        : server_->bind_to_any_port(options_.host.c_str());
  if (port_ <= 0) return unavailable("cannot listen on " + options_.host + ":" + std::to_string(options_.port));
  serverThread_ = std::thread([this] { server_->listen_after_bind(); });
  // Until the server loop runs, stop() would not reach it (and join would wait forever).
  for (int i = 0; i < 500 && !server_->is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  controllerThread_ = std::thread([this] {
    while (!stopping_.load()) {
      tick();
      for (unsigned waited = 0; waited < options_.tickMs && !stopping_.load(); waited += 20)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  tierThread_ = std::thread([this] {  // idle while no vGPU has tiers
      while (!stopping_.load()) {
        tierTick();
        for (unsigned waited = 0; waited < options_.tickMs && !stopping_.load(); waited += 20)
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  nlohmann::json info = {{"pid", getpid()}, {"address", address()}, {"softGpu", softGpu()},
                         {"regionDir", options_.regionDir}};
  TF_RETURN_IF_ERROR(writeFileAtomically(fs::path(options_.stateDir) / "hypervisor.json", info.dump()));
  ready_ = true;
  return Status::ok();
}

void Hypervisor::stop() {
  if (stopping_.exchange(true)) return;
  if (server_) server_->stop();
  if (serverThread_.joinable()) serverThread_.join();
  if (controllerThread_.joinable()) controllerThread_.join();
  if (tierThread_.joinable()) tierThread_.join();
}

Status Hypervisor::loadState() {
  fs::path path = fs::path(options_.stateDir) / "state.json";
  std::lock_guard<std::mutex> lock(mu_);
  if (!fs::exists(path)) return Status::ok();
  std::ifstream in(path);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("vgpus") || !j["vgpus"].is_array())
    return dataLoss(path.string() + " is not a hypervisor state file (move it away to start fresh)");
  for (const auto& e : j["vgpus"]) {
    auto v = vgpuFromJson(e);
    if (!v) return v.status().withContext(path.string());
    // Regions live in shared memory: after a hypervisor crash they are still there and the
    // workloads using them keep running. After a reboot they are made again.
    TF_RETURN_IF_ERROR(ensureRegionLocked(*v));
    vgpus_.push_back(*v);
  }
  // Old workers of moved vGPUs still serving clients that could not move: stopped once empty.
  if (j.contains("draining") && j["draining"].is_array())
    for (const auto& d : j["draining"])
      if (d.is_object() && d.value("pid", 0) > 0 && workerAlive(d.value("pid", 0)))
        draining_.push_back({d.value("vgpu", ""), d.value("address", ""), d.value("region", ""), d.value("pid", 0),
                             d.value("since", int64_t(0)), d.value("link", "")});
  if (j.contains("movedAway") && j["movedAway"].is_object())
    for (const auto& [id, to] : j["movedAway"].items())
      if (to.is_object() && to.value("node", "") != "" && to.value("id", "") != "")
        movedAway_[id] = {to["node"].get<std::string>(), to["id"].get<std::string>()};
  TF_LOG(Info, "hypervisor: restored %zu vGPU(s) from %s", vgpus_.size(), path.c_str());
  return Status::ok();
}

Status Hypervisor::saveStateLocked() {
  nlohmann::json j = {{"version", 1}, {"vgpus", nlohmann::json::array()}};
  for (const auto& v : vgpus_) j["vgpus"].push_back(toJson(v));
  for (const auto& d : draining_) {
    if (!j.contains("draining")) j["draining"] = nlohmann::json::array();
    j["draining"].push_back({{"vgpu", d.vgpu}, {"address", d.address}, {"region", d.regionPath}, {"pid", d.pid},
                             {"since", d.since}, {"link", d.link}});
  }
  if (!movedAway_.empty()) {
    j["movedAway"] = nlohmann::json::object();
    for (const auto& [id, to] : movedAway_) j["movedAway"][id] = {{"node", to.first}, {"id", to.second}};
  }
  return writeFileAtomically(fs::path(options_.stateDir) / "state.json", j.dump(2));
}

Status Hypervisor::ensureRegionLocked(const Vgpu& v) {
  auto region = openRegionLocked(v);
  if (!region) return region.status();
  adoptRegionLocked(v, std::move(*region));
  return Status::ok();
}

void Hypervisor::adoptRegionLocked(const Vgpu& v, std::unique_ptr<limiter::QuotaRegion> region) {
  Live& l = live_[v.id];
  l.region = std::move(region);
  l.devices.assign(v.devices.size(), {});
  for (size_t i = 0; i < l.devices.size(); ++i) {
    auto u = l.region->usage(static_cast<int>(i));
    l.devices[i].lastBusyNs = u.busyNs;
    l.devices[i].lastLaunches = u.launches;
  }
  l.lastTickNs = monotonicNs();
}

Result<std::unique_ptr<limiter::QuotaRegion>> Hypervisor::openRegionLocked(const Vgpu& v) {
  auto region = limiter::QuotaRegion::open(v.regionPath);
  if (!region) {
    if (region.status().code() != Code::NotFound) return region.status();
    limiter::VgpuSpec spec;
    spec.name = v.id;
    for (const DeviceGrant& g : v.devices) {
      limiter::DeviceLimits d;
      if (const GpuDevice* dev = inventory_->find(g.deviceUuid)) {
        d.uuid = dev->uuidBytes;
        d.fp16Tflops = dev->fp16Tflops;
      }
      d.vramLimit = v.request.vramLimit;
      d.computeBasisPoints = g.limitBp;
      spec.devices.push_back(d);
    }
    region = limiter::QuotaRegion::create(v.regionPath, spec);
    if (!region) return region.status();
  }
  if ((*region)->deviceCount() != static_cast<int>(v.devices.size()))
    return failedPrecondition("the region " + v.regionPath + " has " + std::to_string((*region)->deviceCount()) +
                              " devices but vGPU " + v.id + " " + std::to_string(v.devices.size()) +
                              " (move it away to make it again)");
  return region;
}

std::string Hypervisor::newIdLocked(const std::string& name) {
  std::string base = name.empty() ? "vgpu" : name;
  for (int i = name.empty() ? 1 : 0;; ++i) {
    std::string id = i == 0 ? base : base + "-" + std::to_string(i);
    bool taken = false;
    for (const auto& v : vgpus_) taken |= v.id == id;
    if (!taken && !fs::exists(fs::path(options_.regionDir) / ("tf-vgpu-" + id))) return id;
  }
}

std::vector<GpuDevice> Hypervisor::devices() {
  std::lock_guard<std::mutex> lock(mu_);
  return inventory_->devices();
}

Result<Vgpu> Hypervisor::createVgpu(const VgpuRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  auto placement = place(request, inventory_->devices(), vgpus_, options_.oversubscription);
  if (!placement) return placement.status();
  Vgpu v;
  v.id = newIdLocked(request.name);
  v.request = request;
  v.devices = std::move(*placement);
  v.regionPath = request.regionPath.empty()
                     ? (fs::path(options_.regionDir) / ("tf-vgpu-" + v.id)).string()
                     : request.regionPath;
  if (!request.regionPath.empty()) {
    std::error_code ec;
    fs::create_directories(fs::path(v.regionPath).parent_path(), ec);
    if (ec) return internalError("cannot make the directory of " + v.regionPath + ": " + ec.message());
  }
  v.createdAt = static_cast<int64_t>(time(nullptr));
  TF_RETURN_IF_ERROR(ensureRegionLocked(v));
  if (request.isolation != Isolation::Soft) {
    v.workerToken = request.workerToken.empty() ? newToken() : request.workerToken;
    std::string listen = request.isolation == Isolation::Hard ? "shm://tf-" + v.id : "tcp://" + options_.host + ":0";
    if (request.isolation == Isolation::Hard && !request.workerListen.empty()) listen = request.workerListen;
    Status token = request.workerTokenFile.empty() ? Status::ok()
                                                   : writeFileAtomically(request.workerTokenFile, v.workerToken + "\n");
    auto w = token ? startWorker(workerSpecLocked(v, listen)) : Result<WorkerHandle>(token);
    if (!w) {
      live_.erase(v.id);
      removeRegion(v.regionPath);
      return w.status();
    }
    v.workerPid = w->pid;
    v.workerAddress = w->address;
  }
  vgpus_.push_back(v);
  if (Status s = saveStateLocked(); !s) {
    vgpus_.pop_back();
    live_.erase(v.id);
    stopWorker(v.workerPid);
    removeRegion(v.regionPath);
    return s;
  }
  return v;
}

Status Hypervisor::deleteVgpu(const std::string& id) {
  std::unique_lock<std::mutex> lock(mu_);
  if (auto moved = movedAway_.find(id); moved != movedAway_.end()) {
    // It lives on the node it moved to: returned there.
    const auto [node, remoteId] = moved->second;
    lock.unlock();
    Status s = returnRemoteVgpu(node, remoteId);
    lock.lock();
    if (s || s.code() == Code::NotFound) {
      movedAway_.erase(id);
      (void)saveStateLocked();
    }
    return s;
  }
  auto it = std::find_if(vgpus_.begin(), vgpus_.end(), [&](const Vgpu& v) { return v.id == id; });
  if (it == vgpus_.end()) return notFound("no vGPU " + id);
  std::string region = it->regionPath;
  stopWorker(it->workerPid);
  vgpus_.erase(it);
  live_.erase(id);
  removeRegion(region); // processes still mapping it keep their mapping
  return saveStateLocked();
}

std::vector<Vgpu> Hypervisor::vgpus() {
  std::lock_guard<std::mutex> lock(mu_);
  return vgpus_;
}

std::optional<Vgpu> Hypervisor::vgpu(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& v : vgpus_)
    if (v.id == id) return v;
  return std::nullopt;
}

VgpuUsage Hypervisor::usage(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  return usageLocked(id);
}

VgpuUsage Hypervisor::usageLocked(const std::string& id) {
  VgpuUsage u;
  auto it = live_.find(id);
  if (it == live_.end() || !it->second.region) return u;
  const Live& l = it->second;
  auto& r = *l.region;
  const auto v = std::find_if(vgpus_.begin(), vgpus_.end(), [&](const Vgpu& x) { return x.id == id; });
  for (size_t i = 0; i < l.devices.size(); ++i) {
    const int rd = static_cast<int>(i);
    auto d = r.usage(rd);
    VgpuDeviceUsage du;
    du.deviceUuid = v != vgpus_.end() && i < v->devices.size() ? v->devices[i].deviceUuid : std::string();
    du.vramUsed = d.vramUsed;
    du.hostUsed = d.hostUsed;
    du.busyNs = d.busyNs;
    du.throttledNs = d.throttledNs;
    du.launches = d.launches;
    du.computeShare = l.devices[i].share;
    du.allowedBp = r.computeBasisPoints(rd);
    u.vramUsed += du.vramUsed;
    u.hostUsed += du.hostUsed;
    u.busyNs += du.busyNs;
    u.throttledNs += du.throttledNs;
    u.launches += du.launches;
    u.computeShare += du.computeShare / static_cast<double>(l.devices.size());
    u.allowedBp += du.allowedBp / static_cast<uint32_t>(l.devices.size());
    u.devices.push_back(std::move(du));
  }
  for (const auto& p : r.processes()) u.pids.push_back(p.pid);
  if (auto t = tierViews_.find(id); t != tierViews_.end()) u.tiers = t->second;
  return u;
}

WorkerSpec Hypervisor::workerSpecLocked(const Vgpu& v, const std::string& listen) {
  WorkerSpec spec;
  spec.vgpuId = v.id;
  spec.regionPath = v.regionPath;
  spec.listen = listen;
  spec.token = v.workerToken;
  spec.softGpu = inventory_->isSoftGpu();
  spec.logPath = (fs::path(options_.stateDir) / ("worker-" + v.id + ".log")).string();
  spec.migrationToken = v.request.migrationToken;
  if (tieredLocked(v)) {
    const TierPolicy& p = options_.tiers;
    const int q = static_cast<int>(v.request.qos);
    spec.tiers = true;
    spec.waitMs = p.waitMs;
    spec.coldDir = p.coldDir;
    spec.adminToken = adminToken_;
    // TensorFusion's TTLs count from the last use; the worker's cold timer from the freeze.
    const bool own = v.request.tiers.enabled;  // the pool's policy, over the node's
    const uint64_t mem = own ? v.request.tiers.freezeToMemMs : p.freezeToMemMs[q];
    const uint64_t disk = own ? v.request.tiers.freezeToDiskMs : p.freezeToDiskMs[q];
    spec.freezeIdleMs = mem ? mem : disk;
    spec.coldAfterMs = disk > spec.freezeIdleMs ? disk - spec.freezeIdleMs : (disk && !mem ? 1 : 0);
  }
  return spec;
}

Result<int> Hypervisor::moveTiers(const std::string& id, remoting::TierAction action) {
  std::string address;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto v = std::find_if(vgpus_.begin(), vgpus_.end(), [&](const Vgpu& x) { return x.id == id; });
    if (v == vgpus_.end()) return notFound("no vGPU " + id);
    if (!tieredLocked(*v))
      return failedPrecondition("vGPU " + id + " has no VRAM tiers (" +
                                (v->request.isolation == Isolation::Soft
                                     ? "soft isolation: its memory is in its own process"
                                     : "neither the hypervisor (--vram-tiers) nor its pool turned them on") + ")");
    address = v->workerAddress;
  }
  auto admin = remoting::WorkerAdmin::connect(address, adminToken_);
  if (!admin) return admin.status();
  return (*admin)->control(action, 0, static_cast<uint64_t>(options_.tiers.waitMs) * 3);
}

void Hypervisor::tierTick() {
  struct Target {
    std::string id, address, device;
    Qos qos;
  };
  retireDrainedWorkers();
  std::vector<Target> targets;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& v : vgpus_)
      if (tieredLocked(v) && !v.workerAddress.empty() && !v.devices.empty())
        targets.push_back({v.id, v.workerAddress, v.devices[0].deviceUuid, v.request.qos});
  }
  // Read: each worker's clients (a worker that does not answer is asked again next round).
  std::map<std::string, TierView> views;
  for (const auto& t : targets) {
    auto& admin = admins_[t.id];
    if (admin && adminAddresses_[t.id] != t.address) admin.reset();  // the vGPU moved
    adminAddresses_[t.id] = t.address;
    if (!admin) {
      auto a = remoting::WorkerAdmin::connect(t.address, adminToken_, 1000);
      if (!a) continue;
      admin = std::move(*a);
    }
    auto records = admin->status();
    if (!records) {
      admin.reset();
      continue;
    }
    views[t.id] = summarize(*records);
  }
  auto gone = [&](const auto& a) {
    return std::none_of(targets.begin(), targets.end(), [&](const Target& t) { return t.id == a.first; });
  };
  std::erase_if(admins_, gone);
  std::erase_if(adminAddresses_, gone);
  {
    std::lock_guard<std::mutex> lock(mu_);
    tierViews_ = views;
  }
  // Decide: on each device, room for the vGPUs that wait, from the idle ones.
  std::map<std::string, uint64_t> needed;
  for (const auto& t : targets)
    if (views.count(t.id)) needed[t.device] += views[t.id].waitingBytes;
  for (const auto& [device, bytes] : needed) {
    if (bytes == 0) continue;
    std::vector<FreezeCandidate> candidates;
    for (const auto& t : targets)
      if (t.device == device && views.count(t.id) && views[t.id].waitingBytes == 0)
        candidates.push_back({t.id, t.qos, views[t.id].hotBytes, views[t.id].idleMs});
    for (const auto& id : chooseFreezes(candidates, bytes, options_.tiers.minIdleMs)) {
      auto moved = admins_[id]->control(remoting::TierAction::Freeze, options_.tiers.minIdleMs,
                                        static_cast<uint64_t>(options_.tiers.waitMs));
      if (moved)
        TF_LOG(Info, "hypervisor: froze %s (%d client(s)) for %s waited for on %s", id.c_str(), *moved,
               units::formatBytes(bytes).c_str(), device.c_str());
      else
        admins_[id].reset();
    }
  }
}

void Hypervisor::superviseWorkersLocked() {
  bool changed = false;
  for (auto& v : vgpus_) {
    if (v.request.isolation == Isolation::Soft || workerAlive(v.workerPid)) continue;
    // Restart on the same address, so clients reconnecting find it again.
    auto w = startWorker(workerSpecLocked(v, v.workerAddress));
    ++v.workerRestarts;
    changed = true;
    if (!w) {
      TF_LOG(Error, "hypervisor: restarting the worker of %s: %s", v.id.c_str(), w.status().toString().c_str());
      v.workerPid = 0;
      continue;
    }
    TF_LOG(Warn, "hypervisor: the worker of %s died; restarted (pid %d)", v.id.c_str(), int(w->pid));
    v.workerPid = w->pid;
    v.workerAddress = w->address;
    pointPodSocketLocked(v);  // a socket made again is another file
  }
  if (changed) (void)saveStateLocked();
}

void Hypervisor::tick() {
  std::lock_guard<std::mutex> lock(mu_);
  if (Status s = inventory_->refresh(); !s) TF_LOG(Warn, "hypervisor: %s", s.toString().c_str());
  superviseWorkersLocked();
  const uint64_t now = monotonicNs();
  // Observe: each vGPU's share of its device since the last tick.
  // Each device of each vGPU is observed and decided with the other vGPUs on that device.
  std::map<std::string, std::vector<VgpuObservation>> byDevice;
  for (const auto& v : vgpus_) {
    auto it = live_.find(v.id);
    if (it == live_.end() || !it->second.region) continue;
    Live& l = it->second;
    const uint64_t dt = now > l.lastTickNs ? now - l.lastTickNs : 1;
    for (size_t i = 0; i < v.devices.size() && i < l.devices.size(); ++i) {
      Live::PerDevice& p = l.devices[i];
      auto u = l.region->usage(static_cast<int>(i));
      p.share = std::min(1.0, static_cast<double>(u.busyNs - std::min(u.busyNs, p.lastBusyNs)) / dt);
      VgpuObservation o;
      o.vgpu = &v;
      o.device = static_cast<int>(i);
      o.usedBp = static_cast<uint32_t>(p.share * 10000);
      o.currentBp = l.region->computeBasisPoints(static_cast<int>(i));
      o.active = u.launches > p.lastLaunches;
      p.lastBusyNs = u.busyNs;
      p.lastLaunches = u.launches;
      byDevice[v.devices[i].deviceUuid].push_back(o);
    }
    l.lastTickNs = now;
  }
  // Decide and write: the level-triggered part.
  for (auto& [uuid, obs] : byDevice) {
    auto shares = computeShares(obs);
    for (size_t i = 0; i < obs.size(); ++i)
      (void)live_[obs[i].vgpu->id].region->setComputeBasisPoints(obs[i].device, shares[i]);
  }
  if (!options_.influxLog.empty()) {
    std::ofstream out(options_.influxLog, std::ios::app);
    out << influxLines();
  }
}

std::string Hypervisor::prometheusMetrics() {
  std::string out;
  auto line = [&](const std::string& name, const std::string& labels, double value) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.15g", value);
    out += name + "{" + labels + "} " + buf + "\n";
  };
  out += "# HELP tf_device_memory_bytes Device memory, total and in use.\n# TYPE tf_device_memory_bytes gauge\n";
  auto devs = devices();
  for (const auto& d : devs) {
    std::string l = "node=\"" + options_.node + "\",uuid=\"" + d.uuid + "\",model=\"" + d.name + "\"";
    line("tf_device_memory_bytes", l + ",kind=\"total\"", static_cast<double>(d.memoryTotal));
    line("tf_device_memory_bytes", l + ",kind=\"used\"", static_cast<double>(d.memoryUsed));
  }
  out += "# HELP tf_device_utilization_percent Device busy time over the last second.\n# TYPE tf_device_utilization_percent gauge\n";
  for (const auto& d : devs)
    line("tf_device_utilization_percent", "node=\"" + options_.node + "\",uuid=\"" + d.uuid + "\"", d.utilization);
  out += "# HELP tf_vgpu_memory_bytes vGPU memory: limit and use.\n# TYPE tf_vgpu_memory_bytes gauge\n"
         "# HELP tf_vgpu_compute_share vGPU share of its device: limit, allowed now, used.\n# TYPE tf_vgpu_compute_share gauge\n"
         "# HELP tf_vgpu_throttled_seconds_total Time launches were held back.\n# TYPE tf_vgpu_throttled_seconds_total counter\n"
         "# HELP tf_vgpu_launches_total Kernel and graph launches.\n# TYPE tf_vgpu_launches_total counter\n"
         "# HELP tf_vgpu_gpu_seconds_total GPU time used.\n# TYPE tf_vgpu_gpu_seconds_total counter\n"
         "# HELP tf_worker_restarts_total Worker restarts (hard and remote isolation).\n# TYPE tf_worker_restarts_total counter\n"
         "# HELP tf_vgpu_tier_bytes vGPU memory by VRAM tier (hot: on the device, warm: host memory, cold: disk), and waited for.\n# TYPE tf_vgpu_tier_bytes gauge\n"
         "# HELP tf_vgpu_tier_stored_bytes What the warm and cold tiers take for the vGPU (chunks all zero are stored nowhere).\n# TYPE tf_vgpu_tier_stored_bytes gauge\n"
         "# HELP tf_vgpu_tier_moves_total Allocations moved off (freeze) and back onto (thaw) the device.\n# TYPE tf_vgpu_tier_moves_total counter\n"
         "# HELP tf_vgpu_tier_seconds_total Time those moves took.\n# TYPE tf_vgpu_tier_seconds_total counter\n"
         "# HELP tf_vgpu_migrations_total Moves of the vGPU to another device (done: some client moved).\n# TYPE tf_vgpu_migrations_total counter\n"
         "# HELP tf_vgpu_migration_pause_seconds The longest client pause of the vGPU's last move.\n# TYPE tf_vgpu_migration_pause_seconds gauge\n"
         "# HELP tf_vgpu_migrated_bytes_total Memory, module variables and images its moves sent.\n# TYPE tf_vgpu_migrated_bytes_total counter\n";
  std::map<std::string, MigrationStats> migrations;
  {
    std::lock_guard<std::mutex> lock(mu_);
    migrations = migrationStats_;
  }
  // One series per device of each vGPU (the uuid label), so a vGPU of several devices shows each.
  for (const auto& v : vgpus()) {
    VgpuUsage u = usage(v.id);
    for (size_t i = 0; i < v.devices.size() && i < u.devices.size(); ++i) {
      const VgpuDeviceUsage& d = u.devices[i];
      std::string l = "node=\"" + options_.node + "\",vgpu=\"" + v.id + "\",uuid=\"" + v.devices[i].deviceUuid + "\"";
      line("tf_vgpu_memory_bytes", l + ",kind=\"limit\"", static_cast<double>(v.request.vramLimit));
      line("tf_vgpu_memory_bytes", l + ",kind=\"used\"", static_cast<double>(d.vramUsed));
      line("tf_vgpu_compute_share", l + ",kind=\"limit\"", v.devices[i].limitBp / 10000.0);
      line("tf_vgpu_compute_share", l + ",kind=\"allowed\"", d.allowedBp / 10000.0);
      line("tf_vgpu_compute_share", l + ",kind=\"used\"", d.computeShare);
      line("tf_vgpu_throttled_seconds_total", l, d.throttledNs / 1e9);
      line("tf_vgpu_launches_total", l, static_cast<double>(d.launches));
      line("tf_vgpu_gpu_seconds_total", l, d.busyNs / 1e9);
      line("tf_worker_restarts_total", l, v.workerRestarts);
    }
    if (u.tiers) {  // the worker's, over all its devices
      const TierView& t = *u.tiers;
      std::string l = "node=\"" + options_.node + "\",vgpu=\"" + v.id + "\"";
      line("tf_vgpu_tier_bytes", l + ",tier=\"hot\"", static_cast<double>(t.hotBytes));
      line("tf_vgpu_tier_bytes", l + ",tier=\"warm\"", static_cast<double>(t.warmBytes));
      line("tf_vgpu_tier_bytes", l + ",tier=\"cold\"", static_cast<double>(t.coldBytes));
      line("tf_vgpu_tier_bytes", l + ",tier=\"waiting\"", static_cast<double>(t.waitingBytes));
      line("tf_vgpu_tier_stored_bytes", l + ",tier=\"warm\"", static_cast<double>(t.warmStoredBytes));
      line("tf_vgpu_tier_stored_bytes", l + ",tier=\"cold\"", static_cast<double>(t.coldStoredBytes));
      line("tf_vgpu_tier_moves_total", l + ",kind=\"freeze\"", static_cast<double>(t.freezes));
      line("tf_vgpu_tier_moves_total", l + ",kind=\"thaw\"", static_cast<double>(t.thaws));
      line("tf_vgpu_tier_seconds_total", l + ",kind=\"freeze\"", t.freezeNs / 1e9);
      line("tf_vgpu_tier_seconds_total", l + ",kind=\"thaw\"", t.thawNs / 1e9);
    }
    if (auto m = migrations.find(v.id); m != migrations.end()) {
      std::string l = "node=\"" + options_.node + "\",vgpu=\"" + v.id + "\"";
      line("tf_vgpu_migrations_total", l + ",result=\"done\"", static_cast<double>(m->second.done));
      line("tf_vgpu_migrations_total", l + ",result=\"failed\"", static_cast<double>(m->second.failed));
      line("tf_vgpu_migration_pause_seconds", l, m->second.lastPauseNs / 1e9);
      line("tf_vgpu_migrated_bytes_total", l, static_cast<double>(m->second.bytes));
    }
  }
  return out;
}

std::string Hypervisor::influxLines() {
  // Called with mu_ held (from tick) or not (from the API): read without taking it again.
  std::string out;
  const long long ts = static_cast<long long>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  for (const auto& d : inventory_->devices())
    out += "tf_gpu_usage,node=" + options_.node + ",uuid=" + d.uuid + " memory_used=" +
           std::to_string(d.memoryUsed) + "i,memory_total=" + std::to_string(d.memoryTotal) +
           "i,utilization=" + std::to_string(d.utilization) + "i " + std::to_string(ts) + "\n";
  for (const auto& v : vgpus_) {
    auto it = live_.find(v.id);
    if (it == live_.end() || !it->second.region) continue;
    for (size_t i = 0; i < v.devices.size() && i < it->second.devices.size(); ++i) {
      auto u = it->second.region->usage(static_cast<int>(i));
      out += "tf_worker_usage,node=" + options_.node + ",worker=" + v.id + ",uuid=" + v.devices[i].deviceUuid +
             " memory_used=" + std::to_string(u.vramUsed) + "i,compute_share=" +
             std::to_string(it->second.devices[i].share) + ",throttled_ns=" + std::to_string(u.throttledNs) +
             "i,launches=" + std::to_string(u.launches) + "i " + std::to_string(ts) + "\n";
    }
    if (auto t = tierViews_.find(v.id); t != tierViews_.end())
      out += "tf_worker_tiers,node=" + options_.node + ",worker=" + v.id + ",tier=" +
             remoting::tierStateName(t->second.state) + " hot_bytes=" + std::to_string(t->second.hotBytes) +
             "i,warm_bytes=" + std::to_string(t->second.warmBytes) + "i,cold_bytes=" +
             std::to_string(t->second.coldBytes) + "i,freezes=" + std::to_string(t->second.freezes) +
             "i,thaws=" + std::to_string(t->second.thaws) + "i,freeze_ns=" + std::to_string(t->second.freezeNs) +
             "i,thaw_ns=" + std::to_string(t->second.thawNs) + "i " + std::to_string(ts) + "\n";
  }
  return out;
}

} // namespace tf::hypervisor
