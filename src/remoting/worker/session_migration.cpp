// A session moving to another worker and one moving in (migration.h): the replay log kept
// while the client runs, the capture at a synchronous call, the contents streamed to the
// target, and the target re-creating the session under the client's old values.
#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include "common/log.h"
#include "cuda/catalog.h"
#include "remoting/tier_control.h"
#include "remoting/worker/session.h"

namespace tf::remoting {

using cuda::FnId;

namespace {

const char* kindName(HandleKind k) {
  static const char* const names[] = {
      "context", "stream", "event", "module", "library", "kernel", "function", "memory pool",
      "shared memory pool", "graph", "graph executable", "graph node", "array", "array level",
      "mipmapped array", "texture object", "surface object", "physical memory handle"};
  static_assert(sizeof(names) / sizeof(names[0]) == static_cast<size_t>(HandleKind::Count));
  return names[static_cast<int>(k)];
}

std::string symbolOf(uint32_t fn) {
  return fn < static_cast<uint32_t>(cuda::catalogSize()) ? cuda::catalogEntry(static_cast<int>(fn)).symbol
                                                          : "op " + std::to_string(fn);
}

std::pair<int, uint64_t> key(HandleKind k, uint64_t client) { return {static_cast<int>(k), client}; }

// How long a parked session waits for its client.
constexpr auto kParkedFor = std::chrono::seconds(60);
// How long the source waits for the target's admin connection.
constexpr int kConnectMs = 5000;

}  // namespace

// ---- the replay log ----------------------------------------------------------------------------

uint64_t Session::exposeForMigration(HandleKind k, uint64_t driver) {
  if (!adoptQueue_.empty()) {  // replaying on the target: the client's old value, in order
    for (auto it = adoptQueue_.begin(); it != adoptQueue_.end(); ++it)
      if (it->kind == k) {
        const uint64_t client = it->client;
        if (!handles_.adopt(k, client, driver)) break;  // taken: the replay reports it
        adoptQueue_.erase(it);
        return client;
      }
    return handles_.expose(k, driver);
  }
  const size_t before = handles_.count(k);
  const uint64_t client = handles_.expose(k, driver);
  if (k != HandleKind::Context && handles_.count(k) != before) recording_->push_back({k, client});
  return client;
}

void Session::keepRecipe(const ReplayRule& rule, Recipe recipe) {
  std::vector<std::pair<int, uint64_t>> keys;
  if (rule.makes) {
    for (const auto& m : recipe.made) keys.push_back(key(m.kind, m.client));
  } else {
    const uint64_t owner = rule.ownerArg < 0 ? recipe.ctx
                           : static_cast<size_t>(rule.ownerArg) < recipe.args.size() ? recipe.args[rule.ownerArg]
                                                                                    : 0;
    if (owner) keys.push_back(key(rule.ownerKind, owner));
  }
  if (keys.empty()) return;  // made nothing new (a function asked for again)
  const uint64_t seq = nextRecipe_++;
  recipes_.emplace(seq, std::move(recipe));
  for (const auto& k : keys) recipesOf_.emplace(k, seq);
}

void Session::dropRecipesOf(HandleKind k, uint64_t driver) {
  auto client = handles_.clientValue(k, driver);
  if (!client) return;
  auto range = recipesOf_.equal_range(key(k, *client));
  for (auto it = range.first; it != range.second; ++it) {
    auto r = recipes_.find(it->second);
    if (r == recipes_.end()) continue;
    auto& made = r->second.made;
    for (auto m = made.begin(); m != made.end(); ++m)
      if (m->kind == k && m->client == *client) {
        made.erase(m);
        break;
      }
    // A recipe lives while a handle it made does; a change, while the handle it changed does.
    const ReplayRule* rule = replayRule(r->second.fn);
    if (!rule || !rule->makes || made.empty()) recipes_.erase(r);
  }
  recipesOf_.erase(range.first, range.second);
}

// ---- the source --------------------------------------------------------------------------------

Status Session::migrationRefusal() const {
  for (HandleKind k : {HandleKind::Pool, HandleKind::SharedPool, HandleKind::Array, HandleKind::ArrayLevel,
                       HandleKind::MipmappedArray, HandleKind::TexObject, HandleKind::SurfObject,
                       HandleKind::MemHandle})
    if (size_t n = handles_.count(k))
      return failedPrecondition("the client holds " + std::to_string(n) + " " + kindName(k) +
                                " handle(s), which cannot migrate yet");
  for (HandleKind k : {HandleKind::Stream, HandleKind::Event, HandleKind::Module, HandleKind::Library,
                       HandleKind::Kernel, HandleKind::Function})
    for (uint64_t driver : handles_.drivers(k)) {
      const uint64_t client = *handles_.clientValue(k, driver);
      bool made = false;
      auto range = recipesOf_.equal_range(key(k, client));
      for (auto it = range.first; it != range.second && !made; ++it) {
        auto r = recipes_.find(it->second);
        const ReplayRule* rule = r == recipes_.end() ? nullptr : replayRule(r->second.fn);
        made = rule && rule->makes;
      }
      if (!made)
        return failedPrecondition(std::string("the client holds a ") + kindName(k) +
                                  " made by a call that cannot be made again elsewhere yet");
    }
  // A graph being captured is the driver's until the capture ends.
  if (auto capturing = d().fn<decltype(&::cuStreamIsCapturing)>(FnId::cuStreamIsCapturing))
    for (uint64_t st : handles_.drivers(HandleKind::Stream)) {
      CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
      if (capturing(reinterpret_cast<CUstream>(st), &status) == CUDA_SUCCESS && status != CU_STREAM_CAPTURE_STATUS_NONE)
        return failedPrecondition("a stream of the client is being captured into a graph");
    }
  if (!hostMirrors_.empty() || !mirrors_->empty())
    return failedPrecondition("the client has host memory the device reaches by address (mapped pinned or "
                              "managed memory), which cannot migrate yet");
  if (!memHandles_.empty() || !reservations_.empty() || !mappings_.empty())
    return failedPrecondition("the client manages virtual memory itself (cuMemCreate/cuMemMap), which "
                              "cannot migrate yet");
  for (const auto& [p, a] : allocations_) {
    if (a.freeable && !a.tiered)
      return failedPrecondition("the client has device memory outside the VRAM tiers (a worker without "
                                "--tiers, or pitched or stream-ordered memory), which cannot migrate yet");
    if (!a.freeable && !globalNames_.count(p))
      return failedPrecondition("the client has memory opened by IPC handle, which cannot migrate yet");
  }
  return Status::ok();
}

CUcontext Session::deviceContext(int dev) {
  if (auto it = primaries_.find(dev); it != primaries_.end()) return it->second;
  if (auto it = tiers_.find(dev); it != tiers_.end()) return it->second.ctx;
  return nullptr;
}

Result<MigrationImage> Session::capture() {
  const DriverApi& api = d();
  auto setCurrent = api.fn<decltype(&::cuCtxSetCurrent)>(FnId::cuCtxSetCurrent);
  auto getDevice = api.fn<decltype(&::cuCtxGetDevice)>(FnId::cuCtxGetDevice);
  auto getFlags = api.fn<decltype(&::cuCtxGetFlags)>(FnId::cuCtxGetFlags);
  MigrationImage img;
  img.pid = info_->pid;
  img.latched = latched_;
  for (uint64_t c : handles_.drivers(HandleKind::Context)) {
    CUdevice dev = 0;
    unsigned flags = 0;
    if (setCurrent(reinterpret_cast<CUcontext>(c)) != CUDA_SUCCESS || getDevice(&dev) != CUDA_SUCCESS)
      return unavailable("a context of the client cannot be read");
    if (getFlags) getFlags(&flags);
    auto p = primaries_.find(dev);
    img.contexts.push_back({*handles_.clientValue(HandleKind::Context, c), dev, flags,
                            p != primaries_.end() && reinterpret_cast<uint64_t>(p->second) == c});
  }
  for (const auto& [seq, r] : recipes_) {
    img.recipes.push_back(r);
    if ((r.fn == static_cast<uint32_t>(FnId::cuModuleLoadData) ||
         r.fn == static_cast<uint32_t>(FnId::cuLibraryLoadData)) && !r.args.empty()) {
      auto image = keptImage(r.args[0]);
      if (!image) return failedPrecondition("a module image of the client was not kept");
      bool listed = false;
      for (const auto& i : img.images) listed |= i.hash == r.args[0];
      // The worker keeps a NUL after each image (PTX text); the image is what the client sent.
      if (!listed) img.images.push_back({r.args[0], r.args.size() > 1 ? r.args[1] : image->size()});
    }
  }
  for (const auto& [dev, t] : tiers_)
    for (const VramTiers::Range& r : t.tiers->ranges()) {
      auto a = allocations_.find(r.base);
      img.memory.push_back({dev, r.base, r.size, a == allocations_.end() ? r.size : a->second.size});
    }
  // Every module variable moves (kernels keep state in them), asked for by the client or not.
  auto moduleGlobal = api.fn<decltype(&::cuModuleGetGlobal_v2)>(FnId::cuModuleGetGlobal_v2);
  auto libraryGlobal = api.fn<decltype(&::cuLibraryGetGlobal)>(FnId::cuLibraryGetGlobal);
  for (const Recipe& r : img.recipes) {
    const bool isModule = r.fn == static_cast<uint32_t>(FnId::cuModuleLoadData);
    if ((!isModule && r.fn != static_cast<uint32_t>(FnId::cuLibraryLoadData)) || r.made.empty()) continue;
    auto image = keptImage(r.args[0]);
    auto names = moduleVariables(image->data(), image->size());
    if (!names) return failedPrecondition("reading the variables of a module of the client: " + names.status().message());
    const HandleKind kind = isModule ? HandleKind::Module : HandleKind::Library;
    const uint64_t owner = r.made.front().client;
    auto driver = handles_.resolve(kind, owner);
    CUcontext ctx = reinterpret_cast<CUcontext>(r.ctx);
    if (!driver || (r.ctx && !resolveIn(ctx, HandleKind::Context))) continue;
    setCurrent(ctx);
    for (const std::string& name : *names) {
      CUdeviceptr p = 0;
      size_t size = 0;
      CUresult gr = isModule ? moduleGlobal(&p, &size, reinterpret_cast<CUmodule>(*driver), name.c_str())
                             : libraryGlobal(&p, &size, reinterpret_cast<CUlibrary>(*driver), name.c_str());
      if (gr != CUDA_SUCCESS) return failedPrecondition("module variable " + name + " cannot be read (CUresult " + std::to_string(gr) + ")");
      MigrationImage::Global g;
      g.ownerKind = kind;
      g.owner = owner;
      g.name = name;
      g.address = p;
      g.size = size;
      g.sourceCtx = reinterpret_cast<uint64_t>(ctx);
      img.globals.push_back(std::move(g));
    }
  }
  setCurrent(current_);
  TF_RETURN_IF_ERROR(describeGraphs(img));
  setCurrent(current_);
  return img;
}

namespace {
// Streams n bytes produced by read(offset, dst, k) into t: over shared memory straight into the
// ring (one copy), else through `staging`.
template <typename Read>
Status streamOut(Transport& t, uint64_t n, std::vector<uint8_t>& staging, Read&& read) {
  for (uint64_t off = 0; off < n;) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, n - off));
    uint8_t* p = nullptr;
    size_t k = want;
    if (t.supportsViews()) {
      TF_RETURN_IF_ERROR(t.reserveWrite(want, &p, &k));
    } else {
      staging.resize(kChunk);
      p = staging.data();
    }
    Status s = read(off, p, k);
    if (t.supportsViews()) {
      if (!s) std::memset(p, 0, k);  // the frame stays whole; the error ends the migration
      t.commitWrite(k);
    } else if (s) {
      iovec v{p, k};
      s = t.writeV(&v, 1);
    }
    TF_RETURN_IF_ERROR(s);
    off += k;
  }
  return Status::ok();
}
}  // namespace

