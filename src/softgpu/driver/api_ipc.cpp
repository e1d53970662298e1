// CUDA IPC memory handles between processes of one machine. Device memory is private pages of
// the process until it is exported: cuIpcGetMemHandle moves it into a memfd mapped at the same
// addresses (AddressSpace::shareDevice), and the handle names that memfd by the exporter's pid,
// process start time and descriptor. cuIpcOpenMemHandle opens /proc/<pid>/fd/<fd> (the same
// file, so the same pages) and maps it at fresh device addresses; both processes then read and
// write one memory. Like NVIDIA's driver: the exporter must be alive when the handle is opened,
// a handle cannot be opened in the process that made it, and opening a handle again in one
// process gives the same pointer (reference counted, closed by as many cuIpcCloseMemHandle).
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <sys/stat.h>
#include <unistd.h>

#include "softgpu/driver/driver.h"
#include "softgpu/driver/memory.h"
#include "softgpu/driver/stream.h"

using namespace tf::softgpu;

namespace {

constexpr uint32_t kIpcMagic = 0x4d495354; // "TSIM"
constexpr uint32_t kIpcVersion = 1;
constexpr char kIpcMemfdName[] = "/memfd:tf-softgpu-ipc";

// What a CUipcMemHandle holds here (64 bytes at most).
struct IpcMemWire {
  uint32_t magic;
  uint32_t version;
  int32_t pid;
  int32_t fd;
  uint64_t startTime; // the exporter's start time (/proc/<pid>/stat field 22): pid reuse
  uint64_t size;      // the allocation's size
  uint64_t bufferId;  // the allocation in the exporter, so a handle opened twice is one mapping
  int32_t device;
  uint32_t reserved;
};
static_assert(sizeof(IpcMemWire) <= CU_IPC_HANDLE_SIZE);

uint64_t startTimeOf(int pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE* f = std::fopen(path, "r");
  if (!f) return 0;
  char buf[1024];
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = 0;
  const char* p = std::strrchr(buf, ')'); // the command name may hold spaces
  if (!p) return 0;
  unsigned long long value = 0;
  // Fields 3..22 after ") ": state, then 18 numbers, then the start time.
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
                         "%*d %llu", &value) != 1)
    return 0;
  return value;
}

struct Opened {
  uint64_t base = 0;
  int count = 0;
};
std::mutex openedMu;
// (exporter pid, its buffer id) -> the mapping here.
std::map<std::pair<int, uint64_t>, Opened>& openedTable() {
  static auto* m = new std::map<std::pair<int, uint64_t>, Opened>();
  return *m;
}

} // namespace

extern "C" {

CUresult tf_sg_cuIpcGetMemHandle(CUipcMemHandle* handle, CUdeviceptr dptr) {
  if (!handle) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(requireContext(&c));
  auto a = addressSpace().findBase(dptr);
  if (!a || a->kind != AllocKind::Device || a->imported || a->poolId >= 0)
    return CUDA_ERROR_INVALID_VALUE;
  // Work queued on the memory finishes before its pages move into the memfd.
  synchronizeContext(c);
  auto fd = addressSpace().shareDevice(dptr);
  if (!fd) return fd.status().code() == tf::Code::InvalidArgument ? CUDA_ERROR_INVALID_VALUE
                                                                 : CUDA_ERROR_OUT_OF_MEMORY;
  IpcMemWire w{};
  w.magic = kIpcMagic;
  w.version = kIpcVersion;
  w.pid = static_cast<int32_t>(getpid());
  w.fd = *fd;
  w.startTime = startTimeOf(getpid());
  w.size = a->size;
  w.bufferId = a->bufferId;
  w.device = a->device;
  std::memset(handle, 0, sizeof *handle);
  std::memcpy(handle->reserved, &w, sizeof w);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuIpcOpenMemHandle_v2(CUdeviceptr* dptr, CUipcMemHandle handle, unsigned int flags) {
  if (!dptr || (flags & ~CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS)) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(requireContext(&c));
  IpcMemWire w;
  std::memcpy(&w, handle.reserved, sizeof w);
  if (w.magic != kIpcMagic || w.version != kIpcVersion || w.pid <= 0 || w.fd < 0 || w.size == 0)
    return CUDA_ERROR_INVALID_VALUE;
  if (w.pid == getpid()) return CUDA_ERROR_INVALID_CONTEXT; // as NVIDIA's driver: not here
  std::lock_guard<std::mutex> lock(openedMu);
  auto key = std::make_pair(static_cast<int>(w.pid), w.bufferId);
  if (auto it = openedTable().find(key); it != openedTable().end()) {
    ++it->second.count;
    *dptr = it->second.base;
    return CUDA_SUCCESS;
  }
  // The exporter must still be the process that made the handle, and its descriptor the memfd.
  if (startTimeOf(w.pid) != w.startTime) return CUDA_ERROR_INVALID_VALUE;
  char path[64], target[256] = {};
  std::snprintf(path, sizeof path, "/proc/%d/fd/%d", w.pid, w.fd);
  ssize_t n = readlink(path, target, sizeof target - 1);
  if (n <= 0 || std::strncmp(target, kIpcMemfdName, sizeof kIpcMemfdName - 1) != 0)
    return CUDA_ERROR_INVALID_VALUE;
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return CUDA_ERROR_INVALID_VALUE;
  struct stat st {};
  if (fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) < w.size) {
    close(fd);
    return CUDA_ERROR_INVALID_VALUE;
  }
  auto base = addressSpace().importShared(c->device->ordinal, fd, w.size, c);
  if (!base) return CUDA_ERROR_OUT_OF_MEMORY;
  openedTable()[key] = Opened{*base, 1};
  *dptr = *base;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuIpcOpenMemHandle(CUdeviceptr* dptr, CUipcMemHandle handle, unsigned int flags) {
  return tf_sg_cuIpcOpenMemHandle_v2(dptr, handle, flags);
}

CUresult tf_sg_cuIpcCloseMemHandle(CUdeviceptr dptr) {
  TF_TRY(checkInitialized());
  auto a = addressSpace().findBase(dptr);
  if (!a || a->kind != AllocKind::Device || !a->imported) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(openedMu);
  for (auto it = openedTable().begin(); it != openedTable().end(); ++it) {
    if (it->second.base != dptr) continue;
    if (--it->second.count > 0) return CUDA_SUCCESS;
    openedTable().erase(it);
    break;
  }
  // Work queued on the memory finishes before it goes.
  if (Context* c = currentContext()) synchronizeContext(c);
  return addressSpace().release(dptr, AllocKind::Device, nullptr) ? CUDA_SUCCESS
                                                                  : CUDA_ERROR_INVALID_VALUE;
}

} // extern "C"
