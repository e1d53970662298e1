// IPC memory and event handles between clients of one worker (worker/ipc.h): handles come and
// go as the call's blob (64 bytes); an opened pointer or event is the importer's to name (not
// to free or destroy) until it closes it.
#include <cstring>

#include "remoting/worker/calls.h"

namespace tf::remoting {

namespace {

bool handleBlob(const CallIn& in, uint8_t h[kIpcHandleSize]) {
  if (in.a.blob.size() != kIpcHandleSize) return false;
  std::memcpy(h, in.a.blob.data(), kIpcHandleSize);
  return true;
}

// One close of what this client opened; what the exporter left goes with the last close.
void closeImport(Session& s, IpcKind kind, uint64_t id, uint64_t object) {
  s.releaseIpc(s.shared().ipc.close(id, &s));
  uint64_t still = 0;
  if (s.shared().ipc.opened(kind, &s, object, &still)) return; // opened more than once
  if (kind == IpcKind::Memory)
    s.dropImport(object);
  else
    s.forget(K::Event, object);
}

} // namespace

TF_CALL(cuIpcGetMemHandle) {
  IpcRegistry& ipc = s.shared().ipc;
  uint8_t h[kIpcHandleSize];
  NEED(1);
  const Session::Allocation* a = s.allocationAt(A(0));
  if (!a || !a->freeable) return CUDA_ERROR_INVALID_VALUE; // the base of the client's own
  // Tiered memory leaves the device while its owner idles, under any importer's feet.
  if (a->tiered) return CUDA_ERROR_NOT_SUPPORTED;
  ipc.exportObject(IpcKind::Memory, &s, s.tenant(), A(0), a->size, a->ctx, h);
  out.blob.assign(reinterpret_cast<const char*>(h), kIpcHandleSize);
  return CUDA_SUCCESS;
}
TF_CALL(cuIpcOpenMemHandle, cuIpcOpenMemHandle_v2) {
  IpcRegistry& ipc = s.shared().ipc;
  uint8_t h[kIpcHandleSize];
  if (!handleBlob(in, h)) return CUDA_ERROR_INVALID_VALUE;
  IpcEntry e;
  CUresult r = ipc.open(IpcKind::Memory, h, &s, s.tenant(), &e);
  if (r != CUDA_SUCCESS) return r;
  s.addImport(e.object, e.size);
  out.put(e.object);
  out.put(e.size);
  return CUDA_SUCCESS;
}
TF_CALL(cuIpcCloseMemHandle) {
  IpcRegistry& ipc = s.shared().ipc;
  NEED(1);
  uint64_t id = 0;
  if (!ipc.opened(IpcKind::Memory, &s, A(0), &id)) return CUDA_ERROR_INVALID_VALUE;
  closeImport(s, IpcKind::Memory, id, A(0));
  uint64_t still = 0;
  out.put(ipc.opened(IpcKind::Memory, &s, A(0), &still) ? 1 : 0);
  return CUDA_SUCCESS;
}
TF_CALL(cuIpcGetEventHandle) {
  IpcRegistry& ipc = s.shared().ipc;
  uint8_t h[kIpcHandleSize];
  NEED(1);
  OWN(Event, A(0));
  uint64_t id = 0;
  if (ipc.opened(IpcKind::Event, &s, A(0), &id)) return CUDA_ERROR_INVALID_VALUE;
  // The driver says whether the event is an interprocess one; its handle is not used.
  DRV(cuIpcGetEventHandle);
  CUipcEventHandle driverHandle;
  CUresult r = f(&driverHandle, H(CUevent)(A(0)));
  if (r != CUDA_SUCCESS) return r;
  ipc.exportObject(IpcKind::Event, &s, s.tenant(), A(0), 0, s.currentCtx(), h);
  out.blob.assign(reinterpret_cast<const char*>(h), kIpcHandleSize);
  return CUDA_SUCCESS;
}
TF_CALL(cuIpcOpenEventHandle) {
  IpcRegistry& ipc = s.shared().ipc;
  uint8_t h[kIpcHandleSize];
  if (!handleBlob(in, h)) return CUDA_ERROR_INVALID_VALUE;
  IpcEntry e;
  CUresult r = ipc.open(IpcKind::Event, h, &s, s.tenant(), &e);
  if (r != CUDA_SUCCESS) return r;
  out.put(s.expose(K::Event, e.object));
  return CUDA_SUCCESS;
}

// cuEventDestroy of an event the client opened by handle closes it; of one it exported and
// others hold, it is destroyed when the last of them closes it.
CUresult destroyEvent(Session& s, uint64_t event) {
  uint64_t id = 0;
  if (s.shared().ipc.opened(IpcKind::Event, &s, event, &id)) {
    closeImport(s, IpcKind::Event, id, event);
    return CUDA_SUCCESS;
  }
  CUresult r = CUDA_SUCCESS;
  if (s.shared().ipc.ownerReleases(IpcKind::Event, &s, event)) {
    auto f = s.d().fn<decltype(&::cuEventDestroy_v2)>(FnId::cuEventDestroy_v2);
    if (!f) return CUDA_ERROR_NOT_SUPPORTED;
    r = f(H(CUevent)(event));
  }
  if (r == CUDA_SUCCESS) s.forget(K::Event, event);
  return r;
}

} // namespace tf::remoting
