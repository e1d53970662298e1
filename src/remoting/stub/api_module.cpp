// Modules, libraries, kernels and launches. Images are shipped once: the stub sends the
// content hash first and the bytes only when the worker does not hold them yet. Libraries are
// shipped on first use (a kernel or a global of theirs), as the driver's lazy loading
// translates them: cudart loads every fatbin a program and its libraries carry at start-up,
// most of which are never launched. A launch's parameters are packed using the kernel's
// parameter layout (fetched once per function) and posted without waiting, except the first
// launch of each function, which waits for the driver's answer (Client::launchedBefore).
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "cuda/fatbin.h"
#include "remoting/stub/api.h"

using namespace tf::remoting::stub;
using tf::remoting::ParamSlot;

namespace {

template <typename T> T readAt(const void* p, size_t off) {
  T v;
  std::memcpy(&v, static_cast<const char*>(p) + off, sizeof(T));
  return v;
}

// The first four bytes as a magic number, reading no further than a NUL among them: a short
// text image (even an empty one) ends there, and every magic we know has no zero byte.
uint32_t magicOf(const void* image) {
  const auto* b = static_cast<const unsigned char*>(image);
  for (int i = 0; i < 4; ++i)
    if (b[i] == 0) return 0;
  return readAt<uint32_t>(image, 0);
}

// The bytes of what cuModuleLoadData / cuLibraryLoadData / __cudaRegisterFatBinary received.
bool imageExtent(const void* image, const void** start, size_t* size) {
  if (!image) return false;
  uint32_t magic = magicOf(image);
  if (magic == tf::cuda::kFatbinWrapperMagic) {
    image = readAt<const void*>(image, 8);
    if (!image) return false;
    magic = magicOf(image);
  }
  *start = image;
  if (magic == tf::cuda::kFatbinMagic) {
    *size = readAt<uint16_t>(image, 6) + readAt<uint64_t>(image, 8);
  } else if (magic == 0x464c457f) { // ELF cubin
    uint64_t sh = readAt<uint64_t>(image, 0x28) + uint64_t(readAt<uint16_t>(image, 0x3A)) * readAt<uint16_t>(image, 0x3C);
    uint64_t ph = readAt<uint64_t>(image, 0x20) + uint64_t(readAt<uint16_t>(image, 0x36)) * readAt<uint16_t>(image, 0x38);
    *size = std::max(sh, ph);
  } else {
    *size = strlen(static_cast<const char*>(image)) + 1; // PTX text
  }
  return *size > 0 && *size <= tf::remoting::kMaxImage;
}

CUresult ship(FnId fn, const void* bytes, size_t size, uint64_t* handle) {
  TF_READY();
  Client& c = client();
  uint64_t hash = tf::remoting::fnv1a64(bytes, size);
  CUresult r = CUDA_ERROR_NOT_FOUND;
  // Large images: ask by hash first (another client may have shipped it already).
  if (c.imageKnown(hash) || size > (64u << 10)) r = c.call(fn, {hash, size}, handle, 1);
  if (r == CUDA_ERROR_NOT_FOUND) {
    iovec v{const_cast<void*>(bytes), size};
    r = c.call(fn, {hash, size}, handle, 1, nullptr, 0, &v, 1);
  }
  if (r == CUDA_SUCCESS) c.markImage(hash);
  return r;
}

CUresult load(FnId fn, const void* image, uint64_t* handle) {
  const void* start = nullptr;
  size_t size = 0;
  if (!imageExtent(image, &start, &size)) return CUDA_ERROR_INVALID_IMAGE;
  return ship(fn, start, size, handle);
}

CUresult loadFile(FnId fn, const char* path, uint64_t* handle) {
  if (!path) return CUDA_ERROR_INVALID_VALUE;
  std::ifstream f(path, std::ios::binary);
  if (!f) return CUDA_ERROR_FILE_NOT_FOUND;
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  bytes.push_back(0);
  if (bytes.size() > tf::remoting::kMaxImage) return CUDA_ERROR_INVALID_IMAGE;
  return ship(fn, bytes.data(), bytes.size(), handle);
}

CUresult byName(FnId fn, uint64_t owner, const char* name, uint64_t* out, uint32_t nOut) {
  if (!name) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  return client().call(fn, {owner}, out, nOut, name, strlen(name));
}

// A CUlibrary is the stub's own object until first use ships it.
struct Library {
  std::mutex mu;
  const void* image = nullptr;  // the caller's bytes (preserved), or copy's
  size_t size = 0;
  std::vector<uint8_t> copy;
  uint64_t remote = 0;          // the worker's handle once shipped
  CUresult shipResult = CUDA_SUCCESS;
};
std::mutex librariesMu;
std::unordered_map<CUlibrary, std::shared_ptr<Library>>& libraries() {
  static auto* m = new std::unordered_map<CUlibrary, std::shared_ptr<Library>>(); // outlives exit
  return *m;
}
CUlibrary newLibrary(const void* image, size_t size, bool preserved) {
  auto l = std::make_shared<Library>();
  if (preserved) {
    l->image = image;
  } else {
    l->copy.assign(static_cast<const uint8_t*>(image), static_cast<const uint8_t*>(image) + size);
    l->image = l->copy.data();
  }
  l->size = size;
  CUlibrary handle = reinterpret_cast<CUlibrary>(l.get());
  std::lock_guard<std::mutex> lock(librariesMu);
  libraries()[handle] = std::move(l);
  return handle;
}
std::shared_ptr<Library> findLibrary(CUlibrary lib) {
  std::lock_guard<std::mutex> lock(librariesMu);
  auto it = libraries().find(lib);
  return it == libraries().end() ? nullptr : it->second;
}
std::shared_ptr<Library> takeLibrary(CUlibrary lib) {
  std::lock_guard<std::mutex> lock(librariesMu);
  auto it = libraries().find(lib);
  if (it == libraries().end()) return nullptr;
  auto l = std::move(it->second);
  libraries().erase(it);
  return l;
}
// The worker's handle of a library, shipping it on first use (once; its error sticks).
CUresult shippedLibrary(CUlibrary lib, uint64_t* remote) {
  TF_READY();
  std::shared_ptr<Library> l = findLibrary(lib);
  if (!l) return CUDA_ERROR_INVALID_HANDLE;
  std::lock_guard<std::mutex> lock(l->mu);
  if (!l->remote && l->shipResult == CUDA_SUCCESS) {
    l->shipResult = ship(FnId::cuLibraryLoadData, l->image, l->size, &l->remote);
    if (l->shipResult == CUDA_SUCCESS) l->copy = {}; // the worker holds it now
  }
  *remote = l->remote;
  return l->shipResult;
}

// A kernel handed a pointer into pinned memory (unified addressing: the host pointer is the
// device pointer) reaches it on the worker: mirror that allocation there first. Every aligned
// word is looked at, so pointers inside by-value structs count too.
CUresult mirrorPinnedArguments(const std::vector<uint8_t>& packed) {
  if (!client().anyUnmirroredHost()) return CUDA_SUCCESS;
  for (size_t at = 0; at + sizeof(uint64_t) <= packed.size(); at += sizeof(uint64_t)) {
    uint64_t v = 0;
    std::memcpy(&v, packed.data() + at, sizeof v);
    if (v < 4096 || !client().inUnmirroredHost(v)) continue;
    CUresult r = client().mirrorHost(h<const void*>(v));
    if (r != CUDA_SUCCESS) return r;
  }
  return CUDA_SUCCESS;
}

} // namespace