Status Session::writeContents(const MigrationImage& img, Transport& t) {
  auto setCurrent = d().fn<decltype(&::cuCtxSetCurrent)>(FnId::cuCtxSetCurrent);
  auto dtoh = d().fn<decltype(&::cuMemcpyDtoH_v2)>(FnId::cuMemcpyDtoH_v2);
  for (const auto& i : img.images) {
    auto image = keptImage(i.hash);
    if (!image || image->size() < i.size) return internalError("a module image went away");
    iovec v{const_cast<uint8_t*>(image->data()), i.size};
    TF_RETURN_IF_ERROR(t.writeV(&v, 1));
  }
  for (const auto& m : img.memory) {
    setCurrent(deviceContext(m.device));
    const VramTiers& tiers = *tiers_.at(m.device).tiers;
    TF_RETURN_IF_ERROR(streamOut(t, m.span, staging_, [&](uint64_t off, uint8_t* p, size_t k) {
      return tiers.read(m.base, off, p, k);
    }));
  }
  for (const auto& g : img.globals) {
    setCurrent(reinterpret_cast<CUcontext>(g.sourceCtx));
    TF_RETURN_IF_ERROR(streamOut(t, g.size, staging_, [&](uint64_t off, uint8_t* p, size_t k) {
      CUresult r = dtoh(p, g.address + off, k);
      return r == CUDA_SUCCESS ? Status::ok() : unavailable("reading global " + g.name + ": CUresult " + std::to_string(r));
    }));
  }
  setCurrent(current_);
  return Status::ok();
}

