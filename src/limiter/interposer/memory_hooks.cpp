// VRAM: every path that takes device memory is charged to the vGPU before it can succeed, and
// every free path credits it back. Past the VRAM limit, a vGPU with a host allowance is served
// managed (host-backed) memory instead of an error.
#include <mutex>
#include <type_traits>

#include "limiter/interposer/limiter.h"

using namespace tf::limiter;
using tf::cuda::FnId;

namespace {

// Runs `allocate` after charging `bytes` to the current device's vGPU quota; on failure of
// either, nothing stays charged. `spill` is tried when VRAM is full and the vGPU may use host
// memory.
template <typename H> uint64_t keyOf(H h) {
  if constexpr (std::is_pointer_v<H>) return reinterpret_cast<uint64_t>(h);
  else return static_cast<uint64_t>(h);
}

template <typename Alloc, typename Spill, typename H>
CUresult charged(uint64_t bytes, Alloc&& allocate, Spill&& spill, H* handleOut) {
  Limiter& l = Limiter::get();
  if (CUresult r = l.ready(); r != CUDA_SUCCESS) return r;
  CUdevice ordinal = -1;
  int rd = l.currentRegionDevice(&ordinal);
  if (rd < 0) return allocate(); // a device outside the vGPU: the driver's own rules
  Pool pool = Pool::Device;
  if (!l.region().reserve(l.slot(), rd, bytes, Pool::Device)) {
    if (l.region().limits(rd).hostAllowance == 0 ||
        !l.region().reserve(l.slot(), rd, bytes, Pool::Host))
      return CUDA_ERROR_OUT_OF_MEMORY;
    pool = Pool::Host;
  }
  CUresult r = pool == Pool::Device ? allocate() : spill();
  if (r != CUDA_SUCCESS) {
    l.region().release(l.slot(), rd, bytes, pool);
    return r;
  }
  l.track(keyOf(*handleOut), {rd, bytes, pool});
  return CUDA_SUCCESS;
}

CUresult credit(uint64_t handle, CUresult freed) {
  if (freed != CUDA_SUCCESS) return freed;
  Limiter& l = Limiter::get();
  Allocation a;
  if (l.untrack(handle, &a)) l.region().release(l.slot(), a.device, a.bytes, a.pool);
  return freed;
}

CUresult noSpill() { return CUDA_ERROR_OUT_OF_MEMORY; }

uint64_t arrayBytes(size_t w, size_t h, size_t d, CUarray_format f, unsigned channels) {
  size_t elem = 4;
  switch (f) {
  case CU_AD_FORMAT_UNSIGNED_INT8:
  case CU_AD_FORMAT_SIGNED_INT8: elem = 1; break;
  case CU_AD_FORMAT_UNSIGNED_INT16:
  case CU_AD_FORMAT_SIGNED_INT16:
  case CU_AD_FORMAT_HALF: elem = 2; break;
  default: elem = 4; break;
  }
  return static_cast<uint64_t>(std::max<size_t>(w, 1)) * std::max<size_t>(h, 1) *
         std::max<size_t>(d, 1) * elem * std::max(channels, 1u);
}

} // namespace

TF_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytes) {
  if (!dptr || bytes == 0) return TF_REAL(cuMemAlloc_v2)(dptr, bytes);
  return charged(
      bytes, [&] { return TF_REAL(cuMemAlloc_v2)(dptr, bytes); },
      [&] { return TF_REAL(cuMemAllocManaged)(dptr, bytes, CU_MEM_ATTACH_GLOBAL); }, dptr);
}
TF_LIMITER_HOOK(cuMemAlloc_v2);

TF_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr* dptr, size_t* pitch, size_t width,
                                      size_t height, unsigned int elementSize) {
  if (!dptr || !pitch || width == 0 || height == 0)
    return TF_REAL(cuMemAllocPitch_v2)(dptr, pitch, width, height, elementSize);
  // Charge the most the driver can hand out (rows padded to 512 bytes).
  const uint64_t bytes = (width + 511) / 512 * 512 * height;
  return charged(
      bytes, [&] { return TF_REAL(cuMemAllocPitch_v2)(dptr, pitch, width, height, elementSize); },
      noSpill, dptr);
}
TF_LIMITER_HOOK(cuMemAllocPitch_v2);

