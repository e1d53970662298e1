#include "ptx/lexer.h"

#include <cctype>
#include <cstring>

namespace tf::ptx {
namespace {

bool isIdentStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == '$' || c == '%';
}
bool isIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$';
}

// Digits of `base` to a value; false on overflow or an invalid digit.
bool parseDigits(std::string_view d, unsigned base, uint64_t* out) {
  uint64_t v = 0;
  for (char c : d) {
    unsigned x;
    if (c >= '0' && c <= '9') x = unsigned(c - '0');
    else if (c >= 'a' && c <= 'f') x = unsigned(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') x = unsigned(c - 'A' + 10);
    else return false;
    if (x >= base) return false;
    if (v > (~uint64_t(0) - x) / base) return false;
    v = v * base + x;
  }
  *out = v;
  return true;
}

Status lexError(uint32_t line, const std::string& what) {
  return invalidArgument("line " + std::to_string(line) + ": " + what);
}

} // namespace

Result<std::vector<Token>> tokenize(std::string_view s) {
  std::vector<Token> out;
  out.reserve(s.size() / 4);
  uint32_t line = 1;
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    char c = s[i];
    if (c == '\0') break; // NUL terminator of a fatbin payload
    if (c == '\n') {
      ++line;
      ++i;
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    if (c == '/' && i + 1 < n && s[i + 1] == '/') {
      while (i < n && s[i] != '\n') ++i;
      continue;
    }
    if (c == '/' && i + 1 < n && s[i + 1] == '*') {
      uint32_t startLine = line;
      i += 2;
      while (i + 1 < n && !(s[i] == '*' && s[i + 1] == '/')) {
        if (s[i] == '\n') ++line;
        ++i;
      }
      if (i + 1 >= n) return lexError(startLine, "unterminated comment");
      i += 2;
      continue;
    }
    Token t;
    t.line = line;
    if (c == '"') {
      size_t j = i + 1;
      std::string str;
      while (j < n && s[j] != '"') {
        if (s[j] == '\n') return lexError(line, "newline in string literal");
        if (s[j] == '\\' && j + 1 < n) {
          str.push_back(s[j + 1]);
          j += 2;
          continue;
        }
        str.push_back(s[j++]);
      }
      if (j >= n) return lexError(line, "unterminated string literal");
      t.kind = TokKind::String;
      t.text = std::move(str);
      i = j + 1;
      out.push_back(std::move(t));
      continue;
    }
    // A directive or modifier; one glued to a name may start with a digit (tex.2d, suld.b.3d).
    if (c == '.' && i + 1 < n &&
        (isIdentStart(s[i + 1]) ||
         (s[i + 1] >= '0' && s[i + 1] <= '9' && i > 0 && isIdentChar(s[i - 1])))) {
      size_t j = i + 1;
      while (j < n && (isIdentChar(s[j]) || s[j] == ':')) {
        // ".L2::cache_hint" style modifiers keep their '::' parts
        if (s[j] == ':') {
          if (j + 1 < n && s[j + 1] == ':') {
            j += 2;
            continue;
          }
          break;
        }
        ++j;
      }
      t.kind = TokKind::Directive;
      t.text = std::string(s.substr(i, j - i));
      i = j;
      out.push_back(std::move(t));
      continue;
    }
    if (isIdentStart(c)) {
      size_t j = i + 1;
      while (j < n && isIdentChar(s[j])) ++j;
      t.kind = TokKind::Ident;
      t.text = std::string(s.substr(i, j - i));
      i = j;
      out.push_back(std::move(t));
      continue;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      // 0f / 0d hex floats
      if (c == '0' && i + 1 < n && (s[i + 1] == 'f' || s[i + 1] == 'F' || s[i + 1] == 'd' ||
                                    s[i + 1] == 'D')) {
        bool isF = s[i + 1] == 'f' || s[i + 1] == 'F';
        size_t want = isF ? 8 : 16;
        size_t j = i + 2;
        while (j < n && std::isxdigit(static_cast<unsigned char>(s[j]))) ++j;
        if (j - (i + 2) != want) return lexError(line, "malformed floating-point literal");
        uint64_t bits = 0;
        if (!parseDigits(s.substr(i + 2, want), 16, &bits)) return lexError(line, "malformed floating-point literal");
        t.kind = TokKind::Float;
        t.text = std::string(s.substr(i, j - i));
        if (isF) {
          t.isF32Bits = true;
          t.f32Bits = static_cast<uint32_t>(bits);
          float f;
          std::memcpy(&f, &t.f32Bits, 4);
          t.floatValue = f;
        } else {
          t.isF64Bits = true;
          t.f64Bits = bits;
          std::memcpy(&t.floatValue, &bits, 8);
        }
        i = j;
        out.push_back(std::move(t));
        continue;
      }
      size_t j = i;
      bool isFloat = false;
      if (c == '0' && i + 1 < n && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
        j = i + 2;
        while (j < n && std::isxdigit(static_cast<unsigned char>(s[j]))) ++j;
        if (j == i + 2) return lexError(line, "malformed hex literal");
        if (!parseDigits(s.substr(i + 2, j - i - 2), 16, &t.intValue))
          return lexError(line, "integer literal out of range");
      } else if (c == '0' && i + 1 < n && (s[i + 1] == 'b' || s[i + 1] == 'B')) {
        j = i + 2;
        while (j < n && (s[j] == '0' || s[j] == '1')) ++j;
        if (j == i + 2) return lexError(line, "malformed binary literal");
        if (!parseDigits(s.substr(i + 2, j - i - 2), 2, &t.intValue))
          return lexError(line, "integer literal out of range");
      } else {
        while (j < n && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
        if (j < n && (s[j] == '.' || s[j] == 'e' || s[j] == 'E')) {
          isFloat = true;
          if (s[j] == '.') {
            ++j;
            while (j < n && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
          }
          if (j < n && (s[j] == 'e' || s[j] == 'E')) {
            ++j;
            if (j < n && (s[j] == '+' || s[j] == '-')) ++j;
            while (j < n && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
          }
          t.floatValue = std::strtod(std::string(s.substr(i, j - i)).c_str(), nullptr);
        } else {
          std::string_view digits = s.substr(i, j - i);
          bool octal = digits.size() > 1 && digits[0] == '0';
          if (!parseDigits(octal ? digits.substr(1) : digits, octal ? 8 : 10, &t.intValue))
            return lexError(line, "bad integer literal");
        }
      }
      if (!isFloat && j < n && (s[j] == 'U' || s[j] == 'u')) ++j;
      t.kind = isFloat ? TokKind::Float : TokKind::Int;
      t.text = std::string(s.substr(i, j - i));
      i = j;
      out.push_back(std::move(t));
      continue;
    }
    if (std::strchr(",;:{}[]()+-<>|!@=*", c) != nullptr) {
      t.kind = TokKind::Punct;
      t.text = std::string(1, c);
      ++i;
      out.push_back(std::move(t));
      continue;
    }
    return lexError(line, std::string("unexpected character '") + c + "'");
  }
  Token end;
  end.kind = TokKind::End;
  end.line = line;
  out.push_back(end);
  return out;
}

} // namespace tf::ptx
