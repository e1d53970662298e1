// Modules, libraries, functions and kernels on the worker. Images are cached by hash across
// sessions (the client sends the bytes only when the worker lacks them).
#include <memory>
#include <string>

#include "remoting/worker/calls.h"

namespace tf::remoting {

namespace {

CUresult loadImage(Session& s, CallIn& in, std::shared_ptr<const std::vector<uint8_t>>* img) {
  NEED(2);
  uint64_t hash = A(0), size = A(1);
  if (in.bulkLen) {
    if (in.bulkLen != size || size > kMaxImage) return CUDA_ERROR_INVALID_VALUE;
    auto bytes = std::make_shared<std::vector<uint8_t>>(size + 1, 0); // NUL after PTX text
    if (!s.readBulk(bytes->data(), size).isOk()) return CUDA_ERROR_INVALID_VALUE;
    if (fnv1a64(bytes->data(), size) != hash) return CUDA_ERROR_INVALID_IMAGE;
    s.shared().addImage(hash, bytes);
    s.keepImage(hash, bytes);  // a migration takes it along
    *img = std::move(bytes);
    return CUDA_SUCCESS;
  }
  *img = s.keptImage(hash);
  if (!*img) *img = s.shared().findImage(hash);
  if (*img) s.keepImage(hash, *img);
  return *img ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND; // the client then sends the bytes
}

std::string nameArg(const CallIn& in) {
  std::string n(in.a.blob);
  return n.find('\0') == std::string::npos ? n : std::string();
}

} // namespace

// ---- modules and libraries ---------------------------------------------------------------
TF_CALL(cuModuleLoadData) {
  std::shared_ptr<const std::vector<uint8_t>> img;
  CUresult r = loadImage(s, in, &img);
  if (r != CUDA_SUCCESS) return r;
  DRV(cuModuleLoadData);
  CUmodule m = nullptr;
  if (!s.placements().empty()) // a migrated client's module: its globals where they were
    r = s.d().moduleLoadPlaced()
            ? s.d().moduleLoadPlaced()(&m, img->data(), s.placements().data(), static_cast<unsigned>(s.placements().size()))
            : CUDA_ERROR_NOT_SUPPORTED;
  else
    r = f(&m, img->data());
  putNew(s, out, r, K::Module, m);
  return r;
}
TF_CALL(cuLibraryLoadData) {
  std::shared_ptr<const std::vector<uint8_t>> img;
  CUresult r = loadImage(s, in, &img);
  if (r != CUDA_SUCCESS) return r;
  DRV(cuLibraryLoadData);
  CUlibrary l = nullptr;
  if (!s.placements().empty())
    r = s.d().libraryLoadPlaced()
            ? s.d().libraryLoadPlaced()(&l, img->data(), s.placements().data(), static_cast<unsigned>(s.placements().size()))
            : CUDA_ERROR_NOT_SUPPORTED;
  else
    r = f(&l, img->data(), nullptr, nullptr, 0, nullptr, nullptr, 0);
  putNew(s, out, r, K::Library, l);
  return r;
}
TF_CALL(cuModuleUnload) {
  NEED(1);
  OWN(Module, A(0));
  DRV(cuModuleUnload);
  CUresult r = f(H(CUmodule)(A(0)));
  if (r == CUDA_SUCCESS) {
    s.forget(K::Module, A(0));
    s.dropGlobalsOf(A(0));
    s.layouts().clear();
  }
  return r;
}
TF_CALL(cuLibraryUnload) {
  NEED(1);
  OWN(Library, A(0));
  DRV(cuLibraryUnload);
  CUresult r = f(H(CUlibrary)(A(0)));
  if (r == CUDA_SUCCESS) {
    s.forget(K::Library, A(0));
    s.dropGlobalsOf(A(0));
    s.layouts().clear();
  }
  return r;
}
TF_CALL(cuLibraryGetKernel) {
  NEED(1);
  OWN(Library, A(0));
  DRV(cuLibraryGetKernel);
  CUkernel k = nullptr;
  CUresult r = f(&k, H(CUlibrary)(A(0)), nameArg(in).c_str());
  putNew(s, out, r, K::Kernel, k);
  return r;
}
TF_CALL(cuModuleGetFunction) {
  NEED(1);
  OWN(Module, A(0));
  DRV(cuModuleGetFunction);
  CUfunction fn = nullptr;
  CUresult r = f(&fn, H(CUmodule)(A(0)), nameArg(in).c_str());
  putNew(s, out, r, K::Function, fn);
  return r;
}
TF_CALL(cuModuleGetGlobal_v2) {
  NEED(1);
  OWN(Module, A(0));
  DRV(cuModuleGetGlobal_v2);
  CUdeviceptr p = 0;
  size_t size = 0;
  CUresult r = f(&p, &size, H(CUmodule)(A(0)), nameArg(in).c_str());
  if (r == CUDA_SUCCESS) s.addGlobal(A(0), p, size, nameArg(in));
  out.put(p);
  out.put(size);
  return r;
}
TF_CALL(cuLibraryGetGlobal) {
  NEED(1);
  OWN(Library, A(0));
  DRV(cuLibraryGetGlobal);
  CUdeviceptr p = 0;
  size_t size = 0;
  CUresult r = f(&p, &size, H(CUlibrary)(A(0)), nameArg(in).c_str());
  if (r == CUDA_SUCCESS) s.addGlobal(A(0), p, size, nameArg(in));
  out.put(p);
  out.put(size);
  return r;
}
TF_CALL(cuFuncSetAttribute) {
  NEED(3);
  OWN_FUNC(A(0));
  DRV(cuFuncSetAttribute);
  return f(H(CUfunction)(A(0)), static_cast<CUfunction_attribute>(A(1)), static_cast<int>(A(2)));
}
TF_CALL(cuKernelSetAttribute) {
  NEED(4);
  OWN(Kernel, A(2));
  DRV(cuKernelSetAttribute);
  return f(static_cast<CUfunction_attribute>(A(0)), static_cast<int>(A(1)), H(CUkernel)(A(2)),
           static_cast<CUdevice>(A(3)));
}

} // namespace tf::remoting
