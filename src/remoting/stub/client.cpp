#include "remoting/stub/client.h"

#include "k8s/api/well_known.h"  // the environment the webhook gives remote pods (header only)
#include "remoting/operator_connection.h"

#include <chrono>
#include <cerrno>
#include <cstdlib>
#include <thread>
#include <cstring>
#include <unistd.h>

#include "common/log.h"

namespace tf::remoting::stub {

namespace {
int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// TF_REMOTE_TOKEN, else the first line of the file TF_REMOTE_TOKEN_FILE names (a hard-isolated
// pod's worker writes its token beside its socket).
std::string workerToken() {
  if (const char* tok = getenv("TF_REMOTE_TOKEN")) return tok;
  const char* file = getenv(k8s::api::kEnvRemoteTokenFile);
  if (!file || !*file) return {};
  std::string token;
  if (FILE* f = fopen(file, "re")) {
    char buf[256] = {};
    if (fgets(buf, sizeof buf, f)) token = buf;
    fclose(f);
  } else {
    TF_LOG(Warn, "cannot read the worker token from %s: %s", file, strerror(errno));
  }
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  return token;
}

// Connects, retrying for up to TF_REMOTE_WAIT_MS while nobody listens yet (a pod's worker that
// the node's hypervisor is still starting).
Result<TransportPtr> connectWaiting(const std::string& address) {
  const char* w = getenv(k8s::api::kEnvRemoteWaitMs);
  const int64_t deadline = nowMs() + (w && *w ? std::max(0L, std::strtol(w, nullptr, 10)) : 0);
  for (int attempt = 0;; ++attempt) {
    auto t = connect(address, 2000, tlsOptionsFromEnvironment());
    if (t || t.status().code() != Code::Unavailable || nowMs() >= deadline) return t;
    if (attempt == 0) TF_LOG(Info, "waiting for the worker at %s: %s", address.c_str(), t.status().message().c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}
} // namespace

Client& client() {
  static Client* c = new Client(); // never destroyed: cudart calls in during exit
  return *c;
}

std::vector<CUcontext>& contextStack() {
  thread_local std::vector<CUcontext> stack;
  return stack;
}

CUcontext currentContext() {
  auto& s = contextStack();
  return s.empty() ? nullptr : s.back();
}

namespace {
thread_local int withoutContext = 0;
} // namespace
WithoutContext::WithoutContext() { ++withoutContext; }
WithoutContext::~WithoutContext() { --withoutContext; }
CUcontext callContext() { return withoutContext ? nullptr : currentContext(); }

// The reason is written before `dead_` is published: a thread that sees the client dead may
// return at once and the program exit, and the one line saying why must already be out.
CUresult Client::fail(const Status& s) {
  std::lock_guard<std::mutex> lock(failMu_);
  if (!dead_.load(std::memory_order_acquire)) {
    TF_LOG(Warn, "remote worker unavailable: %s", s.toString().c_str());
    dead_.store(true, std::memory_order_release);
    if (transport_) transport_->shutdown();
  }
  return CUDA_ERROR_DEVICE_UNAVAILABLE;
}

CUresult Client::init() {
  if (initialized()) return initResult_;
  std::lock_guard<std::mutex> lock(mu_);
  if (initialized()) return initResult_;
  initResult_ = connectLocked();
  initialized_.store(true, std::memory_order_release);
  return initResult_;
}

CUresult Client::connectLocked() {
  std::string address;
  if (const char* w = getenv(k8s::api::kEnvRemoteWorker); w && *w) {
    address = w;
  } else if (const char* url = getenv(k8s::api::kEnvGetConnectionUrl); url && *url) {
    // A remote vGPU pod: the operator names the worker once the connection is ready.
    const char* t = getenv("TF_CONNECTION_TIMEOUT_S");
    const long seconds = t && *t ? std::max(1L, std::strtol(t, nullptr, 10)) : 300;
    auto w = resolveWorker(url, serviceAccountToken(), std::chrono::seconds(seconds));
    if (!w) {
      TF_LOG(Warn, "no remote vGPU: asking %s: %s", url, w.status().message().c_str());
      dead_.store(true);
      return CUDA_ERROR_DEVICE_UNAVAILABLE;
    }
    TF_LOG(Info, "the operator names the worker at %s", w->c_str());
    address = *w;
  } else {
    TF_LOG(Warn, "TF_REMOTE_WORKER is not set (tcp://host:port, tls://host:port or shm://name), nor %s",
           k8s::api::kEnvGetConnectionUrl);
    return CUDA_ERROR_NO_DEVICE;
  }
  const char* where = address.c_str();
  auto t = connectWaiting(address);
  if (!t) {
    TF_LOG(Warn, "cannot reach the worker at %s: %s", where, t.status().toString().c_str());
    dead_.store(true);
    return CUDA_ERROR_DEVICE_UNAVAILABLE;
  }
  transport_ = std::move(*t);
  address_ = where;
  batching_ = transport_->prefersBatching();
  if (batching_) {
    flusherStarted_ = true;
    std::thread([this] { flusher(); }).detach();
  }
  Writer w;
  encodeHello(w, localHello(workerToken(), role_));
  FrameHeader h;
  h.kind = static_cast<uint16_t>(Kind::Hello);
  h.argsLen = static_cast<uint32_t>(w.size());
  Status s = sendFrame(*transport_, h, w.data(), nullptr, 0);
  FrameHeader r;
  if (s.isOk()) s = readHeader(*transport_, &r);
  if (s.isOk() && r.kind != static_cast<uint16_t>(Kind::HelloReply)) s = dataLoss("no HelloReply");
  if (s.isOk()) s = readArgs(*transport_, r, &args_);
  if (!s.isOk()) return fail(s);
  if (r.result != CUDA_SUCCESS) {
    TF_LOG(Warn, "the worker at %s refused this client (%d)", where, r.result);
    dead_.store(true);
    return static_cast<CUresult>(r.result);
  }
  {
    CallArgs ids;
    if (decodeReply(args_.data(), args_.size(), &ids).isOk() && ids.count >= 2)
      sessionId_ = ids.s[1];
  }
  // The host channel doubles as a heartbeat: a worker that stops answering it (hung, or cut
  // off without the connection closing) fails every pending and later call.
  if (role_ == kRoleDriver) {
    std::lock_guard<std::mutex> hostLock(hostMu_);
    CUresult hr = openHostChannel();
    if (hr != CUDA_SUCCESS) return hr;
  }
  // Devices, once: everything cudart asks about them is answered locally afterwards.
  for (int i = 0;; ++i) {
    uint64_t outs[2] = {};
    std::string blob;
    FrameHeader q;
    q.kind = static_cast<uint16_t>(Kind::Call);
    q.fn = static_cast<uint32_t>(Op::DeviceInfo);
    uint64_t dev = static_cast<uint64_t>(i);
    w.clear();
    encodeCall(w, &dev, 1, nullptr, 0);
    q.argsLen = static_cast<uint32_t>(w.size());
    s = sendFrame(*transport_, q, w.data(), nullptr, 0);
    if (!s.isOk()) return fail(s);
    CUresult cr = readReply(q.fn, outs, 2, nullptr, &blob);
    if (cr != CUDA_SUCCESS) return cr;
    driverVersion_ = static_cast<int>(outs[1]);
    if (i >= static_cast<int>(outs[0]) || i >= 64) break;
    if (blob.size() != sizeof(DeviceInfo)) return fail(dataLoss("bad DeviceInfo"));
    DeviceInfo info;
    std::memcpy(&info, blob.data(), sizeof(info));
    info.name[sizeof(info.name) - 1] = 0;
    devices_.push_back(info);
  }
  return devices_.empty() ? CUDA_ERROR_NO_DEVICE : CUDA_SUCCESS;
}

CUresult Client::readReply(uint32_t fn, uint64_t* outs, uint32_t nOuts, ReplySink* sink,
                           std::string* replyBlob, bool* pulled) {
  FrameHeader h;
  Status s = readHeader(*transport_, &h);
  if (s.isOk() && (h.kind != static_cast<uint16_t>(Kind::Reply) || h.fn != fn))
    s = dataLoss("reply out of step");
  if (s.isOk() && (h.flags & kFlagMirrorRuns) && !pulled) s = dataLoss("mirror runs nobody asked for");
  if (s.isOk()) s = readArgs(*transport_, h, &args_);
  CallArgs a;
  if (s.isOk()) s = decodeReply(args_.data(), args_.size(), &a);
  if (s.isOk() && (h.flags & kFlagMoved)) {
    // The session moved to another worker; the call was not run (exchange() sends it there).
    // Resume id 0: a new session there (an NVML session, which holds nothing).
    if (a.count < 1 || (!a.s[0] && role_ != kRoleMonitor) || a.blob.empty() || h.bulkLen)
      s = dataLoss("malformed Moved reply");
    if (s.isOk()) {
      move_ = Move{std::string(a.blob), a.s[0]};
      return CUDA_SUCCESS;
    }
  }
  if (!s.isOk()) return fail(s);
  for (uint32_t i = 0; i < nOuts; ++i) outs[i] = i < a.count ? a.s[i] : 0;
  if (h.flags & kFlagMirrorRuns) {
    pulled_.resize(h.bulkLen);
    s = transport_->readExact(pulled_.data(), pulled_.size());
    if (s.isOk()) s = applyPulled(a.blob, pulled_);
    if (!s.isOk()) return fail(s);
    *pulled = true;
    return static_cast<CUresult>(h.result);
  }
  if (replyBlob) replyBlob->assign(a.blob);
  if (h.bulkLen) {
    if (sink && sink->dst && h.bulkLen == sink->expected) {
      s = transport_->readExact(sink->dst, h.bulkLen);
    } else if (sink && sink->spill && h.bulkLen <= sink->spillCap) {
      sink->spill->resize(h.bulkLen);
      s = transport_->readExact(sink->spill->data(), h.bulkLen);
    } else {
      s = skipBulk(*transport_, h.bulkLen);
    }
    if (!s.isOk()) return fail(s);
  }
  return static_cast<CUresult>(h.result);
}

Status Client::flushLocked() {
  if (batch_.empty()) return Status::ok();
  iovec v{batch_.data(), batch_.size()};
  Status s = transport_->writeV(&v, 1);
  batch_.clear();
  return s;
}

void Client::flusher() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!dead()) {
    batchCv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return !batch_.empty() || dead(); });
    if (batch_.empty() || dead()) continue;
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::microseconds(100)); // let a burst gather
    lock.lock();
    if (dead()) break;
    Status s = flushLocked();
    if (!s.isOk()) fail(s);
  }
}