namespace tf::remoting::stub {

CUresult packLaunch(CUfunction f, void** params, void** extra, const CUlaunchAttribute* attrs,
                    unsigned nAttrs, Writer& w) {
  Client::Layout layout;
  CUresult r = client().paramLayout(f, &layout);
  if (r != CUDA_SUCCESS) return r;
  thread_local std::vector<uint8_t> packed;
  size_t total = 0;
  for (auto& p : *layout) total = std::max<size_t>(total, size_t(p.offset) + p.size);
  packed.assign(total, 0);
  if (params) {
    for (size_t i = 0; i < layout->size(); ++i)
      if (params[i]) std::memcpy(packed.data() + (*layout)[i].offset, params[i], (*layout)[i].size);
  } else if (extra) {
    const void* buffer = nullptr;
    size_t bufferSize = 0;
    for (size_t i = 0; extra[i] != CU_LAUNCH_PARAM_END && i < 16; i += 2) {
      if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER) buffer = extra[i + 1];
      if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE) bufferSize = *static_cast<size_t*>(extra[i + 1]);
    }
    if (!buffer && total) return CUDA_ERROR_INVALID_VALUE;
    std::memcpy(packed.data(), buffer, std::min(total, bufferSize));
  } else if (total) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  r = mirrorPinnedArguments(packed);
  if (r != CUDA_SUCCESS) return r;
  w.clear();
  encodeLaunch(w, layout->data(), static_cast<uint32_t>(layout->size()), packed.data(),
               packed.size(), attrs, nAttrs, sizeof(CUlaunchAttribute));
  return CUDA_SUCCESS;
}

} // namespace tf::remoting::stub

