#include "ptx/parser.h"

#include <cstring>
#include <unordered_map>

#include "ptx/lexer.h"

namespace tf::ptx {

std::string ast::Instr::text() const {
  std::string s = opcode;
  for (const auto& m : mods) s += m;
  return s;
}

uint32_t typeSizeOf(const std::string& t) {
  static const std::unordered_map<std::string, uint32_t> sizes = {
      {".b8", 1},   {".u8", 1},   {".s8", 1},    {".b16", 2},    {".u16", 2},  {".s16", 2},
      {".f16", 2},  {".bf16", 2}, {".b32", 4},   {".u32", 4},    {".s32", 4},  {".f32", 4},
      {".f16x2", 4}, {".bf16x2", 4}, {".tf32", 4}, {".b64", 8},  {".u64", 8},  {".s64", 8},
      {".f64", 8},  {".b128", 16}, {".pred", 1}, {".e4m3", 1},   {".e5m2", 1}, {".e4m3x2", 2},
      {".e5m2x2", 2},
  };
  auto it = sizes.find(t);
  return it == sizes.end() ? 0 : it->second;
}

namespace {

class Parser {
public:
  explicit Parser(std::vector<Token> toks) : toks_(std::move(toks)) {}

  Result<ast::Module> run() {
    ast::Module m;
    while (!atEnd()) {
      TF_RETURN_IF_ERROR(topLevel(m));
    }
    if (m.versionMajor == 0) return invalidArgument("line 1: missing .version directive");
    return m;
  }

private:
  const Token& peek(size_t k = 0) const {
    size_t i = pos_ + k;
    return i < toks_.size() ? toks_[i] : toks_.back();
  }
  const Token& next() {
    const Token& t = peek();
    if (pos_ < toks_.size() - 1) ++pos_;
    return t;
  }
  bool atEnd() const { return peek().kind == TokKind::End; }
  bool isPunct(char c, size_t k = 0) const { return peek(k).punct() == c; }
  bool isDir(const char* d, size_t k = 0) const {
    return peek(k).kind == TokKind::Directive && peek(k).text == d;
  }
  Status err(const Token& t, const std::string& what) const {
    std::string near = t.kind == TokKind::End ? "end of input" : "'" + t.text + "'";
    return invalidArgument("line " + std::to_string(t.line) + ": " + what + " (near " + near +
                           ")");
  }
  Status expectPunct(char c) {
    if (!isPunct(c)) return err(peek(), std::string("expected '") + c + "'");
    next();
    return Status::ok();
  }
  void skipLine() {
    uint32_t line = peek().line;
    while (!atEnd() && peek().line == line) next();
  }
  Status skipBalancedBraces() {
    TF_RETURN_IF_ERROR(expectPunct('{'));
    int depth = 1;
    while (depth > 0) {
      if (atEnd()) return err(peek(), "unterminated section");
      const Token& t = next();
      if (t.punct() == '{') ++depth;
      if (t.punct() == '}') --depth;
    }
    return Status::ok();
  }
  Result<uint64_t> parseUnsigned() {
    const Token& t = peek();
    if (t.kind != TokKind::Int) return err(t, "expected an integer");
    next();
    return t.intValue;
  }

