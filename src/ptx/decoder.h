// AST -> executable Program. The Builder is the interface the opcode decoders (ops_*.cpp) use
// to resolve operands into register slots and to emit instructions.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "cuda/kernel_executor.h"
#include "ptx/ast.h"
#include "ptx/ir.h"
#include "ptx/types.h"

namespace tf::ptx {

// Special registers (mov %r, %tid.x).
enum class Special : uint32_t {
  TidX, TidY, TidZ, NtidX, NtidY, NtidZ, CtaidX, CtaidY, CtaidZ, NctaidX, NctaidY, NctaidZ,
  LaneId, WarpId, NWarpId, SmId, NSmId, GridId, LanemaskEq, LanemaskLe, LanemaskLt, LanemaskGe,
  LanemaskGt, Clock, Clock64, GlobalTimer, GlobalTimerLo, GlobalTimerHi, DynSmem, TotalSmem,
  EnvReg, EnvReg1, EnvReg2, ClusterCtaRank, ClusterNCtaRank, ClusterCtaidX, ClusterCtaidY, ClusterCtaidZ,
  ClusterNCtaidX, ClusterNCtaidY, ClusterNCtaidZ, ClusterIdX, ClusterIdY, ClusterIdZ,
  NClusterIdX, NClusterIdY, NClusterIdZ, IsExplicitCluster, Zero,
};
bool parseSpecial(const std::string& name, Special* out);

struct Symbol {
  enum class Kind : uint8_t { Reg, Pred, Local, KernelParam, Shared, Global, Function };
  Kind kind = Kind::Reg;
  uint32_t slot = 0;      // Reg/Pred slot; Local offset; KernelParam offset; Shared offset;
                          // Global index; Function index
  uint32_t width = 8;     // Reg: declared width in bytes
  Ty type = Ty::None;
};

// Module-wide facts the function decoder needs.
// An address stored in a variable's initialiser that is known only once globals are bound.
struct DataReloc {
  uint32_t var;       // the variable holding the pointer
  uint64_t offset;    // where in it
  uint32_t target;    // the variable pointed to
  int64_t addend;
};

struct ModuleLayout {
  std::unordered_map<std::string, Symbol> globals; // .global/.const/.shared/functions
  std::vector<cuda::GlobalVariable> vars;
  std::vector<DataReloc> relocs;
  uint32_t staticShared = 0;
  uint32_t dynamicSharedOffset = 0; // where extern .shared arrays start
  std::vector<const ast::Function*> functions; // index -> declaration (body may be elsewhere)
};

// Modifier bookkeeping: decoders take() what they understand; whatever is left is an error.
class ModSet {
public:
  explicit ModSet(const std::vector<std::string>& mods);
  bool take(const char* m);
  bool takeAny(std::initializer_list<const char*> ms, std::string* which);
  // All type modifiers in order (consumed).
  std::vector<Ty> takeTypes();
  int takeVec(); // .v2/.v4/.v8 -> n, else 1
  std::string leftover() const; // first unconsumed modifier that is not ignorable, or ""
private:
  std::vector<std::string> mods_;
  std::vector<bool> used_;
};

class FunctionDecoder;

class Builder {
public:
  Builder(FunctionDecoder& fd, const ast::Instr& ai);
  const ast::Instr& ai;
  ModSet mods;
  size_t numOps() const { return ai.ops.size(); }
  // Operand i, or a placeholder '_' when the instruction has fewer operands.
  const ast::Operand& op(size_t i) const;

  Status error(const std::string& what) const;
  Status unsupported() const; // "unsupported instruction <text>"

  // Slot holding source operand i read as type t (registers, immediates, specials, symbols).
  Result<uint32_t> src(size_t i, Ty t);
  Result<uint32_t> srcOp(const ast::Operand& o, Ty t);
  // Register slot for destination operand i (a sink gets a scratch slot).
  Result<uint32_t> dst(size_t i);
  Result<uint32_t> dstOp(const ast::Operand& o);
  // Predicate slots.
  Result<uint32_t> predSrc(size_t i, bool* negated);
  Result<uint32_t> predDst(size_t i);
  Result<uint32_t> predByName(const std::string& name);
  // Address operand [base+imm]: base register slot (or a constant / computed slot) and offset.
  // space: the state space the instruction names ("" = generic).
  struct Addr {
    uint32_t slot;
    int64_t offset;
    bool is32; // base register is 32 bits wide
  };
  Result<Addr> addr(size_t i, const std::string& space);
  uint32_t constSlot(uint64_t value);
  uint32_t scratchSlot();
  uint32_t tempSlot();
  bool isReg(size_t i) const;
  Result<Symbol> lookup(const std::string& name) const;
  // Width in bytes of a destination/source register operand (0 if not a register).
  uint32_t regWidth(const ast::Operand& o) const;

  Inst& emit(Handler h);
  // Branch target fixup (label name resolved after the function is decoded).
  void branchTo(Inst& in, const std::string& label);
  uint32_t addCallSite(CallSite cs);
  uint32_t textId() const { return textId_; }
  FunctionDecoder& fd;
  const ModuleLayout& layout() const;
  bool inEntry() const;

private:
  uint32_t textId_;
  uint32_t temps_ = 0;
};

using DecodeFn = Status (*)(Builder& b);
void registerIntOps(std::unordered_map<std::string, DecodeFn>& r);
void registerFloatOps(std::unordered_map<std::string, DecodeFn>& r);
void registerMemOps(std::unordered_map<std::string, DecodeFn>& r);
void registerCtrlOps(std::unordered_map<std::string, DecodeFn>& r);
void registerWarpOps(std::unordered_map<std::string, DecodeFn>& r);
void registerMovOps(std::unordered_map<std::string, DecodeFn>& r);
void registerMmaOps(std::unordered_map<std::string, DecodeFn>& r);
void registerAsyncOps(std::unordered_map<std::string, DecodeFn>& r);
void registerTexOps(std::unordered_map<std::string, DecodeFn>& r);

// Decodes a parsed module. On success fills program and layout; any construct it cannot run
// is an error naming the line.
struct DecodedModule {
  Program program;
  ModuleLayout layout;
  std::vector<cuda::KernelInfo> kernels;
  std::vector<int> kernelFunction; // kernels[i] -> program.functions index
  uint32_t maxFrameLocal = 0, maxFrameSlots = 0, maxFramePreds = 0;
  bool recursive = false;
  std::vector<uint32_t> chainLocal; // per function: worst-case local bytes of its call chain
  // (Lazy decoding: why a kernel cannot run is its KernelInfo::unsupported.)
};
Result<std::unique_ptr<DecodedModule>> decodeModule(const ast::Module& m, const std::string& name,
                                                    bool lazy = false);

// handlers the decoder itself emits
uint32_t hMovSpecial(Warp& w, const Inst& in, uint32_t m);
uint32_t hMovSymAddr(Warp& w, const Inst& in, uint32_t m);
uint32_t hMovLocalAddr(Warp& w, const Inst& in, uint32_t m);
uint32_t hRet(Warp& w, const Inst& in, uint32_t m);

} // namespace tf::ptx