namespace {

bool isCooperative(FnId fn, const CUlaunchAttribute* attrs, unsigned nAttrs) {
  if (fn == FnId::cuLaunchCooperativeKernel || fn == FnId::cuLaunchCooperativeKernel_ptsz) return true;
  for (unsigned i = 0; attrs && i < nAttrs; ++i)
    if (attrs[i].id == CU_LAUNCH_ATTRIBUTE_COOPERATIVE && attrs[i].value.cooperative) return true;
  return false;
}

CUresult launch(FnId fn, CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                unsigned by, unsigned bz, unsigned smem, CUstream s, void** params, void** extra,
                const CUlaunchAttribute* attrs, unsigned nAttrs) {
  TF_READY();
  // Launch configuration is checked here, as the driver does before queueing: a posted launch
  // could only report it later.
  CUdevice dev = 0;
  if (!client().contextDevice(currentContext(), &dev)) return CUDA_ERROR_INVALID_CONTEXT;
  const tf::remoting::DeviceInfo* d = client().device(dev);
  const int32_t* a = d->attrs;
  if (!gx || !gy || !gz || !bx || !by || !bz) return CUDA_ERROR_INVALID_VALUE;
  if (!client().streamOk(s)) return CUDA_ERROR_INVALID_HANDLE;
  perThreadCall(fn, s);
  if (uint64_t(bx) * by * bz > uint64_t(a[CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK]) ||
      bx > unsigned(a[CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X]) ||
      by > unsigned(a[CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y]) ||
      bz > unsigned(a[CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z]) ||
      gx > unsigned(a[CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X]) ||
      gy > unsigned(a[CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y]) ||
      gz > unsigned(a[CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z]) ||
      smem > unsigned(a[CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN]))
    return CUDA_ERROR_INVALID_VALUE;
  if (isCooperative(fn, attrs, nAttrs)) {
    // Every block resident at once, or the driver refuses the launch itself (not a later sync).
    int perSm = 0;
    CUresult r = client().residentBlocksPerSm(f, bx * by * bz, smem, &perSm);
    if (r != CUDA_SUCCESS) return r;
    if (uint64_t(gx) * gy * gz > uint64_t(perSm) * uint64_t(a[CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT]))
      return CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE;
  }
  thread_local tf::remoting::Writer w;
  CUresult r = packLaunch(f, params, extra, attrs, nAttrs, w);
  if (r != CUDA_SUCCESS) return r;
  if (client().launchedBefore(f))
    return client().post(fn, {u(f), gx, gy, gz, bx, by, bz, smem, u(s)}, w.data(), w.size());
  r = client().call(fn, {u(f), gx, gy, gz, bx, by, bz, smem, u(s)}, nullptr, 0, w.data(), w.size());
  if (r == CUDA_SUCCESS) client().markLaunched(f);
  return r;
}

} // namespace

namespace tf::remoting::stub {
CUresult moduleFromWrapper(CUmodule* out, const void* wrapper) {
  uint64_t m = 0;
  CUresult r = load(FnId::cuModuleLoadData, wrapper, &m);
  *out = h<CUmodule>(m);
  return r;
}
} // namespace tf::remoting::stub

