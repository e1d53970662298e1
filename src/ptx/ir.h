// The executable form of a PTX module: per function, a flat array of decoded instructions with
// resolved register slots, branch targets and reconvergence points. Built once by load().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tf::ptx {

struct Warp;
struct Inst;

// A handler executes one instruction for the lanes in `mask` and returns the next pc, or one of
// the sentinels below. Registers live in warp.r as regs[slot * 32 + lane] (64-bit each).
using Handler = uint32_t (*)(Warp& w, const Inst& in, uint32_t mask);

constexpr uint32_t kPcReload = 0xFFFFFFFEu; // warp state changed (call/return/exit): reload
constexpr uint32_t kPcStop = 0xFFFFFFFFu;   // leave the run loop (barrier, done, fault)
constexpr uint32_t kNoRpc = 0xFFFFFFF0u;    // never reconverges (post-dominated by exit only)

// Address windows of the generic address space that are not global memory. Device addresses
// handed out by the soft GPU must stay outside [kWindowLow, kWindowHigh).
constexpr uint64_t kSharedWindow = 0x0001'0000'0000'0000ull;
constexpr uint64_t kLocalWindow = 0x0002'0000'0000'0000ull;
constexpr uint64_t kParamWindow = 0x0003'0000'0000'0000ull;
constexpr uint64_t kGridWindow = 0x0004'0000'0000'0000ull; // cooperative grid-barrier workspace
constexpr uint64_t kFuncWindow = 0x0005'0000'0000'0000ull; // function "addresses": + 16 * index
constexpr uint64_t kWindowSize = 0x0000'0001'0000'0000ull;
constexpr uint64_t kWindowLow = kSharedWindow;
constexpr uint64_t kWindowHigh = kFuncWindow + kWindowSize;

struct Inst {
  Handler fn = nullptr;
  uint32_t next = 0;    // index of the following instruction
  uint32_t pred = 0;    // predicate slot; slot 0 is always all-true
  uint32_t predNeg = 0; // 0 or ~0u
  uint32_t d[4] = {0, 0, 0, 0}; // destination slots (pred slots for predicate results)
  uint32_t a[4] = {0, 0, 0, 0}; // source slots
  int64_t imm = 0;      // address offset, or an op-specific constant
  uint32_t target = 0;  // branch target
  uint32_t rpc = kNoRpc; // reconvergence pc of a branch
  uint32_t aux = 0;     // op-specific: special register id, vector width, mode bits, ...
  uint32_t aux2 = 0;
  uint32_t line = 0;    // PTX source line, for messages
  uint32_t textId = 0;  // index into Program::texts ("ld.global.f32")
};

struct CallArg {
  uint32_t callerOffset; // local-frame offset of the caller's .param variable
  uint32_t calleeOffset; // local-frame offset of the callee's parameter
  uint32_t size;
};

struct CallSite {
  int callee = -1;       // function index; -1 for builtins
  int builtin = 0;       // 1 vprintf, 2 __assertfail, 3 malloc, 4 free
  bool indirect = false; // target address in register slot `targetSlot`
  uint32_t targetSlot = 0;
  std::vector<CallArg> args;
  std::vector<CallArg> rets;
};

struct ConstInit {
  uint32_t slot;
  uint64_t value;
};

struct Function {
  std::string name;
  bool isEntry = false;
  std::vector<Inst> code;
  uint32_t numSlots = 0;   // 64-bit register slots (incl. constants and temporaries)
  uint32_t numPreds = 1;   // predicate slots (slot 0 = true)
  uint32_t localBytes = 0; // per-lane frame: .local, .param decls, own params/return values
  std::vector<ConstInit> consts;
  std::vector<CallSite> calls;
  std::vector<uint32_t> operands; // long operand lists (wmma/mma fragments), indexed by Inst
  // .func parameters/returns: offsets in the local frame (for the caller to copy)
  std::vector<uint32_t> paramOffsets, paramSizes, retOffsets, retSizes;
  uint32_t declaredRegs = 0;
};

struct Program {
  std::vector<Function> functions;
  std::vector<std::string> texts; // instruction texts for messages
  std::string moduleName;
};

} // namespace tf::ptx
