// The PTX engine: a KernelExecutor that parses PTX text once, translates it into a compact
// decoded form and interprets it on host threads, one CTA per worker, a warp of 32 lanes in
// lock-step.
//
//   auto exec = tf::ptx::makeExecutor();
//   auto mod = exec->load({ptxText, "kernels.ptx"});
//   if (!mod) return mod.status();       // names the line and the construct
//
// Generic addresses in [0x1'0000'0000'0000, 0x6'0000'0000'0000) (see ir.h) are the shared,
// local, parameter, grid-workspace and function windows; device memory handed out by the soft
// GPU must lie outside them.
#pragma once

#include <memory>

#include "cuda/kernel_executor.h"

namespace tf::ptx {

std::unique_ptr<cuda::KernelExecutor> makeExecutor();

} // namespace tf::ptx
