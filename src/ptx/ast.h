// The parsed form of a PTX module: declarations and instructions with their text-level
// modifiers. The decoder (decoder.cpp) turns it into the executable form once per load.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tf::ptx::ast {

struct Operand {
  enum class Kind : uint8_t {
    Reg,     // %r1, or any name (register, symbol, label) — resolved by the decoder
    Imm,     // integer literal (already negated when written -5)
    FImm,    // floating literal
    Addr,    // [base+offset] ; base may be empty for an absolute address
    Vec,     // {a, b, ...}
    Sink,    // _
  };
  Kind kind = Kind::Reg;
  std::string name;       // Reg: the name; Addr: the base name (may be empty)
  int64_t imm = 0;        // Imm value; Addr offset
  double fimm = 0;        // FImm value
  bool hasF32Bits = false, hasF64Bits = false;
  uint32_t f32Bits = 0;
  uint64_t f64Bits = 0;
  bool negated = false;   // !%p
  std::vector<Operand> elems; // Vec; Addr of tex/suld/sust: the coordinate vector
  std::string pairPred;   // "%r|%p" second destination
};

struct Instr {
  uint32_t line = 0;
  std::string guard;      // predicate register, empty if none
  bool guardNeg = false;
  std::string opcode;     // "ld"
  std::vector<std::string> mods; // ".global", ".f32", ...
  std::vector<Operand> ops;
  // call: ops = [rets..., callee, args...]; these give the split
  int callRets = 0;
  bool isCall = false;
  std::string text() const; // "ld.global.f32" for messages
};

// One declaration of a variable in some state space.
struct VarDecl {
  uint32_t line = 0;
  std::string space;      // ".global", ".const", ".shared", ".local", ".param", ".reg"
  std::string type;       // ".b8", ".f32", ".pred"...
  uint32_t typeSize = 0;  // bytes of one element (vector included)
  uint32_t vec = 1;       // .v2/.v4
  uint32_t align = 0;     // .align, 0 = natural
  uint64_t count = 1;     // array elements (product of dims); 0 for name[] (unsized)
  bool unsized = false;
  bool isExtern = false;
  std::string name;
  uint32_t regRange = 0;  // %r<N>: N registers named name0..name(N-1)
  bool hasInit = false;
  std::vector<uint8_t> init; // little-endian bytes
  struct Reloc {
    uint64_t offset;    // byte offset in init
    std::string symbol; // a function or variable whose address goes there
    int64_t addend;
  };
  std::vector<Reloc> relocs;
};

struct Statement {
  enum class Kind : uint8_t { Instr, Label, Var, BlockOpen, BlockClose };
  Kind kind = Kind::Instr;
  Instr instr;
  std::string label;
  VarDecl var;
  uint32_t line = 0;
};

struct Function {
  uint32_t line = 0;
  bool isEntry = false;
  bool isExtern = false;   // declaration only (.extern .func vprintf)
  bool hasBody = false;
  std::string name;
  std::vector<VarDecl> params;
  std::vector<VarDecl> rets;
  std::vector<Statement> body;
  uint32_t maxntid[3] = {0, 0, 0};
  uint32_t reqntid[3] = {0, 0, 0};
};

struct Module {
  uint32_t versionMajor = 0, versionMinor = 0;
  std::vector<std::string> targets;
  uint32_t addressSize = 64;
  std::vector<VarDecl> globals; // .global/.const/.shared at module scope
  std::vector<Function> functions;
};

} // namespace tf::ptx::ast
