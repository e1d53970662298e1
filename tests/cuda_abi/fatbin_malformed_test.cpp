// Malformed images: every one must give an error status, never a crash or an over-read (the
// asan build runs these too). Each buffer is a heap copy of exactly the bytes passed.
#include "cuda/fatbin.h"

#include "nvcc_outputs.h"

#include <random>

#include <gtest/gtest.h>

namespace tf::cuda {
namespace {

using testing::entryOffsets;
using testing::loadAt;
using testing::nvccOutput;
using testing::storeAt;

Status statusOf(const std::vector<uint8_t>& image) {
  auto r = readFatbin(image.data(), image.size());
  return r ? Status::ok() : r.status();
}

// Entry header offset of the first entry with this kind in a nvcc fatbin.
size_t entryOfKind(const std::vector<uint8_t>& fatbin, uint16_t kind) {
  for (size_t at : entryOffsets(fatbin))
    if (loadAt<uint16_t>(fatbin, at) == kind) return at;
  ADD_FAILURE() << "no entry of kind " << kind;
  return 0;
}

TEST(FatbinMalformedTest, NullAndUnrecognised) {
  EXPECT_EQ(readFatbin(nullptr, 10).status().code(), Code::InvalidArgument);
  EXPECT_EQ(readModuleImage(nullptr, 0).status().code(), Code::InvalidArgument);
  std::vector<uint8_t> garbage = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0};
  EXPECT_EQ(readModuleImage(garbage.data(), garbage.size()).status().code(), Code::InvalidArgument);
  EXPECT_EQ(statusOf(garbage).code(), Code::InvalidArgument);
  EXPECT_FALSE(readModuleImage("", 0));
  EXPECT_FALSE(readModuleImage("// only a comment\n", 0));
  EXPECT_FALSE(readModuleImage("\x7f" "E", 0)); // shorter than any magic, NUL-terminated
}

TEST(FatbinMalformedTest, WrongMagicAndVersion) {
  TF_REQUIRE_NVCC();
  auto fatbin = nvccOutput("raw.fatbin");
  auto bad = fatbin;
  bad[0] ^= 1;
  EXPECT_EQ(statusOf(bad).code(), Code::InvalidArgument);
  bad = fatbin;
  storeAt<uint16_t>(bad, 4, 2);
  Status s = statusOf(bad);
  EXPECT_EQ(s.code(), Code::InvalidArgument);
  EXPECT_NE(s.message().find("version 2"), std::string::npos) << s.toString();
}

TEST(FatbinMalformedTest, EveryTruncationFails) {
  TF_REQUIRE_NVCC();
  for (const char* file : {"raw.fatbin", "zstd.fatbin"}) {
    auto fatbin = nvccOutput(file);
    ASSERT_GT(fatbin.size(), 64u);
    for (size_t cut = 1; cut < fatbin.size(); ++cut) {
      std::vector<uint8_t> part(fatbin.begin(), fatbin.begin() + cut);
      auto r = readFatbin(part.data(), part.size());
      ASSERT_FALSE(r) << file << " cut at " << cut;
      // The bytes that are there are right, so whatever is cut (the magic itself included) is
      // data missing, never a wrong argument.
      ASSERT_EQ(r.status().code(), Code::DataLoss) << file << " cut at " << cut << ": "
                                                  << r.status().toString();
    }
  }
}

TEST(FatbinMalformedTest, OversizedLengths) {
  TF_REQUIRE_NVCC();
  auto fatbin = nvccOutput("default.fatbin");
  size_t ptx = entryOfKind(fatbin, 1);
  struct Case {
    const char* what;
    size_t at;
    uint64_t value;
    int width;
  } cases[] = {
      {"container payload", 8, uint64_t(1) << 40, 8},
      {"container payload +1", 8, loadAt<uint64_t>(fatbin, 8) + 1, 8},
      {"container header size", 6, 0xffff, 2},
      {"container header size too small", 6, 8, 2},
      {"entry header size", ptx + 4, 0xfffffff0, 4},
      {"entry header size too small", ptx + 4, 32, 4},
      {"entry payload", ptx + 8, ~uint64_t(0), 8},
      {"compressed size", ptx + 16, 0x7fffffff, 4},
      {"compressed size zero", ptx + 16, 0, 4},
      {"name", ptx + 32, 0xfffffff0, 4},
      {"name length", ptx + 36, 0x1000, 4},
      {"uncompressed size", ptx + 56, uint64_t(1) << 40, 8},
      {"uncompressed size +1", ptx + 56, loadAt<uint64_t>(fatbin, ptx + 56) + 1, 8},
      {"uncompressed size -1", ptx + 56, loadAt<uint64_t>(fatbin, ptx + 56) - 1, 8},
  };
  for (const Case& c : cases) {
    auto bad = fatbin;
    if (c.width == 2) storeAt<uint16_t>(bad, c.at, uint16_t(c.value));
    if (c.width == 4) storeAt<uint32_t>(bad, c.at, uint32_t(c.value));
    if (c.width == 8) storeAt<uint64_t>(bad, c.at, c.value);
    // Give the name a length (or an offset) so that the bad field is looked at.
    if (std::string(c.what) == "name") storeAt<uint32_t>(bad, ptx + 36, 4);
    if (std::string(c.what) == "name length") storeAt<uint32_t>(bad, ptx + 32, 64);
    Status s = statusOf(bad);
    EXPECT_EQ(s.code(), Code::DataLoss) << c.what << ": " << s.toString();
  }
}

// Corruptions that are errors whatever the compressed bytes happen to be.
void expectCorruptPayloadFails(const char* file, uint16_t kind) {
  auto fatbin = nvccOutput(file);
  size_t e = entryOfKind(fatbin, kind);
  ASSERT_TRUE(loadAt<uint64_t>(fatbin, e + 40) & (kFatbinFlagLz4 | kFatbinFlagZstd)) << file;
  size_t payload = e + loadAt<uint32_t>(fatbin, e + 4);
  uint32_t compressed = loadAt<uint32_t>(fatbin, e + 16);

  auto bad = fatbin;
  storeAt<uint32_t>(bad, e + 16, compressed / 2); // cut the stream short
  EXPECT_EQ(statusOf(bad).code(), Code::DataLoss) << file << " short stream";

  bad = fatbin;
  for (size_t i = 0; i < compressed; ++i) bad[payload + i] = 0xff; // nonsense stream
  EXPECT_EQ(statusOf(bad).code(), Code::DataLoss) << file << " 0xff stream";

  bad = fatbin;
  storeAt<uint64_t>(bad, e + 40, loadAt<uint64_t>(fatbin, e + 40) | kFatbinFlagLz4 | kFatbinFlagZstd);
  EXPECT_EQ(statusOf(bad).code(), Code::DataLoss) << file << " both codecs";
}

TEST(FatbinMalformedTest, CorruptZstd) {
  TF_REQUIRE_NVCC();
  expectCorruptPayloadFails("zstd.fatbin", 2);
  expectCorruptPayloadFails("zstd.fatbin", 1);
  auto fatbin = nvccOutput("zstd.fatbin");
  size_t e = entryOfKind(fatbin, 1);
  fatbin[e + loadAt<uint32_t>(fatbin, e + 4)] ^= 0xff; // frame magic
  EXPECT_EQ(statusOf(fatbin).code(), Code::DataLoss);
}

TEST(FatbinMalformedTest, CorruptLz4) {
  TF_REQUIRE_NVCC();
  expectCorruptPayloadFails("lz4.fatbin", 1);
}

TEST(FatbinMalformedTest, Lz4SizeBeyondWhatTheBlockCanHoldIsRefusedBeforeAllocating) {
  TF_REQUIRE_NVCC();
  auto fatbin = nvccOutput("lz4.fatbin");
  size_t e = entryOfKind(fatbin, 1);
  storeAt<uint64_t>(fatbin, e + 56, uint64_t(200) << 20);
  Status s = statusOf(fatbin);
  EXPECT_EQ(s.code(), Code::DataLoss);
  EXPECT_NE(s.message().find("LZ4 sizes out of range"), std::string::npos) << s.toString();
}

TEST(FatbinMalformedTest, TrailingGarbage) {
  TF_REQUIRE_NVCC();
  auto fatbin = nvccOutput("raw.fatbin");
  fatbin.push_back(0);
  fatbin.push_back(7);
  EXPECT_FALSE(statusOf(fatbin).isOk());
}

TEST(FatbinMalformedTest, BadWrapper) {
  TF_REQUIRE_NVCC();
  auto fatbin = nvccOutput("raw.fatbin");
  struct Wrapper {
    uint32_t magic, version;
    const void* data;
    void* filenameOrFatbins;
  } wrapper{kFatbinWrapperMagic, 3, fatbin.data(), nullptr};
  EXPECT_EQ(readModuleImage(&wrapper, 0).status().code(), Code::InvalidArgument);
  wrapper.version = 2;
  EXPECT_TRUE(readModuleImage(&wrapper, 0));
  EXPECT_EQ(readModuleImage(&wrapper, 16).status().code(), Code::DataLoss);
  wrapper.data = nullptr;
  EXPECT_EQ(readModuleImage(&wrapper, 0).status().code(), Code::InvalidArgument);
  const char* notFatbin = "definitely not a fatbin container";
  wrapper.data = notFatbin;
  auto r = readModuleImage(&wrapper, 0);
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("fatbin wrapper"), std::string::npos);
}

