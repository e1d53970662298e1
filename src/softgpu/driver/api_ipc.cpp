// CUDA IPC memory handles between processes of one machine. Device memory is private pages of
// the process until it is exported: cuIpcGetMemHandle moves it into a memfd mapped at the same
// addresses (AddressSpace::shareDevice), and the handle names that memfd by the exporter's pid,
// process start time and descriptor. cuIpcOpenMemHandle opens /proc/<pid>/fd/<fd> (the same
// file, so the same pages) and maps it at fresh device addresses; both processes then read and
// write one memory. Like NVIDIA's driver: the exporter must be alive when the handle is opened,
// a handle cannot be opened in the process that made it, and opening a handle again in one
// process gives the same pointer (reference counted, closed by as many cuIpcCloseMemHandle).
// Events made with CU_EVENT_INTERPROCESS keep their counts in a shared page (ipc_event.h) whose
// memfd their handle names the same way.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <sys/mman.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "softgpu/driver/api.h"
#include "softgpu/driver/handles.h"
#include "softgpu/driver/ipc_event.h"
#include "softgpu/driver/memory.h"
#include "softgpu/driver/stream.h"

using namespace tf::softgpu;

namespace {

constexpr uint32_t kIpcMagic = 0x4d495354;      // "TSIM"
constexpr uint32_t kIpcEventMagic = 0x45495354; // "TSIE"
constexpr uint32_t kIpcVersion = 1;
constexpr char kIpcMemfdName[] = "/memfd:tf-softgpu-ipc";
constexpr char kIpcEventMemfdName[] = "/memfd:tf-softgpu-ipc-event";
constexpr uint64_t kEventPageMagic = 0x7466697063657674; // "tfipcevt"

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

// The descriptor `fd` of process `pid` (which started at `startTime`), opened here, if it is
// a memfd called `name`: a handle from a process that has gone (or whose pid was reused), or
// naming anything else, opens nothing.
int openPeerMemfd(int pid, int fd, uint64_t startTime, const char* name) {
  if (pid <= 0 || fd < 0 || startTimeOf(pid) != startTime) return -1;
  char path[64], target[256] = {};
  std::snprintf(path, sizeof path, "/proc/%d/fd/%d", pid, fd);
  ssize_t n = readlink(path, target, sizeof target - 1);
  // The memfd's link reads "/memfd:<name> (deleted)"; the name must end where that begins.
  size_t len = std::strlen(name);
  if (n <= 0 || std::strncmp(target, name, len) != 0 || (target[len] != ' ' && target[len] != 0))
    return -1;
  return open(path, O_RDWR | O_CLOEXEC);
}

struct IpcEventWire {
  uint32_t magic;
  uint32_t version;
  int32_t pid;
  int32_t fd;
  uint64_t startTime;
};
static_assert(sizeof(IpcEventWire) <= CU_IPC_HANDLE_SIZE);

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

namespace tf::softgpu {

Result<std::shared_ptr<IpcEventPage>> IpcEventPage::create() {
  int fd = memfd_create(kIpcEventMemfdName + 7, MFD_CLOEXEC); // the name after "/memfd:"
  if (fd < 0) return resourceExhausted(std::string("memfd_create: ") + strerror(errno));
  if (ftruncate(fd, sizeof(Counts)) != 0) {
    close(fd);
    return resourceExhausted(std::string("ftruncate: ") + strerror(errno));
  }
  auto page = open(fd); // a fresh memfd reads as zeros: no records, none done
  if (page) (*page)->counts_->magic = kEventPageMagic;
  return page;
}

Result<std::shared_ptr<IpcEventPage>> IpcEventPage::open(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) < sizeof(Counts)) {
    close(fd);
    return invalidArgument("not an interprocess event's page");
  }
  void* p = mmap(nullptr, sizeof(Counts), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    close(fd);
    return resourceExhausted(std::string("mmap: ") + strerror(errno));
  }
  return std::shared_ptr<IpcEventPage>(new IpcEventPage(fd, static_cast<Counts*>(p)));
}

IpcEventPage::~IpcEventPage() {
  munmap(counts_, sizeof(Counts));
  close(fd_);
}

void IpcEventPage::complete(uint64_t n) {
  uint64_t done = counts_->completed.load(std::memory_order_acquire);
  while (done < n && !counts_->completed.compare_exchange_weak(done, n, std::memory_order_acq_rel)) {
  }
}

void IpcEventPage::waitFor(uint64_t n) const {
  while (!reached(n)) std::this_thread::sleep_for(std::chrono::microseconds(50));
}

} // namespace tf::softgpu

extern "C" {

CUresult tf_sg_cuIpcGetEventHandle(CUipcEventHandle* handle, CUevent event) {
  if (!handle) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkInitialized());
  Event* e = registryOf<Event>().find(event);
  if (!e) return CUDA_ERROR_INVALID_HANDLE;
  if (!e->ipc) return CUDA_ERROR_INVALID_VALUE; // not made with CU_EVENT_INTERPROCESS
  IpcEventWire w{};
  w.magic = kIpcEventMagic;
  w.version = kIpcVersion;
  w.pid = static_cast<int32_t>(getpid());
  w.fd = e->ipc->fd();
  w.startTime = startTimeOf(getpid());
  std::memset(handle, 0, sizeof *handle);
  std::memcpy(handle->reserved, &w, sizeof w);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuIpcOpenEventHandle(CUevent* event, CUipcEventHandle handle) {
  if (!event) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(requireContext(&c));
  IpcEventWire w;
  std::memcpy(&w, handle.reserved, sizeof w);
  if (w.magic != kIpcEventMagic || w.version != kIpcVersion) return CUDA_ERROR_INVALID_VALUE;
  if (w.pid == getpid()) return CUDA_ERROR_INVALID_CONTEXT; // as for memory handles
  int fd = openPeerMemfd(w.pid, w.fd, w.startTime, kIpcEventMemfdName);
  if (fd < 0) return CUDA_ERROR_INVALID_VALUE;
  auto page = IpcEventPage::open(fd);
  if (!page) return CUDA_ERROR_INVALID_VALUE;
  auto* e = new Event();
  e->flags = CU_EVENT_INTERPROCESS | CU_EVENT_DISABLE_TIMING;
  e->ipc = std::move(*page);
  registryOf<Event>().add(e);
  *event = reinterpret_cast<CUevent>(e);
  return CUDA_SUCCESS;
}

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
  int fd = openPeerMemfd(w.pid, w.fd, w.startTime, kIpcMemfdName);
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
