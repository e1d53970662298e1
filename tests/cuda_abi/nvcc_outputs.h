// Files that nvcc produced from kernel.cu at build time (see CMakeLists.txt).
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace tf::cuda::testing {

inline std::vector<uint8_t> nvccOutput(const std::string& name) {
  std::ifstream in(std::string(TF_ABI_NVCC_DIR) + "/" + name, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

template <typename T> T loadAt(const std::vector<uint8_t>& b, size_t at) {
  T v;
  std::memcpy(&v, &b[at], sizeof v);
  return v;
}

template <typename T> void storeAt(std::vector<uint8_t>& b, size_t at, T v) {
  std::memcpy(&b[at], &v, sizeof v);
}

// Offsets (from the start of the image) of each entry header in the first container.
inline std::vector<size_t> entryOffsets(const std::vector<uint8_t>& fatbin) {
  std::vector<size_t> out;
  size_t at = loadAt<uint16_t>(fatbin, 6);
  size_t end = at + loadAt<uint64_t>(fatbin, 8);
  while (at < end) {
    out.push_back(at);
    at += loadAt<uint32_t>(fatbin, at + 4) + loadAt<uint64_t>(fatbin, at + 8);
  }
  return out;
}

} // namespace tf::cuda::testing

#define TF_REQUIRE_NVCC()                                                                          \
  do {                                                                                             \
    if (!TF_ABI_HAVE_NVCC) GTEST_SKIP() << "no nvcc in TF_CUDA_ROOT";                              \
  } while (0)
