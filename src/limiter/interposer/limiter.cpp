#include "limiter/interposer/limiter.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <thread>

#include "common/env.h"
#include "cuda/nvml_text.h"
#include "cuda/visible_devices.h"

namespace tf::limiter {
namespace {

constexpr int kMaxOrdinals = 64;

std::atomic<void*> hooks[static_cast<int>(cuda::FnId::Count)];
std::atomic<void*> reals[static_cast<int>(cuda::FnId::Count)];

void say(const char* fmt, const char* detail) {
  fprintf(stderr, "[tensor-fusion limiter %d] ", static_cast<int>(getpid()));
  fprintf(stderr, fmt, detail);
  fputc('\n', stderr);
}

uint64_t nowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

} // namespace

void* realDlsym(void* handle, const char* symbol) {
  using DlsymFn = void* (*)(void*, const char*);
  auto fn = reinterpret_cast<DlsymFn>(tfLimiterRealDlsymAddress());
  return fn ? fn(handle, symbol) : nullptr;
}

void* libcudaHandle() {
  static void* h = [] {
    void* handle = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_GLOBAL | RTLD_NOLOAD);
    if (!handle) handle = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_GLOBAL);
    if (!handle) say("cannot load the CUDA driver: %s", dlerror());
    return handle;
  }();
  return h;
}

void* realFunction(cuda::FnId id) {
  auto& slot = reals[static_cast<int>(id)];
  void* fn = slot.load(std::memory_order_acquire);
  if (fn) return fn;
  void* h = libcudaHandle();
  fn = h ? realDlsym(h, cuda::catalogEntry(static_cast<int>(id)).symbol) : nullptr;
  slot.store(fn, std::memory_order_release);
  return fn;
}

HookRegistration::HookRegistration(cuda::FnId id, void* fn) {
  hooks[static_cast<int>(id)].store(fn, std::memory_order_release);
}

void* hookFor(int index) {
  if (index < 0 || index >= static_cast<int>(cuda::FnId::Count)) return nullptr;
  return hooks[index].load(std::memory_order_acquire);
}

Limiter& Limiter::get() {
  static auto* l = new Limiter(); // lives until exit: hooks may run from any thread
  return *l;
}

CUresult Limiter::ready() {
  std::call_once(once_, [this] { init(); });
  return status_;
}

void Limiter::init() {
  const char* path = getenv("TF_VGPU_REGION");
  if (!path || !*path) {
    say("%s", "TF_VGPU_REGION is not set: the limiter is loaded but has no vGPU to enforce. "
              "Refusing to run unlimited; every CUDA call it guards fails with "
              "CUDA_ERROR_NOT_PERMITTED. Create a vGPU (tensor-fusion vgpu create) and set "
              "TF_VGPU_REGION to its region file.");
    status_ = CUDA_ERROR_NOT_PERMITTED;
    return;
  }
  auto region = QuotaRegion::open(path);
  // In a pod the hypervisor makes the region once the pod is bound to its node, which may be
  // after the program starts: TF_VGPU_REGION_WAIT_MS waits for it to appear.
  if (!region && region.status().code() == Code::NotFound) {
    auto wait = env::getInt("TF_VGPU_REGION_WAIT_MS", 0);
    if (!wait) {
      say("%s; refusing to run unlimited", wait.status().message().c_str());
      status_ = CUDA_ERROR_NOT_PERMITTED;
      return;
    }
    const long long waitMs = *wait;
    if (waitMs > 0) say("the vGPU region %s is not there yet; waiting for the hypervisor to make it", path);
    for (long long waited = 0; !region && region.status().code() == Code::NotFound && waited < waitMs; waited += 50) {
      usleep(50 * 1000);
      region = QuotaRegion::open(path);
    }
  }
  if (!region) {
    say("%s", (region.status().message() +
               ". Refusing to run unlimited; guarded CUDA calls fail with CUDA_ERROR_NOT_PERMITTED.")
                  .c_str());
    status_ = CUDA_ERROR_NOT_PERMITTED;
    return;
  }
  region_ = std::move(*region);
  auto slot = region_->attach();
  if (!slot) {
    say("%s", slot.status().message().c_str());
    status_ = CUDA_ERROR_NOT_PERMITTED;
    return;
  }
  slot_ = *slot;
  // Where GPU time comes from: the soft GPU's per-process accounting when the driver is the
  // soft GPU, else CUDA events around each limited launch (any driver).
  const char* source = getenv("TF_LIMITER_TIME_SOURCE");
  std::string want = source ? source : "auto";
  if (want != "auto" && want != "softgpu" && want != "events") {
    say("TF_LIMITER_TIME_SOURCE='%s' is not auto, softgpu or events; refusing to run unlimited",
        want.c_str());
    status_ = CUDA_ERROR_NOT_PERMITTED;
    return;
  }
  if (want != "events")
    softGpuStats_ = reinterpret_cast<decltype(softGpuStats_)>(
        libcudaHandle() ? realDlsym(libcudaHandle(), "tfSoftGpuProcessStats") : nullptr);
  if (want == "softgpu" && !softGpuStats_) {
    say("%s", "TF_LIMITER_TIME_SOURCE=softgpu but the driver is not the soft GPU");
    status_ = CUDA_ERROR_NOT_PERMITTED;
    return;
  }
  useEvents_ = !softGpuStats_;
  status_ = CUDA_SUCCESS;
  startNs_ = nowNs();
  if (getenv("TF_LIMITER_REPORT")) atexit([] { Limiter::get().report(); });
}