Result<uint64_t> Session::migrateOut(MigrationTicket& ticket, uint64_t* bytes) {
  TF_RETURN_IF_ERROR(migrationRefusal());
  // The client's work finishes first: nothing may change what is captured.
  auto setCurrent = d().fn<decltype(&::cuCtxSetCurrent)>(FnId::cuCtxSetCurrent);
  auto sync = d().fn<decltype(&::cuCtxSynchronize)>(FnId::cuCtxSynchronize);
  for (uint64_t c : handles_.drivers(HandleKind::Context))
    if (setCurrent(reinterpret_cast<CUcontext>(c)) == CUDA_SUCCESS)
      if (CUresult r = sync(); r != CUDA_SUCCESS && latched_ == CUDA_SUCCESS) latched_ = r;
  setCurrent(current_);
  auto img = capture();
  if (!img) return img.status();
  auto admin = WorkerAdmin::connect(ticket.order.address, ticket.order.adminToken, kConnectMs);
  if (!admin) return admin.status();
  Writer w;
  encodeMigrationImage(w, *img);
  if (w.size() > kMaxArgs - 64) return failedPrecondition("the client's handles do not fit one migration message");
  *bytes = img->bulkBytes();
  auto id = (*admin)->adopt(w, *bytes, [&](Transport& t) { return writeContents(*img, t); });
  setCurrent(current_);
  return id;
}

