// Streams, events, host functions and callbacks.
#include "softgpu/driver/api.h"
#include "softgpu/driver/graph.h"
#include "softgpu/driver/ipc_event.h"
#include "softgpu/driver/stream.h"

using namespace tf::softgpu;

namespace {

CUresult streamOf(CUstream h, Stream** out) {
  Context* c;
  TF_TRY(requireContext(&c));
  return resolveStream(h, c, out);
}

// A stream handle without needing a current context (queries on another context's streams).
CUresult anyStream(CUstream h, Stream** out) {
  TF_TRY(checkInitialized());
  if (Stream* s = registryOf<Stream>().find(h)) {
    *out = s;
    return CUDA_SUCCESS;
  }
  return streamOf(h, out);
}

CUresult eventOf(CUevent h, Event** out) {
  TF_TRY(checkInitialized());
  Event* e = registryOf<Event>().find(h);
  if (!e) return CUDA_ERROR_INVALID_HANDLE;
  *out = e;
  return CUDA_SUCCESS;
}

} // namespace

extern "C" {

CUresult tf_sg_cuStreamCreateWithPriority(CUstream* ph, unsigned int flags, int priority) {
  if (!ph || (flags & ~CU_STREAM_NON_BLOCKING)) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(requireContext(&c));
  priority = std::clamp(priority, -5, 0);
  Stream* s = createStream(c, StreamKind::User, flags, priority);
  {
    std::lock_guard<std::mutex> lock(c->mu);
    c->streams.push_back(s);
  }
  *ph = reinterpret_cast<CUstream>(s);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuStreamCreate(CUstream* ph, unsigned int flags) {
  return tf_sg_cuStreamCreateWithPriority(ph, flags, 0);
}

CUresult tf_sg_cuStreamDestroy_v2(CUstream h) {
  TF_TRY(checkInitialized());
  Stream* s = registryOf<Stream>().find(h);
  if (!s || s->kind != StreamKind::User) return CUDA_ERROR_INVALID_HANDLE;
  {
    std::lock_guard<std::mutex> lock(s->context->mu);
    std::erase(s->context->streams, s);
  }
  destroyStream(s); // pending work completes first, as on a real GPU
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuStreamSynchronize(CUstream h) {
  Stream* s;
  TF_TRY(anyStream(h, &s));
  {
    // Synchronising a capturing stream is not allowed, and ruins the capture.
    std::lock_guard<std::mutex> lock(s->context->mu);
    if (s->capture) {
      s->capture->invalidated = true;
      return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    }
  }
  return synchronizeStream(s);
}

CUresult tf_sg_cuStreamQuery(CUstream h) {
  Stream* s;
  TF_TRY(anyStream(h, &s));
  return queryStream(s);
}

CUresult tf_sg_cuStreamGetPriority(CUstream h, int* priority) {
  if (!priority) return CUDA_ERROR_INVALID_VALUE;
  Stream* s;
  TF_TRY(anyStream(h, &s));
  *priority = s->priority;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuStreamGetFlags(CUstream h, unsigned int* flags) {
  if (!flags) return CUDA_ERROR_INVALID_VALUE;
  Stream* s;
  TF_TRY(anyStream(h, &s));
  *flags = s->flags;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuStreamGetId(CUstream h, unsigned long long* id) {
  if (!id) return CUDA_ERROR_INVALID_VALUE;
  Stream* s;
  TF_TRY(anyStream(h, &s));
  *id = s->id;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuStreamGetCtx(CUstream h, CUcontext* pctx) {
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  Stream* s;
  TF_TRY(anyStream(h, &s));
  *pctx = reinterpret_cast<CUcontext>(s->context);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuStreamGetCtx_v2(CUstream h, CUcontext* pctx, CUgreenCtx* pgreen) {
  if (pgreen) *pgreen = nullptr;
  return tf_sg_cuStreamGetCtx(h, pctx);
}

CUresult tf_sg_cuStreamGetDevice(CUstream h, CUdevice* dev) {
  if (!dev) return CUDA_ERROR_INVALID_VALUE;
  Stream* s;
  TF_TRY(anyStream(h, &s));
  *dev = s->context->device->ordinal;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuStreamWaitEvent(CUstream h, CUevent he, unsigned int flags) {
  if (flags & ~CU_EVENT_WAIT_EXTERNAL) return CUDA_ERROR_INVALID_VALUE;
  Stream* s;
  TF_TRY(streamOf(h, &s));
  Event* e;
  TF_TRY(eventOf(he, &e));
  std::shared_ptr<CaptureState> cap;
  std::vector<size_t> nodes;
  CompletionPtr rec;
  {
    std::lock_guard<std::mutex> lock(e->mu);
    cap = e->capture;
    rec = e->recorded;
  }
  if (cap) {
    // Waiting on an event recorded during a capture joins the capture (fork).
    std::lock_guard<std::mutex> lock(s->context->mu);
    if (s->capture && s->capture != cap) return CUDA_ERROR_STREAM_CAPTURE_MERGE;
    std::vector<GraphNode*> deps;
    {
      std::lock_guard<std::mutex> el(e->mu);
      for (size_t i : e->captureNodes) deps.push_back(cap->graph->nodes[i].get());
    }
    auto& front = cap->frontier[s];
    for (GraphNode* n : deps)
      if (std::find(front.begin(), front.end(), n) == front.end()) front.push_back(n);
    s->capture = cap;
    return CUDA_SUCCESS;
  }
  if (e->ipc) {
    // Records by any process holding the event, as counted now.
    std::shared_ptr<IpcEventPage> page = e->ipc;
    uint64_t target = page->recorded();
    if (page->reached(target)) return CUDA_SUCCESS;
    return submit(s, OpKind::Wait, [page, target] {
      page->waitFor(target);
      return CUDA_SUCCESS;
    });
  }
  if (!rec) return CUDA_SUCCESS; // never recorded: nothing to wait for
  return submit(s, OpKind::Wait, [] { return CUDA_SUCCESS; }, nullptr, {rec});
}

CUresult tf_sg_cuLaunchHostFunc(CUstream h, CUhostFn fn, void* userData) {
  if (!fn) return CUDA_ERROR_INVALID_VALUE;
  Stream* s;
  TF_TRY(streamOf(h, &s));
  return submit(s, OpKind::Host, [fn, userData] {
    fn(userData);
    return CUDA_SUCCESS;
  });
}

CUresult tf_sg_cuStreamAddCallback(CUstream h, CUstreamCallback cb, void* userData, unsigned int flags) {
  if (!cb || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  Stream* s;
  TF_TRY(streamOf(h, &s));
  CUstream handle = h;
  Context* ctx = s->context;
  // Callbacks run even after an error, and are told about it.
  return submit(s, OpKind::Host, [cb, userData, handle, ctx] {
    cb(handle, ctx->sticky.load(), userData);
    return CUDA_SUCCESS;
  });
}

// Attributes are hints a CPU device has no use for (access policy windows, synchronisation
// policy, memory sync domains): they are kept and read back; the priority is the stream's own.
CUresult tf_sg_cuStreamSetAttribute(CUstream h, CUstreamAttrID attr, const CUstreamAttrValue* value) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  Stream* s;
  TF_TRY(anyStream(h, &s));
  std::lock_guard<std::mutex> lock(s->mu);
  if (attr == CU_LAUNCH_ATTRIBUTE_PRIORITY) s->priority = value->priority;
  else s->attributes[attr] = *value;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuStreamGetAttribute(CUstream h, CUstreamAttrID attr, CUstreamAttrValue* value) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  Stream* s;
  TF_TRY(anyStream(h, &s));
  std::lock_guard<std::mutex> lock(s->mu);
  auto it = s->attributes.find(attr);
  *value = it == s->attributes.end() ? CUstreamAttrValue{} : it->second;
  if (attr == CU_LAUNCH_ATTRIBUTE_PRIORITY) value->priority = s->priority;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuStreamCopyAttributes(CUstream dst, CUstream src) {
  Stream *d, *s;
  TF_TRY(anyStream(dst, &d));
  TF_TRY(anyStream(src, &s));
  if (d == s) return CUDA_SUCCESS;
  std::map<CUstreamAttrID, CUstreamAttrValue> copy;
  {
    std::lock_guard<std::mutex> lock(s->mu);
    copy = s->attributes;
  }
  std::lock_guard<std::mutex> lock(d->mu);
  d->attributes = std::move(copy);
  return CUDA_SUCCESS;
}

// Managed memory is always visible to the host and every stream here: attaching changes nothing,
// but the range must be memory the driver knows.
CUresult tf_sg_cuStreamAttachMemAsync(CUstream h, CUdeviceptr dptr, size_t length, unsigned int flags) {
  if (flags & ~(CU_MEM_ATTACH_GLOBAL | CU_MEM_ATTACH_HOST | CU_MEM_ATTACH_SINGLE)) return CUDA_ERROR_INVALID_VALUE;
  Stream* s;
  TF_TRY(streamOf(h, &s));
  if (!addressSpace().hostOf(dptr, length ? length : 1)) return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

// ---- Events -------------------------------------------------------------------------------

CUresult tf_sg_cuEventCreate(CUevent* ph, unsigned int flags) {
  if (!ph) return CUDA_ERROR_INVALID_VALUE;
  if (flags & ~(CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS))
    return CUDA_ERROR_INVALID_VALUE;
  if ((flags & CU_EVENT_INTERPROCESS) && !(flags & CU_EVENT_DISABLE_TIMING))
    return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  TF_TRY(requireContext(&c));
  auto* e = new Event();
  e->flags = flags;
  if (flags & CU_EVENT_INTERPROCESS) {
    auto page = IpcEventPage::create();
    if (!page) {
      delete e;
      return CUDA_ERROR_OUT_OF_MEMORY;
    }
    e->ipc = std::move(*page);
  }
  registryOf<Event>().add(e);
  *ph = reinterpret_cast<CUevent>(e);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuEventDestroy_v2(CUevent h) {
  Event* e;
  TF_TRY(eventOf(h, &e));
  registryOf<Event>().remove(e);
  delete e; // completions are shared: work still queued keeps what it needs
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuEventRecordWithFlags(CUevent he, CUstream h, unsigned int flags) {
  if (flags & ~CU_EVENT_RECORD_EXTERNAL) return CUDA_ERROR_INVALID_VALUE;
  Event* e;
  TF_TRY(eventOf(he, &e));
  Stream* s;
  TF_TRY(streamOf(h, &s));
  {
    std::lock_guard<std::mutex> lock(s->context->mu);
    if (s->capture) {
      std::lock_guard<std::mutex> el(e->mu);
      e->capture = s->capture;
      e->captureNodes.clear();
      auto& g = *s->capture->graph;
      for (GraphNode* n : s->capture->frontier[s])
        for (size_t i = 0; i < g.nodes.size(); ++i)
          if (g.nodes[i].get() == n) e->captureNodes.push_back(i);
      return CUDA_SUCCESS;
    }
  }
  CompletionPtr done;
  if (e->ipc) {
    // Other processes see this record as the next count, marked done when the stream gets here.
    std::shared_ptr<IpcEventPage> page = e->ipc;
    uint64_t n = page->record();
    CUresult r = submit(s, OpKind::EventRecord, [page, n] {
      page->complete(n);
      return CUDA_SUCCESS;
    }, &done);
    if (r != CUDA_SUCCESS) {
      page->complete(n); // nothing was recorded: nobody may wait for it
      return r;
    }
  } else {
    TF_TRY(submit(s, OpKind::EventRecord, [] { return CUDA_SUCCESS; }, &done));
  }
  std::lock_guard<std::mutex> lock(e->mu);
  e->recorded = done;
  e->capture.reset();
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuEventRecord(CUevent he, CUstream h) { return tf_sg_cuEventRecordWithFlags(he, h, 0); }

CUresult tf_sg_cuEventQuery(CUevent h) {
  Event* e;
  TF_TRY(eventOf(h, &e));
  if (e->ipc) return e->ipc->reached(e->ipc->recorded()) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
  CompletionPtr rec;
  {
    std::lock_guard<std::mutex> lock(e->mu);
    rec = e->recorded;
  }
  return !rec || rec->isDone() ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult tf_sg_cuEventSynchronize(CUevent h) {
  Event* e;
  TF_TRY(eventOf(h, &e));
  if (e->ipc) {
    e->ipc->waitFor(e->ipc->recorded());
    return CUDA_SUCCESS;
  }
  CompletionPtr rec;
  {
    std::lock_guard<std::mutex> lock(e->mu);
    rec = e->recorded;
  }
  if (rec) rec->wait();
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuEventElapsedTime_v2(float* ms, CUevent hStart, CUevent hEnd) {
  if (!ms) return CUDA_ERROR_INVALID_VALUE;
  Event *a, *b;
  TF_TRY(eventOf(hStart, &a));
  TF_TRY(eventOf(hEnd, &b));
  if ((a->flags | b->flags) & CU_EVENT_DISABLE_TIMING) return CUDA_ERROR_INVALID_HANDLE;
  CompletionPtr ra, rb;
  {
    std::lock_guard<std::mutex> la(a->mu);
    ra = a->recorded;
  }
  {
    std::lock_guard<std::mutex> lb(b->mu);
    rb = b->recorded;
  }
  if (!ra || !rb) return CUDA_ERROR_INVALID_HANDLE;
  if (!ra->isDone() || !rb->isDone()) return CUDA_ERROR_NOT_READY;
  *ms = static_cast<float>((static_cast<double>(rb->timestampNs) -
                            static_cast<double>(ra->timestampNs)) / 1e6);
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuEventElapsedTime(float* ms, CUevent a, CUevent b) {
  return tf_sg_cuEventElapsedTime_v2(ms, a, b);
}

} // extern "C"
