#include "ptx/executor.h"

#include <atomic>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "ptx/decoder.h"
#include "ptx/exec.h"
#include "ptx/parser.h"

namespace tf::ptx {

namespace {

class PtxModule final : public cuda::LoadedModule {
public:
  explicit PtxModule(std::unique_ptr<DecodedModule> dm) : dm_(std::move(dm)) {
    symAddr_.assign(dm_->layout.vars.size(), 0);
    for (size_t i = 0; i < dm_->kernels.size(); ++i) byName_[dm_->kernels[i].name] = static_cast<int>(i);
    for (size_t i = 0; i < dm_->layout.vars.size(); ++i) varByName_[dm_->layout.vars[i].name] = i;
  }

  const std::vector<cuda::KernelInfo>& kernels() const override { return dm_->kernels; }
  const std::vector<cuda::GlobalVariable>& globals() const override { return dm_->layout.vars; }

  int findKernel(const std::string& name) const override {
    auto it = byName_.find(name);
    return it == byName_.end() ? -1 : it->second;
  }

  Status bindGlobal(const std::string& name, uint64_t deviceAddress) override {
    auto it = varByName_.find(name);
    if (it == varByName_.end()) return notFound("no global variable '" + name + "' in module");
    if (deviceAddress == 0) return invalidArgument("global '" + name + "' bound to address 0");
    symAddr_[it->second] = deviceAddress;
    relocated_ = false;
    return Status::ok();
  }

  CUresult launch(int kernel, const cuda::LaunchConfig& config, const cuda::DeviceMemory& memory,
                  std::string* message) override {
    if (kernel >= 0 && static_cast<size_t>(kernel) < dm_->kernels.size() &&
        !dm_->kernels[kernel].unsupported.empty()) {
      if (message) *message = "cannot run here: " + dm_->kernels[kernel].unsupported;
      return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (!relocated_) {
      // pointers to globals inside initialisers: written once every global has its address
      std::lock_guard<std::mutex> lock(relocMu_);
      for (const auto& r : dm_->layout.relocs) {
        uint64_t where = symAddr_[r.var] + r.offset, value = symAddr_[r.target] + static_cast<uint64_t>(r.addend);
        cuda::MemoryRange range;
        if (symAddr_[r.var] == 0 || symAddr_[r.target] == 0 || !memory.lookup(where, &range) ||
            where - range.base + 8 > range.size) {
          if (message) *message = "cannot apply the address initialiser of '" + dm_->layout.vars[r.var].name + "'";
          return CUDA_ERROR_INVALID_VALUE;
        }
        std::memcpy(range.host + (where - range.base), &value, 8);
      }
      relocated_ = true;
    }
    return launchKernel(*dm_, kernel, symAddr_, config, memory, message);
  }

private:
  std::unique_ptr<DecodedModule> dm_;
  std::vector<uint64_t> symAddr_;
  std::atomic<bool> relocated_{false};
  std::mutex relocMu_;
  std::unordered_map<std::string, int> byName_;
  std::unordered_map<std::string, size_t> varByName_;
};

class PtxExecutor final : public cuda::KernelExecutor {
public:
  Result<std::unique_ptr<cuda::LoadedModule>> load(const cuda::ModuleSource& source) override {
    std::string name = source.name.empty() ? "<ptx>" : source.name;
    std::string_view text(source.ptx);
    auto nul = text.find('\0');
    if (nul != std::string_view::npos) text = text.substr(0, nul);
    auto ast = parseModule(text);
    if (!ast) {
      return Status(ast.status().code(), name + ":" + ast.status().message());
    }
    auto dm = decodeModule(*ast, name, source.lazy);
    if (!dm) return dm.status();
    return std::unique_ptr<cuda::LoadedModule>(new PtxModule(std::move(*dm)));
  }
  const char* name() const override { return "ptx-interpreter"; }
};

} // namespace

std::unique_ptr<cuda::KernelExecutor> makeExecutor() { return std::make_unique<PtxExecutor>(); }

} // namespace tf::ptx
