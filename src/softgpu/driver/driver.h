// The soft GPU driver's process-wide state and the objects behind CUDA handles.
//
// Every exported entry point (exports.cpp, generated from the catalog) calls an implementation
// tf_sg_<symbol> (api_*.cpp). Implementations find objects through the live-handle registries
// (handles.h), so a stale or foreign handle is an error code, never a crash.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <cuda.h>

#include "cuda/kernel_executor.h"
#include "softgpu/device_model.h"
#include "softgpu/device_state.h"
#include "softgpu/driver/handles.h"
#include "softgpu/driver/memory.h"

namespace tf::softgpu {

// Shorthand used by implementations.
#define TF_TRY(expr)                                                                              \
  do {                                                                                            \
    CUresult tf_r_ = (expr);                                                                      \
    if (tf_r_ != CUDA_SUCCESS) return tf_r_;                                                      \
  } while (0)

constexpr int kDriverVersion = 13000; // what cuDriverGetVersion reports

struct Context;
struct Stream;
struct Graph;

struct Device {
  int ordinal = 0;
  DeviceConfig config;
  std::unique_ptr<DeviceState> state; // shared with other processes
  int slot = -1;                      // this process's slot in the state
  std::mutex primaryMu;
  Context* primary = nullptr;         // created on first retain, kept for reuse
  int primaryRefs = 0;
  unsigned primaryFlags = 0;
  CUmemoryPool defaultPool = nullptr;
  std::atomic<uint64_t> localBusyNs{0};  // this process's kernel time on the device
  std::atomic<uint64_t> localKernels{0}; // and how many kernels it finished there
  std::atomic<int> liveContexts{0};       // this process's contexts on the device
  CUmemoryPool currentPool = nullptr;
};

struct Driver {
  std::atomic<bool> initialized{false};
  CUresult initResult = CUDA_SUCCESS;
  std::string initError;
  SoftGpuConfig config;
  std::vector<std::unique_ptr<Device>> devices;
  std::unique_ptr<cuda::KernelExecutor> executor;
  // Timing mode: kernels are not executed but hold the device for a modelled time.
  uint64_t modelLaunchNs = 0, modelThreadNs = 0;
  bool modelTiming = false;
};

Driver& driver();
// cuInit's work: reads the configuration, opens device states, creates the executor.
CUresult initializeDriver(unsigned flags);
// CUDA_ERROR_NOT_INITIALIZED before cuInit, the init failure if it failed, else success.
CUresult checkInitialized();
Device* deviceAt(CUdevice ordinal); // nullptr if out of range

// ---- Completion and stream work -----------------------------------------------------------

// Signals the end of one piece of queued work.
struct Completion {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  CUresult result = CUDA_SUCCESS;
  uint64_t timestampNs = 0; // CLOCK_MONOTONIC when it finished
  int waiters = 0;          // threads in wait()
  // True when a thread was waiting for it.
  bool complete(CUresult r);
  void wait();
  bool isDone();
};
using CompletionPtr = std::shared_ptr<Completion>;

enum class OpKind : uint8_t { Kernel, Memcpy, Memset, Host, EventRecord, Wait, Alloc, Free, Graph };

// A piece of stream work. `run` returns the error the stream reports (kernel faults become the
// context's sticky error).
struct Op {
  OpKind kind = OpKind::Host;
  std::function<CUresult()> run;
  std::vector<CompletionPtr> deps;
  CompletionPtr done;
};

enum class StreamKind : uint8_t { Legacy, PerThread, User };

struct CaptureState;

struct Stream {
  Context* context = nullptr;
  StreamKind kind = StreamKind::User;
  unsigned flags = 0;       // CU_STREAM_NON_BLOCKING
  int priority = 0;
  unsigned long long id = 0;

