// Malformed or unsupported PTX fails load() with the line and the construct; nothing loads
// partially.
#include <gtest/gtest.h>

#include <cstring>

#include "ptx/executor.h"
#include "test_util.h"

namespace tf::ptx {
namespace {

std::string loadError(const std::string& text) {
  auto exec = makeExecutor();
  auto r = exec->load(cuda::ModuleSource{text, "bad.ptx"});
  if (r) return "";
  return r.status().message();
}

const char* kHead = ".version 8.5\n.target sm_90\n.address_size 64\n";

TEST(Parse, AcceptsMinimalModule) {
  std::string text = std::string(kHead) + ".visible .entry k()\n{\n  ret;\n}\n";
  EXPECT_EQ(loadError(text), "");
}

TEST(Parse, UnsupportedInstructionNamesLineAndConstruct) {
  std::string text = std::string(kHead) + ".visible .entry k()\n{\n  .reg .b32 %r;\n  frobnicate.b32 %r, %r;\n  ret;\n}\n";
  std::string e = loadError(text);
  EXPECT_NE(e.find("bad.ptx:7"), std::string::npos) << e;
  EXPECT_NE(e.find("frobnicate.b32"), std::string::npos) << e;
}

TEST(Parse, UnsupportedModifier) {
  std::string text = std::string(kHead) + ".visible .entry k()\n{\n  .reg .b32 %r;\n  add.weird.s32 %r, %r, %r;\n  ret;\n}\n";
  std::string e = loadError(text);
  EXPECT_NE(e.find(":7"), std::string::npos) << e;
  EXPECT_NE(e.find(".weird"), std::string::npos) << e;
}

TEST(Parse, UnknownRegisterAndLabel) {
  std::string e = loadError(std::string(kHead) + ".visible .entry k()\n{\n  add.s32 %r1, %r2, 1;\n}\n");
  EXPECT_NE(e.find(":6"), std::string::npos) << e;
  EXPECT_NE(e.find("%r1"), std::string::npos) << e;
  e = loadError(std::string(kHead) + ".visible .entry k()\n{\n  bra.uni NOWHERE;\n}\n");
  EXPECT_NE(e.find(":6"), std::string::npos) << e;
  EXPECT_NE(e.find("NOWHERE"), std::string::npos) << e;
}

TEST(Parse, SyntaxErrors) {
  std::string e = loadError(std::string(kHead) + ".visible .entry k()\n{\n  .reg .b32 %r<4>;\n  mov.b32 %r1 %r2;\n}\n");
  EXPECT_NE(e.find("line 7"), std::string::npos) << e;
  e = loadError(std::string(kHead) + ".visible .entry k()\n{\n  ret;\n");
  EXPECT_NE(e.find("unterminated"), std::string::npos) << e;
  e = loadError(".target sm_90\n");
  EXPECT_NE(e.find(".version"), std::string::npos) << e;
  e = loadError(std::string(kHead) + ".visible .entry k()\n{\n  ld.global.f32 %f1, [%rd1+];\n}\n");
  EXPECT_NE(e.find("line 6"), std::string::npos) << e;
  e = loadError(std::string(kHead) + "/* unterminated comment\n");
  EXPECT_NE(e.find("comment"), std::string::npos) << e;
  e = loadError(std::string(kHead) + ".visible .entry k()\n{\n  mov.f32 %f, 0f3F80;\n}\n");
  EXPECT_NE(e.find("line 6"), std::string::npos) << e;
  e = loadError(std::string(kHead) + ".visible .entry k()\n{\n  ret;\n}\n`\n");
  EXPECT_NE(e.find("line 8"), std::string::npos) << e;
}

TEST(Parse, TypeMismatchesAreErrors) {
  std::string e = loadError(std::string(kHead) + ".visible .entry k()\n{\n  .reg .pred %p;\n  .reg .b32 %r;\n  add.s32 %r, %p, 1;\n}\n");
  EXPECT_NE(e.find(":8"), std::string::npos) << e;
  e = loadError(std::string(kHead) + ".visible .entry k()\n{\n  .reg .b32 %r;\n  setp.eq.s32 %r, %r, 1;\n}\n");
  EXPECT_NE(e.find(":7"), std::string::npos) << e;
}

TEST(Parse, UnresolvedExternsAndUnknownCallees) {
  // An extern nothing defines: the load fails naming it, what it is and its line.
  std::string e = loadError(std::string(kHead) + ".extern .func foo();\n.visible .entry k()\n{\n  call foo;\n  ret;\n}\n");
  EXPECT_NE(e.find("unresolved extern function 'foo'"), std::string::npos) << e;
  EXPECT_NE(e.find("bad.ptx:4"), std::string::npos) << e;
  e = loadError(std::string(kHead) + ".extern .global .b32 x;\n");
  EXPECT_NE(e.find("unresolved extern variable 'x'"), std::string::npos) << e;
  EXPECT_NE(e.find("bad.ptx:4"), std::string::npos) << e;
  // A direct call to a name that is neither a function nor a register.
  e = loadError(std::string(kHead) + ".visible .entry k()\n{\n  call nowhere;\n  ret;\n}\n");
  EXPECT_NE(e.find("call to unknown function 'nowhere'"), std::string::npos) << e;
  EXPECT_NE(e.find("bad.ptx:6"), std::string::npos) << e;
  // A call through a register needs a prototype (or a target list), as PTX requires.
  e = loadError(std::string(kHead) + ".visible .entry k()\n{\n  .reg .b64 %rd;\n  call %rd;\n  ret;\n}\n");
  EXPECT_NE(e.find("bad.ptx:7: indirect call through '%rd' without a .callprototype or target list"),
            std::string::npos) << e;
}

// An indirect call (nvcc's own output for a call through a function pointer read from a
// table, plus an offset the host passes): the right target runs; a pointer that is not a
// function's address is a fault with a clear message, not a jump anywhere.
TEST(Parse, IndirectCallsRunTheTargetAndRefuseBadPointers) {
  const std::string text = std::string(kHead) + R"(
.func (.param .b32 func_retval0) _Z5twicei(.param .b32 _Z5twicei_param_0);
.global .align 8 .u64 tbl[1] = {_Z5twicei};
.func (.param .b32 func_retval0) _Z5twicei(.param .b32 _Z5twicei_param_0)
{
  .reg .b32 %r<3>;
  ld.param.u32 %r1, [_Z5twicei_param_0];
  shl.b32 %r2, %r1, 1;
  st.param.b32 [func_retval0+0], %r2;
  ret;
}
.visible .entry k(.param .u64 k_param_0, .param .u64 k_param_1)
{
  .reg .b32 %r<2>;
  .reg .b64 %rd<7>;
  ld.param.u64 %rd1, [k_param_0];
  ld.param.u64 %rd2, [k_param_1];
  cvta.to.global.u64 %rd3, %rd1;
  ld.volatile.global.u64 %rd4, [tbl];
  add.s64 %rd5, %rd4, %rd2;
  {
  .param .b32 param0;
  st.param.b32 [param0+0], 21;
  .param .b32 retval0;
  prototype_0 : .callprototype (.param .b32 _) _ (.param .b32 _);
  call (retval0), %rd5, (param0), prototype_0;
  ld.param.b32 %r1, [retval0+0];
  }
  st.global.u32 [%rd3], %r1;
  ret;
}
)";
  test::TestMemory mem;
  auto l = test::loadPtx(text, "indirect.ptx", mem);
  ASSERT_TRUE(l.error.empty()) << l.error;
  uint64_t out = mem.upload(std::vector<int32_t>{0});
  std::string msg;
  ASSERT_EQ(test::launch(*l.mod, "k", {1}, {1}, test::Args().add(out).add(int64_t{0}), mem, &msg),
            CUDA_SUCCESS) << msg;
  EXPECT_EQ(mem.download<int32_t>(out, 1)[0], 42);
  EXPECT_EQ(test::launch(*l.mod, "k", {1}, {1}, test::Args().add(out).add(int64_t{8}), mem, &msg),
            CUDA_ERROR_ILLEGAL_ADDRESS);
  EXPECT_NE(msg.find("invalid function pointer"), std::string::npos) << msg;
}

// wmma forms the engine does not run are refused by name: sub-byte elements, and a rounding
// modifier where only f64 takes one (f64's own .rn loads).
TEST(Parse, WmmaFormsItCannotRunAreNamed) {
  const std::string head = std::string(kHead) +
                           ".visible .entry k(.param .u64 p)\n{\n  .reg .b32 %r<9>;\n  .reg .f32 %f<9>;\n"
                           "  .reg .f64 %d<9>;\n  .reg .b64 %rd;\n  ld.param.u64 %rd, [p];\n";
  std::string e = loadError(head + "  wmma.load.a.sync.aligned.row.m8n8k32.global.u4 {%r1}, [%rd], 32;\n  ret;\n}\n");
  EXPECT_EQ(e, "bad.ptx:11: wmma on sub-byte elements (.u4) is not supported in "
               "'wmma.load.a.sync.aligned.row.m8n8k32.global.u4'");
  e = loadError(head + "  wmma.mma.sync.aligned.row.col.m16n16k16.f32.f32.rn {%f1,%f1,%f1,%f1,%f1,%f1,%f1,%f1}, "
                       "{%r1,%r1,%r1,%r1,%r1,%r1,%r1,%r1}, {%r1,%r1,%r1,%r1,%r1,%r1,%r1,%r1}, "
                       "{%f1,%f1,%f1,%f1,%f1,%f1,%f1,%f1};\n  ret;\n}\n");
  EXPECT_NE(e.find("bad.ptx:11: rounding modifier on a non-f64 wmma.mma"), std::string::npos) << e;
  e = loadError(head + "  wmma.mma.sync.aligned.row.col.m8n8k4.f64.f64.f64.f64.rn {%d1,%d2}, {%d3}, {%d4}, {%d5,%d6};\n"
                       "  ret;\n}\n");
  EXPECT_EQ(e, "");
}

// Malformed texture and asynchronous-copy forms are refused naming the construct.
TEST(Parse, TextureAndAsyncCopyFormsAreChecked) {
  const std::string head = std::string(kHead) +
                           ".visible .entry k(.param .u64 p)\n{\n  .reg .b32 %r<9>;\n  .reg .f32 %f<9>;\n"
                           "  .reg .pred %p;\n  .reg .b64 %rd;\n  ld.param.u64 %rd, [p];\n";
  struct Case {
    const char* line; // at line 11
    const char* error; // "" = loads
  };
  const Case cases[] = {
      {"tld4.2d.v4.f32.f32 {%f1,%f2,%f3,%f4}, [%rd, {%f5,%f6}];",
       "bad.ptx:11: tld4 needs a channel (.r .g .b .a) in 'tld4.2d.v4.f32.f32'"},
      {"tex.grad.2d.v4.f32.f32 {%f1,%f2,%f3,%f4}, [%rd, {%f5,%f6}], %f7, %f8;",
       "bad.ptx:11: tex.grad needs two gradient vectors in 'tex.grad.2d.v4.f32.f32'"},
      {"tex.a2d.v4.f32.f32 {%f1,%f2,%f3,%f4}, [%rd, {%r1,%f5}];",
       "bad.ptx:11: a texture fetch needs [texture, {coordinates}] in 'tex.a2d.v4.f32.f32'"},
      {"txq.width.b64 %rd, [%rd];", "bad.ptx:11: txq returns .b32 in 'txq.width.b64'"},
      {"txq.width.b32 %r1, [%rd, {%f1}];", "bad.ptx:11: txq needs [texture] in 'txq.width.b32'"},
      {"txq.channel_order.b32 %r1, [%rd];", "bad.ptx:11: unsupported instruction 'txq.channel_order.b32'"},
      {"cp.async.ca.shared.global [%r1], [%rd], 4, !%p;",
       "bad.ptx:11: ignore-src cannot be negated in 'cp.async.ca.shared.global'"},
      {"cp.async.ca.shared.global [%r1], [%rd], 4, %r2, %r3;",
       "bad.ptx:11: too many operands in 'cp.async.ca.shared.global'"},
      {"cp.async.mbarrier.arrive.noinc.shared.b32 [%r1];",
       "bad.ptx:11: mbarrier operates on .b64 in 'cp.async.mbarrier.arrive.noinc.shared.b32'"},
      {"tex.level.2d.v4.f32.f32 {%f1,%f2,%f3,%f4}, [%rd, {%f5,%f6}], %f7;", ""},
      {"cp.async.cg.shared.global [%r1], [%rd], 16, %p;", ""},
  };
  for (const Case& c : cases)
    EXPECT_EQ(loadError(head + "  " + c.line + "\n  ret;\n}\n"), c.error) << c.line;
}

TEST(Parse, ToleratesDebugInfoAndDirectives) {
  std::string text = std::string(kHead) + R"(
.file 1 "/tmp/a.cu"
.visible .entry k(.param .u64 .ptr .global .align 8 p) .maxntid 128, 1, 1 .minnctapersm 2
{
  .reg .b32 %r<3>;
  .loc 1 5 3
  .pragma "nounroll";
  mov.u32 %r1, %tid.x;
$L__tmp0:
  .loc 1 6 1
  ret;
}
.section .debug_info
{
  .b32 1234
  .b8 0, 1, 2
}
)";
  std::string e = loadError(text);
  EXPECT_EQ(e, "");
  auto exec = makeExecutor();
  auto r = exec->load(cuda::ModuleSource{text, "ok.ptx"});
  ASSERT_TRUE(r.isOk());
  EXPECT_EQ((*r)->kernels()[0].maxThreadsPerBlock, 128u);
  EXPECT_EQ((*r)->kernels()[0].params[0].size, 8u);
}

