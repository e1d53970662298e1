#include "softgpu/driver/stream.h"

namespace tf::softgpu {
namespace {
std::atomic<unsigned long long> nextContextId{1};
} // namespace

bool& perThreadDefaultStream() {
  thread_local bool flag = false;
  return flag;
}

std::vector<Context*>& contextStack() {
  thread_local std::vector<Context*> stack;
  return stack;
}

Context* currentContext() {
  auto& st = contextStack();
  // The top of the stack was checked live at this registry generation: no context has been
  // created or destroyed since, so it still is (the common case costs two loads).
  thread_local Context* checked = nullptr;
  thread_local uint64_t checkedAt = ~0ull;
  const uint64_t gen = registryOf<Context>().generation();
  if (!st.empty() && st.back() == checked && gen == checkedAt) return checked;
  while (!st.empty() && !registryOf<Context>().find(st.back())) st.pop_back(); // destroyed
  checked = st.empty() ? nullptr : st.back();
  checkedAt = gen;
  return checked;
}

CUresult requireContext(Context** out) {
  if (CUresult r = checkInitialized(); r != CUDA_SUCCESS) return r;
  Context* c = currentContext();
  if (!c) return CUDA_ERROR_INVALID_CONTEXT;
  CUresult sticky = c->sticky.load();
  if (sticky != CUDA_SUCCESS) return sticky;
  *out = c;
  return CUDA_SUCCESS;
}

CUresult deviceFor(CUdevice ordinal, Device** out) {
  TF_TRY(checkInitialized());
  Device* d = deviceAt(ordinal);
  if (!d) return CUDA_ERROR_INVALID_DEVICE;
  *out = d;
  return CUDA_SUCCESS;
}

CUresult contextOrCurrent(CUcontext handle, Context** out) {
  TF_TRY(checkInitialized());
  Context* c = handle ? registryOf<Context>().find(handle) : currentContext();
  if (!c) return CUDA_ERROR_INVALID_CONTEXT;
  *out = c;
  return CUDA_SUCCESS;
}

Context* createContext(Device* d, unsigned flags) {
  auto* c = new Context();
  c->device = d;
  c->flags = flags;
  c->id = nextContextId++;
  c->limits[CU_LIMIT_STACK_SIZE] = 1024;
  c->limits[CU_LIMIT_PRINTF_FIFO_SIZE] = 1 << 20;
  c->limits[CU_LIMIT_MALLOC_HEAP_SIZE] = 8 << 20;
  c->limits[CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT] = 2048;
  c->limits[CU_LIMIT_MAX_L2_FETCH_GRANULARITY] = 64;
  c->limits[CU_LIMIT_PERSISTING_L2_CACHE_SIZE] = 0;
  registryOf<Context>().add(c);
  c->legacy = createStream(c, StreamKind::Legacy, 0, 0);
  if (d->liveContexts.fetch_add(1) == 0) d->state->setHoldsContext(d->slot, true);
  return c;
}

void destroyContext(Context* c) {
  synchronizeContext(c);
  registryOf<Context>().remove(c);
  std::vector<Stream*> streams;
  {
    std::lock_guard<std::mutex> lock(c->mu);
    streams = c->streams;
    for (auto& [t, s] : c->perThread) streams.push_back(s);
    streams.push_back(c->legacy);
    c->streams.clear();
    c->perThread.clear();
  }
  for (Stream* s : streams) destroyStream(s);
  // Memory the context allocated goes back to the device.
  for (const Allocation& a : addressSpace().allocationsOf(c)) {
    Allocation gone;
    if (addressSpace().release(a.base, std::nullopt, &gone).isOk() && gone.charged)
      c->device->state->releaseMemory(c->device->slot, gone.charged);
  }
  if (c->device->liveContexts.fetch_sub(1) == 1) c->device->state->setHoldsContext(c->device->slot, false);
  delete c;
}

Context* retainPrimary(Device* d) {
  std::lock_guard<std::mutex> lock(d->primaryMu);
  if (!d->primary || !registryOf<Context>().find(d->primary)) {
    d->primary = createContext(d, d->primaryFlags);
    d->primary->primary = true;
  }
  ++d->primaryRefs;
  return d->primary;
}

void releasePrimary(Device* d) {
  std::lock_guard<std::mutex> lock(d->primaryMu);
  if (d->primaryRefs > 0) --d->primaryRefs;
  // Like the real driver, the primary context is kept until reset or exit; its memory stays.
}

} // namespace tf::softgpu