TF_EXPORT CUresult cuMemAllocManaged(CUdeviceptr* dptr, size_t bytes, unsigned int flags) {
  if (!dptr || bytes == 0) return TF_REAL(cuMemAllocManaged)(dptr, bytes, flags);
  return charged(
      bytes, [&] { return TF_REAL(cuMemAllocManaged)(dptr, bytes, flags); },
      [&] { return TF_REAL(cuMemAllocManaged)(dptr, bytes, flags); }, dptr);
}
TF_LIMITER_HOOK(cuMemAllocManaged);

TF_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr) { return credit(dptr, TF_REAL(cuMemFree_v2)(dptr)); }
TF_LIMITER_HOOK(cuMemFree_v2);

#define TF_ASYNC_ALLOC_HOOKS(allocSym, fromPoolSym, freeSym)                                      \
  TF_EXPORT CUresult allocSym(CUdeviceptr* dptr, size_t bytes, CUstream s) {                      \
    if (!dptr || bytes == 0) return TF_REAL(allocSym)(dptr, bytes, s);                            \
    return charged(bytes, [&] { return TF_REAL(allocSym)(dptr, bytes, s); }, noSpill, dptr);      \
  }                                                                                               \
  TF_LIMITER_HOOK(allocSym);                                                                      \
  TF_EXPORT CUresult fromPoolSym(CUdeviceptr* dptr, size_t bytes, CUmemoryPool pool, CUstream s) { \
    if (!dptr || bytes == 0) return TF_REAL(fromPoolSym)(dptr, bytes, pool, s);                   \
    return charged(bytes, [&] { return TF_REAL(fromPoolSym)(dptr, bytes, pool, s); }, noSpill,    \
                   dptr);                                                                         \
  }                                                                                               \
  TF_LIMITER_HOOK(fromPoolSym);                                                                   \
  TF_EXPORT CUresult freeSym(CUdeviceptr dptr, CUstream s) {                                      \
    return credit(dptr, TF_REAL(freeSym)(dptr, s));                                               \
  }                                                                                               \
  TF_LIMITER_HOOK(freeSym)

TF_ASYNC_ALLOC_HOOKS(cuMemAllocAsync, cuMemAllocFromPoolAsync, cuMemFreeAsync);
TF_ASYNC_ALLOC_HOOKS(cuMemAllocAsync_ptsz, cuMemAllocFromPoolAsync_ptsz, cuMemFreeAsync_ptsz);

TF_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size,
                               const CUmemAllocationProp* prop, unsigned long long flags) {
  if (!handle || !prop || size == 0) return TF_REAL(cuMemCreate)(handle, size, prop, flags);
  Limiter& l = Limiter::get();
  if (CUresult r = l.ready(); r != CUDA_SUCCESS) return r;
  int rd = prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE ? l.regionDeviceOf(prop->location.id) : -1;
  if (rd < 0) return TF_REAL(cuMemCreate)(handle, size, prop, flags);
  if (!l.region().reserve(l.slot(), rd, size, Pool::Device)) return CUDA_ERROR_OUT_OF_MEMORY;
  CUresult r = TF_REAL(cuMemCreate)(handle, size, prop, flags);
  if (r != CUDA_SUCCESS) {
    l.region().release(l.slot(), rd, size, Pool::Device);
    return r;
  }
  l.track(*handle, {rd, size, Pool::Device});
  return CUDA_SUCCESS;
}
TF_LIMITER_HOOK(cuMemCreate);

TF_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
  return credit(handle, TF_REAL(cuMemRelease)(handle));
}
TF_LIMITER_HOOK(cuMemRelease);

TF_EXPORT CUresult cuArrayCreate_v2(CUarray* arr, const CUDA_ARRAY_DESCRIPTOR* d) {
  if (!arr || !d) return TF_REAL(cuArrayCreate_v2)(arr, d);
  uint64_t bytes = arrayBytes(d->Width, d->Height, 1, d->Format, d->NumChannels);
  return charged(bytes, [&] { return TF_REAL(cuArrayCreate_v2)(arr, d); }, noSpill,
                 arr);
}
TF_LIMITER_HOOK(cuArrayCreate_v2);

