// Test scaffolding: a vector-backed DeviceMemory whose device addresses differ from host
// addresses, PTX loading helpers and a parameter packer.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/kernel_executor.h"
#include "ptx/executor.h"

namespace tf::ptx::test {

class TestMemory : public cuda::DeviceMemory {
public:
  static constexpr uint64_t kBase = 0x7000'0000'0000ull;

  // Returns a device address; the bytes live in a host vector (zeroed).
  uint64_t alloc(size_t bytes);
  template <class T> uint64_t upload(const std::vector<T>& v) {
    uint64_t d = alloc(v.size() * sizeof(T));
    std::memcpy(host(d), v.data(), v.size() * sizeof(T));
    return d;
  }
  template <class T> std::vector<T> download(uint64_t d, size_t n) const {
    std::vector<T> v(n);
    std::memcpy(v.data(), host(d), n * sizeof(T));
    return v;
  }
  uint8_t* host(uint64_t dev) const;
  bool lookup(uint64_t addr, cuda::MemoryRange* out) const override;
  mutable uint64_t lookups = 0;

private:
  mutable std::mutex mu_;
  uint64_t next_ = kBase;
  std::map<uint64_t, std::unique_ptr<std::vector<uint8_t>>> ranges_;
};

// Packs kernel arguments by KernelInfo offsets.
class Args {
public:
  template <class T> Args& add(const T& v) {
    std::vector<uint8_t> b(sizeof(T));
    std::memcpy(b.data(), &v, sizeof(T));
    items_.push_back(std::move(b));
    return *this;
  }
  std::vector<uint8_t> pack(const cuda::KernelInfo& k) const;

private:
  std::vector<std::vector<uint8_t>> items_;
};

std::string readFile(const std::string& path);
std::string ptxPath(const std::string& name); // in TF_PTX_DIR

struct Loaded {
  std::unique_ptr<cuda::LoadedModule> mod;
  std::string error;
};
// Loads PTX text and binds every global to fresh device memory with its initialiser.
Loaded loadPtx(const std::string& text, const std::string& name, TestMemory& mem);

// Launches a kernel by name; returns the CUresult and fills *msg.
CUresult launch(cuda::LoadedModule& m, const std::string& kernel, cuda::Dim3 grid, cuda::Dim3 block,
                const Args& args, TestMemory& mem, std::string* msg, uint32_t dynShared = 0,
                bool cooperative = false);

// Captures what is written to stdout while alive.
class StdoutCapture {
public:
  StdoutCapture();
  ~StdoutCapture();
  std::string finish();

private:
  int saved_ = -1;
  std::string path_;
  bool done_ = false;
};

} // namespace tf::ptx::test