TEST(Parse, GlobalsWithInitialisers) {
  std::string text = std::string(kHead) + R"(
.global .align 4 .u32 g1 = 7;
.const .align 8 .f64 c1[2] = {1.5, 0d4000000000000000};
.global .align 1 .b8 str[] = {104, 105, 0};
.global .align 4 .f32 fs[3] = {0f3F800000, -2.0};
.shared .align 4 .b8 sh[64];
.extern .shared .align 16 .b8 dyn[];
.visible .entry k() { ret; }
)";
  auto exec = makeExecutor();
  auto r = exec->load(cuda::ModuleSource{text, "g.ptx"});
  ASSERT_TRUE(r.isOk()) << r.status().toString();
  const auto& gs = (*r)->globals();
  ASSERT_EQ(gs.size(), 4u); // shared variables are not globals
  EXPECT_EQ(gs[0].name, "g1");
  EXPECT_EQ(gs[0].initializer, (std::vector<uint8_t>{7, 0, 0, 0}));
  EXPECT_TRUE(gs[1].isConst);
  double d[2];
  ASSERT_EQ(gs[1].initializer.size(), 16u);
  std::memcpy(d, gs[1].initializer.data(), 16);
  EXPECT_EQ(d[0], 1.5);
  EXPECT_EQ(d[1], 2.0);
  EXPECT_EQ(gs[2].size, 3u);
  float f[3];
  std::memcpy(f, gs[3].initializer.data(), 12);
  EXPECT_EQ(f[0], 1.0f);
  EXPECT_EQ(f[1], -2.0f);
  EXPECT_EQ(f[2], 0.0f);
  EXPECT_EQ((*r)->kernels()[0].staticSharedBytes, 64u);
}

