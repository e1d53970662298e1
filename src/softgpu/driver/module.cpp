#include "softgpu/driver/module.h"

#include <algorithm>
#include <cstring>

#include "common/log.h"
#include "cuda/fatbin.h"
#include "softgpu/driver/api.h"

namespace tf::softgpu {

CUresult toCuResult(const Status& s) {
  switch (s.code()) {
  case Code::Ok: return CUDA_SUCCESS;
  case Code::InvalidArgument:
  case Code::OutOfRange: return CUDA_ERROR_INVALID_VALUE;
  case Code::NotFound: return CUDA_ERROR_NOT_FOUND;
  case Code::AlreadyExists: return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
  case Code::ResourceExhausted: return CUDA_ERROR_OUT_OF_MEMORY;
  case Code::FailedPrecondition: return CUDA_ERROR_ILLEGAL_STATE;
  case Code::Unimplemented: return CUDA_ERROR_NOT_SUPPORTED;
  case Code::Unavailable: return CUDA_ERROR_DEVICE_UNAVAILABLE;
  case Code::DataLoss: return CUDA_ERROR_INVALID_IMAGE;
  case Code::PermissionDenied: return CUDA_ERROR_NOT_PERMITTED;
  case Code::Internal: return CUDA_ERROR_UNKNOWN;
  }
  return CUDA_ERROR_UNKNOWN;
}

CUresult chargeMemory(Device* d, uint64_t bytes) {
  Status s = d->state->reserveMemory(d->slot, bytes);
  return s.isOk() ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

void creditMemory(Device* d, uint64_t bytes) { d->state->releaseMemory(d->slot, bytes); }

namespace {

// Where a global goes: at its placement if it has one, else wherever device memory goes.
Result<uint64_t> placeGlobal(const Device* dev, const cuda::GlobalVariable& g, uint64_t bytes,
                             const GlobalPlacements* placed) {
  auto at = placed ? placed->find(g.name) : GlobalPlacements::const_iterator{};
  if (placed && at != placed->end())
    return addressSpace().allocateAt(dev->ordinal, at->second, bytes, AllocKind::Device, nullptr,
                                     std::max<uint32_t>(g.align, 1));
  return addressSpace().allocate(dev->ordinal, bytes, AllocKind::Device, nullptr,
                                 std::max<uint32_t>(g.align, 256));
}

CUresult placementError(const Status& s) {
  switch (s.code()) {
  case Code::AlreadyExists: return CUDA_ERROR_ALREADY_MAPPED;
  case Code::ResourceExhausted: return CUDA_ERROR_OUT_OF_MEMORY;
  default: return CUDA_ERROR_INVALID_VALUE;
  }
}

// Parses and translates m->source, then places its globals on m's device (those `placed`
// names at their addresses) and lists its kernels. On failure the module keeps nothing.
CUresult translate(Module* m, const GlobalPlacements* placed) {
  Driver& drv = driver();
  Device* dev = deviceAt(m->device);
  if (!dev) return CUDA_ERROR_INVALID_CONTEXT;
  auto loaded = drv.executor->load(m->source);
  if (!loaded) {
    TF_LOG(Error, "module load: %s", loaded.status().toString().c_str());
    return loaded.status().code() == Code::Unimplemented ? CUDA_ERROR_NOT_SUPPORTED
                                                         : CUDA_ERROR_INVALID_PTX;
  }
  m->loaded = std::move(*loaded);
  m->source = {}; // the text is not needed any more
  // Globals live in device memory of the loading device, initialised from the image.
  auto dropGlobals = [&] {
    for (auto& [name, g] : m->globals) {
      Allocation a;
      if (addressSpace().release(g.address, AllocKind::Device, &a).isOk())
        creditMemory(dev, std::max<uint64_t>(g.size, 1));
    }
    m->globals.clear();
    m->loaded.reset();
  };
  // Placed globals first, so that no other global takes a placed one's address.
  std::vector<const cuda::GlobalVariable*> order;
  for (const auto& g : m->loaded->globals())
    if (placed && placed->count(g.name)) order.push_back(&g);
  if (placed && order.size() != placed->size()) {
    for (const auto& [name, address] : *placed)
      if (std::none_of(order.begin(), order.end(), [&](auto* g) { return g->name == name; }))
        TF_LOG(Error, "module load: cannot place global %s: the module has no such global",
               name.c_str());
    dropGlobals();
    return CUDA_ERROR_NOT_FOUND;
  }
  for (const auto& g : m->loaded->globals())
    if (!placed || !placed->count(g.name)) order.push_back(&g);
  for (const cuda::GlobalVariable* gp : order) {
    const cuda::GlobalVariable& g = *gp;
    uint64_t bytes = std::max<uint64_t>(g.size, 1);
    if (CUresult r = chargeMemory(dev, bytes); r != CUDA_SUCCESS) {
      dropGlobals();
      return r;
    }
    auto addr = placeGlobal(dev, g, bytes, placed);
    if (!addr) {
      const bool wasPlaced = placed && placed->count(g.name);
      if (wasPlaced)
        TF_LOG(Error, "module load: cannot place global %s: %s", g.name.c_str(),
               addr.status().message().c_str());
      creditMemory(dev, bytes);
      dropGlobals(); // `g` goes with the module's globals
      return wasPlaced ? placementError(addr.status()) : CUDA_ERROR_OUT_OF_MEMORY;
    }
    uint8_t* host = addressSpace().hostOf(*addr, bytes);
    if (!g.initializer.empty())
      memcpy(host, g.initializer.data(), std::min<uint64_t>(g.initializer.size(), bytes));
    m->globals[g.name] = {*addr, g.size};
    if (Status s = m->loaded->bindGlobal(g.name, *addr); !s) {
      TF_LOG(Error, "module load: %s", s.toString().c_str());
      dropGlobals();
      return CUDA_ERROR_INVALID_PTX;
    }
  }
  const auto& kernels = m->loaded->kernels();
  for (size_t i = 0; i < kernels.size(); ++i) {
    auto f = std::make_unique<Function>();
    f->module = m;
    f->kernel = static_cast<int>(i);
    f->info = &kernels[i];
    registryOf<Function>().add(f.get());
    m->functions.push_back(std::move(f));
  }
  return CUDA_SUCCESS;
}

} // namespace

CUresult materialize(Module* m, const GlobalPlacements* placed) {
  if (!m->pending.load(std::memory_order_acquire)) return m->loadResult;
  std::lock_guard<std::mutex> lock(m->loadMu);
  if (m->pending.load(std::memory_order_relaxed)) {
    TF_LOG(Debug, "library %s: translating %zu bytes of PTX on first use", m->name.c_str(),
           m->source.ptx.size());
    m->loadResult = translate(m, placed);
    m->pending.store(false, std::memory_order_release);
  }
  return m->loadResult;
}

CUresult loadModule(const void* image, size_t size, bool isLibrary, Module** out,
                    const GlobalPlacements* placed) {
  if (!image) return CUDA_ERROR_INVALID_VALUE;
  Driver& drv = driver();
  Context* ctx = currentContext();
  Device* dev = ctx ? ctx->device : drv.devices.front().get();
  auto parsed = cuda::readModuleImage(image, size);
  if (!parsed) {
    TF_LOG(Error, "module load: %s", parsed.status().toString().c_str());
    return CUDA_ERROR_INVALID_IMAGE;
  }
  const DeviceModel& model = *dev->config.model;
  const cuda::FatbinEntry* ptx =
      cuda::choosePtx(parsed->entries, static_cast<uint32_t>(model.ccMajor * 10 + model.ccMinor));
  if (!ptx && (!isLibrary || placed)) {
    TF_LOG(Error, "module load: the image has no PTX (only cubins); the soft GPU runs PTX. "
                  "Build with -gencode arch=compute_XX,code=compute_XX or default -arch.");
    return CUDA_ERROR_NO_BINARY_FOR_GPU;
  }
  auto m = std::make_unique<Module>();
  m->isLibrary = isLibrary;
  m->device = dev->ordinal;
  if (!ptx) {
    // A library loads anyway, and what it lacks shows when one of its kernels is asked for.
    TF_LOG(Info, "library load: an image with no PTX (only cubins): its kernels cannot run on "
                 "the soft GPU");
    m->name = "image without PTX";
    m->loadResult = CUDA_ERROR_NO_BINARY_FOR_GPU;
  } else {
    m->source.ptx.assign(ptx->text());
    m->source.name = ptx->name.empty() ? "ptx for sm_" + std::to_string(ptx->smArch) : ptx->name;
    m->source.lazy = isLibrary;
    m->name = m->source.name;
    m->pending.store(true, std::memory_order_relaxed);
    // Modules are translated now: their errors belong to the load. So are placed globals.
    if (!isLibrary || placed) {
      CUresult r = materialize(m.get(), placed);
      if (r != CUDA_SUCCESS) return r;
    }
  }
  *out = m.release();
  registryOf<Module>().add(*out);
  return CUDA_SUCCESS;
}

void unloadModule(Module* m) {
  registryOf<Module>().remove(m);
  for (auto& f : m->functions) registryOf<Function>().remove(f.get());
  Device* dev = deviceAt(m->device);
  for (auto& [name, g] : m->globals) {
    Allocation a;
    if (addressSpace().release(g.address, AllocKind::Device, &a).isOk() && dev)
      creditMemory(dev, std::max<uint64_t>(g.size, 1));
  }
  delete m;
}

int registersPerThread(const Function* f) {
  const DeviceModel& m = *deviceAt(f->module->device)->config.model;
  const int maxThreads = static_cast<int>((std::max<uint32_t>(f->info->maxThreadsPerBlock, 32) + 31) / 32 * 32);
  const int cap = std::min(255, m.regsPerSm / maxThreads);
  return std::clamp(static_cast<int>(f->info->numRegs), 16, std::max(cap, 16));
}

int maxActiveBlocks(const Function* f, int blockSize, size_t dynamicSmem) {
  const DeviceModel& m = *deviceAt(f->module->device)->config.model;
  if (blockSize <= 0) return 0;
  const int warps = (blockSize + 31) / 32;
  const int byThreads = m.maxThreadsPerSm / (warps * 32);
  const int byRegs = m.regsPerSm / (registersPerThread(f) * warps * 32);
  const size_t smem = f->info->staticSharedBytes + dynamicSmem;
  const int bySmem = smem ? static_cast<int>(m.sharedPerSm / (smem + 1024)) : m.maxBlocksPerSm;
  return std::max(0, std::min({byThreads, byRegs, bySmem, m.maxBlocksPerSm}));
}

} // namespace tf::softgpu