extern "C" {

CUresult tf_rs_cuModuleLoadData(CUmodule* m, const void* image) {
  if (!m) return CUDA_ERROR_INVALID_VALUE;
  uint64_t out = 0;
  CUresult r = load(FnId::cuModuleLoadData, image, &out);
  *m = h<CUmodule>(out);
  return r;
}
CUresult tf_rs_cuModuleLoadDataEx(CUmodule* m, const void* image, unsigned, CUjit_option*, void**) {
  return tf_rs_cuModuleLoadData(m, image);
}
CUresult tf_rs_cuModuleLoadFatBinary(CUmodule* m, const void* image) { return tf_rs_cuModuleLoadData(m, image); }
CUresult tf_rs_cuModuleLoad(CUmodule* m, const char* path) {
  if (!m) return CUDA_ERROR_INVALID_VALUE;
  uint64_t out = 0;
  CUresult r = loadFile(FnId::cuModuleLoadData, path, &out);
  *m = h<CUmodule>(out);
  return r;
}
CUresult tf_rs_cuModuleUnload(CUmodule m) {
  TF_READY();
  CUresult r = client().call(FnId::cuModuleUnload, {u(m)});
  if (r == CUDA_SUCCESS) client().forgetLayouts();
  return r;
}

CUresult tf_rs_cuLibraryLoadData(CUlibrary* lib, const void* code, CUjit_option*, void**, unsigned,
                                 CUlibraryOption* opts, void** values, unsigned nOpts) {
  if (!lib) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  const void* start = nullptr;
  size_t size = 0;
  if (!imageExtent(code, &start, &size)) return CUDA_ERROR_INVALID_IMAGE;
  // cudart promises its fatbins stay put (CU_LIBRARY_BINARY_IS_PRESERVED, the value held in
  // the option's slot as JIT options are); anything else is copied, since the caller may free
  // it once this returns.
  bool preserved = false;
  for (unsigned i = 0; opts && values && i < nOpts; ++i)
    if (opts[i] == CU_LIBRARY_BINARY_IS_PRESERVED) preserved = values[i] != nullptr;
  *lib = newLibrary(start, size, preserved);
  return CUDA_SUCCESS;
}
CUresult tf_rs_cuLibraryLoadFromFile(CUlibrary* lib, const char* path, CUjit_option*, void**,
                                     unsigned, CUlibraryOption*, void**, unsigned) {
  if (!lib || !path) return CUDA_ERROR_INVALID_VALUE;
  TF_READY();
  std::ifstream f(path, std::ios::binary);
  if (!f) return CUDA_ERROR_FILE_NOT_FOUND;
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  bytes.push_back(0);
  if (bytes.size() > tf::remoting::kMaxImage) return CUDA_ERROR_INVALID_IMAGE;
  *lib = newLibrary(bytes.data(), bytes.size(), false);
  return CUDA_SUCCESS;
}
CUresult tf_rs_cuLibraryUnload(CUlibrary lib) {
  TF_READY();
  std::shared_ptr<Library> l = takeLibrary(lib);
  if (!l) return CUDA_ERROR_INVALID_HANDLE;
  std::lock_guard<std::mutex> lock(l->mu);
  if (!l->remote) return CUDA_SUCCESS; // never used: the worker never saw it
  WithoutContext noContext; // a library belongs to no context
  CUresult r = client().call(FnId::cuLibraryUnload, {l->remote});
  if (r == CUDA_SUCCESS) client().forgetLayouts();
  return r;
}

CUresult tf_rs_cuLibraryGetKernel(CUkernel* k, CUlibrary lib, const char* name) {
  if (!k) return CUDA_ERROR_INVALID_VALUE;
  uint64_t remote = 0;
  CUresult r = shippedLibrary(lib, &remote);
  if (r != CUDA_SUCCESS) return r;
  uint64_t out = 0;
  r = byName(FnId::cuLibraryGetKernel, remote, name, &out, 1);
  *k = h<CUkernel>(out);
  return r;
}
CUresult tf_rs_cuModuleGetFunction(CUfunction* f, CUmodule m, const char* name) {
  if (!f) return CUDA_ERROR_INVALID_VALUE;
  uint64_t out = 0;
  CUresult r = byName(FnId::cuModuleGetFunction, u(m), name, &out, 1);
  *f = h<CUfunction>(out);
  return r;
}

} // extern "C"

namespace {
CUresult global(FnId fn, CUdeviceptr* p, size_t* size, uint64_t owner, const char* name) {
  uint64_t out[2] = {};
  CUresult r = byName(fn, owner, name, out, 2);
  if (r == CUDA_SUCCESS) client().addDeviceAllocation(out[0], out[1], currentContext());
  if (p) *p = out[0];
  if (size) *size = out[1];
  return r;
}
} // namespace

