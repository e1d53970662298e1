// Reading what nvcc embeds in a program: fatbinary containers (0xBA55ED50), the wrapper that
// __cudaRegisterFatBinary receives (0x466243B1), bare PTX text and ELF cubins.
//
//   auto image = readModuleImage(codePointer, 0);          // 0: size unknown (bare pointer)
//   if (!image) return image.status();
//   const FatbinEntry* ptx = choosePtx(image->entries, 90);
//   if (ptx) jit(ptx->text());
//
// Every length in the input is checked against the readable size when the caller knows it; with
// a bare pointer the container's own header sizes are trusted and only the first container is
// read (see docs/fatbin.md for why). Garbage gives a DataLoss or InvalidArgument status.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tf::cuda {

inline constexpr uint32_t kFatbinMagic = 0xBA55ED50;
inline constexpr uint32_t kFatbinWrapperMagic = 0x466243B1;

// Entry flags (u64 at +40 of an entry header).
inline constexpr uint64_t kFatbinFlag64Bit = 0x1;
inline constexpr uint64_t kFatbinFlagDebug = 0x2;
inline constexpr uint64_t kFatbinFlagLinux = 0x10;
inline constexpr uint64_t kFatbinFlagLz4 = 0x2000;
inline constexpr uint64_t kFatbinFlagZstd = 0x8000;
inline constexpr uint64_t kFatbinFlagArchSpecific = 0x100000;   // sm_90a, compute_100a
inline constexpr uint64_t kFatbinFlagFamilySpecific = 0x200000; // sm_100f, compute_120f

struct FatbinEntry {
  enum class Kind : uint16_t { Ptx = 1, Cubin = 2 };
  Kind kind = Kind::Ptx;
  uint32_t smArch = 0;     // 90 for sm_90 / compute_90
  uint16_t isaMajor = 0;   // PTX: the ISA version (9.0); cubin: what fatbinary writes (1.8)
  uint16_t isaMinor = 0;
  uint64_t flags = 0;
  std::string name;        // source file name when nvcc recorded one (-G, --ident), else empty
  std::string options;     // ptxas options recorded with a PTX entry (-Xptxas), else empty
  std::vector<uint8_t> payload; // decompressed; PTX without its trailing NULs

  std::string_view text() const {
    return {reinterpret_cast<const char*>(payload.data()), payload.size()};
  }
};

// Parses consecutive 0xBA55ED50 containers starting at `image`. `size` is the number of readable
// bytes, or 0 when unknown: then only the first container is read, trusting its header. Entries
// of kinds other than PTX and cubin (LTO IR, ...) are skipped.
Result<std::vector<FatbinEntry>> readFatbin(const void* image, size_t size);

// Classifies what cuModuleLoadData, cuLibraryLoadData and __cudaRegisterFatBinary receive.
struct ModuleImage {
  enum class Format { FatbinWrapper, Fatbin, PtxText, Elf };
  Format format = Format::Fatbin;
  std::vector<FatbinEntry> entries;
};
Result<ModuleImage> readModuleImage(const void* image, size_t size /* 0 = unknown */);

// The PTX to JIT for a device of compute capability `smArch`: the entry with the highest arch
// <= smArch, else the lowest above it; at equal arch the generic PTX wins over family- and
// arch-specific PTX, and below smArch PTX that a real driver would refuse (sm_90a PTX on an sm_100
// device) only counts when nothing else does. nullptr when there is no PTX.
const FatbinEntry* choosePtx(const std::vector<FatbinEntry>& entries, uint32_t smArch);

} // namespace tf::cuda
