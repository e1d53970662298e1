#include "softgpu/driver/stream.h"

#include "softgpu/driver/graph.h"

#include <chrono>

namespace tf::softgpu {
namespace {

std::atomic<unsigned long long> nextStreamId{1};

// How long an idle worker looks for the next op before it sleeps, when nobody waited for the
// last one: back-to-back launches then reach it without a futex wake and a context switch
// each. After an op someone waited for (a synchronisation), more work is not coming at once:
// it sleeps straight away and leaves the CPU to the thread it woke.
constexpr auto kIdleSpin = std::chrono::microseconds(20);

void spinForWork(Stream* s) {
  auto until = std::chrono::steady_clock::now() + kIdleSpin;
  for (unsigned i = 1; s->queued.load(std::memory_order_acquire) == 0; ++i) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if (i % 64 == 0) {
      if (std::chrono::steady_clock::now() >= until) return;
      std::this_thread::yield(); // a busy machine: whoever is runnable goes first
    }
  }
}

void workerLoop(Stream* s) {
  bool spin = false;
  for (;;) {
    Op op;
    if (spin) spinForWork(s);
    {
      std::unique_lock<std::mutex> lock(s->mu);
      s->workerAsleep = true;
      s->cv.wait(lock, [&] { return s->stopping || !s->queue.empty(); });
      s->workerAsleep = false;
      if (s->queue.empty()) return; // stopping and drained
      op = std::move(s->queue.front());
    }
    for (auto& d : op.deps) d->wait();
    CUresult r = s->context->sticky.load();
    if (r == CUDA_SUCCESS) {
      r = op.run ? op.run() : CUDA_SUCCESS;
      if (isStickyError(r)) {
        CUresult expected = CUDA_SUCCESS;
        s->context->sticky.compare_exchange_strong(expected, r);
      }
    }
    {
      std::lock_guard<std::mutex> lock(s->mu);
      s->queue.pop_front();
      s->queued.store(s->queue.size(), std::memory_order_release);
    }
    s->drained.notify_all();
    spin = !op.done->complete(r);
  }
}

} // namespace

bool isStickyError(CUresult r) {
  return r == CUDA_ERROR_ILLEGAL_ADDRESS || r == CUDA_ERROR_LAUNCH_FAILED ||
         r == CUDA_ERROR_ILLEGAL_INSTRUCTION || r == CUDA_ERROR_MISALIGNED_ADDRESS ||
         r == CUDA_ERROR_HARDWARE_STACK_ERROR || r == CUDA_ERROR_INVALID_PC ||
         r == CUDA_ERROR_ASSERT || r == CUDA_ERROR_LAUNCH_TIMEOUT;
}

Stream* createStream(Context* ctx, StreamKind kind, unsigned flags, int priority) {
  auto* s = new Stream();
  s->context = ctx;
  s->kind = kind;
  s->flags = flags;
  s->priority = priority;
  s->id = nextStreamId++;
  s->worker = std::thread(workerLoop, s);
  registryOf<Stream>().add(s);
  return s;
}

void destroyStream(Stream* s) {
  registryOf<Stream>().remove(s);
  {
    std::lock_guard<std::mutex> lock(s->mu);
    s->stopping = true;
  }
  s->cv.notify_all();
  s->drained.notify_all();
  if (s->worker.joinable()) {
    if (s->worker.get_id() == std::this_thread::get_id()) s->worker.detach(); // from a callback
    else s->worker.join();
  }
  delete s;
}

CUresult resolveStream(CUstream handle, Context* ctx, Stream** out) {
  const auto h = reinterpret_cast<uintptr_t>(handle);
  bool perThread = h == reinterpret_cast<uintptr_t>(CU_STREAM_PER_THREAD) ||
                   (h == 0 && perThreadDefaultStream());
  if (perThread) {
    std::lock_guard<std::mutex> lock(ctx->mu);
    auto& s = ctx->perThread[std::this_thread::get_id()];
    if (!s) s = createStream(ctx, StreamKind::PerThread, 0, 0);
    *out = s;
    return CUDA_SUCCESS;
  }
  if (h == 0 || h == reinterpret_cast<uintptr_t>(CU_STREAM_LEGACY)) {
    *out = ctx->legacy;
    return CUDA_SUCCESS;
  }
  Stream* s = registryOf<Stream>().find(handle);
  if (!s) return CUDA_ERROR_INVALID_HANDLE;
  *out = s;
  return CUDA_SUCCESS;
}

// A GPU's launch queue is bounded: past this many pending operations on a stream, the caller
// waits, as it would for a real device (and queued work cannot grow without limit).
constexpr size_t kMaxQueued = 1024;