extern "C" {
CUresult tf_rs_cuModuleGetGlobal_v2(CUdeviceptr* p, size_t* size, CUmodule m, const char* name) {
  return global(FnId::cuModuleGetGlobal_v2, p, size, u(m), name);
}
CUresult tf_rs_cuLibraryGetGlobal(CUdeviceptr* p, size_t* size, CUlibrary lib, const char* name) {
  uint64_t remote = 0;
  CUresult r = shippedLibrary(lib, &remote);
  if (r != CUDA_SUCCESS) return r;
  return global(FnId::cuLibraryGetGlobal, p, size, remote, name);
}

CUresult tf_rs_cuFuncSetAttribute(CUfunction f, CUfunction_attribute attr, int v) {
  TF_READY();
  CUresult r =
      client().call(FnId::cuFuncSetAttribute, {u(f), static_cast<uint64_t>(attr), static_cast<uint64_t>(v)});
  client().forgetOccupancy(); // after the change, so no launch caches the old bound
  return r;
}
CUresult tf_rs_cuKernelSetAttribute(CUfunction_attribute attr, int v, CUkernel k, CUdevice dev) {
  TF_READY();
  CUresult r = client().call(FnId::cuKernelSetAttribute, {static_cast<uint64_t>(attr), static_cast<uint64_t>(v),
                                                           u(k), static_cast<uint64_t>(dev)});
  client().forgetOccupancy();
  return r;
}
CUresult tf_rs_cuOccupancyMaxActiveBlocksPerMultiprocessor(int* n, CUfunction f, int bs, size_t smem) {
  return tf_rs_cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(n, f, bs, smem, 0);
}

CUresult tf_rs_cuFuncGetParamInfo(CUfunction f, size_t index, size_t* offset, size_t* size) {
  TF_READY();
  Client::Layout layout;
  CUresult r = client().paramLayout(f, &layout);
  if (r != CUDA_SUCCESS) return r;
  if (index >= layout->size()) return CUDA_ERROR_INVALID_VALUE;
  if (offset) *offset = (*layout)[index].offset;
  if (size) *size = (*layout)[index].size;
  return CUDA_SUCCESS;
}
CUresult tf_rs_cuKernelGetParamInfo(CUkernel k, size_t index, size_t* offset, size_t* size) {
  return tf_rs_cuFuncGetParamInfo(h<CUfunction>(u(k)), index, offset, size);
}

CUresult tf_rs_cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                              unsigned by, unsigned bz, unsigned smem, CUstream s, void** params,
                              void** extra) {
  return launch(FnId::cuLaunchKernel, f, gx, gy, gz, bx, by, bz, smem, s, params, extra, nullptr, 0);
}
CUresult tf_rs_cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                   unsigned by, unsigned bz, unsigned smem, CUstream s,
                                   void** params, void** extra) {
  return launch(FnId::cuLaunchKernel_ptsz, f, gx, gy, gz, bx, by, bz, smem, s, params, extra, nullptr, 0);
}
CUresult tf_rs_cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                         unsigned bx, unsigned by, unsigned bz, unsigned smem,
                                         CUstream s, void** params) {
  return launch(FnId::cuLaunchCooperativeKernel, f, gx, gy, gz, bx, by, bz, smem, s, params, nullptr, nullptr, 0);
}
CUresult tf_rs_cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                                              unsigned bx, unsigned by, unsigned bz, unsigned smem,
                                              CUstream s, void** params) {
  return launch(FnId::cuLaunchCooperativeKernel_ptsz, f, gx, gy, gz, bx, by, bz, smem, s, params, nullptr, nullptr, 0);
}
} // extern "C"

namespace {
CUresult launchEx(FnId fn, const CUlaunchConfig* c, CUfunction f, void** params, void** extra) {
  if (!c) return CUDA_ERROR_INVALID_VALUE;
  if (c->numAttrs > tf::remoting::kMaxLaunchAttrs) return CUDA_ERROR_INVALID_VALUE;
  return launch(fn, f, c->gridDimX, c->gridDimY, c->gridDimZ, c->blockDimX, c->blockDimY,
                c->blockDimZ, c->sharedMemBytes, c->hStream, params, extra, c->attrs, c->numAttrs);
}
} // namespace

extern "C" {
CUresult tf_rs_cuLaunchKernelEx(const CUlaunchConfig* c, CUfunction f, void** params, void** extra) {
  return launchEx(FnId::cuLaunchKernelEx, c, f, params, extra);
}
CUresult tf_rs_cuLaunchKernelEx_ptsz(const CUlaunchConfig* c, CUfunction f, void** params, void** extra) {
  return launchEx(FnId::cuLaunchKernelEx_ptsz, c, f, params, extra);
}

} // extern "C"