// Garbage fails the load with the one right message, naming the line, and never crashes.
TEST(Parse, NeverCrashesOnGarbage) {
  struct Junk {
    std::string text;
    const char* error; // the whole message load() must give
  };
  const std::string v = ".version 8.5\n";
  const Junk samples[] = {
      {"", "junk.ptx:line 1: missing .version directive"},
      {std::string("\0", 1), "junk.ptx:line 1: missing .version directive"}, // NUL ends the text, as in a fatbin
      {".version", "junk.ptx:line 1: bad .version (near end of input)"},
      {".version 8.5 .target", "junk.ptx:line 1: bad .target (near end of input)"},
      {"{{{{", "junk.ptx:line 1: unexpected token at module scope (near '{')"},
      {"}}}}", "junk.ptx:line 1: unexpected token at module scope (near '}')"},
      {".entry", "junk.ptx:line 1: expected a function name (near end of input)"},
      {v + ".entry k( {", "junk.ptx:line 2: expected .param in parameter list (near '{')"},
      {v + ".visible .entry k() { @ }", "junk.ptx:line 2: expected a predicate after '@' (near '}')"},
      {v + ".visible .entry k() { .reg .b32 %r<99999999999>; }", "junk.ptx:line 2: register range too large (near '%r')"},
      {v + ".global .b8 x[99999999999999];", "junk.ptx:line 2: array too large (near 'x')"},
      {v + ".visible .entry k() { ld.global.v4.f32 {%a}, [x]; }", "junk.ptx:2: unknown name 'x' in 'ld.global.v4.f32'"},
      {v + ".visible .entry k() { mov.u64 %a, 0x123456789abcdef0123; }", "junk.ptx:line 2: integer literal out of range"},
      {v + ".visible .entry k() { mov.u64 %a, 0b10101010101010101010101010101010101010101010101010101010101010101; }",
       "junk.ptx:line 2: integer literal out of range"},
      {v + ".visible .entry k() { mov.u64 %a, 99999999999999999999999; }", "junk.ptx:line 2: bad integer literal"},
      {v + ".visible .entry k() { setp.eq.s32; }", "junk.ptx:2: missing operand 2 in 'setp.eq.s32'"},
      {v + ".visible .entry k() { .reg .b32 %r; shfl.sync.up.b32 %r; }", "junk.ptx:2: missing operand 2 in 'shfl.sync.up.b32'"},
      {v + ".visible .entry k() { .reg .b32 %r; lop3.b32 %r, %r, %r, %r; }",
       "junk.ptx:2: lop3 needs an immediate lookup table in 'lop3.b32'"},
      {v + ".visible .entry k() { .reg .b32 %r<70000>; ret; }", "junk.ptx:2: function 'k' uses too many registers"},
  };
  for (const Junk& j : samples) {
    auto r = makeExecutor()->load(cuda::ModuleSource{j.text, "junk.ptx"});
    ASSERT_FALSE(r.isOk()) << j.text;
    EXPECT_EQ(r.status().code(), Code::InvalidArgument) << j.text;
    EXPECT_EQ(r.status().message(), j.error) << j.text;
  }
  std::string deep = v + ".global .b32 x[1] = " + std::string(100000, '{');
  EXPECT_EQ(loadError(deep), "bad.ptx:line 2: initialiser nested too deeply (near '{')");
  std::string bangs = v + ".visible .entry k() { .reg .pred %p; @%p bra " + std::string(100000, '!') + "x; }";
  EXPECT_EQ(loadError(bangs), "bad.ptx:line 2: operand nested too deeply (near '!')");
  // random byte soup built from PTX-ish tokens
  const char* toks[] = {".reg", ".b32", "%r1", ",", ";", "{", "}", "[", "]", "add.s32", "@%p", "ld.global.u32",
                        "0f3F800000", "-1", "L1:", "bra", ".entry", "k", "(", ")", ".param", ".u64"};
  uint32_t seed = 1;
  for (int iter = 0; iter < 300; ++iter) {
    std::string s = ".version 8.5\n.target sm_90\n.address_size 64\n.visible .entry k() {\n";
    for (int k = 0; k < 20; ++k) {
      seed = seed * 1103515245 + 12345;
      s += toks[(seed >> 16) % (sizeof toks / sizeof *toks)];
      s += ' ';
    }
    auto exec = makeExecutor();
    (void)exec->load(cuda::ModuleSource{s, "fuzz.ptx"}); // must return, not crash
  }
}

} // namespace
} // namespace tf::ptx