bool Session::migrateIfOrdered(const FrameHeader& h) {
  std::shared_ptr<MigrationTicket> ticket;
  {
    std::lock_guard<std::mutex> lock(info_->migrationMu);
    ticket = std::move(info_->migration);
    info_->migrationPending.store(false);
  }
  if (!ticket) return false;
  const auto start = std::chrono::steady_clock::now();
  uint64_t bytes = 0;
  auto id = migrateOut(*ticket, &bytes);
  if (!id) {
    TF_LOG(Warn, "worker: %s stays here: migrating to %s: %s", peer_.c_str(), ticket->order.address.c_str(),
           id.status().toString().c_str());
    ticket->finish(id.status());
    return false;  // the call runs here, as if nothing happened
  }
  // The call is not run here: the client sends it again to the target.
  const uint64_t resumeId = *id;
  Status s = sendMoved(h, resumeId, ticket->order.address);
  {
    std::lock_guard<std::mutex> lock(shared_.movedMu);
    shared_.movedTo[info_->pid] = ticket->order.address;
  }
  shared_.anyMoved.store(true);
  ticket->pauseNs = static_cast<uint64_t>((std::chrono::steady_clock::now() - start).count());
  ticket->bytes = bytes;
  ticket->resumeId = resumeId;
  TF_LOG(Info, "worker: %s moved to %s (%llu bytes, held %.1f ms)", peer_.c_str(), ticket->order.address.c_str(),
         static_cast<unsigned long long>(bytes), ticket->pauseNs / 1e6);
  ticket->finish(s);
  // Everything stays here until the client closes this connection: one that cannot reach the
  // target sends its call here again and carries on.
  return true;
}