  Status topLevel(ast::Module& m) {
    const Token& t = peek();
    if (t.kind != TokKind::Directive) {
      if (t.punct() == ';') {
        next();
        return Status::ok();
      }
      return err(t, "unexpected token at module scope");
    }
    const std::string d = t.text;
    if (d == ".version") {
      next();
      const Token& v = next();
      if (v.kind != TokKind::Float && v.kind != TokKind::Int) return err(v, "bad .version");
      auto dot = v.text.find('.');
      m.versionMajor = static_cast<uint32_t>(std::atoi(v.text.c_str()));
      m.versionMinor =
          dot == std::string::npos ? 0 : static_cast<uint32_t>(std::atoi(v.text.c_str() + dot + 1));
      if (m.versionMajor < 1 || m.versionMajor > 9)
        return err(v, "unsupported PTX ISA version " + v.text);
      return Status::ok();
    }
    if (d == ".target") {
      next();
      for (;;) {
        const Token& n = next();
        if (n.kind != TokKind::Ident) return err(n, "bad .target");
        m.targets.push_back(n.text);
        if (!isPunct(',')) break;
        next();
      }
      return Status::ok();
    }
    if (d == ".address_size") {
      next();
      auto v = parseUnsigned();
      if (!v) return v.status();
      if (*v != 64) return err(t, "only .address_size 64 is supported");
      m.addressSize = 64;
      return Status::ok();
    }
    if (d == ".file" || d == ".loc") {
      skipLine();
      return Status::ok();
    }
    if (d == ".section") {
      next();
      next(); // section name
      return skipBalancedBraces();
    }
    if (d == ".pragma") {
      next();
      while (!atEnd() && !isPunct(';')) next();
      return expectPunct(';');
    }
    // linkage
    bool isExtern = false;
    while (isDir(".visible") || isDir(".extern") || isDir(".weak") || isDir(".common")) {
      if (isDir(".extern")) isExtern = true;
      next();
    }
    if (isDir(".entry") || isDir(".func")) return function(m, isExtern);
    if (isDir(".global") || isDir(".const") || isDir(".shared") || isDir(".local")) {
      std::string space = next().text;
      std::vector<ast::VarDecl> vars;
      TF_RETURN_IF_ERROR(varDecl(space, isExtern, /*allowInit=*/true, &vars));
      TF_RETURN_IF_ERROR(expectPunct(';'));
      for (auto& v : vars) m.globals.push_back(std::move(v));
      return Status::ok();
    }
    return err(t, "unsupported module-level directive");
  }

  // After the state space: [.attribute(...)] [.align N] [.v2/.v4] .type [.ptr ...] name... ;
  Status varDecl(const std::string& space, bool isExtern, bool allowInit,
                 std::vector<ast::VarDecl>* out) {
    ast::VarDecl v;
    v.line = peek().line;
    v.space = space;
    v.isExtern = isExtern;
    while (peek().kind == TokKind::Directive) {
      const Token& t = next();
      if (t.text == ".align") {
        auto a = parseUnsigned();
        if (!a) return a.status();
        if (*a == 0 || (*a & (*a - 1)) != 0 || *a > 4096) return err(t, "bad .align");
        v.align = static_cast<uint32_t>(*a);
      } else if (t.text == ".v2" || t.text == ".v4" || t.text == ".v8") {
        v.vec = static_cast<uint32_t>(std::atoi(t.text.c_str() + 2));
      } else if (t.text == ".attribute") {
        TF_RETURN_IF_ERROR(expectPunct('('));
        while (!atEnd() && !isPunct(')')) next();
        TF_RETURN_IF_ERROR(expectPunct(')'));
      } else if (t.text == ".ptr" || t.text == ".global" || t.text == ".shared" ||
                 t.text == ".const" || t.text == ".local") {
        // .param .u64 .ptr .global .align 8 name: pointer attributes, informational only
        if (!v.type.empty()) continue;
        return err(t, "unexpected state space in declaration");
      } else if (typeSizeOf(t.text) != 0) {
        v.type = t.text;
      } else {
        return err(t, "unsupported declaration modifier " + t.text);
      }
    }
    if (v.type.empty()) return err(peek(), "declaration without a type");
    v.typeSize = typeSizeOf(v.type) * v.vec;
    for (;;) {
      ast::VarDecl one = v;
      const Token& nameTok = next();
      if (nameTok.kind != TokKind::Ident) return err(nameTok, "expected a name in declaration");
      one.name = nameTok.text;
      if (isPunct('<')) {
        next();
        auto n = parseUnsigned();
        if (!n) return n.status();
        if (*n > (1u << 20)) return err(nameTok, "register range too large");
        one.regRange = static_cast<uint32_t>(*n);
        TF_RETURN_IF_ERROR(expectPunct('>'));
      }
      while (isPunct('[')) {
        next();
        if (isPunct(']')) {
          next();
          one.unsized = true;
          one.count = 0;
          continue;
        }
        auto n = parseUnsigned();
        if (!n) return n.status();
        if (*n > (1ull << 34)) return err(nameTok, "array too large");
        one.count *= *n;
        TF_RETURN_IF_ERROR(expectPunct(']'));
      }
      if (isPunct('=')) {
        if (!allowInit) return err(peek(), "initialiser not allowed here");
        next();
        one.hasInit = true;
        TF_RETURN_IF_ERROR(initializer(one));
      }
      out->push_back(std::move(one));
      if (!isPunct(',')) break;
      next();
    }
    return Status::ok();
  }

