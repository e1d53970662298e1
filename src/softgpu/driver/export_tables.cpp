// The soft GPU's answers to the hidden export tables: the tables themselves are built in
// src/cuda/export_tables.cpp (shared with the client stub); this file supplies the slots that
// need the soft GPU's own state (modules, primary contexts, context-local storage, devices).
#include <cstring>

#include "cuda/export_tables.h"
#include "softgpu/driver/api.h"
#include "softgpu/driver/module.h"

using namespace tf::softgpu;

namespace {

CUresult moduleFromFatbin(CUmodule* out, const void* wrapper) {
  TF_TRY(checkInitialized());
  Module* m = nullptr;
  TF_TRY(loadModule(wrapper, 0, false, &m));
  *out = reinterpret_cast<CUmodule>(m);
  return CUDA_SUCCESS;
}

CUresult primaryContext(CUcontext* pctx, CUdevice dev) {
  TF_TRY(checkInitialized());
  Device* d = deviceAt(dev);
  if (!d) return CUDA_ERROR_INVALID_DEVICE;
  *pctx = reinterpret_cast<CUcontext>(retainPrimary(d));
  return CUDA_SUCCESS;
}

CUresult clsPut(CUcontext ctx, void* key, void* value, void* dtor) {
  Context* c;
  TF_TRY(contextOrCurrent(ctx, &c));
  std::lock_guard<std::mutex> lock(c->mu);
  c->localStorage[key] = {value, dtor};
  return CUDA_SUCCESS;
}
CUresult clsDelete(CUcontext ctx, void* key) {
  Context* c;
  TF_TRY(contextOrCurrent(ctx, &c));
  std::lock_guard<std::mutex> lock(c->mu);
  c->localStorage.erase(key);
  return CUDA_SUCCESS;
}
CUresult clsGet(void** value, CUcontext ctx, void* key) {
  Context* c;
  TF_TRY(contextOrCurrent(ctx, &c));
  std::lock_guard<std::mutex> lock(c->mu);
  auto it = c->localStorage.find(key);
  if (it == c->localStorage.end()) return CUDA_ERROR_INVALID_HANDLE;
  *value = it->second.value;
  return CUDA_SUCCESS;
}

CUresult ctxCreate(CUcontext* pctx, unsigned flags, CUdevice dev) {
  return tf_sg_cuCtxCreate_v2(pctx, flags, dev);
}

void integrityDevices(std::vector<tf::cuda::IntegrityDevice>* out) {
  if (checkInitialized() != CUDA_SUCCESS) return;
  for (auto& d : driver().devices) {
    tf::cuda::IntegrityDevice id{};
    memcpy(id.uuid, d->config.uuid.data(), 16);
    id.pciDomain = 0;
    id.pciBus = d->config.pciBus;
    id.pciDevice = 0;
    out->push_back(id);
  }
}

struct Install {
  Install() {
    tf::cuda::ExportTableHooks h;
    h.moduleFromFatbin = &moduleFromFatbin;
    h.primaryContext = &primaryContext;
    h.clsPut = &clsPut;
    h.clsDelete = &clsDelete;
    h.clsGet = &clsGet;
    h.ctxCreate = &ctxCreate;
    h.driverVersion = kDriverVersion;
    h.integrityDevices = &integrityDevices;
    tf::cuda::installExportTableHooks(h);
  }
};

} // namespace

extern "C" CUresult tf_sg_cuGetExportTable(const void** table, const CUuuid* id) {
  static Install once;
  return tf::cuda::getExportTable(table, id);
}
