// The migration image's wire form and the replay rules (migration.h).
#include "remoting/worker/migration.h"

#include <array>

#include "cuda/catalog.h"
#include "cuda/fatbin.h"

namespace tf::remoting {

using cuda::FnId;

namespace {
constexpr uint32_t kMaxEntries = 1u << 20;
constexpr size_t kMaxString = 1u << 20;
constexpr size_t kMaxArgsPerRecipe = kMaxScalars;

bool validKind(uint32_t k) { return k < static_cast<uint32_t>(HandleKind::Count); }

void encodeRecipe(Writer& w, const Recipe& r) {
  w.u32(r.fn);
  w.u64(r.ctx);
  w.u32(static_cast<uint32_t>(r.args.size()));
  for (uint64_t a : r.args) w.u64(a);
  w.blob(r.blob.data(), r.blob.size());
  w.u32(static_cast<uint32_t>(r.made.size()));
  for (const auto& m : r.made) {
    w.u32(static_cast<uint32_t>(m.kind));
    w.u64(m.client);
  }
}

Recipe decodeRecipe(Reader& r) {
  Recipe rc;
  rc.fn = r.u32();
  rc.ctx = r.u64();
  uint32_t nargs = r.u32();
  if (r.ok() && nargs > kMaxArgsPerRecipe) r.fail("too many args in a recipe");
  for (uint32_t a = 0; a < nargs && r.ok(); ++a) rc.args.push_back(r.u64());
  rc.blob = std::string(r.blob(kMaxString));
  uint32_t nmade = r.u32();
  if (r.ok() && nmade > kMaxArgsPerRecipe) r.fail("too many handles made by a recipe");
  for (uint32_t m = 0; m < nmade && r.ok(); ++m) {
    uint32_t k = r.u32();
    uint64_t c = r.u64();
    if (r.ok() && (!validKind(k) || !c)) r.fail("bad handle in a recipe");
    rc.made.push_back({static_cast<HandleKind>(k), c});
  }
  return rc;
}

void encodeGraph(Writer& w, const GraphImage& g) {
  w.u64(g.ctx);
  w.u64(g.client);
  w.u32(static_cast<uint32_t>(g.nodes.size()));
  for (const Recipe& n : g.nodes) encodeRecipe(w, n);
  w.u32(static_cast<uint32_t>(g.edges.size()));
  for (auto [from, to] : g.edges) {
    w.u32(from);
    w.u32(to);
  }
  w.u64(g.exec);
  w.u64(g.flags);
  w.u64(g.from);
  w.u32(static_cast<uint32_t>(g.stands.size()));
  for (auto [client, index] : g.stands) {
    w.u64(client);
    w.u32(index);
  }
  w.u32(static_cast<uint32_t>(g.disabled.size()));
  for (uint32_t i : g.disabled) w.u64(i);  // 8 bytes, as every counted entry is at least
  w.u32(static_cast<uint32_t>(g.children.size()));
  for (const GraphImage& child : g.children) encodeGraph(w, child);
}

constexpr int kMaxGraphDepth = 8;

// Counts, node calls and indexes checked; `count` reads a count no larger than what is left.
template <typename Count> GraphImage decodeGraph(Reader& r, Count&& count, int depth = 0) {
  GraphImage g;
  g.ctx = r.u64();
  g.client = r.u64();
  for (uint32_t i = 0, n = count("too many graph nodes"); i < n && r.ok(); ++i) {
    Recipe node = decodeRecipe(r);
    if (r.ok() && (!isNodeRecipe(node.fn) || node.args.empty() || node.made.size() > 1 ||
                   (!node.made.empty() && node.made[0].kind != HandleKind::GraphNode)))
      r.fail("a graph node not made by a node call");
    g.nodes.push_back(std::move(node));
  }
  const uint32_t nodes = static_cast<uint32_t>(g.nodes.size());
  for (uint32_t i = 0, n = count("too many graph edges"); i < n && r.ok(); ++i) {
    uint32_t from = r.u32(), to = r.u32();
    if (r.ok() && (from >= nodes || to >= nodes || from == to)) r.fail("a graph edge names no node");
    g.edges.emplace_back(from, to);
  }
  g.exec = r.u64();
  g.flags = r.u64();
  g.from = r.u64();
  for (uint32_t i = 0, n = count("too many graph node names"); i < n && r.ok(); ++i) {
    uint64_t client = r.u64();
    uint32_t index = r.u32();
    if (r.ok() && (!client || index >= nodes)) r.fail("a graph node name names no node");
    g.stands.emplace_back(client, index);
  }
  for (uint32_t i = 0, n = count("too many disabled nodes"); i < n && r.ok(); ++i) {
    uint64_t index = r.u64();
    if (r.ok() && index >= nodes) r.fail("a disabled node names no node");
    g.disabled.push_back(static_cast<uint32_t>(index));
  }
  if (r.ok() && depth >= kMaxGraphDepth) r.fail("child graphs nested too deep");
  for (uint32_t i = 0, n = count("too many child graphs"); i < n && r.ok(); ++i) {
    g.children.push_back(decodeGraph(r, count, depth + 1));
    const GraphImage& child = g.children.back();
    if (r.ok() && (child.exec || child.flags || child.from || !child.stands.empty() || !child.disabled.empty()))
      r.fail("a child graph with an executable's fields");
  }
  for (const Recipe& node : g.nodes)
    if (r.ok() && node.fn == static_cast<uint32_t>(FnId::cuGraphAddChildGraphNode) &&
        (node.args.size() < 2 || node.args[1] >= g.children.size()))
      r.fail("a child graph node names no child graph");
  // A graph is the client's or a body, never both; only a body has names, flags or a source. (A
  // child graph is neither: its parent checks it.)
  if (r.ok() && depth == 0 &&
      (!g.client == !g.exec || (!g.exec && (g.flags || g.from || !g.stands.empty() || !g.disabled.empty()))))
    r.fail("a graph that is neither the client's nor an executable's");
  return g;
}
}  // namespace

bool isNodeRecipe(uint32_t fn) {
  for (FnId f : {FnId::cuGraphAddEmptyNode, FnId::cuGraphAddKernelNode_v2, FnId::cuGraphAddMemsetNode,
                 FnId::cuGraphAddMemcpyNode, FnId::cuGraphAddHostNode, FnId::cuGraphAddChildGraphNode})
    if (fn == static_cast<uint32_t>(f)) return true;
  return false;
}

const ReplayRule* replayRule(uint32_t fn) {
  static const std::vector<ReplayRule> table = [] {
    std::vector<ReplayRule> t(static_cast<size_t>(cuda::catalogSize()));
    auto makes = [&](FnId f) { t[static_cast<size_t>(f)].makes = true; };
    auto changes = [&](FnId f, HandleKind k, int arg) {
      t[static_cast<size_t>(f)].ownerKind = k;
      t[static_cast<size_t>(f)].ownerArg = arg;
    };
    for (FnId f : {FnId::cuStreamCreate, FnId::cuStreamCreateWithPriority, FnId::cuEventCreate,
                   FnId::cuModuleLoadData, FnId::cuLibraryLoadData, FnId::cuModuleGetFunction,
                   FnId::cuLibraryGetKernel, FnId::cuKernelGetFunction})
      makes(f);
    changes(FnId::cuFuncSetAttribute, HandleKind::Function, 0);
    changes(FnId::cuFuncSetCacheConfig, HandleKind::Function, 0);
    changes(FnId::cuFuncSetSharedMemConfig, HandleKind::Function, 0);
    changes(FnId::cuKernelSetAttribute, HandleKind::Kernel, 2);
    changes(FnId::cuKernelSetCacheConfig, HandleKind::Kernel, 0);
    changes(FnId::cuStreamSetAttribute, HandleKind::Stream, 0);
    changes(FnId::cuStreamSetAttribute_ptsz, HandleKind::Stream, 0);
    changes(FnId::cuCtxSetLimit, HandleKind::Context, -1);
    changes(FnId::cuCtxSetCacheConfig, HandleKind::Context, -1);
    changes(FnId::cuCtxSetSharedMemConfig, HandleKind::Context, -1);
    return t;
  }();
  if (fn >= table.size()) return nullptr;
  const ReplayRule& r = table[fn];
  return r.makes || r.ownerKind != HandleKind::Count ? &r : nullptr;
}

Result<std::vector<std::string>> moduleVariables(const void* image, size_t size) {
  auto parsed = cuda::readModuleImage(image, size);
  if (!parsed) return parsed.status();
  const cuda::FatbinEntry* ptx = nullptr;
  for (const auto& e : parsed->entries)
    if (e.kind == cuda::FatbinEntry::Kind::Ptx) {
      ptx = &e;
      break;
    }
  if (!ptx) return dataLoss("the image has no PTX to read its variables from");
  std::vector<std::string> names;
  std::string_view text = ptx->text();
  int depth = 0;  // inside a function body: its variables are not the module's
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(at, end - at);
    at = end + 1;
    if (depth == 0) {
      std::vector<std::string_view> words;
      for (size_t i = 0; i < line.size();) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        size_t j = i;
        while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
        if (j > i) words.push_back(line.substr(i, j - i));
        i = j;
      }
      size_t w = 0;
      while (w < words.size() && (words[w] == ".visible" || words[w] == ".weak")) ++w;
      if (w < words.size() && (words[w] == ".global" || words[w] == ".const")) {
        // The name is the first word after the state space that is not a directive or a number.
        for (++w; w < words.size(); ++w) {
          std::string_view word = words[w];
          if (word.empty() || word[0] == '.' || (word[0] >= '0' && word[0] <= '9')) continue;
          size_t stop = word.find_first_of("[=;");
          names.emplace_back(word.substr(0, stop));
          break;
        }
      }
    }
    for (char c : line) depth += c == '{' ? 1 : c == '}' ? -1 : 0;
    if (depth < 0) depth = 0;
  }
  return names;
}