  Status appendValue(ast::VarDecl& v, const std::string& elemType, bool neg, const Token& t) {
    uint32_t size = typeSizeOf(elemType);
    uint8_t buf[8] = {};
    bool isFloat = elemType == ".f32" || elemType == ".f64";
    if (t.kind == TokKind::Int) {
      if (isFloat) {
        double d = static_cast<double>(t.intValue) * (neg ? -1 : 1);
        if (size == 4) {
          float f = static_cast<float>(d);
          std::memcpy(buf, &f, 4);
        } else {
          std::memcpy(buf, &d, 8);
        }
      } else {
        uint64_t x = neg ? (~t.intValue + 1) : t.intValue;
        std::memcpy(buf, &x, 8);
      }
    } else if (t.kind == TokKind::Float) {
      if (size == 4 && t.isF32Bits && !neg) {
        std::memcpy(buf, &t.f32Bits, 4);
      } else if (size == 8 && t.isF64Bits && !neg) {
        std::memcpy(buf, &t.f64Bits, 8);
      } else if (size == 4) {
        float f = static_cast<float>(neg ? -t.floatValue : t.floatValue);
        std::memcpy(buf, &f, 4);
      } else if (size == 8) {
        double d = neg ? -t.floatValue : t.floatValue;
        std::memcpy(buf, &d, 8);
      } else {
        return err(t, "floating initialiser for an integer type");
      }
    } else {
      return err(t, "unsupported initialiser (only numeric constants are supported)");
    }
    v.init.insert(v.init.end(), buf, buf + size);
    return Status::ok();
  }

  Status initItem(ast::VarDecl& v, const std::string& elemType, int depth = 0) {
    if (depth > 16) return err(peek(), "initialiser nested too deeply");
    if (v.init.size() > (64u << 20)) return err(peek(), "initialiser too large");
    if (isPunct('{')) {
      next();
      if (isPunct('}')) {
        next();
        return Status::ok();
      }
      for (;;) {
        TF_RETURN_IF_ERROR(initItem(v, elemType, depth + 1));
        if (isPunct(',')) {
          next();
          continue;
        }
        return expectPunct('}');
      }
    }
    if (peek().kind == TokKind::Ident) {
      // an address: sym, generic(sym), sym+offset
      bool wrapped = false;
      if (peek().text == "generic" && isPunct('(', 1)) {
        next();
        next();
        wrapped = true;
      }
      const Token& sym = next();
      if (sym.kind != TokKind::Ident) return err(sym, "expected a symbol in initialiser");
      int64_t addend = 0;
      if (isPunct('+') && peek(1).kind == TokKind::Int) {
        next();
        addend = static_cast<int64_t>(next().intValue);
      }
      if (wrapped) TF_RETURN_IF_ERROR(expectPunct(')'));
      if (typeSizeOf(elemType) != 8) return err(sym, "address initialiser needs a 64-bit element type");
      v.relocs.push_back({v.init.size(), sym.text, addend});
      v.init.insert(v.init.end(), 8, 0);
      return Status::ok();
    }
    bool neg = false;
    if (isPunct('-')) {
      neg = true;
      next();
    }
    const Token& t = next();
    return appendValue(v, elemType, neg, t);
  }

  Status initializer(ast::VarDecl& v) {
    // element type without vector: initialisers list scalars
    TF_RETURN_IF_ERROR(initItem(v, v.type));
    if (v.unsized) {
      uint32_t es = v.typeSize;
      v.count = es ? (v.init.size() + es - 1) / es : 0;
      v.unsized = false;
    }
    return Status::ok();
  }

  Status paramList(std::vector<ast::VarDecl>* out) {
    TF_RETURN_IF_ERROR(expectPunct('('));
    if (isPunct(')')) {
      next();
      return Status::ok();
    }
    for (;;) {
      const Token& sp = next();
      if (sp.kind != TokKind::Directive || (sp.text != ".param" && sp.text != ".reg"))
        return err(sp, "expected .param in parameter list");
      std::vector<ast::VarDecl> one;
      // parameters are separated by commas, so parse exactly one name each
      ast::VarDecl v;
      size_t before = out->size();
      (void)before;
      TF_RETURN_IF_ERROR(singleParam(sp.text, &v));
      out->push_back(std::move(v));
      if (isPunct(',')) {
        next();
        continue;
      }
      return expectPunct(')');
    }
  }