namespace {
// What each call does to mirrored memory: submits device work that may read or write it
// (push the host's changes first), or waits for device work (pull the device's changes
// after). Derived once from the catalog's names.
enum : uint8_t { kTouches = 1, kSyncs = 2 };
uint8_t traitsOf(uint32_t fn) {
  static const std::vector<uint8_t> table = [] {
    std::vector<uint8_t> t(static_cast<size_t>(cuda::catalogSize()), 0);
    auto starts = [](const char* s, const char* p) { return std::strncmp(s, p, std::strlen(p)) == 0; };
    for (int i = 0; i < cuda::catalogSize(); ++i) {
      const char* n = cuda::catalogEntry(i).symbol;
      if (starts(n, "cuLaunch") || starts(n, "cuMemcpy") || starts(n, "cuMemset") ||
          starts(n, "cuGraphLaunch") || starts(n, "cuMemPrefetch"))
        t[i] |= kTouches;
      if (starts(n, "cuCtxSynchronize") || starts(n, "cuStreamSynchronize") ||
          starts(n, "cuEventSynchronize") || starts(n, "cuStreamQuery") ||
          starts(n, "cuEventQuery") || starts(n, "cuMemcpyDtoHAsync") ||
          (starts(n, "cuMemcpy") && !std::strstr(n, "Async")))
        t[i] |= kSyncs;
    }
    return t;
  }();
  if (fn < table.size()) return table[fn];
  switch (static_cast<Op>(fn)) {
  case Op::CopyHostByRef:
  case Op::HostToDeviceAtStreamTime: return kTouches;
  case Op::AwaitHostCopy: return kTouches | kSyncs; // as cuMemcpyHtoD / cuMemcpyDtoH
  case Op::WaitStream:
  case Op::WaitEvent: return kSyncs;
  default: return 0;
  }
}
} // namespace