Status Session::sendMoved(const FrameHeader& h, uint64_t resumeId, const std::string& address) {
  TF_RETURN_IF_ERROR(h.bulkLen ? skipBulk(*transport_, h.bulkLen) : Status::ok());  // not run here
  CallOut out;
  out.put(resumeId);
  out.blob = address;
  return sendReply(h, CUDA_SUCCESS, out, kFlagMoved);
}

bool Session::followMovedProcess(const FrameHeader& h) {
  std::string address;
  {
    std::lock_guard<std::mutex> lock(shared_.movedMu);
    auto it = shared_.movedTo.find(monitorPid_);
    if (it == shared_.movedTo.end()) return false;
    address = it->second;
  }
  (void)sendMoved(h, 0, address);  // a new session there: an NVML session holds nothing
  return true;
}

// ---- the target --------------------------------------------------------------------------------

Status Session::read(void* dst, size_t n) { return readBulk(dst, n); }

Status Session::fill(uint64_t n, const std::function<Status(uint64_t, const uint8_t*, size_t)>& use) {
  Status failed = Status::ok();
  auto inPlace = consumeBulkInPlace(n, [&](uint64_t off, const uint8_t* p, size_t k) {
    failed = use(off, p, k);
    return failed ? CUDA_SUCCESS : CUDA_ERROR_UNKNOWN;
  });
  if (!inPlace) return failed ? inPlace.status() : failed;
  if (*inPlace) return Status::ok();
  staging_.resize(kChunk);
  for (uint64_t off = 0; off < n;) {
    const size_t k = static_cast<size_t>(std::min<uint64_t>(kChunk, n - off));
    TF_RETURN_IF_ERROR(readBulk(staging_.data(), k));
    TF_RETURN_IF_ERROR(use(off, staging_.data(), k));
    off += k;
  }
  return Status::ok();
}

CUresult Session::runAsClient(uint64_t ctx, uint32_t fn, std::vector<uint64_t> args, std::string blob,
                              std::vector<Recipe::Made> made, CallOut& out, bool* allAdopted) {
  CUcontext c = reinterpret_cast<CUcontext>(ctx);
  if (ctx && !resolveIn(c, HandleKind::Context)) return CUDA_ERROR_INVALID_CONTEXT;
  if (d().fn<decltype(&::cuCtxSetCurrent)>(FnId::cuCtxSetCurrent)(c) != CUDA_SUCCESS) return CUDA_ERROR_INVALID_CONTEXT;
  current_ = c;
  currentClientValue_ = ctx;
  CallIn in;
  in.fn = fn;
  in.a.count = static_cast<uint32_t>(std::min<size_t>(args.size(), kMaxScalars));
  std::copy(args.begin(), args.begin() + in.a.count, in.a.s);
  in.a.blob = blob;
  adoptQueue_ = std::move(made);
  CUresult r = dispatch(*this, in, out);
  if (allAdopted) *allAdopted = adoptQueue_.empty();
  adoptQueue_.clear();
  return r;
}