uint64_t MigrationImage::bulkBytes() const {
  uint64_t n = 0;
  for (const Image& i : images) n += i.size;
  for (const Memory& m : memory) n += m.span;
  for (const Global& g : globals) n += g.size;
  return n;
}

void encodeMigrationImage(Writer& w, const MigrationImage& img) {
  w.u32(img.pid);
  w.u32(static_cast<uint32_t>(img.latched));
  w.u32(static_cast<uint32_t>(img.contexts.size()));
  for (const auto& c : img.contexts) {
    w.u64(c.client);
    w.u32(static_cast<uint32_t>(c.device));
    w.u32(c.flags);
    w.u8(c.primary ? 1 : 0);
  }
  w.u32(static_cast<uint32_t>(img.recipes.size()));
  for (const Recipe& r : img.recipes) encodeRecipe(w, r);
  w.u32(static_cast<uint32_t>(img.images.size()));
  for (const auto& i : img.images) {
    w.u64(i.hash);
    w.u64(i.size);
  }
  w.u32(static_cast<uint32_t>(img.memory.size()));
  for (const auto& m : img.memory) {
    w.u32(static_cast<uint32_t>(m.device));
    w.u64(m.base);
    w.u64(m.span);
    w.u64(m.size);
  }
  w.u32(static_cast<uint32_t>(img.globals.size()));
  for (const auto& g : img.globals) {
    w.u32(static_cast<uint32_t>(g.ownerKind));
    w.u64(g.owner);
    w.str(g.name);
    w.u64(g.address);
    w.u64(g.size);
  }
  w.u32(static_cast<uint32_t>(img.graphs.size()));
  for (const GraphImage& g : img.graphs) encodeGraph(w, g);
}

