// Kernel launches and host functions on the worker: a launch's parameters are checked against
// the kernel's layout (from the driver, cached) and against pointers into other clients' memory.
#include <cstring>

#include "remoting/worker/calls.h"

namespace tf::remoting {

CUresult kernelParams(Session& s, uint64_t func, std::string_view blob, LaunchBlob* lb,
                      std::vector<void*>* ptrs) {
  if (!decodeLaunch(blob, sizeof(CUlaunchAttribute), lb).isOk()) return CUDA_ERROR_INVALID_VALUE;
  // The driver reads as many parameters, of the sizes, as the kernel declares: the launch
  // must carry exactly those, inside its buffer (decodeLaunch checked the buffer bounds).
  const std::vector<ParamSlot>* layout = nullptr;
  CUresult lr = layoutOf(s, func, &layout);
  if (lr != CUDA_SUCCESS) return lr;
  if (layout->size() != lb->slots.size()) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 0; i < lb->slots.size(); ++i)
    if (lb->slots[i].size != (*layout)[i].size) return CUDA_ERROR_INVALID_VALUE;
  // A pointer into another client's memory (any aligned word: pointers inside structs too).
  if (s.foreignPointerIn(lb->params)) return CUDA_ERROR_INVALID_VALUE;
  ptrs->resize(lb->slots.size());
  for (size_t i = 0; i < lb->slots.size(); ++i)
    (*ptrs)[i] = const_cast<char*>(lb->params.data()) + lb->slots[i].offset;
  return CUDA_SUCCESS;
}

// The parameter layout of a function or kernel the client owns, from the driver, cached.
CUresult layoutOf(Session& s, uint64_t handle, const std::vector<ParamSlot>** out) {
  auto it = s.layouts().find(handle);
  if (it != s.layouts().end()) {
    *out = &it->second;
    return CUDA_SUCCESS;
  }
  bool isKernel = s.ownsDriver(K::Kernel, handle);
  auto kinfo = s.d().fn<decltype(&::cuKernelGetParamInfo)>(FnId::cuKernelGetParamInfo);
  auto finfo = s.d().fn<decltype(&::cuFuncGetParamInfo)>(FnId::cuFuncGetParamInfo);
  std::vector<ParamSlot> slots;
  for (size_t i = 0; i < kMaxParams; ++i) {
    size_t off = 0, size = 0;
    CUresult r = isKernel && kinfo ? kinfo(H(CUkernel)(handle), i, &off, &size)
                 : finfo           ? finfo(H(CUfunction)(handle), i, &off, &size)
                                   : CUDA_ERROR_NOT_SUPPORTED;
    if (r == CUDA_ERROR_NOT_SUPPORTED && i == 0) return r;
    if (r != CUDA_SUCCESS) break;
    ParamSlot p;
    p.offset = static_cast<uint32_t>(off);
    p.size = static_cast<uint32_t>(size);
    slots.push_back(p);
  }
  *out = &(s.layouts()[handle] = std::move(slots));
  return CUDA_SUCCESS;
}

namespace {

CUresult launch(Session& s, CallIn& in) {
  NEED(9);
  OWN_FUNC(A(0));
  OWN_STREAM(A(8));
  LaunchBlob lb;
  std::vector<void*> ptrs;
  if (CUresult r = kernelParams(s, A(0), in.a.blob, &lb, &ptrs); r != CUDA_SUCCESS) return r;
  void** params = ptrs.empty() ? nullptr : ptrs.data();
  switch (static_cast<FnId>(in.fn)) {
  CASE2(cuLaunchKernel, cuLaunchKernel_ptsz) {
    DRV(cuLaunchKernel);
    return f(H(CUfunction)(A(0)), A(1), A(2), A(3), A(4), A(5), A(6), A(7), H(CUstream)(A(8)),
             params, nullptr);
  }
  CASE2(cuLaunchCooperativeKernel, cuLaunchCooperativeKernel_ptsz) {
    DRV(cuLaunchCooperativeKernel);
    return f(H(CUfunction)(A(0)), A(1), A(2), A(3), A(4), A(5), A(6), A(7), H(CUstream)(A(8)),
             params);
  }
  CASE2(cuLaunchKernelEx, cuLaunchKernelEx_ptsz) {
    DRV(cuLaunchKernelEx);
    std::vector<CUlaunchAttribute> attrs(lb.attrCount);
    if (lb.attrCount) std::memcpy(attrs.data(), lb.attrs.data(), lb.attrs.size());
    for (CUlaunchAttribute& a : attrs) { // events the launch records: the client's
      if (a.id == CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT) OWN(Event, a.value.programmaticEvent.event);
      if (a.id == CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT) OWN(Event, a.value.launchCompletionEvent.event);
    }
    CUlaunchConfig cfg{};
    cfg.gridDimX = A(1), cfg.gridDimY = A(2), cfg.gridDimZ = A(3);
    cfg.blockDimX = A(4), cfg.blockDimY = A(5), cfg.blockDimZ = A(6);
    cfg.sharedMemBytes = A(7);
    cfg.hStream = H(CUstream)(A(8));
    cfg.attrs = attrs.data();
    cfg.numAttrs = lb.attrCount;
    return f(&cfg, H(CUfunction)(A(0)), params, nullptr);
  }
  default: return CUDA_ERROR_NOT_SUPPORTED;
  }
}

} // namespace

CUresult paramLayout(Session& s, CallIn& in, CallOut& out) {
  NEED(1);
  OWN_FUNC(A(0));
  const std::vector<ParamSlot>* layout = nullptr;
  CUresult r = layoutOf(s, A(0), &layout);
  if (r != CUDA_SUCCESS) return r;
  for (auto& p : *layout) {
    uint32_t pair[2] = {p.offset, p.size};
    out.blob.append(reinterpret_cast<const char*>(pair), sizeof(pair));
  }
  return CUDA_SUCCESS;
}

TF_CALL(cuLaunchHostFunc, cuLaunchHostFunc_ptsz) {
  NEED(2);
  OWN_STREAM(A(0));
  DRV(cuLaunchHostFunc);
  // Captured into a graph, the host function runs at every launch of the graph.
  CUstreamCaptureStatus capturing = CU_STREAM_CAPTURE_STATUS_NONE;
  if (auto isCapturing = s.d().fn<decltype(&::cuStreamIsCapturing)>(FnId::cuStreamIsCapturing))
    isCapturing(H(CUstream)(A(0)), &capturing);
  void* arg = s.hostFunctionArg(A(1), capturing != CU_STREAM_CAPTURE_STATUS_NONE);
  CUresult r = f(H(CUstream)(A(0)), &Session::hostFunctionEntry, arg);
  if (r != CUDA_SUCCESS) Session::dropHostFunctionArg(arg);
  return r;
}
TF_CALL(cuLaunchKernel, cuLaunchKernel_ptsz, cuLaunchKernelEx, cuLaunchKernelEx_ptsz,
        cuLaunchCooperativeKernel, cuLaunchCooperativeKernel_ptsz) {
  return launch(s, in);
}

} // namespace tf::remoting
