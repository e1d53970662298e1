// Internal: per-function decoding state used by the Builder.
#pragma once

#include <unordered_map>
#include <vector>

#include "ptx/decoder.h"

namespace tf::ptx {

enum class Flow : uint8_t { Normal, Branch, Exit };

class FunctionDecoder {
public:
  FunctionDecoder(DecodedModule& dm, const ast::Function& af, Function& fn,
                  const std::unordered_map<std::string, DecodeFn>& registry);
  Status run();

  uint32_t allocSlot() { return fn.numSlots++; }
  uint32_t allocPred() { return fn.numPreds++; }
  uint32_t allocLocal(uint64_t size, uint32_t align);
  Result<Symbol> lookup(const std::string& name) const;
  Status declare(const ast::VarDecl& v);
  Status fail(uint32_t line, const std::string& what) const;

  DecodedModule& dm;
  const ast::Function& af;
  Function& fn;
  const std::unordered_map<std::string, DecodeFn>& registry;
  std::vector<std::unordered_map<std::string, Symbol>> scopes;
  std::unordered_map<std::string, uint32_t> labels;
  std::vector<std::pair<uint32_t, std::string>> fixups;
  std::vector<uint32_t> fixupLines;
  std::vector<Flow> flow;
  std::unordered_map<uint64_t, uint32_t> consts;
  std::vector<uint32_t> temps;
  uint32_t scratch = UINT32_MAX;
  uint32_t cc = UINT32_MAX; // carry flag slot (add.cc / addc)
  uint32_t guardSlot = 0, guardNeg = 0;
  Flow nextFlow = Flow::Normal; // set by decoders for the instruction they emit
};

// Immediate post-dominators on the instruction graph: rpc[i] for every instruction.
std::vector<uint32_t> computeReconvergence(const std::vector<Inst>& code,
                                           const std::vector<Flow>& flow);

} // namespace tf::ptx