CUresult Client::call(uint32_t fn, std::initializer_list<uint64_t> in, uint64_t* outs,
                      uint32_t nOuts, const void* blob, size_t blobSize, const iovec* bulk,
                      int bulkCount, ReplySink* sink, std::string* replyBlob) {
  if (dead()) return CUDA_ERROR_DEVICE_UNAVAILABLE;
  uint8_t traits = mirrors_.empty() ? 0 : traitsOf(fn);
  if (traits & kTouches) {
    CUresult pr = pushMirrors();
    if (pr != CUDA_SUCCESS) return pr;
  }
  // A synchronisation whose reply carries nothing else brings the device's changes with it.
  bool pulled = false;
  const bool fuse = (traits & kSyncs) && !sink && !replyBlob &&
                    deviceWorkSincePull_.exchange(false, std::memory_order_acq_rel);
  CUresult r = exchange(fn, in, outs, nOuts, blob, blobSize, bulk, bulkCount, sink, replyBlob,
                        fuse ? &pulled : nullptr);
  if (fuse && !pulled) deviceWorkSincePull_.store(true, std::memory_order_release);
  if ((traits & kSyncs) && r == CUDA_SUCCESS && !pulled) {
    CUresult pr = pullMirrors();
    if (pr != CUDA_SUCCESS) return pr;
  }
  return r;
}

