// Streams and events. Records and waits are posted; queries and synchronisation wait.
// Host functions run in this process, on the host-channel thread, when the worker's stream
// reaches them; the stream waits for them as on a real GPU.
#include <chrono>
#include <cstring>
#include <thread>
#include <unordered_map>

#include "remoting/stub/api.h"

using namespace tf::remoting::stub;

namespace {

CUresult handleOut(FnId fn, std::initializer_list<uint64_t> in, uint64_t* out) {
  TF_READY();
  return client().call(fn, in, out, 1);
}

// Synchronisation in slices (Op::WaitStream / WaitEvent): between slices other threads of
// this process get their calls through.
constexpr uint64_t kWaitSliceUs = 2000;
// The connection's mutex is not fair: step back briefly so a waiting thread gets it.
void betweenSlices() { std::this_thread::sleep_for(std::chrono::microseconds(100)); }

CUresult streamSync(FnId fn, CUstream s) {
  TF_READY();
  perThreadCall(fn, s);
  // Under a capture the driver must see the synchronisation itself (it fails it and
  // invalidates the capture); a query would not.
  if (client().capturing()) return client().call(fn, {u(s)});
  for (;;) {
    CUresult r = client().call(static_cast<uint32_t>(tf::remoting::Op::WaitStream), {u(s), kWaitSliceUs});
    if (r != CUDA_ERROR_NOT_READY) return r;
    betweenSlices();
  }
}
// Attaching managed memory and copying stream attributes: hints the worker's driver keeps.
CUresult streamAttachMem(FnId fn, CUstream s, CUdeviceptr p, size_t length, unsigned flags) {
  TF_READY();
  perThreadCall(fn, s);
  return client().call(fn, {u(s), p, length, flags});
}
CUresult streamCopyAttributes(FnId fn, CUstream dst, CUstream src) {
  TF_READY();
  FnId plain = fn;
  perThreadCall(plain, dst);
  perThreadCall(fn, src);
  return client().call(fn, {u(dst), u(src)});
}

// A record is posted, but one another process may wait on is a call: on a GPU the record is
// queued when cuEventRecord returns, and the process that waits on it next (told so through a
// pipe, say) must find it queued, not still in this connection's ring.
CUresult recordEvent(FnId fn, CUevent e, std::initializer_list<uint64_t> args) {
  if (client().hasHandle(Client::Handle::SharedEvent, e)) return client().call(fn, args);
  return client().post(fn, args);
}

} // namespace

namespace tf::remoting::stub {

CUstream threadStream() {
  thread_local std::unordered_map<CUcontext, CUstream> streams;
  CUcontext ctx = currentContext();
  if (!ctx) return nullptr;
  auto it = streams.find(ctx);
  if (it != streams.end()) return it->second;
  CUstream s = nullptr;
  CUresult r = tf_rs_cuStreamCreate(&s, CU_STREAM_DEFAULT);
  if (r != CUDA_SUCCESS) return nullptr; // legacy
  streams[ctx] = s;
  return s;
}

} // namespace tf::remoting::stub