void Limiter::report() {
  const double wall = (nowNs() - startNs_) / 1e9;
  for (int o = 0; o < kMaxOrdinals; ++o) {
    int rd = devices_[o].regionDevice;
    if (rd < 0) continue;
    pollBusy(o);
    const double busy = devices_[o].lastBusyNs / 1e9;
    fprintf(stderr,
            "[tensor-fusion limiter %d] vGPU %s device %d: GPU time %.2f s over %.2f s = %.1f%% "
            "(limit %.1f%%), %llu launches\n",
            static_cast<int>(getpid()), region_->name().c_str(), o, busy, wall,
            wall > 0 ? busy / wall * 100 : 0.0, region_->computeBasisPoints(rd) / 100.0,
            static_cast<unsigned long long>(devices_[o].launched.load()));
  }
}

void Limiter::restrictVisibleDevices() {
  if (ready() != CUDA_SUCCESS) return;  // cuInit fails with the reason
  // The vGPU's devices by UUID; a device without one is "the device at this index".
  std::vector<std::string> names;
  for (int d = 0; d < region_->deviceCount(); ++d) {
    auto lim = region_->limits(d);
    bool any = false;
    for (uint8_t b : lim.uuid) any |= b != 0;
    names.push_back(any ? nvml::nvmlUuidString(lim.uuid.data()) : std::to_string(d));
  }
  std::string visible;
  const char* asked = getenv("CUDA_VISIBLE_DEVICES");
  if (!asked) {
    for (const auto& n : names) visible += (visible.empty() ? "" : ",") + n;
  } else {
    for (int i : cuda::selectVisibleDevices(asked, names)) visible += (visible.empty() ? "" : ",") + names[i];
    if (visible.empty()) say("CUDA_VISIBLE_DEVICES='%s' names none of the vGPU's devices: none is visible", asked);
  }
  setenv("CUDA_VISIBLE_DEVICES", visible.c_str(), 1);
}

