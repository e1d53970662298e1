// The migration image's wire form (worker/migration.h): what a source sends is read back the
// same; anything malformed (counts that lie, unknown kinds, recipes of calls that are not
// replayed, graph nodes not made by node calls, edges and node names outside their graph,
// contents too large, trailing bytes) is refused with a clear error, never trusted.
// Also the module variables read from a module's PTX, and the admin's MigrateOrder.
#include <gtest/gtest.h>

#include <cstring>

#include "cuda/catalog.h"
#include "remoting/tier_control.h"
#include "remoting/worker/migration.h"

namespace tf::remoting {
namespace {

using cuda::FnId;

MigrationImage sample() {
  MigrationImage img;
  img.pid = 4242;
  img.latched = 700;
  img.contexts = {{0x8000000000000010ull, 0, 0, true}, {0x8000000000000020ull, 1, 4, false}};
  Recipe load;
  load.fn = static_cast<uint32_t>(FnId::cuLibraryLoadData);
  load.ctx = 0x8000000000000010ull;
  load.args = {0x1234, 4096};
  load.made = {{HandleKind::Library, 0x8000000000000030ull}};
  Recipe stream;
  stream.fn = static_cast<uint32_t>(FnId::cuStreamCreate);
  stream.args = {1};
  stream.blob = "x";
  stream.made = {{HandleKind::Stream, 0x8000000000000040ull}};
  img.recipes = {load, stream};
  img.images = {{0x1234, 4096}};
  img.memory = {{0, 0x200000000000ull, 2u << 20, 1000}};
  img.globals = {{HandleKind::Library, 0x8000000000000030ull, "counter", 0x200000400000ull, 8}};
  // A graph of the client's (two nodes, one edge) and an executable's body.
  Recipe empty;
  empty.fn = static_cast<uint32_t>(FnId::cuGraphAddEmptyNode);
  empty.args = {0};
  empty.blob = std::string(4, '\0');
  empty.made = {{HandleKind::GraphNode, 0x8000000000000060ull}};
  Recipe memset = empty;
  memset.fn = static_cast<uint32_t>(FnId::cuGraphAddMemsetNode);
  memset.args = {0, 0x8000000000000010ull};
  memset.made = {};
  GraphImage graph;
  graph.ctx = 0x8000000000000010ull;
  graph.client = 0x8000000000000050ull;
  graph.nodes = {empty, memset};
  graph.edges = {{0, 1}};
  // ... and a child graph node embedding a one-node graph the client holds.
  GraphImage child;
  child.client = 0x8000000000000080ull;
  child.nodes = {empty};
  child.nodes[0].made = {{HandleKind::GraphNode, 0x8000000000000090ull}};
  Recipe embed = empty;
  embed.fn = static_cast<uint32_t>(FnId::cuGraphAddChildGraphNode);
  embed.args = {0, 0};
  embed.made = {};
  graph.nodes.push_back(embed);
  graph.children = {child};
  GraphImage body = graph;
  body.client = 0;
  body.nodes[0].made = {};
  body.exec = 0x8000000000000070ull;
  body.flags = 1;
  body.from = graph.client;
  body.stands = {{0x8000000000000060ull, 0}};
  body.disabled = {1};
  img.graphs = {graph, body};
  return img;
}

std::string encoded(const MigrationImage& img) {
  Writer w;
  encodeMigrationImage(w, img);
  return std::string(reinterpret_cast<const char*>(w.data()), w.size());
}

TEST(MigrationImageTest, ReadsBackWhatWasWritten) {
  MigrationImage back;
  ASSERT_TRUE(decodeMigrationImage(encoded(sample()), &back).isOk());
  EXPECT_EQ(back.pid, 4242u);
  EXPECT_EQ(back.latched, 700);
  ASSERT_EQ(back.contexts.size(), 2u);
  EXPECT_TRUE(back.contexts[0].primary);
  EXPECT_EQ(back.contexts[1].flags, 4u);
  ASSERT_EQ(back.recipes.size(), 2u);
  EXPECT_EQ(back.recipes[0].args, (std::vector<uint64_t>{0x1234, 4096}));
  EXPECT_EQ(back.recipes[1].blob, "x");
  EXPECT_EQ(back.recipes[1].made[0].kind, HandleKind::Stream);
  ASSERT_EQ(back.globals.size(), 1u);
  EXPECT_EQ(back.globals[0].name, "counter");
  EXPECT_EQ(back.bulkBytes(), 4096u + (2u << 20) + 8u);
  ASSERT_EQ(back.graphs.size(), 2u);
  EXPECT_EQ(back.graphs[0].client, 0x8000000000000050ull);
  ASSERT_EQ(back.graphs[0].nodes.size(), 3u);
  EXPECT_EQ(back.graphs[0].nodes[0].made[0].client, 0x8000000000000060ull);
  EXPECT_EQ(back.graphs[0].nodes[1].args, (std::vector<uint64_t>{0, 0x8000000000000010ull}));
  EXPECT_EQ(back.graphs[0].edges, (std::vector<std::pair<uint32_t, uint32_t>>{{0, 1}}));
  EXPECT_EQ(back.graphs[1].exec, 0x8000000000000070ull);
  EXPECT_EQ(back.graphs[1].flags, 1u);
  EXPECT_EQ(back.graphs[1].from, 0x8000000000000050ull);
  EXPECT_EQ(back.graphs[1].stands, (std::vector<std::pair<uint64_t, uint32_t>>{{0x8000000000000060ull, 0}}));
  EXPECT_EQ(back.graphs[1].disabled, (std::vector<uint32_t>{1}));
  ASSERT_EQ(back.graphs[0].children.size(), 1u);
  EXPECT_EQ(back.graphs[0].children[0].client, 0x8000000000000080ull);
  EXPECT_EQ(back.graphs[0].children[0].nodes[0].made[0].client, 0x8000000000000090ull);
  EXPECT_EQ(back.graphs[0].nodes[2].args, (std::vector<uint64_t>{0, 0}));
}

TEST(MigrationImageTest, RefusesMalformedImages) {
  auto refused = [](MigrationImage img, const char* why) {
    MigrationImage back;
    Status s = decodeMigrationImage(encoded(img), &back);
    EXPECT_EQ(s.code(), Code::DataLoss) << why;
    EXPECT_NE(s.message().find(why), std::string::npos) << s.toString();
  };
  MigrationImage img = sample();
  img.recipes[0].fn = static_cast<uint32_t>(FnId::cuMemAlloc_v2);
  refused(img, "not replayed");
  img = sample();
  img.recipes[1].made[0].kind = HandleKind::Count;
  refused(img, "bad handle");
  img = sample();
  img.contexts[0].device = 70;
  refused(img, "bad context");
  img = sample();
  img.memory[0].size = img.memory[0].span + 1;
  refused(img, "bad allocation");
  img = sample();
  img.memory[0].base = ~0ull - 10;
  refused(img, "bad allocation");
  img = sample();
  img.globals[0].ownerKind = HandleKind::Stream;
  refused(img, "bad global");
  img = sample();
  img.images[0].size = kMaxImage + 1;
  refused(img, "bad image size");
  img = sample();
  img.graphs[0].nodes[0].fn = static_cast<uint32_t>(FnId::cuMemAlloc_v2);  // not a node call
  refused(img, "not made by a node call");
  img = sample();
  img.graphs[0].nodes[0].made[0].kind = HandleKind::Stream;
  refused(img, "not made by a node call");
  img = sample();
  img.graphs[0].nodes[0].args.clear();  // no place for the graph
  refused(img, "not made by a node call");
  img = sample();
  img.graphs[0].edges = {{0, 9}};
  refused(img, "edge names no node");
  img = sample();
  img.graphs[0].edges = {{1, 1}};
  refused(img, "edge names no node");
  img = sample();
  img.graphs[1].stands = {{0x8000000000000060ull, 9}};
  refused(img, "node name names no node");
  img = sample();
  img.graphs[1].disabled = {9};
  refused(img, "disabled node names no node");
  img = sample();
  img.graphs[1].client = 7;  // both the client's and a body
  refused(img, "neither the client's nor an executable's");
  img = sample();
  img.graphs[0].flags = 1;  // the client's graph with a body's fields
  refused(img, "neither the client's nor an executable's");
  img = sample();
  img.graphs[0].nodes[2].args = {0, 1};  // no second child graph
  refused(img, "names no child graph");
  img = sample();
  img.graphs[0].children[0].exec = 5;
  refused(img, "child graph with an executable's fields");
  img = sample();
  for (int depth = 0; depth < 9; ++depth) {  // child graphs nested past the limit
    GraphImage outer = img.graphs[0];
    outer.client = 0;
    img.graphs[0].children = {outer};
  }
  refused(img, "nested too deep");
  img = sample();
  img.memory[0].span = kMaxBulk;
  img.memory[0].size = 1;
  refused(img, "too large");

  MigrationImage back;
  std::string bytes = encoded(sample());
  EXPECT_EQ(decodeMigrationImage(bytes + "z", &back).code(), Code::DataLoss);  // trailing bytes
  for (size_t cut : {size_t(0), size_t(7), bytes.size() / 2, bytes.size() - 1})
    EXPECT_EQ(decodeMigrationImage(bytes.substr(0, cut), &back).code(), Code::DataLoss) << cut;
  std::string lying = bytes;
  const uint32_t huge = 0xFFFFFFF0u;
  std::memcpy(lying.data() + 8, &huge, 4);  // the context count
  EXPECT_EQ(decodeMigrationImage(lying, &back).code(), Code::DataLoss);
}

TEST(MigrationImageTest, ReplaysOnlyCallsThatMakeOrChangeHandles) {
  EXPECT_TRUE(replayRule(static_cast<uint32_t>(FnId::cuStreamCreate))->makes);
  EXPECT_TRUE(replayRule(static_cast<uint32_t>(FnId::cuModuleGetFunction))->makes);
  const ReplayRule* attr = replayRule(static_cast<uint32_t>(FnId::cuFuncSetAttribute));
  ASSERT_TRUE(attr);
  EXPECT_FALSE(attr->makes);
  EXPECT_EQ(attr->ownerKind, HandleKind::Function);
  EXPECT_EQ(replayRule(static_cast<uint32_t>(FnId::cuMemAlloc_v2)), nullptr);
  EXPECT_EQ(replayRule(static_cast<uint32_t>(FnId::cuLaunchKernel)), nullptr);
  EXPECT_EQ(replayRule(0xFFFFFFu), nullptr);
}

TEST(MigrationImageTest, ReadsAModulesVariablesFromItsPtx) {
  const std::string ptx =
      ".version 8.0\n.target sm_90\n.address_size 64\n"
      ".visible .global .align 8 .u64 roundsDone;\n"
      ".global .align 4 .b8 _Z5tableILi3EE[1024];\n"
      ".const .align 4 .u32 limits[4] = {1, 2, 3, 4};\n"
      ".extern .global .u32 elsewhere;\n"
      ".visible .entry k(.param .u64 p)\n{\n  .global .u32 notModuleScope;\n  ret;\n}\n";
  auto names = moduleVariables(ptx.c_str(), ptx.size() + 1);
  ASSERT_TRUE(names.isOk()) << names.status().toString();
  EXPECT_EQ(*names, (std::vector<std::string>{"roundsDone", "_Z5tableILi3EE", "limits"}));
  const char garbage[] = "\x7f" "ELF garbage";
  EXPECT_FALSE(moduleVariables(garbage, sizeof garbage).isOk());
}

TEST(MigrationImageTest, MigrateOrdersNeedAnAddressAndAToken) {
  auto roundTrip = [](const MigrateOrder& o) {
    Writer w;
    encodeMigrateOrder(w, o);
    MigrateOrder back;
    return decodeMigrateOrder(std::string_view(reinterpret_cast<const char*>(w.data()), w.size()), &back);
  };
  EXPECT_TRUE(roundTrip({"tcp://10.0.0.2:7000", "admin"}).isOk());
  EXPECT_EQ(roundTrip({"", "admin"}).code(), Code::DataLoss);
  EXPECT_EQ(roundTrip({"tcp://10.0.0.2:7000", ""}).code(), Code::DataLoss);
  MigrateOrder back;
  EXPECT_EQ(decodeMigrateOrder("\x05", &back).code(), Code::DataLoss);
}

}  // namespace
}  // namespace tf::remoting
