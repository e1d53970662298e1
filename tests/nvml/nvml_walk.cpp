// Walks the NVML table (src/cuda/nvml_catalog.inc) against whichever libnvidia-ml.so.1 the
// dynamic loader finds: the soft GPU's, or the remoting stub's talking to a worker. Each row
// must be exported and, with the walker's arguments, answer what the table says (or, where the
// library generates a row another family implements in the soft GPU, NOT_SUPPORTED); before
// nvmlInit, UNINITIALIZED; bad handles and NULL pointers INVALID_ARGUMENT; short buffers
// INSUFFICIENT_SIZE. The devices must be TF_SOFTGPU_DEVICES="H100:1GiB,2xL4" (the table's
// expectations). Prints one line per failure, device 0's memory total (a vGPU's under the
// limiter), and "nvml walk: N functions, C checks, F failures".
#include <cstdio>

#include "tests/nvml/nvml_walker.h"

using namespace tf::nvml;
using tf::nvml::testing::Variation;
using tf::nvml::testing::Walker;

namespace {

int checks = 0, failures = 0;

void expect(const Entry& e, const char* what, nvmlReturn_t got, nvmlReturn_t want, nvmlReturn_t alsoFine) {
  ++checks;
  if (got == want || got == alsoFine) return;
  ++failures;
  std::printf("FAIL %s %s: %d, want %d\n", e.name, what, int(got), int(want));
}

void expect(const Entry& e, const char* what, nvmlReturn_t got, nvmlReturn_t want) { expect(e, what, got, want, want); }

} // namespace

int main() {
  void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    std::printf("FAIL dlopen: %s\n", dlerror());
    return 1;
  }
  auto init = reinterpret_cast<nvmlReturn_t (*)()>(dlsym(lib, "nvmlInit_v2"));
  auto byIndex = reinterpret_cast<nvmlReturn_t (*)(unsigned, nvmlDevice_t*)>(dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
  for (const Entry& e : catalog())
    if (!dlsym(lib, e.name)) {
      std::printf("FAIL %s: not exported\n", e.name);
      return 1;
    }

  Walker before(lib, reinterpret_cast<nvmlDevice_t>(1));
  for (const Entry& e : catalog()) {
    if (e.init == InitRule::Init) expect(e, "before nvmlInit", before.call(e), NVML_ERROR_UNINITIALIZED);
    // A library may need its connection even for these (the stub asks the worker).
    if (e.init == InitRule::Any)
      expect(e, "before nvmlInit", before.call(e), before.expected(e), NVML_ERROR_UNINITIALIZED);
  }

  nvmlDevice_t device = nullptr;
  if (init() != NVML_SUCCESS || byIndex(0, &device) != NVML_SUCCESS) {
    std::printf("FAIL nvmlInit or the first device\n");
    return 1;
  }
  Walker walker(lib, device);
  for (const Entry& e : catalog()) {
    if (e.init == InitRule::Lifecycle) continue;
    nvmlReturn_t want = walker.expected(e);
    expect(e, "answer", walker.call(e), want);
    for (int i = 0; i < e.arity; ++i) {
      if (Walker::isHandle(e.kinds[i]))
        expect(e, "bad handle", walker.call(e, Variation{.badArg = i}), NVML_ERROR_INVALID_ARGUMENT);
      if (isRequiredPointer(e.kinds[i]))
        expect(e, "NULL pointer", walker.call(e, Variation{.nullArg = i}), NVML_ERROR_INVALID_ARGUMENT);
      if (e.kinds[i] == Kind::Len && want == NVML_SUCCESS)
        expect(e, "short buffer", walker.call(e, Variation{.shortBuffer = true}), NVML_ERROR_INSUFFICIENT_SIZE);
    }
  }
  // What device 0's memory reads (a vGPU's under the limiter): the caller checks it.
  nvmlMemory_t memory{};
  auto memoryInfo = reinterpret_cast<nvmlReturn_t (*)(nvmlDevice_t, nvmlMemory_t*)>(dlsym(lib, "nvmlDeviceGetMemoryInfo"));
  if (memoryInfo(device, &memory) != NVML_SUCCESS) ++failures;
  std::printf("nvml walk: device 0 memory total %llu\n", memory.total);
  std::printf("nvml walk: %zu functions, %d checks, %d failures\n", catalog().size(), checks, failures);
  return failures == 0 ? 0 : 1;
}
