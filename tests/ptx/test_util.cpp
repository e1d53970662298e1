#include "test_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace tf::ptx::test {

uint64_t TestMemory::alloc(size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t d = next_;
  auto v = std::make_unique<std::vector<uint8_t>>(bytes ? bytes : 1, 0);
  ranges_[d] = std::move(v);
  next_ += (bytes + 0xFFFF + 0x10000) & ~uint64_t(0xFFFF); // leave unmapped gaps
  return d;
}

uint8_t* TestMemory::host(uint64_t dev) const {
  cuda::MemoryRange r;
  if (!lookup(dev, &r)) return nullptr;
  return r.host + (dev - r.base);
}

bool TestMemory::lookup(uint64_t addr, cuda::MemoryRange* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  ++lookups;
  auto it = ranges_.upper_bound(addr);
  if (it == ranges_.begin()) return false;
  --it;
  if (addr - it->first >= it->second->size()) return false;
  out->base = it->first;
  out->size = it->second->size();
  out->host = it->second->data();
  return true;
}

std::vector<uint8_t> Args::pack(const cuda::KernelInfo& k) const {
  std::vector<uint8_t> out(k.paramBytes, 0);
  for (size_t i = 0; i < items_.size() && i < k.params.size(); ++i) {
    size_t n = std::min<size_t>(items_[i].size(), k.params[i].size);
    std::memcpy(out.data() + k.params[i].offset, items_[i].data(), n);
  }
  return out;
}

std::string readFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string ptxPath(const std::string& name) { return std::string(TF_PTX_DIR) + "/" + name; }

Loaded loadPtx(const std::string& text, const std::string& name, TestMemory& mem) {
  Loaded out;
  auto exec = makeExecutor();
  auto r = exec->load(cuda::ModuleSource{text, name});
  if (!r) {
    out.error = r.status().toString();
    return out;
  }
  out.mod = std::move(*r);
  for (const auto& g : out.mod->globals()) {
    uint64_t d = mem.alloc(g.size);
    if (!g.initializer.empty()) std::memcpy(mem.host(d), g.initializer.data(), g.initializer.size());
    auto st = out.mod->bindGlobal(g.name, d);
    if (!st) out.error = st.toString();
  }
  return out;
}

CUresult launch(cuda::LoadedModule& m, const std::string& kernel, cuda::Dim3 grid, cuda::Dim3 block,
                const Args& args, TestMemory& mem, std::string* msg, uint32_t dynShared,
                bool cooperative) {
  int k = m.findKernel(kernel);
  if (k < 0) {
    *msg = "no kernel " + kernel;
    return CUDA_ERROR_NOT_FOUND;
  }
  auto buf = args.pack(m.kernels()[static_cast<size_t>(k)]);
  cuda::LaunchConfig c;
  c.grid = grid;
  c.block = block;
  c.dynamicSharedBytes = dynShared;
  c.cooperative = cooperative;
  c.params = buf.data();
  c.paramBytes = static_cast<uint32_t>(buf.size());
  return m.launch(k, c, mem, msg);
}

StdoutCapture::StdoutCapture() {
  std::fflush(stdout);
  char tmpl[] = "/tmp/ptx_stdout_XXXXXX";
  int fd = mkstemp(tmpl);
  path_ = tmpl;
  saved_ = dup(1);
  dup2(fd, 1);
  close(fd);
}

std::string StdoutCapture::finish() {
  if (done_) return "";
  done_ = true;
  std::fflush(stdout);
  dup2(saved_, 1);
  close(saved_);
  std::string s = readFile(path_);
  unlink(path_.c_str());
  return s;
}

StdoutCapture::~StdoutCapture() { finish(); }

} // namespace tf::ptx::test
