// The fatbin reader on what the real nvcc produces: raw, LZ4 and ZSTD payloads, several
// architectures, the wrapper cudart registers, bare PTX and ELF cubins.
#include "cuda/fatbin.h"

#include "nvcc_outputs.h"

#include <gtest/gtest.h>

namespace tf::cuda {
namespace {

using testing::nvccOutput;
using Kind = FatbinEntry::Kind;

std::vector<FatbinEntry> read(const std::vector<uint8_t>& image) {
  auto r = readFatbin(image.data(), image.size());
  EXPECT_TRUE(r) << r.status().toString();
  return r ? std::move(*r) : std::vector<FatbinEntry>{};
}

const FatbinEntry* find(const std::vector<FatbinEntry>& entries, Kind kind, uint32_t sm) {
  for (const auto& e : entries)
    if (e.kind == kind && e.smArch == sm) return &e;
  return nullptr;
}

void expectKernelPtx(const FatbinEntry& ptx) {
  EXPECT_NE(ptx.text().find(".version"), std::string_view::npos);
  EXPECT_NE(ptx.text().find(".entry abiAddOne("), std::string_view::npos);
  EXPECT_NE(ptx.text().find(".entry _Z8abiScalePffi("), std::string_view::npos);
  EXPECT_EQ(ptx.text().find('\0'), std::string_view::npos);
  EXPECT_EQ(ptx.text().back(), '\n');
}

TEST(FatbinTest, RawPayloads) {
  TF_REQUIRE_NVCC();
  auto entries = read(nvccOutput("raw.fatbin"));
  ASSERT_EQ(entries.size(), 2u);
  const FatbinEntry* cubin = find(entries, Kind::Cubin, 90);
  const FatbinEntry* ptx = find(entries, Kind::Ptx, 90);
  ASSERT_TRUE(cubin && ptx);
  EXPECT_EQ(cubin->flags & (kFatbinFlagLz4 | kFatbinFlagZstd), 0u);
  EXPECT_EQ(ptx->flags & (kFatbinFlagLz4 | kFatbinFlagZstd), 0u);
  EXPECT_TRUE(ptx->flags & kFatbinFlag64Bit);
  EXPECT_TRUE(ptx->flags & kFatbinFlagLinux);
  ASSERT_GE(cubin->payload.size(), 64u);
  EXPECT_EQ(std::memcmp(cubin->payload.data(), "\x7f" "ELF", 4), 0);
  EXPECT_GE(ptx->isaMajor, 8);
  expectKernelPtx(*ptx);
  EXPECT_TRUE(ptx->name.empty());
}

// Each compression mode must give back exactly the raw bytes.
void expectSameAsRaw(const char* file, uint64_t cubinFlag, uint64_t ptxFlag) {
  auto raw = read(nvccOutput("raw.fatbin"));
  auto entries = read(nvccOutput(file));
  ASSERT_EQ(entries.size(), 2u) << file;
  ASSERT_EQ(raw.size(), 2u);
  for (Kind kind : {Kind::Cubin, Kind::Ptx}) {
    const FatbinEntry* e = find(entries, kind, 90);
    const FatbinEntry* r = find(raw, kind, 90);
    ASSERT_TRUE(e && r) << file;
    uint64_t want = kind == Kind::Cubin ? cubinFlag : ptxFlag;
    EXPECT_EQ(e->flags & (kFatbinFlagLz4 | kFatbinFlagZstd), want) << file;
    if (kind == Kind::Cubin) {
      // A raw cubin keeps its padding; the decompressed one is exactly the ELF.
      ASSERT_LE(e->payload.size(), r->payload.size());
      EXPECT_TRUE(std::equal(e->payload.begin(), e->payload.end(), r->payload.begin())) << file;
    } else {
      EXPECT_EQ(e->text(), r->text()) << file;
    }
  }
}

TEST(FatbinTest, Lz4PtxMatchesRaw) {
  TF_REQUIRE_NVCC();
  expectSameAsRaw("lz4.fatbin", 0, kFatbinFlagLz4);
}

TEST(FatbinTest, ZstdEverywhereMatchesRaw) {
  TF_REQUIRE_NVCC();
  expectSameAsRaw("zstd.fatbin", kFatbinFlagZstd, kFatbinFlagZstd);
}

TEST(FatbinTest, DefaultCompressesOnlyPtx) {
  TF_REQUIRE_NVCC();
  expectSameAsRaw("default.fatbin", 0, kFatbinFlagZstd);
}

TEST(FatbinTest, DebugBuildRecordsSourceNameAndPtxasOptions) {
  TF_REQUIRE_NVCC();
  auto entries = read(nvccOutput("debug.fatbin"));
  const FatbinEntry* ptx = find(entries, Kind::Ptx, 90);
  const FatbinEntry* cubin = find(entries, Kind::Cubin, 90);
  ASSERT_TRUE(ptx && cubin);
  EXPECT_TRUE(ptx->flags & kFatbinFlagDebug);
  EXPECT_TRUE(ptx->name.ends_with("kernel.cu")) << ptx->name;
  EXPECT_TRUE(cubin->name.ends_with("kernel.cu")) << cubin->name;
  EXPECT_NE(ptx->options.find("-g"), std::string::npos) << ptx->options;
  expectKernelPtx(*ptx);
}

TEST(FatbinTest, SeveralArchitectures) {
  TF_REQUIRE_NVCC();
  auto entries = read(nvccOutput("multi.fatbin"));
  ASSERT_TRUE(find(entries, Kind::Cubin, 75));
  ASSERT_TRUE(find(entries, Kind::Cubin, 90));
  const FatbinEntry* sm100 = find(entries, Kind::Cubin, 100); // 112-byte entry header
  ASSERT_TRUE(sm100);
  EXPECT_EQ(std::memcmp(sm100->payload.data(), "\x7f" "ELF", 4), 0);
  ASSERT_TRUE(find(entries, Kind::Ptx, 80));
  int ptx90 = 0, ptx90a = 0;
  for (const auto& e : entries) {
    if (e.kind != Kind::Ptx) continue;
    expectKernelPtx(e);
    if (e.smArch == 90) (e.flags & kFatbinFlagArchSpecific ? ptx90a : ptx90)++;
    if (e.flags & kFatbinFlagArchSpecific) {
      EXPECT_NE(e.text().find(".target sm_90a"), std::string_view::npos);
    }
  }
  EXPECT_EQ(ptx90, 1);
  EXPECT_EQ(ptx90a, 1);
}

TEST(FatbinTest, ChoosePtxOnRealFatbin) {
  TF_REQUIRE_NVCC();
  auto entries = read(nvccOutput("multi.fatbin"));
  auto chosen = [&](uint32_t sm) -> std::pair<uint32_t, bool> {
    const FatbinEntry* e = choosePtx(entries, sm);
    if (!e) return {0, false};
    EXPECT_EQ(e->kind, Kind::Ptx);
    return {e->smArch, (e->flags & kFatbinFlagArchSpecific) != 0};
  };
  EXPECT_EQ(chosen(75), std::make_pair(80u, false)); // nothing at or below: lowest above
  EXPECT_EQ(chosen(80), std::make_pair(80u, false));
  EXPECT_EQ(chosen(86), std::make_pair(80u, false));
  EXPECT_EQ(chosen(90), std::make_pair(90u, false)); // generic wins the tie with sm_90a
  EXPECT_EQ(chosen(120), std::make_pair(90u, false));
  auto cubinsOnly = entries;
  std::erase_if(cubinsOnly, [](const FatbinEntry& e) { return e.kind == Kind::Ptx; });
  EXPECT_EQ(choosePtx(cubinsOnly, 90), nullptr);
}

FatbinEntry ptxAt(uint32_t sm, uint64_t flags) {
  FatbinEntry e;
  e.kind = Kind::Ptx;
  e.smArch = sm;
  e.flags = flags;
  return e;
}

TEST(FatbinTest, ChoosePtxRespectsArchAndFamilySpecificPtx) {
  std::vector<FatbinEntry> entries = {ptxAt(80, 0), ptxAt(90, kFatbinFlagArchSpecific),
                                      ptxAt(100, kFatbinFlagFamilySpecific)};
  EXPECT_EQ(choosePtx(entries, 90), &entries[1]);  // sm_90a PTX on exactly sm_90
  EXPECT_EQ(choosePtx(entries, 89), &entries[0]);
  EXPECT_EQ(choosePtx(entries, 103), &entries[2]); // same family
  EXPECT_EQ(choosePtx(entries, 120), &entries[0]); // 100f and 90a do not run on sm_120
  std::vector<FatbinEntry> tie = {ptxAt(90, kFatbinFlagArchSpecific), ptxAt(90, kFatbinFlagFamilySpecific),
                                  ptxAt(90, 0), ptxAt(90, kFatbinFlagArchSpecific)};
  EXPECT_EQ(choosePtx(tie, 90), &tie[2]);
  tie.erase(tie.begin() + 2);
  EXPECT_EQ(choosePtx(tie, 90), &tie[1]); // family-specific before arch-specific
  std::vector<FatbinEntry> onlySpecific = {ptxAt(90, kFatbinFlagArchSpecific)};
  EXPECT_EQ(choosePtx(onlySpecific, 120), &onlySpecific[0]); // still better than nothing
  EXPECT_EQ(choosePtx({}, 90), nullptr);
}

TEST(FatbinTest, ConsecutiveContainersAndPadding) {
  TF_REQUIRE_NVCC();
  auto raw = nvccOutput("raw.fatbin");
  auto lz4 = nvccOutput("lz4.fatbin");
  std::vector<uint8_t> both = raw;
  both.insert(both.end(), lz4.begin(), lz4.end());
  EXPECT_EQ(read(both).size(), 4u);
  // With no size, only the first container is read: nvcc places the next translation unit's
  // container right behind it.
  auto first = readFatbin(both.data(), 0);
  ASSERT_TRUE(first) << first.status().toString();
  EXPECT_EQ(first->size(), 2u);
  std::vector<uint8_t> padded = raw;
  padded.resize(raw.size() + 8, 0);
  EXPECT_EQ(read(padded).size(), 2u);
}

TEST(ModuleImageTest, ClassifiesFatbinAndWrapper) {
  TF_REQUIRE_NVCC();
  auto fatbin = nvccOutput("default.fatbin");
  auto bare = readModuleImage(fatbin.data(), 0);
  ASSERT_TRUE(bare) << bare.status().toString();
  EXPECT_EQ(bare->format, ModuleImage::Format::Fatbin);
  EXPECT_EQ(bare->entries.size(), 2u);

  struct Wrapper {
    uint32_t magic, version;
    const void* data;
    void* filenameOrFatbins;
  } wrapper{kFatbinWrapperMagic, 1, fatbin.data(), nullptr};
  for (size_t size : {size_t(0), sizeof wrapper}) {
    auto image = readModuleImage(&wrapper, size);
    ASSERT_TRUE(image) << image.status().toString();
    EXPECT_EQ(image->format, ModuleImage::Format::FatbinWrapper);
    ASSERT_EQ(image->entries.size(), 2u);
    const FatbinEntry* ptx = choosePtx(image->entries, 90);
    ASSERT_TRUE(ptx);
    expectKernelPtx(*ptx);
  }
}

TEST(ModuleImageTest, PtxText) {
  TF_REQUIRE_NVCC();
  auto file = nvccOutput("kernel.ptx");
  std::string text(file.begin(), file.end()); // c_str() gives the NUL cuModuleLoadData expects
  ASSERT_TRUE(text.starts_with("//"));
  for (size_t size : {size_t(0), text.size()}) {
    auto image = readModuleImage(text.c_str(), size);
    ASSERT_TRUE(image) << image.status().toString();
    EXPECT_EQ(image->format, ModuleImage::Format::PtxText);
    ASSERT_EQ(image->entries.size(), 1u);
    const FatbinEntry& e = image->entries[0];
    EXPECT_EQ(e.kind, Kind::Ptx);
    EXPECT_EQ(e.smArch, 90u);
    EXPECT_GE(e.isaMajor, 8);
    EXPECT_EQ(e.text(), text);
  }
  auto minimal = readModuleImage("\n  /* c */ .version 8.5\n.target sm_80a\n", 0);
  ASSERT_TRUE(minimal) << minimal.status().toString();
  EXPECT_EQ(minimal->entries[0].isaMajor, 8);
  EXPECT_EQ(minimal->entries[0].isaMinor, 5);
  EXPECT_EQ(minimal->entries[0].smArch, 80u);
  EXPECT_TRUE(minimal->entries[0].flags & kFatbinFlagArchSpecific);
}

TEST(ModuleImageTest, ElfCubin) {
  TF_REQUIRE_NVCC();
  auto cubin = nvccOutput("kernel.cubin");
  for (size_t size : {size_t(0), cubin.size()}) {
    auto image = readModuleImage(cubin.data(), size);
    ASSERT_TRUE(image) << image.status().toString();
    EXPECT_EQ(image->format, ModuleImage::Format::Elf);
    ASSERT_EQ(image->entries.size(), 1u);
    EXPECT_EQ(image->entries[0].kind, Kind::Cubin);
    EXPECT_EQ(image->entries[0].smArch, 90u);
    // Without a size the extent comes from the ELF's own tables; it must cover the whole file.
    EXPECT_EQ(image->entries[0].payload, cubin);
  }
  // The cubin nvcc put in a fatbin loads the same way.
  auto entries = read(nvccOutput("multi.fatbin"));
  const FatbinEntry* sm75 = find(entries, Kind::Cubin, 75);
  ASSERT_TRUE(sm75);
  auto image = readModuleImage(sm75->payload.data(), sm75->payload.size());
  ASSERT_TRUE(image) << image.status().toString();
  EXPECT_EQ(image->entries[0].smArch, 75u);
}

} // namespace
} // namespace tf::cuda
