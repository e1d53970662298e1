// Streams and events on the worker. Synchronisation runs in bounded slices (Op::WaitStream,
// Op::WaitEvent), so a client's other threads get their calls through between slices.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "remoting/worker/calls.h"

namespace tf::remoting {

namespace {

// Synchronisation in bounded slices: polls `query` for up to budgetUs (at most 100 ms), then
// answers CUDA_ERROR_NOT_READY and the client asks again. The client's connection is free
// between slices, so its other threads' calls are not stuck behind a long wait.
template <typename Q> CUresult boundedWait(Q&& query, uint64_t budgetUs) {
  auto start = std::chrono::steady_clock::now();
  auto budget = std::chrono::microseconds(std::min<uint64_t>(budgetUs, 100000));
  for (int i = 0;; ++i) {
    CUresult r = query();
    if (r != CUDA_ERROR_NOT_READY) return r;
    auto spent = std::chrono::steady_clock::now() - start;
    if (spent > budget) return CUDA_ERROR_NOT_READY;
    if (spent < std::chrono::microseconds(50)) std::this_thread::yield();
    else std::this_thread::sleep_for(std::chrono::microseconds(20));
  }
}

} // namespace

CUresult waitStream(Session& s, CallIn& in) {
  NEED(2);
  OWN_STREAM(A(0));
  DRV_AT(query, cuStreamQuery, cuStreamQuery);
  return boundedWait([&] { return query(H(CUstream)(A(0))); }, A(1));
}

CUresult waitEvent(Session& s, CallIn& in) {
  NEED(2);
  OWN(Event, A(0));
  DRV_AT(query, cuEventQuery, cuEventQuery);
  return boundedWait([&] { return query(H(CUevent)(A(0))); }, A(1));
}

// ---- streams and events ------------------------------------------------------------------
TF_CALL(cuStreamSynchronize, cuStreamSynchronize_ptsz) {
  NEED(1);
  OWN_STREAM(A(0));
  DRV(cuStreamSynchronize);
  return f(H(CUstream)(A(0)));
}
TF_CALL(cuStreamAttachMemAsync, cuStreamAttachMemAsync_ptsz) {
  NEED(4);
  OWN_STREAM(A(0));
  DPTR(A(1), A(2) ? A(2) : 1);
  DRV_AT(f, cuStreamAttachMemAsync, cuStreamAttachMemAsync);
  return f(H(CUstream)(A(0)), A(1), A(2), static_cast<unsigned>(A(3)));
}
TF_CALL(cuStreamCopyAttributes, cuStreamCopyAttributes_ptsz) {
  NEED(2);
  OWN_STREAM(A(0));
  OWN_STREAM(A(1));
  DRV_AT(f, cuStreamCopyAttributes, cuStreamCopyAttributes);
  return f(H(CUstream)(A(0)), H(CUstream)(A(1)));
}
TF_CALL(cuEventCreate) {
  NEED(1);
  DRV(cuEventCreate);
  CUevent e = nullptr;
  CUresult r = f(&e, static_cast<unsigned>(A(0)));
  putNew(s, out, r, K::Event, e);
  return r;
}
TF_CALL(cuEventDestroy_v2) {
  NEED(1);
  OWN(Event, A(0));
  return destroyEvent(s, A(0));
}
TF_CALL(cuEventRecord, cuEventRecord_ptsz) {
  NEED(2);
  OWN(Event, A(0));
  OWN_STREAM(A(1));
  DRV(cuEventRecord);
  return f(H(CUevent)(A(0)), H(CUstream)(A(1)));
}
TF_CALL(cuEventRecordWithFlags, cuEventRecordWithFlags_ptsz) {
  NEED(3);
  OWN(Event, A(0));
  OWN_STREAM(A(1));
  DRV(cuEventRecordWithFlags);
  return f(H(CUevent)(A(0)), H(CUstream)(A(1)), static_cast<unsigned>(A(2)));
}
TF_CALL(cuEventSynchronize) {
  NEED(1);
  OWN(Event, A(0));
  DRV(cuEventSynchronize);
  return f(H(CUevent)(A(0)));
}
TF_CALL(cuEventElapsedTime, cuEventElapsedTime_v2) {
  NEED(2);
  OWN(Event, A(0));
  OWN(Event, A(1));
  DRV(cuEventElapsedTime);
  float ms = 0;
  CUresult r = f(&ms, H(CUevent)(A(0)), H(CUevent)(A(1)));
  uint32_t bits;
  std::memcpy(&bits, &ms, 4);
  out.put(bits);
  return r;
}

} // namespace tf::remoting