Status Session::replay(const Recipe& rc) {
  if (rc.ctx && !handles_.resolve(HandleKind::Context, rc.ctx))
    return dataLoss("replaying " + symbolOf(rc.fn) + ": a context the image does not have");
  CallOut out;
  const bool makes = !rc.made.empty();
  bool allAdopted = false;
  CUresult r = runAsClient(rc.ctx, rc.fn, rc.args, rc.blob, rc.made, out, &allAdopted);
  if (r != CUDA_SUCCESS)
    return failedPrecondition("replaying " + symbolOf(rc.fn) + " here failed (CUresult " + std::to_string(r) + ")");
  if (makes && !allAdopted)
    return failedPrecondition("replaying " + symbolOf(rc.fn) + " here did not make what it made there");
  if (const ReplayRule* rule = replayRule(rc.fn)) keepRecipe(*rule, rc);  // it may move again
  return Status::ok();
}

Status Session::adoptImage(const MigrationImage& img, Session& bulk) {
  const DriverApi& api = d();
  auto setCurrent = api.fn<decltype(&::cuCtxSetCurrent)>(FnId::cuCtxSetCurrent);
  auto create = api.fn<decltype(&::cuCtxCreate_v2)>(FnId::cuCtxCreate_v2);
  auto htod = api.fn<decltype(&::cuMemcpyHtoD_v2)>(FnId::cuMemcpyHtoD_v2);
  auto moduleGlobal = api.fn<decltype(&::cuModuleGetGlobal_v2)>(FnId::cuModuleGetGlobal_v2);
  auto libraryGlobal = api.fn<decltype(&::cuLibraryGetGlobal)>(FnId::cuLibraryGetGlobal);
  info_->pid = img.pid;
  latched_ = static_cast<CUresult>(img.latched);
  std::map<int, CUcontext> firstOnDevice;  // where memory of a device without a primary goes
  for (const auto& c : img.contexts) {
    CUcontext ctx = nullptr;
    if (CUresult r = create(&ctx, c.flags, c.device); r != CUDA_SUCCESS)
      return unavailable("creating a context on device " + std::to_string(c.device) + ": CUresult " +
                         std::to_string(r));
    if (!handles_.adopt(HandleKind::Context, c.client, reinterpret_cast<uint64_t>(ctx))) {
      setCurrent(nullptr);
      api.fn<decltype(&::cuCtxDestroy_v2)>(FnId::cuCtxDestroy_v2)(ctx);
      return dataLoss("a context appears twice in the image");
    }
    if (c.primary) primaries_.emplace(c.device, ctx);
    firstOnDevice.emplace(c.device, ctx);
    usesDevice(c.device);
  }
  // The bulk: images, then memory, then globals.
  for (const auto& i : img.images) {
    auto bytes = std::make_shared<std::vector<uint8_t>>(i.size + 1, 0);  // NUL after PTX text
    TF_RETURN_IF_ERROR(bulk.read(bytes->data(), i.size));
    if (fnv1a64(bytes->data(), i.size) != i.hash) return dataLoss("a module image does not match its hash");
    shared_.addImage(i.hash, bytes);
    keepImage(i.hash, std::move(bytes));
  }
  // Modules come back with their variables at the source's addresses (cudart keeps them).
  for (const Recipe& r : img.recipes) {
    placements_.clear();
    for (const auto& g : img.globals)
      if (!r.made.empty() && g.owner == r.made.front().client && g.ownerKind == r.made.front().kind)
        placements_.push_back({g.name.c_str(), g.address});
    Status st = replay(r);
    placements_.clear();
    TF_RETURN_IF_ERROR(st);
  }
  for (const auto& m : img.memory) {
    CUcontext ctx = deviceContext(m.device);
    if (!ctx && firstOnDevice.count(m.device)) ctx = firstOnDevice[m.device];
    if (!ctx) return dataLoss("memory on a device the client has no context on");
    setCurrent(ctx);
    current_ = ctx;
    auto p = tierAllocate(m.size, m.base);
    if (!p) return p.status().withContext("re-creating the client's memory");
    if (tiers_.at(m.device).tiers->find(m.base)->size != m.span)
      return failedPrecondition("the device's allocation granularity differs here");
    TF_RETURN_IF_ERROR(bulk.fill(m.span, [&](uint64_t off, const uint8_t* p, size_t k) {
      CUresult r = htod(m.base + off, p, k);
      return r == CUDA_SUCCESS ? Status::ok() : unavailable("filling the client's memory: CUresult " + std::to_string(r));
    }));
  }
  for (const auto& g : img.globals) {
    uint64_t owner = g.owner;
    if (!handles_.resolve(g.ownerKind, owner)) return dataLoss("a global of a module the image does not have");
    owner = *handles_.resolve(g.ownerKind, g.owner);
    CUdeviceptr p = 0;
    size_t size = 0;
    CUresult r = g.ownerKind == HandleKind::Module
                     ? moduleGlobal(&p, &size, reinterpret_cast<CUmodule>(owner), g.name.c_str())
                     : libraryGlobal(&p, &size, reinterpret_cast<CUlibrary>(owner), g.name.c_str());
    if (r != CUDA_SUCCESS) return failedPrecondition("global " + g.name + " is not in its module here");
    if (p != g.address || size != g.size)
      return failedPrecondition("global " + g.name + " is at another address here (the driver cannot place it)");
    addGlobal(owner, p, size, g.name);
    TF_RETURN_IF_ERROR(bulk.fill(g.size, [&](uint64_t off, const uint8_t* p, size_t k) {
      CUresult hr = htod(g.address + off, p, k);
      return hr == CUDA_SUCCESS ? Status::ok() : unavailable("filling global " + g.name + ": CUresult " + std::to_string(hr));
    }));
  }
  TF_RETURN_IF_ERROR(adoptGraphs(img));  // after the memory: nodes are checked against it
  // Events come back recorded (the client's work before the move is done), so waiting on one
  // or timing from one recorded before the move works; the time measured across it is not the
  // source's.
  auto record = api.fn<decltype(&::cuEventRecord)>(FnId::cuEventRecord);
  for (const Recipe& r : img.recipes) {
    if (r.fn != static_cast<uint32_t>(FnId::cuEventCreate) || r.made.empty()) continue;
    CUcontext ctx = reinterpret_cast<CUcontext>(r.ctx);
    auto event = handles_.resolve(HandleKind::Event, r.made.front().client);
    if (!event || (r.ctx && !resolveIn(ctx, HandleKind::Context))) continue;
    setCurrent(ctx);
    if (CUresult er = record(reinterpret_cast<CUevent>(*event), nullptr); er != CUDA_SUCCESS)
      return unavailable("recording an event here: CUresult " + std::to_string(er));
  }
  setCurrent(nullptr);
  current_ = nullptr;
  currentClientValue_ = 0;
  publishTiers();
  return Status::ok();
}