  Status singleParam(const std::string& space, ast::VarDecl* out) {
    ast::VarDecl v;
    v.line = peek().line;
    v.space = space;
    while (peek().kind == TokKind::Directive) {
      const Token& t = next();
      if (t.text == ".align") {
        auto a = parseUnsigned();
        if (!a) return a.status();
        if (*a == 0 || (*a & (*a - 1)) != 0 || *a > 4096) return err(t, "bad .align");
        v.align = static_cast<uint32_t>(*a);
      } else if (t.text == ".v2" || t.text == ".v4") {
        v.vec = static_cast<uint32_t>(std::atoi(t.text.c_str() + 2));
      } else if (t.text == ".ptr" || t.text == ".global" || t.text == ".shared" ||
                 t.text == ".const" || t.text == ".local") {
        continue;
      } else if (typeSizeOf(t.text) != 0) {
        v.type = t.text;
      } else {
        return err(t, "unsupported parameter modifier " + t.text);
      }
    }
    if (v.type.empty()) return err(peek(), "parameter without a type");
    v.typeSize = typeSizeOf(v.type) * v.vec;
    const Token& nameTok = next();
    if (nameTok.kind != TokKind::Ident) return err(nameTok, "expected a parameter name");
    v.name = nameTok.text;
    while (isPunct('[')) {
      next();
      auto n = parseUnsigned();
      if (!n) return n.status();
      if (*n > (1u << 24)) return err(nameTok, "parameter array too large");
      v.count *= *n;
      TF_RETURN_IF_ERROR(expectPunct(']'));
    }
    *out = std::move(v);
    return Status::ok();
  }

  Status function(ast::Module& m, bool isExtern) {
    ast::Function f;
    const Token& kw = next();
    f.line = kw.line;
    f.isEntry = kw.text == ".entry";
    f.isExtern = isExtern;
    if (!f.isEntry && isPunct('(')) TF_RETURN_IF_ERROR(paramList(&f.rets));
    const Token& nameTok = next();
    if (nameTok.kind != TokKind::Ident) return err(nameTok, "expected a function name");
    f.name = nameTok.text;
    if (isPunct('(')) TF_RETURN_IF_ERROR(paramList(&f.params));
    // performance directives
    while (peek().kind == TokKind::Directive) {
      const Token& d = next();
      if (d.text == ".maxntid" || d.text == ".reqntid") {
        uint32_t* dst = d.text == ".maxntid" ? f.maxntid : f.reqntid;
        for (int i = 0; i < 3; ++i) {
          auto v = parseUnsigned();
          if (!v) return v.status();
          dst[i] = static_cast<uint32_t>(*v);
          if (!isPunct(',')) break;
          next();
        }
      } else if (d.text == ".minnctapersm" || d.text == ".maxnctapersm" || d.text == ".maxnreg" ||
                 d.text == ".maxclusterrank" || d.text == ".reqnctapercluster" ||
                 d.text == ".explicitcluster" || d.text == ".noreturn" ||
                 d.text == ".blocksareclusters" || d.text == ".abi_preserve" ||
                 d.text == ".abi_preserve_control") {
        while (peek().kind == TokKind::Int || isPunct(',')) next();
      } else if (d.text == ".pragma") {
        while (!atEnd() && !isPunct(';')) next();
        TF_RETURN_IF_ERROR(expectPunct(';'));
      } else {
        return err(d, "unsupported function directive");
      }
    }
    if (isPunct(';')) {
      next();
      m.functions.push_back(std::move(f));
      return Status::ok();
    }
    f.hasBody = true;
    TF_RETURN_IF_ERROR(expectPunct('{'));
    TF_RETURN_IF_ERROR(body(f));
    m.functions.push_back(std::move(f));
    return Status::ok();
  }

