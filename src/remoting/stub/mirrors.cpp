// The stub's side of mirrored host memory (remoting/mirror.h): pushing the host's changes
// before device work, pulling the device's after a synchronisation, mirroring a pinned
// allocation on the worker when the device starts using its address.
#include <algorithm>

#include "remoting/stub/client.h"

namespace tf::remoting::stub {

namespace {
// A push or pull is split so that its run list stays well inside one frame's args.
constexpr size_t kRunsPerFrame = 16384;
} // namespace

CUresult Client::pushMirrors() {
  deviceWorkSincePull_.store(true, std::memory_order_release);
  std::vector<MirrorRun> runs;
  std::vector<uint8_t> bytes;
  mirrors_.collect(runs, bytes);
  size_t at = 0;
  for (size_t i = 0; i < runs.size(); i += kRunsPerFrame) {
    std::vector<MirrorRun> part(runs.begin() + i, runs.begin() + std::min(runs.size(), i + kRunsPerFrame));
    uint64_t n = 0;
    for (const MirrorRun& r : part) n += r.len;
    Writer w;
    encodeMirrorRuns(w, part);
    iovec v{bytes.data() + at, n};
    at += n;
    CUresult r = post(static_cast<uint32_t>(Op::MirrorPush), {}, w.data(), w.size(), &v, 1);
    if (r != CUDA_SUCCESS) return r;
  }
  return CUDA_SUCCESS;
}

CUresult Client::pullMirrors() {
  if (!deviceWorkSincePull_.exchange(false, std::memory_order_acq_rel)) return CUDA_SUCCESS;
  std::string blob;
  std::vector<uint8_t> bytes;
  ReplySink sink{nullptr, 0, &bytes, kMaxBulk};
  CUresult r = exchange(static_cast<uint32_t>(Op::MirrorPull), {}, nullptr, 0, nullptr, 0,
                        nullptr, 0, &sink, &blob);
  if (dead()) return CUDA_ERROR_DEVICE_UNAVAILABLE;
  // The reply may carry an earlier asynchronous error instead of success; its runs are
  // still what the device changed.
  Status s = applyPulled(blob, bytes);
  return s.isOk() ? r : fail(s);
}

Status Client::applyPulled(std::string_view runsBlob, const std::vector<uint8_t>& bytes) {
  if (runsBlob.empty()) return bytes.empty() ? Status::ok() : dataLoss("mirror bytes without runs");
  std::vector<MirrorRun> runs;
  TF_RETURN_IF_ERROR(decodeMirrorRuns(runsBlob, bytes.size(), &runs));
  TF_RETURN_IF_ERROR(mirrors_.check(runs));
  uint64_t at = 0;
  for (const MirrorRun& run : runs) {
    mirrors_.apply(run, bytes.data() + at);
    at += run.len;
  }
  return Status::ok();
}

CUresult Client::shareHost(void* p, size_t size, int fd) {
  std::lock_guard<std::mutex> lock(mu_);
  if (dead() || !transport_) return CUDA_ERROR_DEVICE_UNAVAILABLE;
  Status s = flushLocked();
  // The descriptor goes first: the worker takes it when it handles the call.
  if (s.isOk()) s = transport_->sendFd(fd);
  if (!s.isOk()) return s.code() == Code::Unimplemented ? CUDA_ERROR_NOT_SUPPORTED : fail(s);
  w_.clear();
  uint64_t in[2] = {reinterpret_cast<uint64_t>(p), size};
  encodeCall(w_, in, 2, nullptr, 0);
  FrameHeader h;
  h.kind = static_cast<uint16_t>(Kind::Call);
  h.fn = static_cast<uint32_t>(Op::ShareHost);
  h.argsLen = static_cast<uint32_t>(w_.size());
  h.ctx = reinterpret_cast<uint64_t>(callContext());
  s = sendFrame(*transport_, h, w_.data(), nullptr, 0);
  if (!s.isOk()) return fail(s);
  return readReply(h.fn, nullptr, 0, nullptr, nullptr);
}

CUresult Client::mirrorHost(const void* p) {
  void* base = nullptr;
  uint64_t size = 0;
  if (!findHost(p, &base, &size, nullptr)) return CUDA_ERROR_INVALID_VALUE;
  Allocation known{};
  if (findDevice(reinterpret_cast<CUdeviceptr>(p), nullptr, &known) && known.kind == Memory::HostShared)
    return CUDA_SUCCESS; // the worker maps the very pages already
  return mirrorRange(reinterpret_cast<uint64_t>(base), size);
}

CUresult Client::mirrorRange(uint64_t b, uint64_t size) {
  std::lock_guard<std::mutex> lock(mirrorMu_);
  if (mirrors_.contains(b, size)) return CUDA_SUCCESS;
  CUresult r = exchange(static_cast<uint32_t>(Op::MirrorHost), {b, size}, nullptr, 0, nullptr, 0,
                        nullptr, 0, nullptr, nullptr);
  if (r != CUDA_SUCCESS) return r;
  if (!mirrors_.add(b, size)) {
    exchange(static_cast<uint32_t>(Op::MirrorRelease), {b}, nullptr, 0, nullptr, 0, nullptr, 0,
             nullptr, nullptr);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  addDeviceAllocation(b, size, currentContext(), Memory::HostMirror);
  return CUDA_SUCCESS;
}

CUresult Client::releaseHostMirror(void* base, bool keepContents) {
  uint64_t b = reinterpret_cast<uint64_t>(base);
  Allocation known{};
  if (findDevice(b, nullptr, &known) && known.kind == Memory::HostShared) {
    // Nothing to bring back: the worker unmaps its view of the same pages.
    CUresult r = exchange(static_cast<uint32_t>(Op::MirrorRelease), {b}, nullptr, 0, nullptr, 0,
                          nullptr, 0, nullptr, nullptr);
    removeDeviceAllocation(b);
    return r;
  }
  if (!mirrors_.contains(b, 0)) return CUDA_SUCCESS;
  if (keepContents) {
    // Unregistering: device work queued before may still write the pages; bring it back.
    CUresult r = call(cuda::FnId::cuCtxSynchronize, {});
    if (r == CUDA_SUCCESS) {
      deviceWorkSincePull_.store(true);
      r = pullMirrors();
    }
    if (r != CUDA_SUCCESS) return r;
  }
  std::lock_guard<std::mutex> lock(mirrorMu_);
  CUresult r = exchange(static_cast<uint32_t>(Op::MirrorRelease), {b}, nullptr, 0, nullptr, 0,
                        nullptr, 0, nullptr, nullptr);
  mirrors_.remove(b);
  removeDeviceAllocation(b);
  return r;
}

Status Client::applyIncomingRuns(Transport& t, std::string_view blob, uint64_t bulkLen) {
  if (blob.empty())
    return bulkLen ? dataLoss("host channel: bulk without mirror runs") : Status::ok();
  std::vector<MirrorRun> runs;
  TF_RETURN_IF_ERROR(decodeMirrorRuns(blob, bulkLen, &runs));
  TF_RETURN_IF_ERROR(mirrors_.check(runs));
  std::vector<uint8_t> buf;
  for (const MirrorRun& run : runs) {
    buf.resize(run.len);
    TF_RETURN_IF_ERROR(t.readExact(buf.data(), buf.size()));
    mirrors_.apply(run, buf.data());
  }
  return Status::ok();
}

} // namespace tf::remoting::stub