int Limiter::regionDeviceOf(CUdevice ordinal) {
  if (ordinal < 0 || ordinal >= kMaxOrdinals || !region_) return -1;
  if (!devicesMapped_) {
    std::lock_guard<std::mutex> lock(mapMu_);
    if (!devicesMapped_) {
      int count = 0;
      if (TF_REAL(cuDeviceGetCount)(&count) != CUDA_SUCCESS) return -1;
      std::vector<bool> taken(region_->deviceCount(), false);
      for (int o = 0; o < count && o < kMaxOrdinals; ++o) {
        CUuuid uuid{};
        TF_REAL(cuDeviceGetUuid_v2)(&uuid, o);
        for (int d = 0; d < region_->deviceCount(); ++d) {
          auto lim = region_->limits(d);
          bool any = false;
          for (uint8_t b : lim.uuid) any |= b != 0;
          bool match = any ? memcmp(lim.uuid.data(), uuid.bytes, 16) == 0 : d == o;
          if (match && !taken[d]) {
            devices_[o].regionDevice = d;
            taken[d] = true;
            break;
          }
        }
      }
      devicesMapped_ = true;
    }
  }
  return devices_[ordinal].regionDevice;
}

int Limiter::currentRegionDevice(CUdevice* ordinal) {
  CUdevice dev = -1;
  if (TF_REAL(cuCtxGetDevice)(&dev) != CUDA_SUCCESS) return -1;
  if (ordinal) *ordinal = dev;
  return regionDeviceOf(dev);
}

void Limiter::track(uint64_t handle, Allocation a) {
  std::lock_guard<std::mutex> lock(allocMu_);
  allocations_[handle] = a;
}

bool Limiter::untrack(uint64_t handle, Allocation* out) {
  std::lock_guard<std::mutex> lock(allocMu_);
  auto it = allocations_.find(handle);
  if (it == allocations_.end()) return false;
  *out = it->second;
  allocations_.erase(it);
  return true;
}

void Limiter::pollBusy(CUdevice ordinal) {
  if (useEvents_) return pollEvents(ordinal);
  if (!softGpuStats_) return;
  DeviceTrack& t = devices_[ordinal];
  uint64_t busy = 0, kernels = 0;
  if (softGpuStats_(ordinal, &busy, &kernels) != CUDA_SUCCESS) return;
  std::lock_guard<std::mutex> lock(pollMu_);
  if (busy > t.lastBusyNs)
    region_->charge(t.regionDevice, busy - t.lastBusyNs, kernels > t.lastKernels ? kernels - t.lastKernels : 0);
  t.lastBusyNs = std::max(t.lastBusyNs, busy);
  t.lastKernels = std::max(t.lastKernels, kernels);
}

// ---- GPU time from CUDA events (any driver) ---------------------------------------------------
// Each limited launch is bracketed by two pooled events on its stream; once the second has
// completed, their elapsed time is the launch's GPU time. Under contention with other contexts
// this includes time the device spent on them, so a vGPU is charged at most what it waited for.

CUevent Limiter::takeEvent(DeviceTrack& t) {
  if (!t.freeEvents.empty()) {
    CUevent e = t.freeEvents.back();
    t.freeEvents.pop_back();
    return e;
  }
  CUevent e = nullptr;
  if (TF_REAL(cuEventCreate)(&e, CU_EVENT_DEFAULT) != CUDA_SUCCESS) return nullptr;
  return e;
}

CUevent Limiter::startTiming(CUdevice ordinal, CUstream stream, bool perThread) {
  if (!useEvents_) return nullptr;
  CUstreamCaptureStatus capturing = CU_STREAM_CAPTURE_STATUS_NONE;
  auto isCapturing = perThread ? TF_REAL(cuStreamIsCapturing_ptsz) : TF_REAL(cuStreamIsCapturing);
  if (isCapturing && isCapturing(stream, &capturing) == CUDA_SUCCESS &&
      capturing != CU_STREAM_CAPTURE_STATUS_NONE)
    return nullptr; // recorded into a graph, not run: timed when the graph runs
  DeviceTrack& t = devices_[ordinal];
  std::lock_guard<std::mutex> lock(pollMu_);
  CUevent start = takeEvent(t);
  auto record = perThread ? TF_REAL(cuEventRecord_ptsz) : TF_REAL(cuEventRecord);
  if (!start || record(start, stream) != CUDA_SUCCESS) {
    if (start) t.freeEvents.push_back(start);
    return nullptr;
  }
  return start;
}

