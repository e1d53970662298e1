// Control flow: bra, call/ret, exit, trap, barriers; builtins behind call (vprintf,
// __assertfail, malloc/free).
#include <cstdio>

#include "ptx/function_decoder.h"
#include "ptx/ops_common.h"
#include "ptx/printf.h"

namespace tf::ptx {

namespace {

uint32_t hBra(Warp& w, const Inst& in, uint32_t m) {
  if (m == 0) return in.next;
  if (m == w.active) {
    // a long-running loop lets the other warps (and CTAs of a cooperative grid) run now and
    // then, so spin-waits on memory written by them complete
    if (in.target < in.next && --w.loopBudget == 0) [[unlikely]] {
      w.loopBudget = 1u << 14;
      w.pc = in.target;
      w.yielded = true;
      return kPcStop;
    }
    return in.target;
  }
  // divergence: the taken lanes run first; both paths meet again at in.rpc
  const uint32_t nt = w.active & ~m;
  StackEntry& top = w.stack.back();
  if (top.rpc == in.rpc) {
    top.pc = in.next;
    top.mask = nt;
  } else {
    top.pc = in.rpc;
    top.mask = w.active;
    w.stack.push_back({in.next, nt, in.rpc});
  }
  w.stack.push_back({in.target, m, in.rpc});
  w.active = m;
  w.rpc = in.rpc;
  return in.target;
}

Status dBra(Builder& b) {
  b.mods.take(".uni");
  if (b.numOps() != 1 || b.op(0).kind != ast::Operand::Kind::Reg) return b.error("bra needs a label");
  Inst& in = b.emit(hBra);
  b.branchTo(in, b.op(0).name);
  b.fd.flow.back() = Flow::Branch;
  return Status::ok();
}

uint32_t exitLanes(Warp& w, const Inst& in, uint32_t m) {
  w.exited |= m;
  w.active &= ~m;
  if (w.active) return in.next;
  popEntry(w);
  return w.state == Warp::State::Done ? kPcStop : kPcReload;
}

uint32_t hExit(Warp& w, const Inst& in, uint32_t m) {
  if (m == 0) return in.next;
  return exitLanes(w, in, m);
}

Status dExit(Builder& b) {
  b.emit(hExit);
  b.fd.flow.back() = Flow::Exit;
  return Status::ok();
}
Status dRet(Builder& b) {
  b.mods.take(".uni");
  b.emit(hRet);
  b.fd.flow.back() = Flow::Exit;
  return Status::ok();
}

uint32_t hTrap(Warp& w, const Inst& in, uint32_t m) {
  if (m == 0) return in.next;
  return faultStop(w, in, CUDA_ERROR_LAUNCH_FAILED, "trap instruction executed");
}
Status dTrap(Builder& b) {
  b.emit(hTrap);
  b.fd.flow.back() = Flow::Exit;
  return Status::ok();
}

// ----- calls ----------------------------------------------------------------------------------

inline uint8_t* laneLocal(Warp& w, uint32_t lane, uint32_t off) {
  return w.cta->local + (uint64_t(w.id) * 32 + lane) * w.cta->stackBytes + off;
}

uint64_t readArg(Warp& w, uint32_t lane, const CallSite& cs, size_t k) {
  uint64_t v = 0;
  if (k < cs.args.size()) {
    std::memcpy(&v, laneLocal(w, lane, w.localBase + cs.args[k].callerOffset),
                std::min<uint32_t>(8, cs.args[k].size));
  }
  return v;
}
void writeRet(Warp& w, uint32_t lane, const CallSite& cs, uint32_t value) {
  if (!cs.rets.empty()) {
    uint64_t v = value;
    std::memcpy(laneLocal(w, lane, w.localBase + cs.rets[0].callerOffset), &v,
                std::min<uint32_t>(8, cs.rets[0].size));
  }
}

std::string readCString(Warp& w, uint32_t lane, uint64_t addr, const Inst& in, bool* ok) {
  std::string s;
  *ok = true;
  for (int k = 0; k < 65536; ++k) {
    uint8_t* p = genericPtr(w, lane, addr + k, 1, in);
    if (!p) {
      *ok = false;
      return s;
    }
    if (*p == 0) break;
    s.push_back(static_cast<char>(*p));
  }
  return s;
}

uint32_t callBuiltin(Warp& w, const Inst& in, uint32_t m, const CallSite& cs) {
  bool bad = false;
  switch (cs.builtin) {
  case 1: { // vprintf(fmt, args)
    forLanes(m, [&](uint32_t i) {
      if (bad) return;
      uint64_t fmt = readArg(w, i, cs, 0), args = readArg(w, i, cs, 1);
      bool ok = true;
      std::string f = readCString(w, i, fmt, in, &ok);
      if (!ok) {
        bad = true;
        return;
      }
      std::string out;
      int n = formatDevicePrintf(w, i, f, args, in, &out);
      if (n < 0) {
        bad = true;
        return;
      }
      printfOutput(out);
      writeRet(w, i, cs, static_cast<uint32_t>(n));
    });
    return bad ? kPcStop : in.next;
  }
  case 2: { // __assertfail(message, file, line, function, charSize)
    uint32_t i = static_cast<uint32_t>(__builtin_ctz(m));
    bool ok1 = true, ok2 = true, ok3 = true;
    std::string msg = readCString(w, i, readArg(w, i, cs, 0), in, &ok1);
    std::string file = readCString(w, i, readArg(w, i, cs, 1), in, &ok2);
    uint32_t line = static_cast<uint32_t>(readArg(w, i, cs, 2));
    std::string func = readCString(w, i, readArg(w, i, cs, 3), in, &ok3);
    if (!ok1 || !ok2 || !ok3) return kPcStop;
    uint32_t t = w.id * 32 + i;
    const auto& bd = w.launch->block;
    std::string text = file + ":" + std::to_string(line) + ": " + func + ": block [" +
                       std::to_string(w.cta->ctaid[0]) + "," + std::to_string(w.cta->ctaid[1]) + "," +
                       std::to_string(w.cta->ctaid[2]) + "], thread [" + std::to_string(t % bd.x) + "," +
                       std::to_string((t / bd.x) % bd.y) + "," + std::to_string(t / (bd.x * bd.y)) +
                       "] Assertion `" + msg + "` failed.";
    std::fprintf(stderr, "%s\n", text.c_str());
    return faultStop(w, in, CUDA_ERROR_ASSERT, text);
  }
  case 3: // malloc: there is no device heap; a real device returns NULL when it is exhausted
    forLanes(m, [&](uint32_t i) {
      if (!cs.rets.empty()) {
        uint64_t z = 0;
        std::memcpy(laneLocal(w, i, w.localBase + cs.rets[0].callerOffset), &z,
                    std::min<uint32_t>(8, cs.rets[0].size));
      }
    });
    return in.next;
  default: // free
    return in.next;
  }
}

constexpr uint32_t kMaxCallDepth = 128;

uint32_t hCall(Warp& w, const Inst& in, uint32_t m) {
  if (m == 0) return in.next;
  const CallSite& cs = w.fn->calls[in.aux];
  if (cs.builtin) return callBuiltin(w, in, m, cs);
  size_t calleeIndex = static_cast<size_t>(cs.callee);
  bool split = false;
  if (cs.indirect) {
    // lanes may call different functions: call the first lane's target with the lanes that
    // share it, and come back to this instruction for the others
    const uint64_t* t = TF_REG(cs.targetSlot);
    uint32_t first = static_cast<uint32_t>(__builtin_ctz(m));
    uint64_t target = t[first];
    uint32_t same = 0;
    forLanes(m, [&](uint32_t i) {
      if (t[i] == target) same |= 1u << i;
    });
    uint64_t idx = (target - kFuncWindow) / 16;
    if (target < kFuncWindow || (target - kFuncWindow) % 16 != 0 || idx >= w.launch->prog->functions.size())
      return faultStop(w, in, CUDA_ERROR_ILLEGAL_ADDRESS, "call through an invalid function pointer");
    calleeIndex = static_cast<size_t>(idx);
    if (same != m) {
      StackEntry& top = w.stack.back();
      top.pc = in.next;
      top.mask = w.active;
      w.stack.push_back({in.next - 1, m & ~same, in.next});
      m = same;
      split = true;
    }
  }
  const Function& callee = w.launch->prog->functions[calleeIndex];
  if (w.frames.size() >= kMaxCallDepth)
    return faultStop(w, in, CUDA_ERROR_LAUNCH_FAILED,
                     "call depth limit (" + std::to_string(kMaxCallDepth) + ") exceeded calling " + callee.name);
  uint32_t newLocal = w.localBase + w.fn->localBytes;
  if (uint64_t(newLocal) + callee.localBytes > w.cta->stackBytes)
    return faultStop(w, in, CUDA_ERROR_LAUNCH_FAILED, "stack overflow calling " + callee.name);
  uint32_t newReg = w.regBase + w.fn->numSlots * 32;
  uint32_t newPred = w.predBase + w.fn->numPreds;
  size_t needR = size_t(newReg) + size_t(callee.numSlots) * 32;
  if (w.regStack.size() < needR) w.regStack.resize(needR * 2);
  if (w.predStack.size() < size_t(newPred) + callee.numPreds)
    w.predStack.resize((size_t(newPred) + callee.numPreds) * 2);
  uint64_t* r = w.regStack.data() + newReg;
  for (const auto& c : callee.consts) {
    uint64_t* s = r + size_t(c.slot) * 32;
    for (int i = 0; i < 32; ++i) s[i] = c.value;
  }
  uint32_t* p = w.predStack.data() + newPred;
  p[0] = ~0u;
  for (uint32_t k = 1; k < callee.numPreds; ++k) p[k] = 0;
  forLanes(m, [&](uint32_t i) {
    for (size_t k = 0; k < cs.args.size() && k < callee.paramOffsets.size(); ++k)
      std::memcpy(laneLocal(w, i, newLocal + callee.paramOffsets[k]),
                  laneLocal(w, i, w.localBase + cs.args[k].callerOffset), callee.paramSizes[k]);
  });
  if (!split) {
    StackEntry& top = w.stack.back();
    top.pc = in.next;
    top.mask = w.active;
  }
  w.frames.push_back({&callee, &cs, newReg, newPred, newLocal,
                      static_cast<uint32_t>(w.stack.size()), m, 0});
  w.stack.push_back({0, m, kNoRpc});
  w.fn = &callee;
  w.code = callee.code.data();
  w.r = r;
  w.p = p;
  w.regBase = newReg;
  w.predBase = newPred;
  w.localBase = newLocal;
  w.pc = 0;
  w.active = m;
  w.rpc = kNoRpc;
  return kPcReload;
}

Status dCall(Builder& b) {
  b.mods.take(".uni");
  const bool hasPrototype = b.mods.take(".__indirect");
  const auto& ai = b.ai;
  size_t nret = static_cast<size_t>(ai.callRets);
  if (ai.ops.size() <= nret) return b.error("call without a target");
  const auto& target = ai.ops[nret];
  if (target.kind != ast::Operand::Kind::Reg) return b.error("bad call target");
  auto s = b.lookup(target.name);
  CallSite cs;
  const Function* callee = nullptr;
  if (s && s->kind == Symbol::Kind::Reg) {
    // PTX requires a .callprototype or a target list on a call through a register
    if (!hasPrototype)
      return b.error("indirect call through '" + target.name + "' without a .callprototype or target list");
    cs.indirect = true;
    cs.targetSlot = s->slot;
  } else if (!s || s->kind != Symbol::Kind::Function) {
    return b.error("call to unknown function '" + target.name + "'");
  } else if (s->slot & 0x8000'0000u) {
    cs.builtin = static_cast<int>(s->slot & 0xff);
  } else {
    cs.callee = static_cast<int>(s->slot);
    callee = &b.fd.dm.program.functions[s->slot];
  }
  auto paramOf = [&](const ast::Operand& o) -> Result<uint32_t> {
    if (o.kind != ast::Operand::Kind::Reg) return b.error("call arguments must be .param variables");
    auto ps = b.lookup(o.name);
    if (!ps) return ps.status();
    if (ps->kind != Symbol::Kind::Local) return b.error("call argument '" + o.name + "' is not a .param variable");
    return ps->slot;
  };
  for (size_t k = 0; k < nret; ++k) {
    auto off = paramOf(ai.ops[k]);
    if (!off) return off.status();
    CallArg a{*off, 0, 8};
    if (callee) {
      if (k >= callee->retOffsets.size()) return b.error("too many return values for " + target.name);
      a.calleeOffset = callee->retOffsets[k];
      a.size = callee->retSizes[k];
    }
    cs.rets.push_back(a);
  }
  for (size_t k = nret + 1; k < ai.ops.size(); ++k) {
    auto off = paramOf(ai.ops[k]);
    if (!off) return off.status();
    CallArg a{*off, 0, 8};
    size_t idx = k - nret - 1;
    if (callee) {
      if (idx >= callee->paramOffsets.size()) return b.error("too many arguments for " + target.name);
      a.calleeOffset = callee->paramOffsets[idx];
      a.size = callee->paramSizes[idx];
    }
    cs.args.push_back(a);
  }
  if (callee && cs.args.size() != callee->paramOffsets.size())
    return b.error("wrong number of arguments for " + target.name);
  uint32_t id = b.addCallSite(std::move(cs));
  Inst& in = b.emit(hCall);
  in.aux = id;
  return Status::ok();
}

// ----- barriers -------------------------------------------------------------------------------

// aux: 0 sync, 1 arrive, 2 red.popc, 3 red.and, 4 red.or; a[0] id slot, a[1] count slot
// (aux2 bit0: count given), a[2] predicate slot for bar.red, d[0] result
uint32_t hBar(Warp& w, const Inst& in, uint32_t m) {
  if (m == 0) return in.next;
  uint32_t lane = static_cast<uint32_t>(__builtin_ctz(m));
  uint32_t id = static_cast<uint32_t>(TF_REG(in.a[0])[lane]);
  if (id >= 16) return faultStop(w, in, CUDA_ERROR_LAUNCH_FAILED, "barrier id out of range");
  Barrier& B = w.cta->bars[id];
  if (in.aux2 & 1) {
    uint32_t count = static_cast<uint32_t>(TF_REG(in.a[1])[lane]);
    B.expected = (count + 31) / 32;
  }
  B.arrived += 1;
  if (in.aux >= 2) {
    uint32_t p = w.p[in.a[2]] ^ ((in.aux2 & 2) ? ~0u : 0u);
    B.popc += lanesOf(p & m);
    B.all = B.all && ((p & m) == m);
    B.any = B.any || ((p & m) != 0);
    w.barDest = in.d[0];
    w.barKind = in.aux;
    w.barMask = m;
  } else {
    w.barKind = 0;
  }
  if (in.aux == 1) return in.next; // arrive: no wait
  w.barId = id;
  w.pc = in.next;
  w.state = Warp::State::AtBarrier;
  return kPcStop;
}

Status dBar(Builder& b) {
  // bar.sync / bar.arrive / bar.red / barrier.sync / barrier.arrive / barrier.red, .aligned
  b.mods.take(".aligned");
  uint32_t kind = 0;
  if (b.mods.take(".sync")) {
    kind = 0;
  } else if (b.mods.take(".arrive")) {
    kind = 1;
  } else if (b.mods.take(".red")) {
    std::string op;
    if (!b.mods.takeAny({".popc", ".and", ".or"}, &op)) return b.unsupported();
    kind = op == ".popc" ? 2 : op == ".and" ? 3 : 4;
  } else if (b.ai.opcode == "barrier" && b.ai.mods.empty()) {
    kind = 0;
  } else if (b.mods.take(".cta")) {
    kind = 0; // barrier.cta.sync
  } else {
    return b.unsupported();
  }
  if (b.mods.take(".sync")) kind = 0;
  Ty rt = Ty::None;
  if (kind >= 2) {
    auto ts = b.mods.takeTypes();
    if (ts.size() != 1) return b.error("bar.red needs a type");
    rt = ts[0];
  }
  size_t base = kind >= 2 ? 1 : 0;
  if (b.numOps() <= base) return b.error("missing barrier id");
  auto id = b.src(base, Ty::U32);
  if (!id) return id.status();
  uint32_t count = 0, aux2 = 0, pred = 0;
  size_t next = base + 1;
  if (kind >= 2) {
    // bar.red.op.type d, a{, b}, {!}c
    if (b.numOps() == base + 3) {
      auto c = b.src(next, Ty::U32);
      if (!c) return c.status();
      count = *c;
      aux2 |= 1;
      ++next;
    }
    bool neg = false;
    auto p = b.predSrc(next, &neg);
    if (!p) return p.status();
    pred = *p;
    if (neg) aux2 |= 2;
  } else if (b.numOps() > next) {
    auto c = b.src(next, Ty::U32);
    if (!c) return c.status();
    count = *c;
    aux2 |= 1;
  }
  uint32_t d = 0;
  if (kind >= 2) {
    if (rt == Ty::Pred) {
      auto x = b.predDst(0);
      if (!x) return x.status();
      d = *x;
      aux2 |= 4;
    } else {
      auto x = b.dst(0);
      if (!x) return x.status();
      d = *x;
    }
  }
  Inst& in = b.emit(hBar);
  in.a[0] = *id;
  in.a[1] = count;
  in.a[2] = pred;
  in.d[0] = d;
  in.aux = kind;
  in.aux2 = aux2;
  return Status::ok();
}

uint32_t hNop(Warp& w, const Inst& in, uint32_t m) { return in.next; }

Status dWarpSyncNop(Builder& b) {
  // bar.warp.sync membermask: warps execute in lock-step already
  b.emit(hNop);
  return Status::ok();
}

Status dBarDispatch(Builder& b) {
  if (b.mods.take(".warp")) {
    b.mods.take(".sync");
    return dWarpSyncNop(b);
  }
  return dBar(b);
}

Status dIgnore(Builder& b) {
  for (const auto& m : b.ai.mods) b.mods.take(m.c_str());
  return Status::ok();
}

} // namespace

uint32_t hRet(Warp& w, const Inst& in, uint32_t m) {
  if (m == 0) return in.next;
  if (w.frames.empty()) return exitLanes(w, in, m);
  w.frames.back().retMask |= m;
  w.active &= ~m;
  if (w.active) return in.next;
  popEntry(w);
  return w.state == Warp::State::Done ? kPcStop : kPcReload;
}

void registerCtrlOps(std::unordered_map<std::string, DecodeFn>& r) {
  r["bra"] = dBra;
  r["exit"] = dExit;
  r["ret"] = dRet;
  r["trap"] = dTrap;
  r["call"] = dCall;
  r["bar"] = dBarDispatch;
  r["barrier"] = dBar;
  r["nanosleep"] = [](Builder& b) -> Status {
    b.mods.takeTypes();
    b.emit(hNop);
    return Status::ok();
  };
  r["pmevent"] = dIgnore;
  r["setmaxnreg"] = dIgnore;
  r["griddepcontrol"] = dIgnore;
  r["brkpt"] = [](Builder& b) -> Status {
    b.emit(hNop); // no debugger to stop in
    return Status::ok();
  };
}

} // namespace tf::ptx