TF_EXPORT CUresult cuArray3DCreate_v2(CUarray* arr, const CUDA_ARRAY3D_DESCRIPTOR* d) {
  if (!arr || !d) return TF_REAL(cuArray3DCreate_v2)(arr, d);
  uint64_t bytes = arrayBytes(d->Width, d->Height, d->Depth, d->Format, d->NumChannels);
  return charged(bytes, [&] { return TF_REAL(cuArray3DCreate_v2)(arr, d); }, noSpill,
                 arr);
}
TF_LIMITER_HOOK(cuArray3DCreate_v2);

TF_EXPORT CUresult cuArrayDestroy(CUarray arr) {
  return credit(reinterpret_cast<uint64_t>(arr), TF_REAL(cuArrayDestroy)(arr));
}
TF_LIMITER_HOOK(cuArrayDestroy);

TF_EXPORT CUresult cuMipmappedArrayCreate(CUmipmappedArray* arr, const CUDA_ARRAY3D_DESCRIPTOR* d,
                                          unsigned int levels) {
  if (!arr || !d) return TF_REAL(cuMipmappedArrayCreate)(arr, d, levels);
  // A full mip chain is at most 4/3 of the base level.
  uint64_t bytes = arrayBytes(d->Width, d->Height, d->Depth, d->Format, d->NumChannels) * 4 / 3;
  return charged(bytes, [&] { return TF_REAL(cuMipmappedArrayCreate)(arr, d, levels); }, noSpill,
                 arr);
}
TF_LIMITER_HOOK(cuMipmappedArrayCreate);

TF_EXPORT CUresult cuMipmappedArrayDestroy(CUmipmappedArray arr) {
  return credit(reinterpret_cast<uint64_t>(arr), TF_REAL(cuMipmappedArrayDestroy)(arr));
}
TF_LIMITER_HOOK(cuMipmappedArrayDestroy);

// ---- What the application is told ---------------------------------------------------------

TF_EXPORT CUresult cuMemGetInfo_v2(size_t* freeBytes, size_t* total) {
  Limiter& l = Limiter::get();
  if (CUresult r = l.ready(); r != CUDA_SUCCESS) return r;
  CUresult r = TF_REAL(cuMemGetInfo_v2)(freeBytes, total);
  if (r != CUDA_SUCCESS) return r;
  int rd = l.currentRegionDevice();
  if (rd < 0) return r;
  const uint64_t limit = l.region().vramLimit(rd);
  const uint64_t used = l.region().used(rd, Pool::Device);
  // The vGPU's view, never more than the device really has free.
  *total = limit;
  *freeBytes = std::min<uint64_t>(*freeBytes, used >= limit ? 0 : limit - used);
  return r;
}
TF_LIMITER_HOOK(cuMemGetInfo_v2);

TF_EXPORT CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev) {
  Limiter& l = Limiter::get();
  if (CUresult r = l.ready(); r != CUDA_SUCCESS) return r;
  CUresult r = TF_REAL(cuDeviceTotalMem_v2)(bytes, dev);
  if (r != CUDA_SUCCESS) return r;
  int rd = l.regionDeviceOf(dev);
  if (rd >= 0) *bytes = std::min<uint64_t>(*bytes, l.region().vramLimit(rd));
  return r;
}
TF_LIMITER_HOOK(cuDeviceTotalMem_v2);

TF_EXPORT CUresult cuInit(unsigned int flags) {
  static std::once_flag visibleOnce;  // the driver reads CUDA_VISIBLE_DEVICES at its first cuInit
  std::call_once(visibleOnce, [] { Limiter::get().restrictVisibleDevices(); });
  CUresult r = TF_REAL(cuInit)(flags);
  if (r != CUDA_SUCCESS) return r;
  return Limiter::get().ready(); // a bad vGPU configuration stops the program here, loudly
}
TF_LIMITER_HOOK(cuInit);