CUresult Client::callForFd(uint32_t fn, std::initializer_list<uint64_t> in, uint64_t* outs,
                           uint32_t nOuts, int* fd) {
  std::lock_guard<std::mutex> lock(fdMu_);
  CUresult r = call(fn, in, outs, nOuts);
  if (r != CUDA_SUCCESS) return r;
  auto got = transport_->receiveFd(1000);
  if (!got) return fail(got.status());
  *fd = *got;
  return CUDA_SUCCESS;
}

CUresult Client::exchange(uint32_t fn, std::initializer_list<uint64_t> in, uint64_t* outs,
                          uint32_t nOuts, const void* blob, size_t blobSize, const iovec* bulk,
                          int bulkCount, ReplySink* sink, std::string* replyBlob, bool* pulled) {
  std::lock_guard<std::mutex> lock(mu_);
  if (dead() || !transport_) return CUDA_ERROR_DEVICE_UNAVAILABLE;
  w_.clear();
  encodeCall(w_, in.begin(), static_cast<uint32_t>(in.size()), blob, blobSize);
  FrameHeader h;
  h.kind = static_cast<uint16_t>(Kind::Call);
  h.flags = pulled ? kFlagPullMirrors : kFlagNone;
  h.fn = fn;
  h.argsLen = static_cast<uint32_t>(w_.size());
  for (int i = 0; i < bulkCount; ++i) h.bulkLen += bulk[i].iov_len;
  h.ctx = reinterpret_cast<uint64_t>(callContext());
  Status s = flushLocked();
  for (;;) {
    if (s.isOk()) s = sendFrame(*transport_, h, w_.data(), bulk, bulkCount);
    if (!s.isOk()) return fail(s);
    CUresult r = readReply(fn, outs, nOuts, sink, replyBlob, pulled);
    if (!move_) return r;
    // Moved: the call goes again, to the new worker (or, if it cannot be reached, to the old
    // one, which kept everything).
    Move m = std::move(*move_);
    move_.reset();
    m.address = movedAddressFrom(m.address, address_);
    if (Status moved = resumeAt(m.address, m.resumeId); !moved)
      TF_LOG(Warn, "the session could not move to %s, it stays at %s: %s", m.address.c_str(),
             address_.c_str(), moved.toString().c_str());
  }
}

