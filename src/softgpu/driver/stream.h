// Streams: in-order work per stream on a worker thread, the legacy default stream's implicit
// synchronisation with blocking streams, per-thread default streams, and capture into graphs.
#pragma once

#include "softgpu/driver/driver.h"

namespace tf::softgpu {

Stream* createStream(Context* ctx, StreamKind kind, unsigned flags, int priority);
// Waits for the stream's work, stops its worker and frees it.
void destroyStream(Stream* s);

// The stream a handle names: 0 is the legacy default stream, or the calling thread's own when
// the entry point is a _ptds/_ptsz one; CU_STREAM_LEGACY and CU_STREAM_PER_THREAD name them
// explicitly. INVALID_HANDLE for anything else the driver did not create.
CUresult resolveStream(CUstream handle, Context* ctx, Stream** out);

// Queues work (or records it into the graph being captured). `done`, if given, receives the
// work's completion (null while capturing). `describe`, if given, fills a captured node's
// parameters (graph.h); it is not called when the stream does not capture.
struct NodeParams;
CUresult submit(Stream* s, OpKind kind, std::function<CUresult()> run,
                CompletionPtr* done = nullptr, std::vector<CompletionPtr> extraDeps = {},
                const std::function<void(NodeParams*)>* describe = nullptr);
// Queues work and waits for it: the synchronous API calls.
CUresult submitAndWait(Stream* s, OpKind kind, std::function<CUresult()> run);

// Waits for everything queued so far; returns the first error the stream's work raised since
// the last synchronisation, or the context's sticky error.
CUresult synchronizeStream(Stream* s);
// CUDA_SUCCESS when idle, CUDA_ERROR_NOT_READY when work is pending.
CUresult queryStream(Stream* s);
CUresult synchronizeContext(Context* ctx);

// Errors that poison the context, as on a real GPU.
bool isStickyError(CUresult r);

} // namespace tf::softgpu