void Limiter::endTiming(CUdevice ordinal, CUstream stream, bool perThread, bool launched,
                        CUevent start) {
  DeviceTrack& t = devices_[ordinal];
  std::lock_guard<std::mutex> lock(pollMu_);
  if (!start) return;
  CUevent end = launched ? takeEvent(t) : nullptr;
  auto record = perThread ? TF_REAL(cuEventRecord_ptsz) : TF_REAL(cuEventRecord);
  if (!end || record(end, stream) != CUDA_SUCCESS) {
    t.freeEvents.push_back(start);
    if (end) t.freeEvents.push_back(end);
    return;
  }
  t.pendingEvents.emplace_back(start, end);
}

void Limiter::pollEvents(CUdevice ordinal) {
  DeviceTrack& t = devices_[ordinal];
  std::lock_guard<std::mutex> lock(pollMu_);
  uint64_t charged = 0, pairs = 0;
  for (auto it = t.pendingEvents.begin(); it != t.pendingEvents.end();) {
    CUresult q = TF_REAL(cuEventQuery)(it->second);
    if (q == CUDA_ERROR_NOT_READY) {
      ++it;
      continue;
    }
    float ms = 0;
    if (q == CUDA_SUCCESS && TF_REAL(cuEventElapsedTime)(&ms, it->first, it->second) == CUDA_SUCCESS && ms > 0)
      charged += static_cast<uint64_t>(static_cast<double>(ms) * 1e6);
    t.freeEvents.push_back(it->first);
    t.freeEvents.push_back(it->second);
    it = t.pendingEvents.erase(it);
    ++t.lastKernels;
    ++pairs;
  }
  if (charged) {
    region_->charge(t.regionDevice, charged, pairs);
    t.lastBusyNs += charged;
  }
}

void Limiter::beforeLaunch(CUdevice ordinal) {
  if (ordinal < 0 || ordinal >= kMaxOrdinals) return;
  const int rd = regionDeviceOf(ordinal);
  if (rd < 0) return;
  DeviceTrack& t = devices_[ordinal];
  // Until both hold at once: the queue is short, and the bucket (charged with everything that
  // finished while waiting on the queue) is not empty. The queue comes first, so that the
  // bucket is asked after the work ahead has been charged, not before.
  for (;;) {
    waitForQueue(ordinal);
    if (region_->computeBasisPoints(rd) >= 10000) {
      // The whole device's time for now (no limit, or time lent by the quota controller): only
      // account, now and then, so the bucket is full rather than in debt when the share shrinks.
      if ((t.launched.load(std::memory_order_relaxed) & 63) == 0) {
        pollBusy(ordinal);
        (void)region_->throttleNs(rd);
      }
      break;
    }
    pollBusy(ordinal);
    const uint64_t w = region_->throttleNs(rd);
    if (w == 0) break;
    // Only the bucket's waits are throttling: waits on the queue bound happen at any share (a
    // program that queues ahead of the device waits for the device, limited or not).
    holdBegin(t);
    std::this_thread::sleep_for(std::chrono::nanoseconds(w));
    holdEnd(t);
  }
}

void Limiter::holdBegin(DeviceTrack& t) {
  std::lock_guard<std::mutex> lock(heldMu_);
  if (t.held++ == 0) t.heldSinceNs = nowNs();
}

void Limiter::holdEnd(DeviceTrack& t) {
  std::lock_guard<std::mutex> lock(heldMu_);
  if (--t.held == 0) region_->noteThrottled(t.regionDevice, nowNs() - t.heldSinceNs);
}