Result<uint64_t> Session::adopt(WorkerShared& shared, const MigrationImage& img, Session& bulk) {
  std::shared_ptr<Session> s(new Session(shared, nullptr, /*remapped=*/true));
  if (Status st = s->adoptImage(img, bulk); !st) {
    s->run(Role::Refused);  // releases what it made
    return st;
  }
  std::random_device rd;
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(shared.channelsMu);
    do {
      s->id_ = (uint64_t(rd()) << 32) | rd();
    } while (s->id_ == 0 || shared.channels.count(s->id_));
  }
  {
    std::lock_guard<std::mutex> lock(shared.parkedMu);
    do {
      id = (uint64_t(rd()) << 32) | rd();
    } while (id == 0 || shared.parked.count(id));
    shared.parked.emplace(id, s);
  }
  // A client that never comes: the session goes after a while.
  std::weak_ptr<Session> weak = s;
  std::thread([&shared, id, weak] {
    std::this_thread::sleep_for(kParkedFor);
    std::shared_ptr<Session> left;
    {
      std::lock_guard<std::mutex> lock(shared.parkedMu);
      auto it = shared.parked.find(id);
      if (it == shared.parked.end()) return;
      left = std::move(it->second);
      shared.parked.erase(it);
    }
    TF_LOG(Warn, "worker: a session moved here was never resumed by its client; released");
    left->run(Role::Refused);
  }).detach();
  return id;
}

}  // namespace tf::remoting