Status Client::resumeAt(const std::string& address, uint64_t resumeId) {
  auto t = connect(address, 2000, tlsOptionsFromEnvironment());
  if (!t) return t.status();
  Hello hello = localHello(workerToken(), resumeId ? kRoleResume : role_);
  hello.attachTo = resumeId;
  int32_t result = 0;
  std::vector<uint8_t> args;
  CallArgs ids;
  TF_RETURN_IF_ERROR(sayHello(**t, hello, &result, &args, &ids));
  if (result != CUDA_SUCCESS) return Status(Code::PermissionDenied, "refused (" + std::to_string(result) + ")");
  if (ids.count < 2 || !ids.s[1]) return dataLoss("HelloReply without a session id");
  // The new worker's session is ours now: the calls and the host channel go there.
  TransportPtr old = std::move(transport_);
  const std::string oldAddress = address_;
  const uint64_t oldSession = sessionId_;
  transport_ = std::move(*t);
  address_ = address;
  sessionId_ = ids.s[1];
  std::shared_ptr<Transport> oldChannel;
  {
    std::lock_guard<std::mutex> hostLock(hostMu_);
    oldChannel = std::move(hostChannel_);
    hostChannel_.reset();
    CUresult hr = oldChannel ? openHostChannel() : CUDA_SUCCESS;
    if (hr != CUDA_SUCCESS || dead()) {  // back to the old worker; the new session goes with its connection
      transport_->shutdown();
      transport_ = std::move(old);
      address_ = oldAddress;
      sessionId_ = oldSession;
      hostChannel_ = std::move(oldChannel);
      return unavailable("cannot open the host channel there (" + std::to_string(hr) + ")");
    }
  }
  batching_ = transport_->prefersBatching();
  if (batching_ && !flusherStarted_) {
    flusherStarted_ = true;
    std::thread([this] { flusher(); }).detach();
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
  if (oldChannel) oldChannel->shutdown();
  old->shutdown();  // the old worker releases the session once this closes
  TF_LOG(Info, "the session moved from %s to %s", oldAddress.c_str(), address_.c_str());
  return Status::ok();
}

CUresult Client::post(uint32_t fn, std::initializer_list<uint64_t> in, const void* blob,
                      size_t blobSize, const iovec* bulk, int bulkCount) {
  if (dead()) return CUDA_ERROR_DEVICE_UNAVAILABLE;
  if (!mirrors_.empty() && (traitsOf(fn) & kTouches)) {
    CUresult pr = pushMirrors();
    if (pr != CUDA_SUCCESS) return pr;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (dead() || !transport_) return CUDA_ERROR_DEVICE_UNAVAILABLE;
  w_.clear();
  encodeCall(w_, in.begin(), static_cast<uint32_t>(in.size()), blob, blobSize);
  FrameHeader h;
  h.kind = static_cast<uint16_t>(Kind::Call);
  h.flags = kFlagNoReply;
  h.fn = fn;
  h.argsLen = static_cast<uint32_t>(w_.size());
  for (int i = 0; i < bulkCount; ++i) h.bulkLen += bulk[i].iov_len;
  h.ctx = reinterpret_cast<uint64_t>(callContext());
  if (batching_ && h.bulkLen <= 4096) {
    bool wasEmpty = batch_.empty();
    size_t at = batch_.size();
    batch_.resize(at + kHeaderSize + w_.size());
    encodeHeader(h, batch_.data() + at);
    std::memcpy(batch_.data() + at + kHeaderSize, w_.data(), w_.size());
    for (int i = 0; i < bulkCount; ++i) {
      auto* p = static_cast<const uint8_t*>(bulk[i].iov_base);
      batch_.insert(batch_.end(), p, p + bulk[i].iov_len);
    }
    if (batch_.size() >= (64u << 10)) {
      Status s = flushLocked();
      if (!s.isOk()) return fail(s);
    } else if (wasEmpty) {
      batchCv_.notify_one();
    }
    return CUDA_SUCCESS;
  }
  Status s = flushLocked();
  if (s.isOk()) s = sendFrame(*transport_, h, w_.data(), bulk, bulkCount);
  return s.isOk() ? CUDA_SUCCESS : fail(s);
}

CUresult Client::openHostChannel() {
  // Called with hostMu_ held.
  if (hostChannel_) return CUDA_SUCCESS;
  if (!sessionId_) return CUDA_ERROR_NOT_SUPPORTED;
  auto t = connect(address_, 2000, tlsOptionsFromEnvironment());
  if (!t) return fail(t.status());
  Hello hello = localHello(workerToken(), kRoleDriver);
  hello.host = "host-channel";
  hello.attachTo = sessionId_;
  int32_t result = 0;
  std::vector<uint8_t> args;
  CallArgs ids;
  if (Status s = sayHello(**t, hello, &result, &args, &ids); !s.isOk()) return fail(s);
  if (result != CUDA_SUCCESS) return static_cast<CUresult>(result);
  hostChannel_ = std::shared_ptr<Transport>(std::move(*t));
  lastPongMs_.store(nowMs());
  std::thread([this, t = hostChannel_] { hostChannelLoop(t); }).detach();
  std::thread([this, t = hostChannel_] { heartbeat(t); }).detach();
  return CUDA_SUCCESS;
}

bool Client::retired(const std::shared_ptr<Transport>& t) {
  std::lock_guard<std::mutex> lock(hostMu_);
  return hostChannel_ != t;
}

void Client::heartbeat(std::shared_ptr<Transport> t) {
  constexpr int64_t kPeriodMs = 200, kDeadAfterMs = 1500;
  Writer w;
  encodeCall(w, nullptr, 0, nullptr, 0);
  FrameHeader h;
  h.kind = static_cast<uint16_t>(Kind::Call);
  h.fn = static_cast<uint32_t>(Op::Ping);
  h.argsLen = static_cast<uint32_t>(w.size());
  while (!dead()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(kPeriodMs));
    if (retired(t)) return;
    if (nowMs() - lastPongMs_.load() > kDeadAfterMs) {
      fail(unavailable("the worker stopped answering its heartbeat"));
      return;
    }
    Status s;
    {
      std::lock_guard<std::mutex> lock(hostWriteMu_);
      s = sendFrame(*t, h, w.data(), nullptr, 0);
    }
    if (!s.isOk()) {
      if (!retired(t)) fail(s);
      return;
    }
  }
}

void Client::hostChannelLoop(std::shared_ptr<Transport> t) {
  std::vector<uint8_t> args;
  for (;;) {
    FrameHeader h;
    Status s = readHeader(*t, &h);
    if (s.isOk() && h.kind == static_cast<uint16_t>(Kind::Reply) &&
        h.fn == static_cast<uint32_t>(Op::Ping) && !h.bulkLen) {
      s = readArgs(*t, h, &args);
      if (!s.isOk()) {
        if (!retired(t)) fail(s);
        return;
      }
      lastPongMs_.store(nowMs());
      continue;
    }
    if (s.isOk() && h.kind != static_cast<uint16_t>(Kind::HostCall))
      s = dataLoss("host channel: expected HostCall");
    if (s.isOk()) s = readArgs(*t, h, &args);
    CallArgs a;
    if (s.isOk()) s = decodeCall(args.data(), args.size(), &a);
    if (s.isOk() && a.count != 1) s = dataLoss("host channel: HostCall takes one token");
    // What the device changed in mirrored memory comes first: the function may read it.
    if (s.isOk()) s = applyIncomingRuns(*t, a.blob, h.bulkLen);
    if (!s.isOk()) {
      if (!retired(t)) fail(s);  // a channel a migration replaced ends quietly
      return;
    }
    HostEntry e;
    {
      std::lock_guard<std::mutex> lock(hostMu_);
      auto it = hostFns_.find(a.s[0]);
      if (it != hostFns_.end()) {
        if (it->second.persistent) {
          e = it->second;
        } else {
          e = std::move(it->second);
          hostFns_.erase(it);
        }
      }
    }
    uint64_t token = a.s[0];
    // Each on its own thread: host functions of different streams run side by side.
    std::thread([this, t, token, e = std::move(e)] {
      if (e.run) e.run();
      // What the function changed in mirrored memory goes back with HostDone.
      std::vector<MirrorRun> runs;
      std::vector<uint8_t> changed;
      if (!mirrors_.empty()) mirrors_.collect(runs, changed);
      Writer blob;
      if (!runs.empty()) encodeMirrorRuns(blob, runs);
      FrameHeader d;
      d.kind = static_cast<uint16_t>(Kind::HostDone);
      Writer w;
      encodeCall(w, &token, 1, blob.data(), blob.size());
      d.argsLen = static_cast<uint32_t>(w.size());
      iovec v[2] = {{const_cast<void*>(e.bytes), e.size}, {changed.data(), changed.size()}};
      d.bulkLen = e.size + changed.size();
      int n = 0;
      if (e.size) v[n++] = v[0];
      if (!changed.empty()) v[n++] = v[1];
      Status s;
      {
        std::lock_guard<std::mutex> lock(hostWriteMu_);
        s = sendFrame(*t, d, w.data(), v, n);
      }
      if (!e.persistent) hostOutstanding_.fetch_sub(1);
      if (!s.isOk()) fail(s);
    }).detach();
  }
}

CUresult Client::hostToken(std::function<void()> run, bool persistent, uint64_t* token) {
  if (dead()) return CUDA_ERROR_DEVICE_UNAVAILABLE;
  std::lock_guard<std::mutex> lock(hostMu_);
  CUresult r = openHostChannel();
  if (r != CUDA_SUCCESS) return r;
  *token = nextHostToken_++;
  hostFns_[*token] = HostEntry{std::move(run), nullptr, 0, persistent};
  if (!persistent) hostOutstanding_.fetch_add(1);
  return CUDA_SUCCESS;
}

CUresult Client::hostFunction(FnId fn, CUstream stream, std::function<void()> run) {
  // Queued while a capture is on, it may become a graph's host node and run many times.
  bool persistent = capturing();
  uint64_t token = 0;
  CUresult r = hostToken(std::move(run), persistent, &token);
  if (r != CUDA_SUCCESS) return r;
  r = post(fn, {reinterpret_cast<uint64_t>(stream), token});
  if (r != CUDA_SUCCESS) {
    std::lock_guard<std::mutex> lock(hostMu_);
    if (hostFns_.erase(token) && !persistent) hostOutstanding_.fetch_sub(1);
  }
  return r;
}

CUresult Client::hostToDeviceAtStreamTime(CUdeviceptr dst, const void* src, size_t n, CUstream s) {
  if (dead()) return CUDA_ERROR_DEVICE_UNAVAILABLE;
  uint64_t token;
  {
    std::lock_guard<std::mutex> lock(hostMu_);
    CUresult r = openHostChannel();
    if (r != CUDA_SUCCESS) return r;
    token = nextHostToken_++;
    hostFns_[token] = HostEntry{nullptr, src, n};
  }
  hostOutstanding_.fetch_add(1);
  CUresult r = call(static_cast<uint32_t>(Op::HostToDeviceAtStreamTime),
                    {dst, n, reinterpret_cast<uint64_t>(s), token});
  if (r != CUDA_SUCCESS) {
    std::lock_guard<std::mutex> lock(hostMu_);
    if (hostFns_.erase(token)) hostOutstanding_.fetch_sub(1);
  }
  return r;
}

void Client::addDeviceAllocation(CUdeviceptr p, uint64_t size, CUcontext ctx, Memory kind) {
  std::unique_lock lock(allocMu_);
  deviceAllocs_[p] = Allocation{size, ctx, kind};
  if (kind == Memory::HostMirror || kind == Memory::HostShared) recountUnmirroredLocked();
}
void Client::removeDeviceAllocation(CUdeviceptr p) {
  std::unique_lock lock(allocMu_);
  auto it = deviceAllocs_.find(p);
  if (it == deviceAllocs_.end()) return;
  bool host = it->second.kind == Memory::HostMirror || it->second.kind == Memory::HostShared;
  deviceAllocs_.erase(it);
  if (host) recountUnmirroredLocked();
}
void Client::recountUnmirroredLocked() {
  size_t n = 0;
  for (const auto& [base, sizeFlags] : hostAllocs_) {
    auto it = deviceAllocs_.find(base);
    n += it == deviceAllocs_.end() ||
         (it->second.kind != Memory::HostMirror && it->second.kind != Memory::HostShared);
  }
  unmirrored_.store(n, std::memory_order_relaxed);
}
bool Client::inUnmirroredHost(uint64_t v) const {
  std::shared_lock lock(allocMu_);
  auto h = hostAllocs_.upper_bound(v);
  if (h == hostAllocs_.begin()) return false;
  --h;
  if (v - h->first >= std::max<uint64_t>(h->second.first, 1)) return false;
  auto d = deviceAllocs_.find(h->first);
  return d == deviceAllocs_.end() ||
         (d->second.kind != Memory::HostMirror && d->second.kind != Memory::HostShared);
}
bool Client::findDevice(CUdeviceptr p, CUdeviceptr* base, Allocation* a) const {
  std::shared_lock lock(allocMu_);
  auto it = deviceAllocs_.upper_bound(p);
  if (it == deviceAllocs_.begin()) return false;
  --it;
  if (p - it->first >= std::max<uint64_t>(it->second.size, 1)) return false;
  if (base) *base = it->first;
  if (a) *a = it->second;
  return true;
}
void Client::addHost(void* p, uint64_t size, unsigned flags) {
  std::unique_lock lock(allocMu_);
  hostAllocs_[reinterpret_cast<uintptr_t>(p)] = {size, flags};
  recountUnmirroredLocked();
}
bool Client::removeHost(void* p) {
  std::unique_lock lock(allocMu_);
  bool erased = hostAllocs_.erase(reinterpret_cast<uintptr_t>(p)) != 0;
  recountUnmirroredLocked();
  return erased;
}
bool Client::findHost(const void* p, void** base, uint64_t* size, unsigned* flags) const {
  std::shared_lock lock(allocMu_);
  uintptr_t q = reinterpret_cast<uintptr_t>(p);
  auto it = hostAllocs_.upper_bound(q);
  if (it == hostAllocs_.begin()) return false;
  --it;
  if (q - it->first >= std::max<uint64_t>(it->second.first, 1)) return false;
  if (base) *base = reinterpret_cast<void*>(it->first);
  if (size) *size = it->second.first;
  if (flags) *flags = it->second.second;
  return true;
}

void Client::addContext(CUcontext c, CUdevice dev, bool primary) {
  std::lock_guard<std::mutex> lock(ctxMu_);
  auto& e = contexts_[c];
  e.dev = dev;
  e.primary = primary;
  if (primary) primaries_[dev] = c;
}
void Client::removeContext(CUcontext c) {
  std::lock_guard<std::mutex> lock(ctxMu_);
  contexts_.erase(c);
}
bool Client::contextDevice(CUcontext c, CUdevice* dev) const {
  std::lock_guard<std::mutex> lock(const_cast<std::mutex&>(ctxMu_));
  auto it = contexts_.find(c);
  if (it == contexts_.end()) return false;
  if (dev) *dev = it->second.dev;
  return true;
}
CUcontext Client::primaryContext(CUdevice dev) {
  {
    std::lock_guard<std::mutex> lock(ctxMu_);
    auto it = primaries_.find(dev);
    if (it != primaries_.end()) return it->second;
  }
  uint64_t out = 0;
  if (call(FnId::cuDevicePrimaryCtxRetain, {static_cast<uint64_t>(dev)}, &out, 1) != CUDA_SUCCESS)
    return nullptr;
  CUcontext c = reinterpret_cast<CUcontext>(out);
  addContext(c, dev, true);
  return c;
}

CUresult Client::paramLayout(CUfunction f, Layout* out) {
  {
    std::lock_guard<std::mutex> lock(layoutMu_);
    auto it = layouts_.find(f);
    if (it != layouts_.end()) {
      *out = it->second;
      return CUDA_SUCCESS;
    }
  }
  std::string blob;
  CUresult r = call(static_cast<uint32_t>(Op::ParamLayout), {reinterpret_cast<uint64_t>(f)},
                    nullptr, 0, nullptr, 0, nullptr, 0, nullptr, &blob);
  if (r != CUDA_SUCCESS) return r;
  auto slots = std::make_shared<std::vector<ParamSlot>>(blob.size() / sizeof(ParamSlot));
  std::memcpy(slots->data(), blob.data(), slots->size() * sizeof(ParamSlot));
  std::lock_guard<std::mutex> lock(layoutMu_);
  *out = layouts_[f] = std::move(slots);
  return CUDA_SUCCESS;
}

CUresult Client::residentBlocksPerSm(CUfunction f, unsigned threads, unsigned sharedBytes, int* blocks) {
  const auto key = std::make_tuple(f, threads, sharedBytes);
  {
    std::lock_guard<std::mutex> lock(layoutMu_);
    auto it = occupancy_.find(key);
    if (it != occupancy_.end()) {
      *blocks = it->second;
      return CUDA_SUCCESS;
    }
  }
  uint64_t out = 0;
  CUresult r = call(FnId::cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags,
                    {reinterpret_cast<uint64_t>(f), threads, sharedBytes, 0}, &out, 1);
  if (r != CUDA_SUCCESS) return r;
  std::lock_guard<std::mutex> lock(layoutMu_);
  *blocks = occupancy_[key] = static_cast<int>(out);
  return CUDA_SUCCESS;
}

void Client::addHandle(Handle k, const void* h) {
  std::unique_lock lock(handleMu_);
  handles_[static_cast<int>(k)].insert(h);
}
void Client::removeHandle(Handle k, const void* h) {
  std::unique_lock lock(handleMu_);
  handles_[static_cast<int>(k)].erase(h);
}
bool Client::hasHandle(Handle k, const void* h) const {
  std::shared_lock lock(handleMu_);
  return handles_[static_cast<int>(k)].count(h) != 0;
}

bool Client::imageKnown(uint64_t hash) {
  std::lock_guard<std::mutex> lock(layoutMu_);
  return images_.count(hash) != 0;
}
void Client::markImage(uint64_t hash) {
  std::lock_guard<std::mutex> lock(layoutMu_);
  images_.insert(hash);
}

} // namespace tf::remoting::stub