// Keeps the work this process has queued on the device to about a millisecond: work queued far
// ahead would run whatever the bucket says, and bursts starve synchronous neighbours. Also
// without a limit: time lent by the quota controller must be given back within a tick.
void Limiter::waitForQueue(CUdevice ordinal) {
  DeviceTrack& t = devices_[ordinal];
  const uint64_t cap = std::max<uint64_t>(region_->windowNs() / 50, 500'000);
  uint64_t lastDone = t.lastKernels, progressNs = 0;
  for (bool polled = false;; polled = true) {
    uint64_t launched = t.launched.load(), done = t.lastKernels;
    if (launched <= done + 1) return; // the common case, without a poll
    if (!polled) {
      pollBusy(ordinal);
      done = t.lastKernels;
      if (launched <= done) return;
    }
    // Until a kernel has finished nothing is known about their length: allow only a couple.
    const uint64_t inFlight = launched - done;
    const uint64_t avg = done ? t.lastBusyNs / done : 0;
    if (inFlight < 2 || (done && inFlight * avg <= cap)) return;
    const uint64_t now = nowNs();
    if (done != lastDone || progressNs == 0) lastDone = done, progressNs = now;
    // Nothing finished for far longer than kernels take: a launch was counted that will never
    // complete as a kernel (a graph whose kernels could not all be counted). Forget it rather
    // than stall the program; at worst one more launch is queued.
    if (now - progressNs > std::max<uint64_t>(1'000'000'000, 4 * region_->windowNs() + 8 * avg)) {
      t.launched.store(done + 1);
      return;
    }
    std::this_thread::sleep_for(std::chrono::nanoseconds(
        std::min<uint64_t>(std::max<uint64_t>(avg / 4, 20'000), 1'000'000)));
    pollBusy(ordinal);
  }
}

namespace {
// Kernel nodes of a graph, its child graphs' included (a node the driver cannot describe counts
// none: the queue bound then lags, where counting too many would hold the program back).
uint64_t countKernels(CUgraph graph, int depth) {
  auto getNodes = TF_REAL(cuGraphGetNodes);
  auto getType = TF_REAL(cuGraphNodeGetType);
  auto getChild = TF_REAL(cuGraphChildGraphNodeGetGraph);
  size_t n = 0;
  if (!getNodes || !getType || getNodes(graph, nullptr, &n) != CUDA_SUCCESS) return 0;
  std::vector<CUgraphNode> nodes(n);
  if (n && getNodes(graph, nodes.data(), &n) != CUDA_SUCCESS) return 0;
  uint64_t kernels = 0;
  for (size_t i = 0; i < n && i < nodes.size(); ++i) {
    CUgraphNodeType type;
    if (getType(nodes[i], &type) != CUDA_SUCCESS) continue;
    CUgraph child = nullptr;
    if (type == CU_GRAPH_NODE_TYPE_KERNEL) ++kernels;
    else if (type == CU_GRAPH_NODE_TYPE_GRAPH && depth < 16 && getChild &&
             getChild(nodes[i], &child) == CUDA_SUCCESS)
      kernels += countKernels(child, depth + 1);
  }
  return kernels;
}
} // namespace

void Limiter::graphInstantiated(CUgraphExec exec, CUgraph graph) {
  if (ready() != CUDA_SUCCESS || useEvents_ || !exec) return; // timed with events, a graph launch completes as one unit
  const uint64_t kernels = countKernels(graph, 0);
  std::lock_guard<std::mutex> lock(graphMu_);
  graphKernels_[exec] = kernels;
}

void Limiter::graphDestroyed(CUgraphExec exec) {
  std::lock_guard<std::mutex> lock(graphMu_);
  graphKernels_.erase(exec);
}

uint64_t Limiter::kernelsPerLaunch(CUgraphExec exec) {
  if (useEvents_) return 1;
  std::lock_guard<std::mutex> lock(graphMu_);
  auto it = graphKernels_.find(exec);
  return it == graphKernels_.end() ? 0 : it->second;
}

void Limiter::afterLaunch(CUdevice ordinal, uint64_t kernels) {
  if (ordinal < 0 || ordinal >= kMaxOrdinals) return;
  devices_[ordinal].launched.fetch_add(kernels, std::memory_order_relaxed);
  int rd = devices_[ordinal].regionDevice;
  if (rd >= 0) region_->noteLaunch(rd);
}

} // namespace tf::limiter
