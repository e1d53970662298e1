// Device printf (the vprintf builtin): formats one lane's call and writes it to stdout.
#pragma once

#include <string>

#include "ptx/runtime.h"

namespace tf::ptx {

// Formats `fmt` with the packed argument buffer at generic address `args` (each argument at its
// natural alignment, floats promoted to double, as nvcc packs them). Returns the number of
// characters produced, or -1 after a memory fault (already reported).
int formatDevicePrintf(Warp& w, uint32_t lane, const std::string& fmt, uint64_t args,
                       const Inst& in, std::string* out);
// Writes to stdout under a process-wide lock, flushed so output interleaves with the host's.
void printfOutput(const std::string& text);

} // namespace tf::ptx