  Status body(ast::Function& f) {
    int depth = 1;
    for (;;) {
      const Token& t = peek();
      if (atEnd()) return err(t, "unterminated function body of " + f.name);
      if (t.punct() == '}') {
        next();
        if (--depth == 0) return Status::ok();
        ast::Statement s;
        s.kind = ast::Statement::Kind::BlockClose;
        s.line = t.line;
        f.body.push_back(std::move(s));
        continue;
      }
      if (t.punct() == '{') {
        next();
        ++depth;
        ast::Statement s;
        s.kind = ast::Statement::Kind::BlockOpen;
        s.line = t.line;
        f.body.push_back(std::move(s));
        continue;
      }
      if (t.punct() == ';') {
        next();
        continue;
      }
      if (t.kind == TokKind::Directive) {
        if (t.text == ".loc" || t.text == ".file") {
          skipLine();
          continue;
        }
        if (t.text == ".pragma") {
          while (!atEnd() && !isPunct(';')) next();
          TF_RETURN_IF_ERROR(expectPunct(';'));
          continue;
        }
        if (t.text == ".callprototype") {
          while (!atEnd() && !isPunct(';')) next();
          TF_RETURN_IF_ERROR(expectPunct(';'));
          continue;
        }
        if (t.text == ".reg" || t.text == ".local" || t.text == ".shared" || t.text == ".param" ||
            t.text == ".const" || t.text == ".global") {
          std::string space = next().text;
          std::vector<ast::VarDecl> vars;
          TF_RETURN_IF_ERROR(varDecl(space, false, space != ".reg", &vars));
          TF_RETURN_IF_ERROR(expectPunct(';'));
          for (auto& v : vars) {
            ast::Statement s;
            s.kind = ast::Statement::Kind::Var;
            s.line = v.line;
            s.var = std::move(v);
            f.body.push_back(std::move(s));
          }
          continue;
        }
        return err(t, "unsupported directive in function body");
      }
      if (t.kind == TokKind::Ident && isPunct(':', 1)) {
        ast::Statement s;
        s.kind = ast::Statement::Kind::Label;
        s.line = t.line;
        s.label = t.text;
        next();
        next();
        f.body.push_back(std::move(s));
        continue;
      }
      ast::Statement s;
      s.kind = ast::Statement::Kind::Instr;
      s.line = t.line;
      TF_RETURN_IF_ERROR(instruction(s.instr));
      f.body.push_back(std::move(s));
    }
  }

  Status instruction(ast::Instr& in) {
    in.line = peek().line;
    if (isPunct('@')) {
      next();
      if (isPunct('!')) {
        next();
        in.guardNeg = true;
      }
      const Token& p = next();
      if (p.kind != TokKind::Ident) return err(p, "expected a predicate after '@'");
      in.guard = p.text;
    }
    const Token& op = next();
    if (op.kind != TokKind::Ident) return err(op, "expected an instruction");
    in.opcode = op.text;
    while (peek().kind == TokKind::Directive && peek().line == op.line) in.mods.push_back(next().text);
    if (in.opcode == "call") return callOperands(in);
    if (isPunct(';')) {
      next();
      return Status::ok();
    }
    for (;;) {
      ast::Operand o;
      TF_RETURN_IF_ERROR(operand(o));
      in.ops.push_back(std::move(o));
      if (isPunct(',')) {
        next();
        continue;
      }
      return expectPunct(';');
    }
  }

  Status callOperands(ast::Instr& in) {
    in.isCall = true;
    auto list = [&](std::vector<ast::Operand>* out) -> Status {
      TF_RETURN_IF_ERROR(expectPunct('('));
      if (isPunct(')')) {
        next();
        return Status::ok();
      }
      for (;;) {
        ast::Operand o;
        TF_RETURN_IF_ERROR(operand(o));
        out->push_back(std::move(o));
        if (isPunct(',')) {
          next();
          continue;
        }
        return expectPunct(')');
      }
    };
    std::vector<ast::Operand> rets, args;
    if (isPunct('(')) {
      TF_RETURN_IF_ERROR(list(&rets));
      TF_RETURN_IF_ERROR(expectPunct(','));
    }
    ast::Operand callee;
    TF_RETURN_IF_ERROR(operand(callee));
    if (isPunct(',')) {
      next();
      if (isPunct('(')) TF_RETURN_IF_ERROR(list(&args));
      if (isPunct(',')) {
        // prototype or target list for indirect calls
        next();
        ast::Operand proto;
        TF_RETURN_IF_ERROR(operand(proto));
        in.mods.push_back(".__indirect");
      }
    }
    TF_RETURN_IF_ERROR(expectPunct(';'));
    in.callRets = static_cast<int>(rets.size());
    for (auto& r : rets) in.ops.push_back(std::move(r));
    in.ops.push_back(std::move(callee));
    for (auto& a : args) in.ops.push_back(std::move(a));
    return Status::ok();
  }

