// Tokeniser for PTX text. Comments are dropped; every token keeps its line number.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tf::ptx {

enum class TokKind : uint8_t {
  Ident,     // names, opcodes, %registers, $labels
  Directive, // .something (also instruction modifiers like .f32)
  Int,       // integer literal (text kept, value parsed)
  Float,     // 0fXXXXXXXX / 0dXXXXXXXXXXXXXXXX / decimal with '.' or exponent
  String,    // "..."
  Punct,     // one character: , ; : { } [ ] ( ) + - < > | ! @ =
  End,
};

struct Token {
  TokKind kind = TokKind::End;
  std::string text;
  uint32_t line = 0;
  uint64_t intValue = 0; // Int
  double floatValue = 0; // Float
  bool isF32Bits = false; // Float given as 0f...
  uint32_t f32Bits = 0;
  bool isF64Bits = false; // Float given as 0d...
  uint64_t f64Bits = 0;
  char punct() const { return kind == TokKind::Punct ? text[0] : '\0'; }
};

Result<std::vector<Token>> tokenize(std::string_view text);

} // namespace tf::ptx