  std::mutex mu;
  std::condition_variable cv;       // work queued (the worker waits on it)
  std::condition_variable drained;  // work finished (submitters of a full queue wait on it)
  std::deque<Op> queue;
  std::atomic<size_t> queued{0}; // queue.size(), read without the lock by the spinning worker
  bool workerAsleep = false;     // the worker waits on cv: a submitter must wake it
  CompletionPtr last;       // completion of the newest queued op (or null)
  bool stopping = false;
  std::thread worker;
  std::shared_ptr<CaptureState> capture; // non-null while capturing
  std::map<CUstreamAttrID, CUstreamAttrValue> attributes; // as set (hints without effect here)

  bool blocking() const { return !(flags & CU_STREAM_NON_BLOCKING); }
};

struct Context {
  Device* device = nullptr;
  unsigned flags = 0;
  bool primary = false;
  unsigned long long id = 0;
  std::atomic<CUresult> sticky{CUDA_SUCCESS}; // a kernel fault poisons the context
  std::mutex mu;                              // streams, per-thread streams, local storage
  Stream* legacy = nullptr;
  std::vector<Stream*> streams;               // user streams
  std::unordered_map<std::thread::id, Stream*> perThread;
  struct LocalValue { void* value; void* dtor; };
  std::map<void*, LocalValue> localStorage;   // cudart's context-local storage
  std::map<CUlimit, size_t> limits;
  CUfunc_cache cacheConfig = CU_FUNC_CACHE_PREFER_NONE;
};

// ---- Modules and kernels -------------------------------------------------------------------

struct Module;
struct Function {
  Module* module = nullptr;
  int kernel = -1;
  const cuda::KernelInfo* info = nullptr;
  int maxDynamicShared = 48 * 1024;
  int preferredCarveout = -1;
  CUfunc_cache cacheConfig = CU_FUNC_CACHE_PREFER_NONE;
};

struct Module {
  std::unique_ptr<cuda::LoadedModule> loaded;
  std::vector<std::unique_ptr<Function>> functions;
  struct Global { uint64_t address; uint64_t size; };
  std::map<std::string, Global> globals;
  bool isLibrary = false;
  int device = 0;
  std::string name;
  // Libraries are translated on first use (a kernel, a global, the function list), as the
  // driver's lazy loading does: cudart loads every fatbin at start-up, most of which a program
  // never launches. Until then `source` waits here; `loadResult` is what translating gave.
  std::atomic<bool> pending{false};
  std::mutex loadMu;
  cuda::ModuleSource source;
  CUresult loadResult = CUDA_SUCCESS;
};

class IpcEventPage;
struct Event {
  unsigned flags = 0;
  std::mutex mu;
  CompletionPtr recorded;   // the last record's completion, or null if never recorded
  std::shared_ptr<CaptureState> capture;   // recorded during a capture
  std::vector<size_t> captureNodes;
  // CU_EVENT_INTERPROCESS: the record counts every process holding the event sees
  // (ipc_event.h); queries, synchronisation and stream waits go by them.
  std::shared_ptr<IpcEventPage> ipc;
};

// ---- Current context (per thread) ----------------------------------------------------------

Context* currentContext();
std::vector<Context*>& contextStack();
// The current context or an error: NOT_INITIALIZED, INVALID_CONTEXT (none current), or the
// context's sticky error.
CUresult requireContext(Context** out);
// The device an ordinal names: NOT_INITIALIZED before cuInit, INVALID_DEVICE when out of range.
CUresult deviceFor(CUdevice ordinal, Device** out);
// A context handle, or the current context when the handle is null (as the driver allows);
// INVALID_CONTEXT when neither names a live context.
CUresult contextOrCurrent(CUcontext handle, Context** out);
Context* retainPrimary(Device* d);
void releasePrimary(Device* d);
Context* createContext(Device* d, unsigned flags);
void destroyContext(Context* ctx);

// Whether the calling entry point is the per-thread-default-stream flavour (_ptds/_ptsz).
bool& perThreadDefaultStream();

} // namespace tf::softgpu
