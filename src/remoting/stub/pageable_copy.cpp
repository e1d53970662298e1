#include "remoting/stub/pageable_copy.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "remoting/stub/api.h"

namespace tf::remoting::stub {
namespace {

struct Mapping {
  uint8_t* host = nullptr; // null: the worker cannot share this allocation
  size_t size = 0;
  uint64_t bufferId = 0;
  uint64_t generation = 0; // the client's when mapped: a session that moved maps again
};

std::mutex gMu; // the mappings, and each copy through one (a free waits for it)
std::map<CUdeviceptr, Mapping> gMappings;
std::atomic<uint64_t> gDirect{0}, gSent{0};

bool enabled() {
  static const bool on = [] {
    const char* knob = std::getenv("TF_REMOTE_PAGEABLE_DIRECT");
    return client().sharesMemory() && !(knob && std::string(knob) == "0");
  }();
  return on;
}

void unmap(Mapping& m) {
  if (m.host) munmap(m.host, m.size);
  m.host = nullptr;
}

// The mapping of the allocation at base (asked of the worker once), or one with host null.
Mapping& mappingOf(CUdeviceptr base, size_t size) {
  Mapping& m = gMappings[base];
  const uint64_t generation = client().generation();
  if (m.size == size && m.generation == generation) return m;
  unmap(m);
  m = Mapping{nullptr, size, 0, generation};
  uint64_t out[2] = {};
  int fd = -1;
  if (client().callForFd(static_cast<uint32_t>(Op::ShareDevice), {base, size}, out, 2, &fd) !=
      CUDA_SUCCESS)
    return m;
  void* p = out[0] == size ? mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
  close(fd);
  if (p == MAP_FAILED) return m;
  m.host = static_cast<uint8_t*>(p);
  m.bufferId = out[1];
  return m;
}

} // namespace

bool copyThroughMapping(bool toDevice, CUdeviceptr device, void* host, size_t n, CUresult* result) {
  if (n < kDirectMin) return false;
  CUdeviceptr base = 0;
  Client::Allocation a{};
  if (!enabled() || !client().findDevice(device, &base, &a) || a.kind != Client::Memory::Device ||
      a.size > kMaxMapped || n > a.size - (device - base)) {
    gSent.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  std::lock_guard<std::mutex> lock(gMu);
  Mapping& m = mappingOf(base, a.size);
  if (!m.host) {
    gSent.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  CUresult r = client().call(static_cast<uint32_t>(Op::AwaitHostCopy), {device, n, m.bufferId});
  if (m.generation != client().generation()) r = CUDA_ERROR_NOT_SUPPORTED; // moved meanwhile: stale
  if (r == CUDA_ERROR_NOT_SUPPORTED) { // freed and allocated again behind our back: ask again
    unmap(m);
    gMappings.erase(base);
    gSent.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (r == CUDA_SUCCESS) {
    uint8_t* at = m.host + (device - base);
    if (toDevice) std::memcpy(at, host, n);
    else std::memcpy(host, at, n);
  }
  gDirect.fetch_add(1, std::memory_order_relaxed);
  *result = r;
  return true;
}

void forgetMapping(CUdeviceptr base) {
  std::lock_guard<std::mutex> lock(gMu);
  auto it = gMappings.find(base);
  if (it == gMappings.end()) return;
  unmap(it->second);
  gMappings.erase(it);
}

} // namespace tf::remoting::stub

// For tests and benchmarks (found with dlsym): how many synchronous pageable copies of
// kDirectMin bytes or more went through a mapping of device memory, and how many through the
// transport.
extern "C" __attribute__((visibility("default"))) void tfRemotePageableCopies(uint64_t* direct,
                                                                             uint64_t* sent) {
  if (direct) *direct = tf::remoting::stub::gDirect.load();
  if (sent) *sent = tf::remoting::stub::gSent.load();
}
