// How programs find the driver, and how the limiter stays in front of it:
// - LD_PRELOAD (or /etc/ld.so.preload): the hooked cu* symbols this library exports win over
//   libcuda's for programs linked against -lcuda;
// - dlopen + dlsym (cudart, PyTorch): dlsym is overridden, and a hooked name resolves to the hook;
// - cuGetProcAddress: the pointer handed out for a hooked function is the hook's.
// Everything not hooked is the driver's own pointer, untouched.
#include <cstring>
#include <dlfcn.h>

#include "limiter/interposer/limiter.h"

using namespace tf::limiter;

namespace {

// The hook for a driver or NVML symbol name, and the library the real one must come from.
void* hookForSymbol(const char* symbol, const char** library) {
  if (!symbol) return nullptr;
  if (symbol[0] == 'c' && symbol[1] == 'u') {
    *library = "libcuda.so";
    return hookFor(tf::cuda::findSymbol(symbol));
  }
  if (!strncmp(symbol, "nvml", 4)) {
    *library = "libnvidia-ml.so";
    return tf::limiter::nvmlHookFor(symbol);
  }
  return nullptr;
}

CUresult procAddress(const char* symbol, void** pfn, int version, cuuint64_t flags,
                     CUdriverProcAddressQueryResult* status, bool v2) {
  CUresult r = v2 ? TF_REAL(cuGetProcAddress_v2)(symbol, pfn, version, flags, status)
                  : TF_REAL(cuGetProcAddress)(symbol, pfn, version, flags);
  if (r != CUDA_SUCCESS || !pfn || !*pfn || !symbol) return r;
  CUdriverProcAddressQueryResult st;
  int index = tf::cuda::resolveProcAddress(symbol, version, flags, &st);
  if (void* hook = hookFor(index)) *pfn = hook;
  return r;
}

} // namespace

TF_EXPORT CUresult cuGetProcAddress_v2(const char* symbol, void** pfn, int version,
                                       cuuint64_t flags, CUdriverProcAddressQueryResult* status) {
  return procAddress(symbol, pfn, version, flags, status, true);
}
TF_LIMITER_HOOK(cuGetProcAddress_v2);

TF_EXPORT CUresult cuGetProcAddress(const char* symbol, void** pfn, int version, cuuint64_t flags) {
  return procAddress(symbol, pfn, version, flags, nullptr, false);
}
TF_LIMITER_HOOK(cuGetProcAddress);

TF_EXPORT void* dlsym(void* handle, const char* symbol) {
  void* real = realDlsym(handle, symbol);
  if (!real) return real;
  const char* library = nullptr;
  if (void* hook = hookForSymbol(symbol, &library)) {
    // Only for the driver's own symbols: someone else's function of the same name stays theirs.
    Dl_info info{};
    if (dladdr(real, &info) && info.dli_fname && strstr(info.dli_fname, library)) return hook;
  }
  return real;
}
