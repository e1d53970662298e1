// A pair of counts the stub keeps for tests (an extern "C" void NAME(uint64_t*, uint64_t*) that
// only the stub exports): a program that asks runs through the worker, or fails here.
#pragma once

#include <cstdint>
#include <dlfcn.h>
#include <utility>

#include "check.h"

inline std::pair<uint64_t, uint64_t> stubCounts(const char* symbol) {
  using Fn = void (*)(uint64_t*, uint64_t*);
  auto fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, symbol));
  REQUIRE(fn != nullptr);
  std::pair<uint64_t, uint64_t> c{0, 0};
  fn(&c.first, &c.second);
  return c;
}