TEST(FatbinMalformedTest, BadElf) {
  TF_REQUIRE_NVCC();
  auto cubin = nvccOutput("kernel.cubin");
  ASSERT_GT(cubin.size(), 128u);
  auto bad = cubin;
  storeAt<uint16_t>(bad, 18, 62); // EM_X86_64
  EXPECT_EQ(readModuleImage(bad.data(), bad.size()).status().code(), Code::InvalidArgument);
  bad = cubin;
  bad[4] = 1; // ELFCLASS32
  EXPECT_EQ(readModuleImage(bad.data(), bad.size()).status().code(), Code::InvalidArgument);
  for (size_t cut : {size_t(10), size_t(63), cubin.size() / 2, cubin.size() - 1}) {
    std::vector<uint8_t> part(cubin.begin(), cubin.begin() + cut);
    EXPECT_EQ(readModuleImage(part.data(), part.size()).status().code(), Code::DataLoss) << cut;
  }
  bad = cubin;
  storeAt<uint64_t>(bad, 40, ~uint64_t(0) - 8); // section headers at the end of the address space
  EXPECT_EQ(readModuleImage(bad.data(), 0).status().code(), Code::DataLoss);
}

// Random mutations of real fatbins (fixed seed): whatever happens, no crash and no over-read.
TEST(FatbinMalformedTest, RandomMutationsNeverCrash) {
  TF_REQUIRE_NVCC();
  std::mt19937_64 rng(20240611);
  int ok = 0, failed = 0;
  for (const char* file : {"default.fatbin", "lz4.fatbin", "zstd.fatbin", "multi.fatbin",
                           "debug.fatbin"}) {
    const auto original = nvccOutput(file);
    const auto entries = entryOffsets(original);
    for (int iteration = 0; iteration < 800; ++iteration) {
      auto image = original;
      int edits = 1 + int(rng() % 4);
      for (int k = 0; k < edits; ++k) {
        // Mostly hit headers, where the interesting lengths live.
        size_t base = rng() % 2 ? entries[rng() % entries.size()] : 0;
        size_t at = base + rng() % 64;
        if (at + 4 > image.size()) at = 0;
        switch (rng() % 5) {
        case 0: image[rng() % image.size()] ^= uint8_t(1 + rng() % 255); break;
        case 1: image[at] ^= uint8_t(1u << (rng() % 8)); break;
        case 2: storeAt<uint32_t>(image, at & ~size_t(3), uint32_t(rng())); break;
        case 3: storeAt<uint32_t>(image, at & ~size_t(3), uint32_t(rng() % 2 ? 0 : 0xffffffff)); break;
        case 4: image.resize(1 + rng() % image.size()); break;
        }
        if (image.size() < 72) break;
      }
      auto r = readFatbin(image.data(), image.size());
      r ? ++ok : ++failed;
      if (r) {
        for (const FatbinEntry& e : *r) EXPECT_LE(e.payload.size(), size_t(1) << 30);
      }
      auto m = readModuleImage(image.data(), image.size());
      EXPECT_EQ(bool(m), bool(r)) << file << " iteration " << iteration;
    }
  }
  // The mutations must reach both outcomes, or they are not exercising the reader.
  EXPECT_GT(ok, 100);
  EXPECT_GT(failed, 100);
}

} // namespace
} // namespace tf::cuda