Status decodeMigrationImage(std::string_view blob, MigrationImage* out) {
  Reader r(blob.data(), blob.size());
  MigrationImage img;
  img.pid = r.u32();
  img.latched = static_cast<int32_t>(r.u32());
  auto count = [&](const char* what) {
    uint32_t n = r.u32();
    // Every entry takes at least 8 bytes: a count beyond what is left is a lie.
    if (r.ok() && (n > kMaxEntries || n > r.remaining() / 8 + 1)) r.fail(what);
    return r.ok() ? n : 0;
  };
  for (uint32_t i = 0, n = count("too many contexts"); i < n && r.ok(); ++i) {
    MigrationImage::Context c;
    c.client = r.u64();
    c.device = static_cast<int32_t>(r.u32());
    c.flags = r.u32();
    c.primary = r.u8() != 0;
    if (r.ok() && (c.device < 0 || c.device >= 64 || !c.client)) r.fail("bad context");
    img.contexts.push_back(c);
  }
  for (uint32_t i = 0, n = count("too many recipes"); i < n && r.ok(); ++i) {
    Recipe rc = decodeRecipe(r);
    if (r.ok() && !replayRule(rc.fn)) r.fail("a recipe of a call that is not replayed");
    img.recipes.push_back(std::move(rc));
  }
  for (uint32_t i = 0, n = count("too many images"); i < n && r.ok(); ++i) {
    MigrationImage::Image im;
    im.hash = r.u64();
    im.size = r.u64();
    if (r.ok() && (im.size == 0 || im.size > kMaxImage)) r.fail("bad image size");
    img.images.push_back(im);
  }
  for (uint32_t i = 0, n = count("too many allocations"); i < n && r.ok(); ++i) {
    MigrationImage::Memory m;
    m.device = static_cast<int32_t>(r.u32());
    m.base = r.u64();
    m.span = r.u64();
    m.size = r.u64();
    if (r.ok() && (m.device < 0 || m.device >= 64 || !m.base || !m.span || m.size > m.span ||
                   m.base + m.span < m.base))
      r.fail("bad allocation");
    img.memory.push_back(m);
  }
  for (uint32_t i = 0, n = count("too many globals"); i < n && r.ok(); ++i) {
    MigrationImage::Global g;
    uint32_t k = r.u32();
    g.ownerKind = static_cast<HandleKind>(k);
    g.owner = r.u64();
    g.name = std::string(r.blob(4096));
    g.address = r.u64();
    g.size = r.u64();
    if (r.ok() && ((k != static_cast<uint32_t>(HandleKind::Module) &&
                    k != static_cast<uint32_t>(HandleKind::Library)) ||
                   !g.owner || g.name.empty() || !g.address || g.size > (uint64_t(1) << 32)))
      r.fail("bad global");
    img.globals.push_back(std::move(g));
  }
  for (uint32_t i = 0, n = count("too many graphs"); i < n && r.ok(); ++i)
    img.graphs.push_back(decodeGraph(r, count));
  if (r.ok() && r.remaining()) r.fail("trailing bytes");
  if (!r.ok()) return r.status();
  if (img.bulkBytes() > kMaxBulk) return dataLoss("malformed message: the contents are too large");
  *out = std::move(img);
  return Status::ok();
}

}  // namespace tf::remoting
