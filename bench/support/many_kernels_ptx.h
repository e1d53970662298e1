// PTX for start-up benchmarks: a module of `kernels` small kernels k0, k1, ... (each stores
// tid + its index), with `tag` in a comment so that images can be made distinct (caches keyed
// by content then cannot hide the cost of shipping or translating them).
#pragma once

#include <string>

inline std::string manyKernelsPtx(int kernels, const std::string& tag = "") {
  std::string ptx = ".version 8.0\n.target sm_80\n.address_size 64\n// " + tag + "\n";
  for (int k = 0; k < kernels; ++k)
    ptx += ".visible .entry k" + std::to_string(k) +
           "(.param .u64 p) {\n .reg .b64 %rd<3>;\n .reg .b32 %r<3>;\n"
           " ld.param.u64 %rd1, [p];\n cvta.to.global.u64 %rd2, %rd1;\n"
           " mov.u32 %r1, %tid.x;\n add.s32 %r2, %r1, " + std::to_string(k) + ";\n"
           " st.global.u32 [%rd2], %r2;\n ret;\n}\n";
  return ptx;
}
