// IPC memory and event handles, made and opened by the worker (worker/ipc.h): two processes of
// one tenant on one worker share memory and events by handle, as on a GPU. The handle's 64 bytes
// travel as the call's blob.
#include <cstring>
#include <string>

#include "remoting/stub/api.h"

using namespace tf::remoting::stub;

namespace {

CUresult handleFrom(FnId fn, uint64_t object, unsigned char (&out)[64]) {
  TF_READY();
  std::string blob;
  CUresult r = client().call(fn, {object}, nullptr, 0, nullptr, 0, nullptr, 0, nullptr, &blob);
  if (r != CUDA_SUCCESS) return r;
  if (blob.size() != sizeof out) return CUDA_ERROR_UNKNOWN;
  std::memcpy(out, blob.data(), sizeof out);
  return CUDA_SUCCESS;
}

CUresult openMemory(FnId fn, CUdeviceptr* p, const CUipcMemHandle& handle, unsigned flags) {
  TF_READY();
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  uint64_t out[2] = {};
  CUresult r = client().call(fn, {flags}, out, 2, handle.reserved, sizeof handle.reserved);
  if (r != CUDA_SUCCESS) return r;
  *p = out[0];
  CUdeviceptr base = 0;
  Client::Allocation a{};
  if (!client().findDevice(*p, &base, &a)) client().addDeviceAllocation(*p, out[1], currentContext());
  return CUDA_SUCCESS;
}

} // namespace

extern "C" {

CUresult tf_rs_cuIpcGetMemHandle(CUipcMemHandle* handle, CUdeviceptr p) {
  if (!handle) return CUDA_ERROR_INVALID_VALUE;
  return handleFrom(FnId::cuIpcGetMemHandle, p, reinterpret_cast<unsigned char(&)[64]>(handle->reserved));
}
CUresult tf_rs_cuIpcOpenMemHandle(CUdeviceptr* p, CUipcMemHandle handle, unsigned flags) {
  return openMemory(FnId::cuIpcOpenMemHandle, p, handle, flags);
}
CUresult tf_rs_cuIpcOpenMemHandle_v2(CUdeviceptr* p, CUipcMemHandle handle, unsigned flags) {
  return openMemory(FnId::cuIpcOpenMemHandle_v2, p, handle, flags);
}
CUresult tf_rs_cuIpcCloseMemHandle(CUdeviceptr p) {
  TF_READY();
  uint64_t stillOpen = 0;
  CUresult r = client().call(FnId::cuIpcCloseMemHandle, {p}, &stillOpen, 1);
  if (r == CUDA_SUCCESS && !stillOpen) client().removeDeviceAllocation(p);
  return r;
}
CUresult tf_rs_cuIpcGetEventHandle(CUipcEventHandle* handle, CUevent e) {
  if (!handle) return CUDA_ERROR_INVALID_VALUE;
  if (!client().hasHandle(Client::Handle::Event, e)) return CUDA_ERROR_INVALID_HANDLE;
  return handleFrom(FnId::cuIpcGetEventHandle, u(e), reinterpret_cast<unsigned char(&)[64]>(handle->reserved));
}
CUresult tf_rs_cuIpcOpenEventHandle(CUevent* e, CUipcEventHandle handle) {
  TF_READY();
  if (!e) return CUDA_ERROR_INVALID_VALUE;
  uint64_t out = 0;
  CUresult r = client().call(FnId::cuIpcOpenEventHandle, {}, &out, 1, handle.reserved, sizeof handle.reserved);
  if (r != CUDA_SUCCESS) return r;
  *e = h<CUevent>(out);
  client().addHandle(Client::Handle::Event, *e);
  client().addHandle(Client::Handle::SharedEvent, *e);
  return CUDA_SUCCESS;
}

} // extern "C"