CUresult submit(Stream* s, OpKind kind, std::function<CUresult()> run, CompletionPtr* done,
                std::vector<CompletionPtr> extraDeps, const DescribeNode* describe) {
  Context* ctx = s->context;
  if (!s->capture && s->worker.get_id() != std::this_thread::get_id()) {
    std::unique_lock<std::mutex> lock(s->mu);
    s->drained.wait(lock, [&] { return s->queue.size() < kMaxQueued || s->stopping; });
  }
  std::lock_guard<std::mutex> ctxLock(ctx->mu);
  if (s->capture) {
    CaptureState& cap = *s->capture;
    if (cap.invalidated) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    auto& front = cap.frontier[s];
    static const CUgraphNodeType kTypes[] = {
        CU_GRAPH_NODE_TYPE_KERNEL, CU_GRAPH_NODE_TYPE_MEMCPY, CU_GRAPH_NODE_TYPE_MEMSET,
        CU_GRAPH_NODE_TYPE_HOST,   CU_GRAPH_NODE_TYPE_EVENT_RECORD, CU_GRAPH_NODE_TYPE_WAIT_EVENT,
        CU_GRAPH_NODE_TYPE_MEM_ALLOC, CU_GRAPH_NODE_TYPE_MEM_FREE, CU_GRAPH_NODE_TYPE_GRAPH};
    GraphNode* n = cap.graph->add(kTypes[static_cast<int>(kind)], std::move(run), front);
    if (describe) {
      n->params.context = ctx;
      (*describe)(&n->params);
      n->params.described = true;
    }
    front = {n};
    if (done) *done = nullptr;
    return CUDA_SUCCESS;
  }
  Op op;
  op.kind = kind;
  op.run = std::move(run);
  op.deps = std::move(extraDeps);
  op.done = std::make_shared<Completion>();
  {
    // Work the caller ran inline on this stream (submitAndWait) must finish first.
    std::lock_guard<std::mutex> lock(s->mu);
    if (s->queue.empty() && s->last && !s->last->isDone()) op.deps.push_back(s->last);
  }
  // The legacy default stream waits for all blocking streams, and they wait for it.
  auto addDep = [&](Stream* other) {
    if (other == s || !other) return;
    std::lock_guard<std::mutex> lock(other->mu);
    if (other->last && !other->last->isDone()) op.deps.push_back(other->last);
  };
  if (s->kind == StreamKind::Legacy) {
    // The legacy stream would have to wait for a blocking stream that is capturing: not
    // allowed, and it ruins that capture.
    bool implicit = false;
    for (Stream* o : ctx->streams)
      if (o->blocking() && o->capture && o->capture->mode != CU_STREAM_CAPTURE_MODE_RELAXED) {
        o->capture->invalidated = true;
        implicit = true;
      }
    if (implicit) return CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
    for (Stream* o : ctx->streams)
      if (o->blocking()) addDep(o);
    for (auto& [tid, o] : ctx->perThread) addDep(o);
  } else if (s->blocking()) {
    addDep(ctx->legacy);
  }
  if (done) *done = op.done;
  bool wake;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    s->last = op.done;
    s->queue.push_back(std::move(op));
    s->queued.store(s->queue.size(), std::memory_order_release);
    wake = s->workerAsleep;
  }
  if (wake) s->cv.notify_one();
  return CUDA_SUCCESS;
}

CUresult submitAndWait(Stream* s, OpKind kind, std::function<CUresult()> run) {
  if (s->capture) {
    std::lock_guard<std::mutex> lock(s->context->mu);
    s->capture->invalidated = true;
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  }
  // Fast path: when the stream has nothing queued and nothing it must wait for, the caller
  // runs the work itself; a round trip through the worker thread costs microseconds.
  Context* ctx = s->context;
  CompletionPtr inlineDone;
  {
    std::lock_guard<std::mutex> ctxLock(ctx->mu);
    auto busy = [](Stream* o) {
      if (!o) return false;
      std::lock_guard<std::mutex> lock(o->mu);
      return !o->queue.empty() || (o->last && !o->last->isDone());
    };
    bool wait = busy(s);
    if (!wait && s->kind == StreamKind::Legacy) {
      // A blocking stream that captures: the queued path reports STREAM_CAPTURE_IMPLICIT.
      for (Stream* o : ctx->streams) wait = wait || (o->blocking() && (o->capture || busy(o)));
      for (auto& [tid, o] : ctx->perThread) wait = wait || busy(o);
    } else if (!wait && s->blocking()) {
      wait = busy(ctx->legacy);
    }
    if (!wait && ctx->sticky.load() == CUDA_SUCCESS) {
      inlineDone = std::make_shared<Completion>();
      std::lock_guard<std::mutex> lock(s->mu);
      s->last = inlineDone; // later work on this stream, and the legacy stream, waits for it
    }
  }
  if (inlineDone) {
    CUresult r = run();
    if (isStickyError(r)) {
      CUresult expected = CUDA_SUCCESS;
      ctx->sticky.compare_exchange_strong(expected, r);
    }
    inlineDone->complete(r);
    return r;
  }
  CompletionPtr done;
  CUresult r = submit(s, kind, std::move(run), &done);
  if (r != CUDA_SUCCESS) return r;
  done->wait();
  return done->result;
}

CUresult synchronizeStream(Stream* s) {
  CompletionPtr last;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    last = s->last;
  }
  CUresult r = CUDA_SUCCESS;
  if (last) {
    last->wait();
    r = last->result;
  }
  CUresult sticky = s->context->sticky.load();
  return sticky != CUDA_SUCCESS ? sticky : r;
}

CUresult queryStream(Stream* s) {
  std::lock_guard<std::mutex> lock(s->mu);
  if (!s->queue.empty()) return CUDA_ERROR_NOT_READY;
  CUresult sticky = s->context->sticky.load();
  return sticky;
}

CUresult synchronizeContext(Context* ctx) {
  std::vector<Stream*> all;
  {
    std::lock_guard<std::mutex> lock(ctx->mu);
    all = ctx->streams;
    all.push_back(ctx->legacy);
    for (auto& [t, s] : ctx->perThread) all.push_back(s);
  }
  CUresult first = CUDA_SUCCESS;
  for (Stream* s : all) {
    CUresult r = synchronizeStream(s);
    if (first == CUDA_SUCCESS) first = r;
  }
  CUresult sticky = ctx->sticky.load();
  return sticky != CUDA_SUCCESS ? sticky : first;
}

} // namespace tf::softgpu