extern "C" {

CUresult tf_rs_cuStreamSynchronize(CUstream s) { return streamSync(FnId::cuStreamSynchronize, s); }
CUresult tf_rs_cuStreamSynchronize_ptsz(CUstream s) { return streamSync(FnId::cuStreamSynchronize_ptsz, s); }

CUresult tf_rs_cuStreamAttachMemAsync(CUstream s, CUdeviceptr p, size_t length, unsigned flags) {
  return streamAttachMem(FnId::cuStreamAttachMemAsync, s, p, length, flags);
}
CUresult tf_rs_cuStreamAttachMemAsync_ptsz(CUstream s, CUdeviceptr p, size_t length, unsigned flags) {
  return streamAttachMem(FnId::cuStreamAttachMemAsync_ptsz, s, p, length, flags);
}
CUresult tf_rs_cuStreamCopyAttributes(CUstream dst, CUstream src) {
  return streamCopyAttributes(FnId::cuStreamCopyAttributes, dst, src);
}
CUresult tf_rs_cuStreamCopyAttributes_ptsz(CUstream dst, CUstream src) {
  return streamCopyAttributes(FnId::cuStreamCopyAttributes_ptsz, dst, src);
}

CUresult tf_rs_cuLaunchHostFunc(CUstream s, CUhostFn fn, void* data) {
  if (!fn) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  if (!client().streamOk(s)) return CUDA_ERROR_INVALID_HANDLE;
  FnId id = FnId::cuLaunchHostFunc;
  perThreadCall(id, s);
  return client().hostFunction(id, s, [fn, data] { fn(data); });
}
CUresult tf_rs_cuLaunchHostFunc_ptsz(CUstream s, CUhostFn fn, void* data) {
  if (!fn) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  if (!client().streamOk(s)) return CUDA_ERROR_INVALID_HANDLE;
  FnId id = FnId::cuLaunchHostFunc_ptsz;
  perThreadCall(id, s);
  return client().hostFunction(id, s, [fn, data] { fn(data); });
}

CUresult tf_rs_cuEventCreate(CUevent* e, unsigned flags) {
  if (!e) return CUDA_ERROR_INVALID_VALUE;
  uint64_t out = 0;
  CUresult r = handleOut(FnId::cuEventCreate, {flags}, &out);
  *e = h<CUevent>(out);
  if (r == CUDA_SUCCESS) client().addHandle(Client::Handle::Event, *e);
  if (r == CUDA_SUCCESS && (flags & CU_EVENT_INTERPROCESS)) client().addHandle(Client::Handle::SharedEvent, *e);
  return r;
}
CUresult tf_rs_cuEventDestroy_v2(CUevent e) {
  TF_READY();
  CUresult r = client().call(FnId::cuEventDestroy_v2, {u(e)});
  if (r == CUDA_SUCCESS) {
    client().removeHandle(Client::Handle::Event, e);
    client().removeHandle(Client::Handle::SharedEvent, e);
  }
  return r;
}
CUresult tf_rs_cuEventRecord(CUevent e, CUstream s) {
  TF_READY();
  if (!client().hasHandle(Client::Handle::Event, e) || !client().streamOk(s)) return CUDA_ERROR_INVALID_HANDLE;
  FnId fn = FnId::cuEventRecord;
  perThreadCall(fn, s);
  return recordEvent(fn, e, {u(e), u(s)});
}
CUresult tf_rs_cuEventRecord_ptsz(CUevent e, CUstream s) {
  TF_READY();
  if (!client().hasHandle(Client::Handle::Event, e) || !client().streamOk(s)) return CUDA_ERROR_INVALID_HANDLE;
  FnId fn = FnId::cuEventRecord_ptsz;
  perThreadCall(fn, s);
  return recordEvent(fn, e, {u(e), u(s)});
}
CUresult tf_rs_cuEventRecordWithFlags(CUevent e, CUstream s, unsigned flags) {
  TF_READY();
  if (!client().hasHandle(Client::Handle::Event, e) || !client().streamOk(s)) return CUDA_ERROR_INVALID_HANDLE;
  FnId fn = FnId::cuEventRecordWithFlags;
  perThreadCall(fn, s);
  return recordEvent(fn, e, {u(e), u(s), flags});
}
CUresult tf_rs_cuEventRecordWithFlags_ptsz(CUevent e, CUstream s, unsigned flags) {
  TF_READY();
  if (!client().hasHandle(Client::Handle::Event, e) || !client().streamOk(s)) return CUDA_ERROR_INVALID_HANDLE;
  FnId fn = FnId::cuEventRecordWithFlags_ptsz;
  perThreadCall(fn, s);
  return recordEvent(fn, e, {u(e), u(s), flags});
}
CUresult tf_rs_cuEventSynchronize(CUevent e) {
  TF_READY();
  for (;;) {
    CUresult r = client().call(static_cast<uint32_t>(tf::remoting::Op::WaitEvent), {u(e), kWaitSliceUs});
    if (r != CUDA_ERROR_NOT_READY) return r;
    betweenSlices();
  }
}
CUresult tf_rs_cuEventElapsedTime_v2(float* ms, CUevent a, CUevent b) {
  if (!ms) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  uint64_t out = 0;
  CUresult r = client().call(FnId::cuEventElapsedTime_v2, {u(a), u(b)}, &out, 1);
  uint32_t bits = static_cast<uint32_t>(out);
  std::memcpy(ms, &bits, 4);
  return r;
}
CUresult tf_rs_cuEventElapsedTime(float* ms, CUevent a, CUevent b) { return tf_rs_cuEventElapsedTime_v2(ms, a, b); }

} // extern "C"
