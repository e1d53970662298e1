// Modules, libraries, kernels and their attributes.
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "softgpu/driver/module.h"

using namespace tf::softgpu;

namespace {

CUresult moduleOf(const void* h, Module** out) {
  TF_TRY(checkInitialized());
  Module* m = registryOf<Module>().find(h);
  if (!m) return CUDA_ERROR_INVALID_HANDLE;
  *out = m;
  return CUDA_SUCCESS;
}

CUresult functionOf(const void* h, Function** out) {
  TF_TRY(checkInitialized());
  Function* f = registryOf<Function>().find(h);
  if (!f) return CUDA_ERROR_INVALID_HANDLE;
  *out = f;
  return CUDA_SUCCESS;
}

CUresult load(const void* image, size_t size, bool library, void** out) {
  if (!out || !image) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(checkInitialized());
  if (!library) {
    Context* c;
    TF_TRY(requireContext(&c));
  }
  Module* m;
  TF_TRY(loadModule(image, size, library, &m));
  *out = m;
  return CUDA_SUCCESS;
}

CUresult loadFile(const char* path, bool library, void** out) {
  if (!path || !out) return CUDA_ERROR_INVALID_VALUE;
  std::ifstream in(path, std::ios::binary);
  if (!in) return CUDA_ERROR_FILE_NOT_FOUND;
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  bytes.push_back('\0'); // PTX text files need their terminator
  return load(bytes.data(), bytes.size(), library, out);
}

CUresult findKernel(Module* m, const char* name, Function** out) {
  if (!name) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(materialize(m)); // a library with no PTX: CUDA_ERROR_NO_BINARY_FOR_GPU
  int k = m->loaded->findKernel(name);
  if (k < 0) return CUDA_ERROR_NOT_FOUND;
  *out = m->functions[k].get();
  return CUDA_SUCCESS;
}

CUresult global(Module* m, const char* name, CUdeviceptr* dptr, size_t* bytes) {
  if (!name) return CUDA_ERROR_INVALID_VALUE;
  TF_TRY(materialize(m));
  auto it = m->globals.find(name);
  if (it == m->globals.end()) return CUDA_ERROR_NOT_FOUND;
  if (dptr) *dptr = it->second.address;
  if (bytes) *bytes = it->second.size;
  return CUDA_SUCCESS;
}

CUresult functionAttribute(Function* f, CUfunction_attribute attr, int* v) {
  const auto& k = *f->info;
  const DeviceModel& model = *deviceAt(f->module->device)->config.model;
  switch (attr) {
  case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *v = static_cast<int>(k.maxThreadsPerBlock); break;
  case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES: *v = static_cast<int>(k.staticSharedBytes); break;
  case CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES: *v = 0; break;
  case CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES: *v = static_cast<int>(k.localBytes); break;
  case CU_FUNC_ATTRIBUTE_NUM_REGS: *v = registersPerThread(f); break;
  case CU_FUNC_ATTRIBUTE_PTX_VERSION:
  case CU_FUNC_ATTRIBUTE_BINARY_VERSION: *v = model.ccMajor * 10 + model.ccMinor; break;
  case CU_FUNC_ATTRIBUTE_CACHE_MODE_CA: *v = 0; break;
  case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: *v = f->maxDynamicShared; break;
  case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT: *v = f->preferredCarveout; break;
  case CU_FUNC_ATTRIBUTE_CLUSTER_SIZE_MUST_BE_SET: *v = 0; break;
  case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH:
  case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT:
  case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH: *v = 0; break;
  case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED: *v = 0; break;
  case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE: *v = 0; break;
  default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

CUresult setFunctionAttribute(Function* f, CUfunction_attribute attr, int value) {
  const DeviceModel& model = *deviceAt(f->module->device)->config.model;
  switch (attr) {
  case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
    if (value < 0 || value + static_cast<int>(f->info->staticSharedBytes) > model.sharedPerBlockOptin)
      return CUDA_ERROR_INVALID_VALUE;
    f->maxDynamicShared = value;
    return CUDA_SUCCESS;
  case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
    if (value < -1 || value > 100) return CUDA_ERROR_INVALID_VALUE;
    f->preferredCarveout = value;
    return CUDA_SUCCESS;
  case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED:
  case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
  case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH:
  case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT:
  case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH: return CUDA_SUCCESS;
  default: return CUDA_ERROR_INVALID_VALUE;
  }
}

CUresult paramInfo(Function* f, size_t index, size_t* offset, size_t* size) {
  if (index >= f->info->params.size()) return CUDA_ERROR_INVALID_VALUE;
  if (offset) *offset = f->info->params[index].offset;
  if (size) *size = f->info->params[index].size;
  return CUDA_SUCCESS;
}

} // namespace

extern "C" {

CUresult tf_sg_cuModuleLoadData(CUmodule* module, const void* image) {
  return load(image, 0, false, reinterpret_cast<void**>(module));
}
CUresult tf_sg_cuModuleLoadDataEx(CUmodule* module, const void* image, unsigned int, CUjit_option*,
                                  void**) {
  return load(image, 0, false, reinterpret_cast<void**>(module));
}
CUresult tf_sg_cuModuleLoadFatBinary(CUmodule* module, const void* fatCubin) {
  return load(fatCubin, 0, false, reinterpret_cast<void**>(module));
}
CUresult tf_sg_cuModuleLoad(CUmodule* module, const char* fname) {
  return loadFile(fname, false, reinterpret_cast<void**>(module));
}
CUresult tf_sg_cuModuleUnload(CUmodule h) {
  Module* m;
  TF_TRY(moduleOf(h, &m));
  if (m->isLibrary) return CUDA_ERROR_INVALID_HANDLE;
  unloadModule(m);
  return CUDA_SUCCESS;
}
CUresult tf_sg_cuModuleGetFunction(CUfunction* hfunc, CUmodule h, const char* name) {
  if (!hfunc) return CUDA_ERROR_INVALID_VALUE;
  Module* m;
  TF_TRY(moduleOf(h, &m));
  Function* f;
  TF_TRY(findKernel(m, name, &f));
  *hfunc = reinterpret_cast<CUfunction>(f);
  return CUDA_SUCCESS;
}
CUresult tf_sg_cuModuleGetGlobal_v2(CUdeviceptr* dptr, size_t* bytes, CUmodule h, const char* name) {
  Module* m;
  TF_TRY(moduleOf(h, &m));
  return global(m, name, dptr, bytes);
}
CUresult tf_sg_cuModuleGetFunctionCount(unsigned int* count, CUmodule h) {
  if (!count) return CUDA_ERROR_INVALID_VALUE;
  Module* m;
  TF_TRY(moduleOf(h, &m));
  TF_TRY(materialize(m));
  *count = static_cast<unsigned>(m->functions.size());
  return CUDA_SUCCESS;
}
CUresult tf_sg_cuModuleEnumerateFunctions(CUfunction* fns, unsigned int n, CUmodule h) {
  if (!fns) return CUDA_ERROR_INVALID_VALUE;
  Module* m;
  TF_TRY(moduleOf(h, &m));
  TF_TRY(materialize(m));
  if (n < m->functions.size()) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 0; i < m->functions.size(); ++i)
    fns[i] = reinterpret_cast<CUfunction>(m->functions[i].get());
  return CUDA_SUCCESS;
}
CUresult tf_sg_cuModuleGetLoadingMode(CUmoduleLoadingMode* mode) {
  if (!mode) return CUDA_ERROR_INVALID_VALUE;
  *mode = CU_MODULE_EAGER_LOADING;
  return CUDA_SUCCESS;
}

CUresult tf_sg_cuLibraryLoadData(CUlibrary* library, const void* code, CUjit_option*, void**,
                                 unsigned int, CUlibraryOption*, void**, unsigned int) {
  return load(code, 0, true, reinterpret_cast<void**>(library));
}
CUresult tf_sg_cuLibraryLoadFromFile(CUlibrary* library, const char* fileName, CUjit_option*,
                                     void**, unsigned int, CUlibraryOption*, void**, unsigned int) {
  return loadFile(fileName, true, reinterpret_cast<void**>(library));
}
CUresult tf_sg_cuLibraryUnload(CUlibrary h) {
  Module* m;
  TF_TRY(moduleOf(h, &m));
  unloadModule(m);
  return CUDA_SUCCESS;
}
CUresult tf_sg_cuLibraryGetKernel(CUkernel* k, CUlibrary h, const char* name) {
  if (!k) return CUDA_ERROR_INVALID_VALUE;
  Module* m;
  TF_TRY(moduleOf(h, &m));
  Function* f;
  TF_TRY(findKernel(m, name, &f));
  *k = reinterpret_cast<CUkernel>(f);
  return CUDA_SUCCESS;
}
CUresult tf_sg_cuLibraryGetModule(CUmodule* mod, CUlibrary h) {
  if (!mod) return CUDA_ERROR_INVALID_VALUE;
  Module* m;
  TF_TRY(moduleOf(h, &m));
  *mod = reinterpret_cast<CUmodule>(m);
  return CUDA_SUCCESS;
}
CUresult tf_sg_cuLibraryGetGlobal(CUdeviceptr* dptr, size_t* bytes, CUlibrary h, const char* name) {
  Module* m;
  TF_TRY(moduleOf(h, &m));
  return global(m, name, dptr, bytes);
}
CUresult tf_sg_cuLibraryGetKernelCount(unsigned int* count, CUlibrary h) {
  return tf_sg_cuModuleGetFunctionCount(count, reinterpret_cast<CUmodule>(h));
}
CUresult tf_sg_cuLibraryEnumerateKernels(CUkernel* ks, unsigned int n, CUlibrary h) {
  return tf_sg_cuModuleEnumerateFunctions(reinterpret_cast<CUfunction*>(ks), n,
                                          reinterpret_cast<CUmodule>(h));
}
CUresult tf_sg_cuKernelGetFunction(CUfunction* pFunc, CUkernel k) {
  if (!pFunc) return CUDA_ERROR_INVALID_VALUE;
  Function* f;
  TF_TRY(functionOf(k, &f));
  Context* c;
  TF_TRY(requireContext(&c));
  *pFunc = reinterpret_cast<CUfunction>(f);
  return CUDA_SUCCESS;
}
CUresult tf_sg_cuKernelGetLibrary(CUlibrary* lib, CUkernel k) {
  if (!lib) return CUDA_ERROR_INVALID_VALUE;
  Function* f;
  TF_TRY(functionOf(k, &f));
  *lib = reinterpret_cast<CUlibrary>(f->module);
  return CUDA_SUCCESS;
}
CUresult tf_sg_cuKernelGetAttribute(int* pi, CUfunction_attribute attr, CUkernel k, CUdevice) {
  if (!pi) return CUDA_ERROR_INVALID_VALUE;
  Function* f;
  TF_TRY(functionOf(k, &f));
  return functionAttribute(f, attr, pi);
}
CUresult tf_sg_cuKernelSetAttribute(CUfunction_attribute attr, int value, CUkernel k, CUdevice) {
  Function* f;
  TF_TRY(functionOf(k, &f));
  return setFunctionAttribute(f, attr, value);
}
CUresult tf_sg_cuKernelGetName(const char** name, CUkernel k) {
  if (!name) return CUDA_ERROR_INVALID_VALUE;
  Function* f;
  TF_TRY(functionOf(k, &f));
  *name = f->info->name.c_str();
  return CUDA_SUCCESS;
}
CUresult tf_sg_cuKernelGetParamInfo(CUkernel k, size_t index, size_t* offset, size_t* size) {
  Function* f;
  TF_TRY(functionOf(k, &f));
  return paramInfo(f, index, offset, size);
}
CUresult tf_sg_cuKernelSetCacheConfig(CUkernel k, CUfunc_cache config, CUdevice) {
  Function* f;
  TF_TRY(functionOf(k, &f));
  if (config < CU_FUNC_CACHE_PREFER_NONE || config > CU_FUNC_CACHE_PREFER_EQUAL)
    return CUDA_ERROR_INVALID_VALUE;
  f->cacheConfig = config;
  return CUDA_SUCCESS;
}
CUresult tf_sg_cuFuncGetAttribute(int* pi, CUfunction_attribute attr, CUfunction h) {
  if (!pi) return CUDA_ERROR_INVALID_VALUE;
  Function* f;
  TF_TRY(functionOf(h, &f));
  return functionAttribute(f, attr, pi);
}
CUresult tf_sg_cuFuncSetAttribute(CUfunction h, CUfunction_attribute attr, int value) {
  Function* f;
  TF_TRY(functionOf(h, &f));
  return setFunctionAttribute(f, attr, value);
}
CUresult tf_sg_cuFuncGetParamInfo(CUfunction h, size_t index, size_t* offset, size_t* size) {
  Function* f;
  TF_TRY(functionOf(h, &f));
  return paramInfo(f, index, offset, size);
}
CUresult tf_sg_cuFuncGetName(const char** name, CUfunction h) {
  return tf_sg_cuKernelGetName(name, reinterpret_cast<CUkernel>(h));
}
CUresult tf_sg_cuFuncSetCacheConfig(CUfunction h, CUfunc_cache config) {
  return tf_sg_cuKernelSetCacheConfig(reinterpret_cast<CUkernel>(h), config, 0);
}
CUresult tf_sg_cuFuncGetModule(CUmodule* mod, CUfunction h) {
  if (!mod) return CUDA_ERROR_INVALID_VALUE;
  Function* f;
  TF_TRY(functionOf(h, &f));
  *mod = reinterpret_cast<CUmodule>(f->module);
  return CUDA_SUCCESS;
}
CUresult tf_sg_cuFuncIsLoaded(CUfunctionLoadingState* state, CUfunction h) {
  if (!state) return CUDA_ERROR_INVALID_VALUE;
  Function* f;
  TF_TRY(functionOf(h, &f));
  *state = CU_FUNCTION_LOADING_STATE_LOADED;
  return CUDA_SUCCESS;
}
CUresult tf_sg_cuFuncLoad(CUfunction h) {
  Function* f;
  return functionOf(h, &f);
}

CUresult tf_sg_cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int* n, CUfunction h,
                                                                    int blockSize, size_t smem,
                                                                    unsigned int) {
  if (!n) return CUDA_ERROR_INVALID_VALUE;
  Function* f;
  TF_TRY(functionOf(h, &f));
  *n = maxActiveBlocks(f, blockSize, smem);
  return CUDA_SUCCESS;
}
CUresult tf_sg_cuOccupancyMaxActiveBlocksPerMultiprocessor(int* n, CUfunction h, int blockSize,
                                                           size_t smem) {
  return tf_sg_cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(n, h, blockSize, smem, 0);
}
CUresult tf_sg_cuOccupancyMaxPotentialBlockSize(int* minGrid, int* blockSize, CUfunction h,
                                                CUoccupancyB2DSize toSmem, size_t smem,
                                                int limit) {
  if (!minGrid || !blockSize) return CUDA_ERROR_INVALID_VALUE;
  Function* f;
  TF_TRY(functionOf(h, &f));
  const DeviceModel& m = *deviceAt(f->module->device)->config.model;
  int cap = static_cast<int>(f->info->maxThreadsPerBlock);
  if (limit > 0) cap = std::min(cap, limit);
  int best = 32, bestOcc = -1;
  for (int b = 32; b <= cap; b += 32) {
    size_t s = toSmem ? toSmem(b) : smem;
    int occ = maxActiveBlocks(f, b, s) * b;
    if (occ >= bestOcc) {
      bestOcc = occ;
      best = b;
    }
  }
  *blockSize = best;
  *minGrid = maxActiveBlocks(f, best, toSmem ? toSmem(best) : smem) * m.smCount;
  return CUDA_SUCCESS;
}
CUresult tf_sg_cuOccupancyAvailableDynamicSMemPerBlock(size_t* out, CUfunction h, int numBlocks,
                                                       int blockSize) {
  if (!out || numBlocks <= 0 || blockSize <= 0) return CUDA_ERROR_INVALID_VALUE;
  Function* f;
  TF_TRY(functionOf(h, &f));
  const DeviceModel& m = *deviceAt(f->module->device)->config.model;
  size_t per = m.sharedPerSm / numBlocks;
  per = per > 1024 ? per - 1024 : 0;
  per = std::min<size_t>(per, m.sharedPerBlockOptin);
  *out = per > f->info->staticSharedBytes ? per - f->info->staticSharedBytes : 0;
  return CUDA_SUCCESS;
}

} // extern "C"
