#include "remoting/stub/shared_managed.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>

#include "remoting/stub/api.h"

namespace tf::remoting::stub {
namespace {

std::atomic<bool> gRefused{false}; // the worker answered NOT_SUPPORTED once: do not ask again
std::atomic<uint64_t> gShared{0}, gMirrored{0};

bool wanted() {
  const char* knob = std::getenv("TF_REMOTE_SHARE_MANAGED");
  return client().sharesMemory() && !gRefused.load(std::memory_order_relaxed) &&
         !(knob && std::strcmp(knob, "0") == 0);
}

} // namespace

ManagedSharing shareManaged(CUdeviceptr addr, size_t size) {
  if (!wanted()) {
    gMirrored.fetch_add(1, std::memory_order_relaxed);
    return ManagedSharing::Mirror;
  }
  uint64_t bytes = 0;
  int fd = -1;
  CUresult r = client().callForFd(static_cast<uint32_t>(Op::ShareManaged), {addr}, &bytes, 1, &fd);
  if (r != CUDA_SUCCESS) {
    if (r == CUDA_ERROR_NOT_SUPPORTED) gRefused.store(true, std::memory_order_relaxed);
    gMirrored.fetch_add(1, std::memory_order_relaxed);
    return ManagedSharing::Mirror;
  }
  // Over the stub's own reservation of [addr, addr + size), page-rounded as bytes is.
  const uint64_t span = (uint64_t(size) + 4095) & ~uint64_t(4095);
  void* p = bytes == span ? mmap(reinterpret_cast<void*>(addr), span, PROT_READ | PROT_WRITE,
                                 MAP_SHARED | MAP_FIXED, fd, 0)
                          : MAP_FAILED;
  close(fd);
  if (p != reinterpret_cast<void*>(addr)) return ManagedSharing::Failed;
  gShared.fetch_add(1, std::memory_order_relaxed);
  return ManagedSharing::Shared;
}

} // namespace tf::remoting::stub

// For tests and benchmarks (found with dlsym): how many managed allocations map the worker's
// pages, and how many are mirrored.
extern "C" __attribute__((visibility("default"))) void tfRemoteManagedAllocations(uint64_t* shared,
                                                                                  uint64_t* mirrored) {
  if (shared) *shared = tf::remoting::stub::gShared.load();
  if (mirrored) *mirrored = tf::remoting::stub::gMirrored.load();
}
