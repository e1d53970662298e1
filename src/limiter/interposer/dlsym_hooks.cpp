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

// dlsym itself. Runtimes call it from their own start-up: AddressSanitizer resolves the libc
// functions it intercepts with dlsym(RTLD_NEXT, ...) before its shadow memory exists, so the
// code on that path must not be instrumented, and RTLD_NEXT means "after the caller", which a
// wrapper that calls the real dlsym would turn into "after the limiter" (ASan then gets its own
// interceptor back as the real function). So the exported dlsym is a trampoline that keeps the
// caller's return address: a name that cannot be hooked jumps straight into the real dlsym, as
// if the caller had called it; only cu* and nvml* names take the hooked path below.
extern "C" {

// The real dlsym: libc's, the next definition after this library.
__attribute__((visibility("hidden"), no_sanitize("address", "undefined"))) void*
tfLimiterRealDlsymAddress() {
  static void* real; // constant-initialised: no guard, nothing instrumented
  void* fn = __atomic_load_n(&real, __ATOMIC_ACQUIRE);
  if (fn) return fn;
  fn = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
  if (!fn) fn = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
  __atomic_store_n(&real, fn, __ATOMIC_RELEASE);
  return fn;
}

__attribute__((visibility("hidden"))) void* tfLimiterHookedDlsym(void* handle, const char* symbol) {
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

// Where the trampoline goes for this name. Runs before any sanitizer is ready: no
// instrumentation, no calls into instrumented code.
__attribute__((visibility("hidden"), no_sanitize("address", "undefined"))) void*
tfLimiterDlsymTarget(const char* symbol) {
  bool hookable = symbol && ((symbol[0] == 'c' && symbol[1] == 'u') ||
                             (symbol[0] == 'n' && symbol[1] == 'v' && symbol[2] == 'm' &&
                              symbol[3] == 'l'));
  void* real = tfLimiterRealDlsymAddress();
  if (hookable || !real) return reinterpret_cast<void*>(&tfLimiterHookedDlsym);
  return real;
}

} // extern "C"

#if defined(__x86_64__)
// dlsym(handle, symbol): keep both arguments, ask tfLimiterDlsymTarget(symbol) where to go, and
// jump there with the caller's return address still on the stack.
asm(R"(
  .text
  .globl dlsym
  .type dlsym, @function
dlsym:
  .cfi_startproc
  endbr64
  pushq %rdi
  .cfi_adjust_cfa_offset 8
  pushq %rsi
  .cfi_adjust_cfa_offset 8
  subq $8, %rsp
  .cfi_adjust_cfa_offset 8
  movq %rsi, %rdi
  call tfLimiterDlsymTarget
  addq $8, %rsp
  .cfi_adjust_cfa_offset -8
  popq %rsi
  .cfi_adjust_cfa_offset -8
  popq %rdi
  .cfi_adjust_cfa_offset -8
  jmp *%rax
  .cfi_endproc
  .size dlsym, .-dlsym
)");
#else
// Elsewhere a plain wrapper: RTLD_NEXT lookups through it resolve after the limiter, and a
// sanitizer's start-up must not run with the limiter preloaded.
TF_EXPORT void* dlsym(void* handle, const char* symbol) {
  return tfLimiterHookedDlsym(handle, symbol);
}
#endif
