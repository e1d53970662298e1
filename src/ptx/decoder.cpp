#include "ptx/decoder.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "ptx/function_decoder.h"
#include "ptx/half.h"
#include "ptx/parser.h"

namespace tf::ptx {

// ----- specials -----------------------------------------------------------------------------

bool parseSpecial(const std::string& n, Special* out) {
  static const std::unordered_map<std::string, Special> map = {
      {"%tid.x", Special::TidX},           {"%tid.y", Special::TidY},
      {"%tid.z", Special::TidZ},           {"%ntid.x", Special::NtidX},
      {"%ntid.y", Special::NtidY},         {"%ntid.z", Special::NtidZ},
      {"%ctaid.x", Special::CtaidX},       {"%ctaid.y", Special::CtaidY},
      {"%ctaid.z", Special::CtaidZ},       {"%nctaid.x", Special::NctaidX},
      {"%nctaid.y", Special::NctaidY},     {"%nctaid.z", Special::NctaidZ},
      {"%laneid", Special::LaneId},        {"%warpid", Special::WarpId},
      {"%nwarpid", Special::NWarpId},      {"%smid", Special::SmId},
      {"%nsmid", Special::NSmId},          {"%gridid", Special::GridId},
      {"%lanemask_eq", Special::LanemaskEq}, {"%lanemask_le", Special::LanemaskLe},
      {"%lanemask_lt", Special::LanemaskLt}, {"%lanemask_ge", Special::LanemaskGe},
      {"%lanemask_gt", Special::LanemaskGt}, {"%clock", Special::Clock},
      {"%clock64", Special::Clock64},      {"%globaltimer", Special::GlobalTimer},
      {"%globaltimer_lo", Special::GlobalTimerLo}, {"%globaltimer_hi", Special::GlobalTimerHi},
      {"%dynamic_smem_size", Special::DynSmem}, {"%total_smem_size", Special::TotalSmem},
      {"%cluster_ctarank", Special::ClusterCtaRank}, {"%cluster_nctarank", Special::ClusterNCtaRank},
      {"%cluster_ctaid.x", Special::ClusterCtaidX}, {"%cluster_ctaid.y", Special::ClusterCtaidY},
      {"%cluster_ctaid.z", Special::ClusterCtaidZ}, {"%cluster_nctaid.x", Special::ClusterNCtaidX},
      {"%cluster_nctaid.y", Special::ClusterNCtaidY}, {"%cluster_nctaid.z", Special::ClusterNCtaidZ},
      {"%clusterid.x", Special::ClusterIdX}, {"%clusterid.y", Special::ClusterIdY},
      {"%clusterid.z", Special::ClusterIdZ}, {"%nclusterid.x", Special::NClusterIdX},
      {"%nclusterid.y", Special::NClusterIdY}, {"%nclusterid.z", Special::NClusterIdZ},
      {"%is_explicit_cluster", Special::IsExplicitCluster},
      {"%aggr_smem_size", Special::TotalSmem}, {"%reserved_smem_offset_begin", Special::Zero},
      {"%reserved_smem_offset_end", Special::Zero}, {"%reserved_smem_offset_cap", Special::Zero},
  };
  auto it = map.find(n);
  if (it != map.end()) {
    *out = it->second;
    return true;
  }
  if (n == "%envreg1" || n == "%envreg2") {
    *out = n == "%envreg1" ? Special::EnvReg1 : Special::EnvReg2;
    return true;
  }
  if (n.rfind("%envreg", 0) == 0) {
    *out = Special::EnvReg;
    return true;
  }
  if (n.rfind("%pm", 0) == 0) { // performance monitor counters read as 0
    *out = Special::Zero;
    return true;
  }
  return false;
}

// ----- ModSet -------------------------------------------------------------------------------

ModSet::ModSet(const std::vector<std::string>& mods) : mods_(mods), used_(mods.size(), false) {}

bool ModSet::take(const char* m) {
  for (size_t i = 0; i < mods_.size(); ++i) {
    if (!used_[i] && mods_[i] == m) {
      used_[i] = true;
      return true;
    }
  }
  return false;
}

bool ModSet::takeAny(std::initializer_list<const char*> ms, std::string* which) {
  for (size_t i = 0; i < mods_.size(); ++i) {
    if (used_[i]) continue;
    for (const char* m : ms) {
      if (mods_[i] == m) {
        used_[i] = true;
        if (which) *which = m;
        return true;
      }
    }
  }
  return false;
}

std::vector<Ty> ModSet::takeTypes() {
  std::vector<Ty> out;
  for (size_t i = 0; i < mods_.size(); ++i) {
    if (used_[i]) continue;
    Ty t = parseTy(mods_[i]);
    if (t != Ty::None) {
      used_[i] = true;
      out.push_back(t);
    }
  }
  return out;
}

int ModSet::takeVec() {
  if (take(".v2")) return 2;
  if (take(".v4")) return 4;
  if (take(".v8")) return 8;
  return 1;
}

std::string ModSet::leftover() const {
  for (size_t i = 0; i < mods_.size(); ++i) {
    if (used_[i]) continue;
    const std::string& m = mods_[i];
    // modifiers with no effect on a CPU: cache policy, scopes, memory-order hints, alignment
    static const char* ignorable[] = {
        ".ca", ".cg", ".cs", ".lu", ".cv", ".wb", ".wt", ".nc", ".aligned", ".uni", ".gpu",
        ".sys", ".cta", ".cluster", ".relaxed", ".acquire", ".release", ".acq_rel", ".weak",
        ".volatile", ".mmio", ".sync", ".noftz", ".L2::64B", ".L2::128B", ".L2::256B",
        ".L1::evict_normal", ".L1::evict_unchanged", ".L1::evict_first", ".L1::evict_last",
        ".L1::no_allocate", ".L2::evict_first", ".L2::evict_last", ".L2::evict_normal",
        ".L2::cache_hint", ".shared::cta", ".unified",
    };
    bool ok = false;
    for (const char* ig : ignorable) {
      if (m == ig) {
        ok = true;
        break;
      }
    }
    if (!ok) return m;
  }
  return "";
}

// ----- Builder ------------------------------------------------------------------------------

Builder::Builder(FunctionDecoder& f, const ast::Instr& a) : ai(a), mods(a.mods), fd(f) {
  std::string t = a.text();
  auto& texts = fd.dm.program.texts;
  textId_ = static_cast<uint32_t>(texts.size());
  texts.push_back(std::move(t));
}

const ModuleLayout& Builder::layout() const { return fd.dm.layout; }

const ast::Operand& Builder::op(size_t i) const {
  static const ast::Operand missing = [] {
    ast::Operand o;
    o.kind = ast::Operand::Kind::Sink;
    return o;
  }();
  return i < ai.ops.size() ? ai.ops[i] : missing;
}
bool Builder::inEntry() const { return fd.af.isEntry; }

Status Builder::error(const std::string& what) const {
  return fd.fail(ai.line, what + " in '" + ai.text() + "'");
}
Status Builder::unsupported() const {
  return fd.fail(ai.line, "unsupported instruction '" + ai.text() + "'");
}

Result<Symbol> Builder::lookup(const std::string& name) const { return fd.lookup(name); }

uint32_t Builder::constSlot(uint64_t value) {
  auto it = fd.consts.find(value);
  if (it != fd.consts.end()) return it->second;
  uint32_t s = fd.allocSlot();
  fd.consts[value] = s;
  fd.fn.consts.push_back({s, value});
  return s;
}

uint32_t Builder::scratchSlot() {
  if (fd.scratch == UINT32_MAX) fd.scratch = fd.allocSlot();
  return fd.scratch;
}

uint32_t Builder::tempSlot() {
  if (temps_ >= fd.temps.size()) fd.temps.push_back(fd.allocSlot());
  return fd.temps[temps_++];
}

bool Builder::isReg(size_t i) const {
  if (i >= ai.ops.size() || ai.ops[i].kind != ast::Operand::Kind::Reg) return false;
  auto s = fd.lookup(ai.ops[i].name);
  return s && s->kind == Symbol::Kind::Reg;
}

uint32_t Builder::regWidth(const ast::Operand& o) const {
  if (o.kind != ast::Operand::Kind::Reg) return 0;
  auto s = fd.lookup(o.name);
  if (!s || s->kind != Symbol::Kind::Reg) return 0;
  return s->width;
}

Inst& Builder::emit(Handler h) {
  Inst in;
  in.fn = h;
  in.line = ai.line;
  in.textId = textId_;
  in.pred = fd.guardSlot;
  in.predNeg = fd.guardNeg;
  fd.fn.code.push_back(in);
  fd.flow.push_back(Flow::Normal);
  return fd.fn.code.back();
}

void Builder::branchTo(Inst& in, const std::string& label) {
  uint32_t idx = static_cast<uint32_t>(&in - fd.fn.code.data());
  fd.fixups.push_back({idx, label});
  fd.fixupLines.push_back(ai.line);
}

uint32_t Builder::addCallSite(CallSite cs) {
  fd.fn.calls.push_back(std::move(cs));
  return static_cast<uint32_t>(fd.fn.calls.size() - 1);
}

namespace {

uint64_t encodeInt(int64_t v, Ty t) {
  switch (t) {
  case Ty::F32: return wr<float>(static_cast<float>(v));
  case Ty::F64: return wr<double>(static_cast<double>(v));
  case Ty::F16: return floatToHalf(static_cast<float>(v));
  case Ty::BF16: return floatToBf16(static_cast<float>(v));
  default: return static_cast<uint64_t>(v);
  }
}

uint64_t encodeFloat(const ast::Operand& o, Ty t) {
  switch (t) {
  case Ty::F64: case Ty::B64: case Ty::U64: case Ty::S64:
    if (o.hasF64Bits) return o.f64Bits;
    if (o.hasF32Bits) return wr<double>(static_cast<double>(rd<float>(o.f32Bits)));
    return wr<double>(o.fimm);
  case Ty::F16: case Ty::B16: case Ty::U16: case Ty::S16:
    return floatToHalf(static_cast<float>(o.fimm));
  case Ty::BF16:
    return floatToBf16(static_cast<float>(o.fimm));
  default:
    if (o.hasF32Bits) return o.f32Bits;
    return wr<float>(static_cast<float>(o.fimm));
  }
}

} // namespace

Result<uint32_t> Builder::src(size_t i, Ty t) {
  if (i >= ai.ops.size()) return error("missing operand " + std::to_string(i + 1));
  return srcOp(ai.ops[i], t);
}

Result<uint32_t> Builder::srcOp(const ast::Operand& o, Ty t) {
  using K = ast::Operand::Kind;
  switch (o.kind) {
  case K::Imm: return constSlot(encodeInt(o.imm, t));
  case K::FImm: return constSlot(encodeFloat(o, t));
  case K::Reg: {
    Special sp;
    if (!o.name.empty() && o.name[0] == '%' && parseSpecial(o.name, &sp)) {
      uint32_t tmp = tempSlot();
      Inst& in = emit(hMovSpecial);
      in.pred = 0;
      in.predNeg = 0;
      in.d[0] = tmp;
      in.aux = static_cast<uint32_t>(sp);
      return tmp;
    }
    auto s = fd.lookup(o.name);
    // WARP_SZ is PTX's one predefined constant (the warp size, 32), an immediate wherever used
    if (!s && o.name == "WARP_SZ" && o.imm == 0) return constSlot(encodeInt(32, t));
    if (!s) return s.status();
    switch (s->kind) {
    case Symbol::Kind::Reg:
      if (o.imm != 0) return error("register with an offset '" + o.name + "'");
      return s->slot;
    case Symbol::Kind::Pred: return error("predicate '" + o.name + "' used as a value");
    case Symbol::Kind::Local: {
      uint32_t tmp = tempSlot();
      Inst& in = emit(hMovLocalAddr);
      in.pred = 0;
      in.predNeg = 0;
      in.d[0] = tmp;
      in.imm = static_cast<int64_t>(s->slot) + o.imm;
      return tmp;
    }
    case Symbol::Kind::KernelParam: return constSlot(s->slot + o.imm);
    case Symbol::Kind::Shared: return constSlot(s->slot + o.imm);
    case Symbol::Kind::Global: {
      uint32_t tmp = tempSlot();
      Inst& in = emit(hMovSymAddr);
      in.pred = 0;
      in.predNeg = 0;
      in.d[0] = tmp;
      in.aux = s->slot;
      in.imm = o.imm;
      return tmp;
    }
    case Symbol::Kind::Function:
      if (s->slot & 0x8000'0000u) return error("address of builtin function '" + o.name + "'");
      return constSlot(kFuncWindow + 16ull * s->slot + static_cast<uint64_t>(o.imm));
    }
    return error("bad operand");
  }
  case K::Sink: return error("'_' used as a source");
  case K::Vec: return error("vector operand where a scalar is expected");
  case K::Addr: return error("address operand where a value is expected");
  }
  return error("bad operand");
}

Result<uint32_t> Builder::dst(size_t i) {
  if (i >= ai.ops.size()) return error("missing operand " + std::to_string(i + 1));
  return dstOp(ai.ops[i]);
}

Result<uint32_t> Builder::dstOp(const ast::Operand& o) {
  if (o.kind == ast::Operand::Kind::Sink) return scratchSlot();
  if (o.kind != ast::Operand::Kind::Reg) return error("destination must be a register");
  auto s = fd.lookup(o.name);
  if (!s) return s.status();
  if (s->kind != Symbol::Kind::Reg) return error("destination '" + o.name + "' is not a register");
  return s->slot;
}

Result<uint32_t> Builder::predByName(const std::string& name) {
  auto s = fd.lookup(name);
  if (!s) return s.status();
  if (s->kind != Symbol::Kind::Pred) return error("'" + name + "' is not a predicate");
  return s->slot;
}

Result<uint32_t> Builder::predSrc(size_t i, bool* negated) {
  if (i >= ai.ops.size()) return error("missing operand " + std::to_string(i + 1));
  const auto& o = ai.ops[i];
  if (negated) *negated = o.negated;
  else if (o.negated) return error("negated predicate not allowed here");
  if (o.kind == ast::Operand::Kind::Imm) {
    // constant predicate: 1 -> slot 0 (always true); 0 -> a slot that stays false
    if (o.imm != 0) return 0u;
    auto it = fd.consts.find(0xFFFF'FFFF'0000'0000ull);
    if (it != fd.consts.end()) return it->second;
    uint32_t p = fd.allocPred();
    fd.consts[0xFFFF'FFFF'0000'0000ull] = p;
    return p;
  }
  if (o.kind != ast::Operand::Kind::Reg) return error("expected a predicate");
  return predByName(o.name);
}

Result<uint32_t> Builder::predDst(size_t i) {
  if (i >= ai.ops.size()) return error("missing operand " + std::to_string(i + 1));
  const auto& o = ai.ops[i];
  if (o.kind == ast::Operand::Kind::Sink) {
    return fd.allocPred(); // discarded
  }
  if (o.kind != ast::Operand::Kind::Reg) return error("expected a predicate destination");
  return predByName(o.name);
}

Result<Builder::Addr> Builder::addr(size_t i, const std::string& space) {
  if (i >= ai.ops.size()) return error("missing address operand");
  const auto& o = ai.ops[i];
  if (o.kind != ast::Operand::Kind::Addr) return error("expected an address [..]");
  Addr a{0, o.imm, false};
  if (o.name.empty()) {
    a.slot = constSlot(0);
    return a;
  }
  auto s = fd.lookup(o.name);
  if (!s) return s.status();
  switch (s->kind) {
  case Symbol::Kind::Reg:
    a.slot = s->slot;
    a.is32 = s->width < 8;
    return a;
  case Symbol::Kind::Pred: return error("predicate used as an address");
  case Symbol::Kind::Function: return error("function used as an address");
  case Symbol::Kind::Local: {
    uint32_t tmp = tempSlot();
    Inst& in = emit(hMovLocalAddr);
    in.pred = 0;
    in.predNeg = 0;
    in.d[0] = tmp;
    in.imm = s->slot;
    in.aux = space.empty() ? 1 : 0; // generic address wanted
    a.slot = tmp;
    return a;
  }
  case Symbol::Kind::KernelParam:
    a.slot = constSlot((space.empty() ? kParamWindow : 0) + s->slot);
    return a;
  case Symbol::Kind::Shared:
    a.slot = constSlot((space.empty() ? kSharedWindow : 0) + s->slot);
    return a;
  case Symbol::Kind::Global: {
    uint32_t tmp = tempSlot();
    Inst& in = emit(hMovSymAddr);
    in.pred = 0;
    in.predNeg = 0;
    in.d[0] = tmp;
    in.aux = s->slot;
    a.slot = tmp;
    return a;
  }
  }
  return error("bad address");
}

// ----- FunctionDecoder ----------------------------------------------------------------------

FunctionDecoder::FunctionDecoder(DecodedModule& d, const ast::Function& a, Function& f,
                                 const std::unordered_map<std::string, DecodeFn>& r)
    : dm(d), af(a), fn(f), registry(r) {}

Status FunctionDecoder::fail(uint32_t line, const std::string& what) const {
  return invalidArgument(dm.program.moduleName + ":" + std::to_string(line) + ": " + what);
}

uint32_t FunctionDecoder::allocLocal(uint64_t size, uint32_t align) {
  if (align == 0) align = 1;
  uint32_t off = (fn.localBytes + align - 1) & ~(align - 1);
  fn.localBytes = off + static_cast<uint32_t>(size);
  return off;
}

Result<Symbol> FunctionDecoder::lookup(const std::string& name) const {
  for (auto it = scopes.rbegin(); it != scopes.rend(); ++it) {
    auto f = it->find(name);
    if (f != it->end()) return f->second;
  }
  auto g = dm.layout.globals.find(name);
  if (g != dm.layout.globals.end()) return g->second;
  return notFound("unknown name '" + name + "'");
}

Status FunctionDecoder::declare(const ast::VarDecl& v) {
  auto& scope = scopes.back();
  if (v.space == ".reg") {
    if (v.vec != 1) return fail(v.line, "vector registers are not supported");
    Ty t = parseTy(v.type);
    auto add = [&](const std::string& name) {
      Symbol s;
      s.type = t;
      if (t == Ty::Pred) {
        s.kind = Symbol::Kind::Pred;
        s.slot = allocPred();
      } else {
        s.kind = Symbol::Kind::Reg;
        s.slot = allocSlot();
        s.width = tySize(t);
      }
      scope[name] = s;
    };
    if (t == Ty::B128) return fail(v.line, ".b128 registers are not supported");
    if (v.regRange) {
      for (uint32_t i = 0; i < v.regRange; ++i) add(v.name + std::to_string(i));
      fn.declaredRegs += v.regRange;
    } else {
      add(v.name);
      fn.declaredRegs += 1;
    }
    return Status::ok();
  }
  if (v.space == ".local" || v.space == ".param") {
    uint64_t size = uint64_t(v.typeSize) * (v.count ? v.count : 1);
    if (size > (1u << 24)) return fail(v.line, "local variable too large");
    uint32_t align = v.align ? v.align : std::max<uint32_t>(1, v.typeSize);
    Symbol s;
    s.kind = Symbol::Kind::Local;
    s.slot = allocLocal(size, align);
    scope[v.name] = s;
    return Status::ok();
  }
  if (v.space == ".shared") {
    auto g = dm.layout.globals.find(af.name + "::" + v.name);
    if (g == dm.layout.globals.end()) return fail(v.line, "internal: shared variable not laid out");
    scope[v.name] = g->second;
    return Status::ok();
  }
  return fail(v.line, "unsupported declaration of " + v.space + " variable '" + v.name +
                          "' inside a function");
}

Status FunctionDecoder::run() {
  scopes.emplace_back();
  fn.name = af.name;
  fn.isEntry = af.isEntry;
  fn.numPreds = 1;
  // parameters
  if (af.isEntry) {
    uint32_t off = 0;
    for (const auto& p : af.params) {
      uint32_t align = p.align ? p.align : std::max<uint32_t>(1, typeSizeOf(p.type));
      off = (off + align - 1) & ~(align - 1);
      Symbol s;
      s.kind = Symbol::Kind::KernelParam;
      s.slot = off;
      scopes.back()[p.name] = s;
      off += p.typeSize * static_cast<uint32_t>(p.count ? p.count : 1);
    }
  } else {
    for (size_t i = 0; i < af.params.size(); ++i) {
      Symbol s;
      s.kind = Symbol::Kind::Local;
      s.slot = fn.paramOffsets[i];
      scopes.back()[af.params[i].name] = s;
    }
    for (size_t i = 0; i < af.rets.size(); ++i) {
      Symbol s;
      s.kind = Symbol::Kind::Local;
      s.slot = fn.retOffsets[i];
      scopes.back()[af.rets[i].name] = s;
    }
  }
  // body
  for (const auto& st : af.body) {
    switch (st.kind) {
    case ast::Statement::Kind::Var: TF_RETURN_IF_ERROR(declare(st.var)); break;
    case ast::Statement::Kind::BlockOpen: scopes.emplace_back(); break;
    case ast::Statement::Kind::BlockClose:
      if (scopes.size() <= 1) return fail(st.line, "unbalanced '}'");
      scopes.pop_back();
      break;
    case ast::Statement::Kind::Label:
      if (labels.count(st.label)) return fail(st.line, "duplicate label '" + st.label + "'");
      labels[st.label] = static_cast<uint32_t>(fn.code.size());
      break;
    case ast::Statement::Kind::Instr: {
      const auto& ai = st.instr;
      guardSlot = 0;
      guardNeg = 0;
      if (!ai.guard.empty()) {
        auto s = lookup(ai.guard);
        if (!s || s->kind != Symbol::Kind::Pred)
          return fail(ai.line, "guard '" + ai.guard + "' is not a predicate");
        guardSlot = s->slot;
        guardNeg = ai.guardNeg ? ~0u : 0u;
      }
      auto it = registry.find(ai.opcode);
      if (it == registry.end())
        return fail(ai.line, "unsupported instruction '" + ai.text() + "'");
      Builder b(*this, ai);
      size_t before = fn.code.size();
      Status st = it->second(b);
      if (!st) {
        if (st.message().rfind(dm.program.moduleName + ":", 0) == 0) return st;
        return fail(ai.line, st.message() + " in '" + ai.text() + "'");
      }
      if (fn.code.size() == before) {
        // nothing to execute (e.g. a hint); keep a label target valid
      }
      std::string left = b.mods.leftover();
      if (!left.empty())
        return fail(ai.line, "unsupported modifier '" + left + "' in '" + ai.text() + "'");
      break;
    }
    }
  }
  // implicit return at the end
  {
    Inst in;
    in.fn = hRet;
    in.line = af.body.empty() ? af.line : af.body.back().line;
    in.textId = 0;
    fn.code.push_back(in);
    flow.push_back(Flow::Exit);
  }
  for (size_t i = 0; i < fn.code.size(); ++i) fn.code[i].next = static_cast<uint32_t>(i + 1);
  for (size_t k = 0; k < fixups.size(); ++k) {
    auto it = labels.find(fixups[k].second);
    if (it == labels.end())
      return fail(fixupLines[k], "unknown label '" + fixups[k].second + "'");
    fn.code[fixups[k].first].target = it->second;
  }
  auto rpc = computeReconvergence(fn.code, flow);
  for (size_t i = 0; i < fn.code.size(); ++i) {
    if (flow[i] == Flow::Branch) fn.code[i].rpc = rpc[i];
  }
  if (fn.numSlots == 0) fn.numSlots = 1;
  if (fn.numSlots > (1u << 16) || fn.numPreds > (1u << 16))
    return fail(af.line, "function '" + af.name + "' uses too many registers");
  return Status::ok();
}

// ----- post-dominators ----------------------------------------------------------------------

std::vector<uint32_t> computeReconvergence(const std::vector<Inst>& code,
                                           const std::vector<Flow>& flow) {
  const uint32_t n = static_cast<uint32_t>(code.size());
  const uint32_t exitNode = n;
  std::vector<std::vector<uint32_t>> succ(n + 1), pred(n + 1);
  for (uint32_t i = 0; i < n; ++i) {
    auto add = [&](uint32_t s) {
      if (s > n) s = n;
      succ[i].push_back(s);
      pred[s].push_back(i);
    };
    bool guarded = code[i].pred != 0 || code[i].predNeg != 0;
    switch (flow[i]) {
    case Flow::Normal: add(i + 1); break;
    case Flow::Branch:
      add(code[i].target);
      if (guarded) add(i + 1);
      break;
    case Flow::Exit:
      add(exitNode);
      if (guarded) add(i + 1);
      break;
    }
  }
  // reverse post-order of the reverse graph from the exit
  std::vector<uint32_t> order;
  std::vector<uint32_t> po(n + 1, UINT32_MAX);
  {
    std::vector<uint8_t> seen(n + 1, 0);
    std::vector<std::pair<uint32_t, size_t>> stack;
    stack.push_back({exitNode, 0});
    seen[exitNode] = 1;
    while (!stack.empty()) {
      auto& [v, k] = stack.back();
      if (k < pred[v].size()) {
        uint32_t u = pred[v][k++];
        if (!seen[u]) {
          seen[u] = 1;
          stack.push_back({u, 0});
        }
      } else {
        po[v] = static_cast<uint32_t>(order.size());
        order.push_back(v);
        stack.pop_back();
      }
    }
  }
  std::vector<uint32_t> idom(n + 1, UINT32_MAX);
  idom[exitNode] = exitNode;
  auto intersect = [&](uint32_t a, uint32_t b) {
    while (a != b) {
      while (po[a] < po[b]) a = idom[a];
      while (po[b] < po[a]) b = idom[b];
    }
    return a;
  };
  bool changed = true;
  while (changed) {
    changed = false;
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      uint32_t v = *it;
      if (v == exitNode) continue;
      uint32_t nd = UINT32_MAX;
      for (uint32_t s : succ[v]) {
        if (idom[s] == UINT32_MAX) continue;
        nd = nd == UINT32_MAX ? s : intersect(s, nd);
      }
      if (nd != idom[v]) {
        idom[v] = nd;
        changed = true;
      }
    }
  }
  std::vector<uint32_t> rpc(n, kNoRpc);
  for (uint32_t i = 0; i < n; ++i) {
    if (idom[i] != UINT32_MAX && idom[i] != exitNode) rpc[i] = idom[i];
  }
  return rpc;
}

// ----- module -------------------------------------------------------------------------------

namespace {

const std::unordered_map<std::string, DecodeFn>& registry() {
  static const auto* r = [] {
    auto* m = new std::unordered_map<std::string, DecodeFn>();
    registerIntOps(*m);
    registerFloatOps(*m);
    registerMemOps(*m);
    registerCtrlOps(*m);
    registerWarpOps(*m);
    registerMovOps(*m);
    registerMmaOps(*m);
    registerAsyncOps(*m);
    registerTexOps(*m);
    return m;
  }();
  return *r;
}

Status modFail(const std::string& name, uint32_t line, const std::string& what) {
  return invalidArgument(name + ":" + std::to_string(line) + ": " + what);
}

int builtinId(const std::string& name) {
  if (name == "vprintf") return 1;
  if (name == "__assertfail") return 2;
  if (name == "malloc") return 3;
  if (name == "free") return 4;
  return 0;
}

} // namespace

Result<std::unique_ptr<DecodedModule>> decodeModule(const ast::Module& m, const std::string& name,
                                                    bool lazy) {
  auto dm = std::make_unique<DecodedModule>();
  dm->program.moduleName = name;
  dm->program.texts.push_back("ret");
  auto& L = dm->layout;
  // module variables
  uint32_t sharedOff = 0, maxSharedAlign = 16;
  std::vector<std::pair<std::string, const ast::VarDecl*>> externShared;
  auto layoutShared = [&](const std::string& key, const ast::VarDecl& v) -> Status {
    uint32_t align = v.align ? v.align : std::max<uint32_t>(1, v.typeSize);
    maxSharedAlign = std::max(maxSharedAlign, align);
    if (v.isExtern || v.unsized) {
      externShared.push_back({key, &v});
      return Status::ok();
    }
    uint64_t size = uint64_t(v.typeSize) * v.count;
    sharedOff = (sharedOff + align - 1) & ~(align - 1);
    if (sharedOff + size > (1u << 30)) return modFail(name, v.line, "shared memory too large");
    Symbol s;
    s.kind = Symbol::Kind::Shared;
    s.slot = sharedOff;
    if (L.globals.count(key)) return modFail(name, v.line, "duplicate symbol '" + v.name + "'");
    L.globals[key] = s;
    sharedOff += static_cast<uint32_t>(size);
    return Status::ok();
  };
  for (const auto& v : m.globals) {
    if (v.space == ".shared") {
      TF_RETURN_IF_ERROR(layoutShared(v.name, v));
      continue;
    }
    if (v.space == ".local") return modFail(name, v.line, "module-scope .local is not supported");
    if (L.globals.count(v.name)) {
      if (v.isExtern) continue;
      return modFail(name, v.line, "duplicate symbol '" + v.name + "'");
    }
    if (v.isExtern) return modFail(name, v.line, "unresolved extern variable '" + v.name + "'");
    if (uint64_t(v.typeSize) * v.count > (1ull << 32))
      return modFail(name, v.line, "variable '" + v.name + "' is larger than 4 GiB");
    cuda::GlobalVariable g;
    g.name = v.name;
    g.size = uint64_t(v.typeSize) * v.count;
    g.align = v.align ? v.align : std::max<uint32_t>(1, v.typeSize);
    g.isConst = v.space == ".const";
    if (v.hasInit) {
      g.initializer = v.init;
      if (g.initializer.size() > g.size) g.initializer.resize(g.size);
      if (g.size > g.initializer.size()) g.initializer.resize(g.size, 0);
    }
    Symbol s;
    s.kind = Symbol::Kind::Global;
    s.slot = static_cast<uint32_t>(L.vars.size());
    L.globals[v.name] = s;
    L.vars.push_back(std::move(g));
  }
  for (const auto& f : m.functions) {
    for (const auto& st : f.body) {
      if (st.kind == ast::Statement::Kind::Var && st.var.space == ".shared")
        TF_RETURN_IF_ERROR(layoutShared(f.name + "::" + st.var.name, st.var));
    }
  }
  L.staticShared = sharedOff;
  L.dynamicSharedOffset = (sharedOff + maxSharedAlign - 1) & ~(maxSharedAlign - 1);
  for (auto& [key, v] : externShared) {
    Symbol s;
    s.kind = Symbol::Kind::Shared;
    s.slot = L.dynamicSharedOffset;
    L.globals[key] = s;
  }
  // functions: one Program function per body; declarations resolve to bodies or builtins
  std::unordered_map<std::string, const ast::Function*> bodies;
  for (const auto& f : m.functions) {
    if (f.hasBody) {
      if (bodies.count(f.name)) return modFail(name, f.line, "duplicate function '" + f.name + "'");
      bodies[f.name] = &f;
    }
  }
  for (const auto& f : m.functions) {
    if (!f.hasBody && !bodies.count(f.name) && builtinId(f.name) == 0 && !f.isEntry)
      return modFail(name, f.line, "unresolved extern function '" + f.name + "'");
  }
  for (const auto& f : m.functions) {
    if (!f.hasBody) continue;
    Symbol s;
    s.kind = Symbol::Kind::Function;
    s.slot = static_cast<uint32_t>(L.functions.size());
    if (L.globals.count(f.name)) return modFail(name, f.line, "duplicate symbol '" + f.name + "'");
    L.globals[f.name] = s;
    L.functions.push_back(&f);
  }
  for (const auto& f : m.functions) {
    if (!f.hasBody && builtinId(f.name) != 0 && !L.globals.count(f.name)) {
      Symbol s;
      s.kind = Symbol::Kind::Function;
      s.slot = 0x8000'0000u | static_cast<uint32_t>(builtinId(f.name));
      L.globals[f.name] = s;
    }
  }
  // addresses in initialisers: functions and shared variables are known now, global variables
  // once bound (applied at the first launch)
  {
    std::unordered_map<std::string, const ast::VarDecl*> declByName;
    for (const auto& v : m.globals) declByName[v.name] = &v;
    for (uint32_t vi = 0; vi < L.vars.size(); ++vi) {
      const ast::VarDecl* d = declByName[L.vars[vi].name];
      if (!d) continue;
      for (const auto& r : d->relocs) {
        auto it = L.globals.find(r.symbol);
        if (it == L.globals.end())
          return modFail(name, d->line, "unknown symbol '" + r.symbol + "' in initialiser of '" + d->name + "'");
        uint64_t value = 0;
        const Symbol& sym = it->second;
        if (sym.kind == Symbol::Kind::Function && !(sym.slot & 0x8000'0000u)) {
          value = kFuncWindow + 16ull * sym.slot + static_cast<uint64_t>(r.addend);
        } else if (sym.kind == Symbol::Kind::Shared) {
          value = kSharedWindow + sym.slot + static_cast<uint64_t>(r.addend);
        } else if (sym.kind == Symbol::Kind::Global) {
          L.relocs.push_back({vi, r.offset, sym.slot, r.addend});
          continue;
        } else {
          return modFail(name, d->line, "unsupported address of '" + r.symbol + "' in initialiser");
        }
        auto& init = L.vars[vi].initializer;
        if (init.size() < r.offset + 8) init.resize(r.offset + 8, 0);
        std::memcpy(init.data() + r.offset, &value, 8);
      }
    }
  }
  auto& fns = dm->program.functions;
  fns.resize(L.functions.size());
  // parameter frames of .func (callers copy into them)
  for (size_t i = 0; i < L.functions.size(); ++i) {
    const auto& af = *L.functions[i];
    auto& fn = fns[i];
    if (af.isEntry) continue;
    auto place = [&](const ast::VarDecl& p, std::vector<uint32_t>& offs,
                     std::vector<uint32_t>& sizes) {
      uint32_t align = p.align ? p.align : std::max<uint32_t>(1, typeSizeOf(p.type));
      uint32_t size = p.typeSize * static_cast<uint32_t>(p.count ? p.count : 1);
      uint32_t off = (fn.localBytes + align - 1) & ~(align - 1);
      fn.localBytes = off + size;
      offs.push_back(off);
      sizes.push_back(size);
    };
    for (const auto& p : af.params) place(p, fn.paramOffsets, fn.paramSizes);
    for (const auto& p : af.rets) place(p, fn.retOffsets, fn.retSizes);
  }
  std::vector<std::string> failed(L.functions.size()); // lazy: why a function cannot run
  for (size_t i = 0; i < L.functions.size(); ++i) {
    FunctionDecoder fd(*dm, *L.functions[i], fns[i], registry());
    Status st = fd.run();
    if (!st.isOk()) {
      if (!lazy) return st;
      failed[i] = st.message();
      fns[i].code.clear(); // never run: launches that can reach it are refused
      fns[i].calls.clear();
    }
    fns[i].localBytes = (fns[i].localBytes + 15) & ~15u;
  }
  // call graph: stack needs and recursion
  const size_t nf = fns.size();
  dm->chainLocal.assign(nf, 0);
  std::vector<int> state(nf, 0); // 0 new, 1 visiting, 2 done
  std::function<uint32_t(size_t)> visit = [&](size_t i) -> uint32_t {
    if (state[i] == 2) return dm->chainLocal[i];
    if (state[i] == 1) {
      dm->recursive = true;
      return 0;
    }
    state[i] = 1;
    uint32_t worst = 0;
    for (const auto& cs : fns[i].calls) {
      if (cs.callee >= 0) worst = std::max(worst, visit(static_cast<size_t>(cs.callee)));
      if (cs.indirect) dm->recursive = true; // unknown callee: size the stack like recursion
    }
    state[i] = 2;
    dm->chainLocal[i] = fns[i].localBytes + worst;
    return dm->chainLocal[i];
  };
  for (size_t i = 0; i < nf; ++i) {
    visit(i);
    dm->maxFrameLocal = std::max(dm->maxFrameLocal, fns[i].localBytes);
    dm->maxFrameSlots = std::max(dm->maxFrameSlots, fns[i].numSlots);
    dm->maxFramePreds = std::max(dm->maxFramePreds, fns[i].numPreds);
  }
  // kernels
  for (size_t i = 0; i < L.functions.size(); ++i) {
    const auto& af = *L.functions[i];
    if (!af.isEntry) continue;
    cuda::KernelInfo k;
    k.name = af.name;
    uint32_t off = 0;
    for (const auto& p : af.params) {
      uint32_t align = p.align ? p.align : std::max<uint32_t>(1, typeSizeOf(p.type));
      uint32_t size = p.typeSize * static_cast<uint32_t>(p.count ? p.count : 1);
      off = (off + align - 1) & ~(align - 1);
      k.params.push_back({off, size, align});
      off += size;
    }
    k.paramBytes = off;
    k.staticSharedBytes = L.staticShared;
    k.localBytes = dm->chainLocal[i];
    k.numRegs = std::min<uint32_t>(255, std::max<uint32_t>(fns[i].declaredRegs, 1));
    if (af.maxntid[0]) {
      k.maxThreadsPerBlock = af.maxntid[0] * std::max(1u, af.maxntid[1]) * std::max(1u, af.maxntid[2]);
    }
    if (af.reqntid[0]) {
      for (int d = 0; d < 3; ++d) k.reqNtid[d] = std::max(1u, af.reqntid[d]);
      k.maxThreadsPerBlock = k.reqNtid[0] * k.reqNtid[1] * k.reqNtid[2];
    }
    dm->kernelFunction.push_back(static_cast<int>(i));
    // The first failed function this kernel can reach (calls, transitively).
    std::string why;
    if (lazy) {
      std::vector<char> seen(fns.size(), 0);
      std::vector<size_t> todo{i};
      while (!todo.empty() && why.empty()) {
        size_t f = todo.back();
        todo.pop_back();
        if (seen[f]) continue;
        seen[f] = 1;
        if (!failed[f].empty()) why = failed[f];
        for (const auto& cs : fns[f].calls)
          if (cs.callee >= 0) todo.push_back(static_cast<size_t>(cs.callee));
      }
    }
    k.unsupported = std::move(why);
    dm->kernels.push_back(std::move(k));
  }
  return dm;
}

} // namespace tf::ptx