  Status operand(ast::Operand& o, int depth = 0) {
    const Token& t = peek();
    if (depth > 4) return err(t, "operand nested too deeply");
    if (t.punct() == '[') {
      next();
      o.kind = ast::Operand::Kind::Addr;
      if (peek().kind == TokKind::Ident) {
        o.name = next().text;
        if (peek().kind == TokKind::Directive && peek().text.size() == 2) o.name += next().text;
      } else if (peek().kind == TokKind::Int) {
        o.imm = static_cast<int64_t>(next().intValue);
      } else {
        return err(peek(), "bad address expression");
      }
      while (isPunct('+') || isPunct('-')) {
        bool neg = next().punct() == '-';
        if (isPunct('-')) {
          next();
          neg = !neg;
        }
        const Token& n = next();
        if (n.kind != TokKind::Int) return err(n, "bad address offset");
        uint64_t v = n.intValue;
        o.imm = static_cast<int64_t>(static_cast<uint64_t>(o.imm) + (neg ? 0 - v : v));
      }
      // Texture and surface operands: [tex, {coordinates}] (the one element of `elems`).
      if (isPunct(',')) {
        next();
        ast::Operand coords;
        TF_RETURN_IF_ERROR(operand(coords, depth + 1));
        o.elems.push_back(std::move(coords));
      }
      return expectPunct(']');
    }
    if (t.punct() == '{') {
      next();
      o.kind = ast::Operand::Kind::Vec;
      for (;;) {
        ast::Operand e;
        TF_RETURN_IF_ERROR(operand(e, depth + 1));
        if (o.elems.size() >= 64) return err(peek(), "vector operand too long");
        o.elems.push_back(std::move(e));
        if (isPunct(',')) {
          next();
          continue;
        }
        return expectPunct('}');
      }
    }
    if (t.punct() == '!') {
      next();
      TF_RETURN_IF_ERROR(operand(o, depth + 1));
      o.negated = true;
      return Status::ok();
    }
    if (t.punct() == '-' || t.kind == TokKind::Int || t.kind == TokKind::Float) {
      bool neg = false;
      if (t.punct() == '-') {
        neg = true;
        next();
      }
      const Token& n = next();
      if (n.kind == TokKind::Int) {
        o.kind = ast::Operand::Kind::Imm;
        o.imm = static_cast<int64_t>(neg ? (0 - n.intValue) : n.intValue);
      } else if (n.kind == TokKind::Float) {
        o.kind = ast::Operand::Kind::FImm;
        o.fimm = neg ? -n.floatValue : n.floatValue;
        if (n.isF32Bits) {
          o.hasF32Bits = true;
          o.f32Bits = n.f32Bits ^ (neg ? 0x80000000u : 0u);
        }
        if (n.isF64Bits) {
          o.hasF64Bits = true;
          o.f64Bits = n.f64Bits ^ (neg ? 0x8000000000000000ull : 0ull);
        }
      } else {
        return err(n, "expected a number");
      }
      return Status::ok();
    }
    if (t.kind == TokKind::Ident) {
      next();
      if (t.text == "_") {
        o.kind = ast::Operand::Kind::Sink;
        return Status::ok();
      }
      o.kind = ast::Operand::Kind::Reg;
      o.name = t.text;
      if (peek().kind == TokKind::Directive &&
          (peek().text == ".x" || peek().text == ".y" || peek().text == ".z" ||
           peek().text == ".w")) {
        o.name += next().text;
      }
      if (isPunct('|')) {
        next();
        const Token& p = next();
        if (p.kind != TokKind::Ident) return err(p, "expected a predicate after '|'");
        o.pairPred = p.text;
      }
      // symbol+offset (mov.u64 %rd, sym+8)
      if (isPunct('+') && peek(1).kind == TokKind::Int) {
        next();
        o.kind = ast::Operand::Kind::Addr;
        o.imm = static_cast<int64_t>(next().intValue);
        o.negated = false;
        o.pairPred.clear();
        o.elems.clear();
        o.fimm = 0;
        o.hasF32Bits = false;
        o.name = o.name;
        o.kind = ast::Operand::Kind::Reg; // keep as name; the offset goes in imm
      }
      return Status::ok();
    }
    return err(t, "unexpected token in operand");
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
};

} // namespace

Result<ast::Module> parseModule(std::string_view text) {
  auto toks = tokenize(text);
  if (!toks) return toks.status();
  Parser p(std::move(*toks));
  return p.run();
}

} // namespace tf::ptx
