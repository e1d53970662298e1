#include "cuda/fatbin.h"

#include <algorithm>
#include <bit>
#include <climits>
#include <cstdio>
#include <cstring>
#include <tuple>

#define ZSTD_STATIC_LINKING_ONLY // ZSTD_decompressBound
#include <lz4.h>
#include <zstd.h>

namespace tf::cuda {
namespace {

static_assert(std::endian::native == std::endian::little, "fatbin fields are little-endian");

constexpr uint64_t kContainerHeaderBytes = 16;
constexpr uint64_t kEntryHeaderBytes = 64;
constexpr uint64_t kWrapperBytes = 24;
// Far above any real entry; keeps a corrupt size field from allocating the machine away.
constexpr uint64_t kMaxEntryBytes = uint64_t(1) << 30;
// What a container header may claim when the caller cannot say how much is readable.
constexpr uint64_t kMaxUnknownContainerBytes = uint64_t(1) << 32;
constexpr uint16_t kElfMachineCuda = 190;
constexpr uint32_t kElfSectionNoBits = 8;

template <typename T> T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string num(uint64_t v) { return std::to_string(v); }

Status decompress(const uint8_t* src, uint64_t compressed, uint64_t padded, uint64_t flags,
                  uint64_t uncompressed, std::vector<uint8_t>& out) {
  if ((flags & kFatbinFlagLz4) && (flags & kFatbinFlagZstd))
    return dataLoss("entry claims both LZ4 and ZSTD compression (flags " + hex(flags) + ")");
  if (compressed == 0 || compressed > padded)
    return dataLoss("compressed size " + num(compressed) + " outside the " + num(padded) +
                    "-byte payload");
  if (uncompressed == 0 || uncompressed > kMaxEntryBytes)
    return dataLoss("implausible uncompressed size " + num(uncompressed));
  if (flags & kFatbinFlagZstd) {
    size_t frame = ZSTD_findFrameCompressedSize(src, compressed);
    if (ZSTD_isError(frame)) return dataLoss(std::string("zstd: ") + ZSTD_getErrorName(frame));
    unsigned long long declared = ZSTD_getFrameContentSize(src, frame);
    if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != uncompressed)
      return dataLoss("zstd frame holds " + num(declared) + " bytes but the entry header says " +
                      num(uncompressed));
    unsigned long long bound = ZSTD_decompressBound(src, frame);
    if (bound == ZSTD_CONTENTSIZE_ERROR || bound < uncompressed)
      return dataLoss("zstd frame cannot hold the " + num(uncompressed) + " bytes it claims");
    out.resize(uncompressed);
    size_t n = ZSTD_decompress(out.data(), out.size(), src, frame);
    if (ZSTD_isError(n)) return dataLoss(std::string("zstd: ") + ZSTD_getErrorName(n));
    if (n != uncompressed)
      return dataLoss("zstd gave " + num(n) + " bytes, expected " + num(uncompressed));
    return Status::ok();
  }
  // An LZ4 block expands at most about 255:1.
  if (compressed > INT_MAX || uncompressed > INT_MAX || uncompressed > compressed * 255 + 16)
    return dataLoss("LZ4 sizes out of range: " + num(compressed) + " -> " + num(uncompressed));
  out.resize(uncompressed);
  int n = LZ4_decompress_safe(reinterpret_cast<const char*>(src), reinterpret_cast<char*>(out.data()),
                              static_cast<int>(compressed), static_cast<int>(uncompressed));
  if (n < 0) return dataLoss("corrupt LZ4 block");
  if (static_cast<uint64_t>(n) != uncompressed)
    return dataLoss("LZ4 gave " + num(n) + " bytes, expected " + num(uncompressed));
  return Status::ok();
}

std::string trimmed(const uint8_t* p, size_t n) {
  std::string_view s(reinterpret_cast<const char*>(p), n);
  s = s.substr(0, s.find('\0'));
  size_t first = s.find_first_not_of(' ');
  if (first == std::string_view::npos) return {};
  return std::string(s.substr(first, s.find_last_not_of(' ') - first + 1));
}

// One entry (header + payload) within `available` bytes; `consumed` is its total length.
Status readEntry(const uint8_t* e, uint64_t available, uint64_t& consumed,
                 std::vector<FatbinEntry>& out) {
  if (available < kEntryHeaderBytes)
    return dataLoss("entry header truncated: " + num(available) + " of 64 bytes");
  uint16_t kind = load<uint16_t>(e);
  uint32_t headerSize = load<uint32_t>(e + 4);
  uint64_t padded = load<uint64_t>(e + 8);
  if (headerSize < kEntryHeaderBytes || headerSize > available)
    return dataLoss("entry header size " + num(headerSize) + " outside [64, " + num(available) + "]");
  if (padded > available - headerSize)
    return dataLoss("entry payload of " + num(padded) + " bytes overruns the " +
                    num(available - headerSize) + " bytes left in the container");
  consumed = headerSize + padded;
  if (kind != uint16_t(FatbinEntry::Kind::Ptx) && kind != uint16_t(FatbinEntry::Kind::Cubin))
    return Status::ok(); // LTO IR (8) and other kinds: nothing a loader uses

  FatbinEntry entry;
  entry.kind = FatbinEntry::Kind(kind);
  entry.isaMinor = load<uint16_t>(e + 24);
  entry.isaMajor = load<uint16_t>(e + 26);
  entry.smArch = load<uint32_t>(e + 28);
  entry.flags = load<uint64_t>(e + 40);
  uint32_t nameOffset = load<uint32_t>(e + 32), nameLength = load<uint32_t>(e + 36);
  if (nameLength != 0) {
    if (uint64_t(nameOffset) + nameLength > headerSize)
      return dataLoss("entry name [" + num(nameOffset) + ", +" + num(nameLength) +
                      ") outside its " + num(headerSize) + "-byte header");
    entry.name = trimmed(e + nameOffset, nameLength);
  }
  // In a PTX entry +20 locates an {u32 offset, u32 length} record of ptxas options (in sm_100+
  // cubins it locates binary data). Advisory: a record that does not fit is ignored.
  uint32_t optionsRecord = load<uint32_t>(e + 20);
  if (entry.kind == FatbinEntry::Kind::Ptx && optionsRecord != 0 &&
      uint64_t(optionsRecord) + 8 <= headerSize) {
    uint32_t at = load<uint32_t>(e + optionsRecord), length = load<uint32_t>(e + optionsRecord + 4);
    if (uint64_t(at) + length <= headerSize) entry.options = trimmed(e + at, length);
  }

  const uint8_t* payload = e + headerSize;
  if (entry.flags & (kFatbinFlagLz4 | kFatbinFlagZstd)) {
    TF_RETURN_IF_ERROR(decompress(payload, load<uint32_t>(e + 16), padded, entry.flags,
                                  load<uint64_t>(e + 56), entry.payload));
  } else {
    entry.payload.assign(payload, payload + padded);
  }
  if (entry.kind == FatbinEntry::Kind::Ptx) {
    auto nul = std::find(entry.payload.begin(), entry.payload.end(), uint8_t(0));
    entry.payload.erase(nul, entry.payload.end());
  }
  out.push_back(std::move(entry));
  return Status::ok();
}

Status readContainer(const uint8_t* c, uint64_t available, uint64_t& consumed,
                     std::vector<FatbinEntry>& out) {
  if (available >= 4 && load<uint32_t>(c) != kFatbinMagic)
    return invalidArgument("not a fatbin container: magic " + hex(load<uint32_t>(c)) +
                           ", expected " + hex(kFatbinMagic));
  if (available < kContainerHeaderBytes)
    return dataLoss("container header truncated: " + num(available) + " of 16 bytes");
  uint16_t version = load<uint16_t>(c + 4), headerSize = load<uint16_t>(c + 6);
  uint64_t payloadSize = load<uint64_t>(c + 8);
  if (version != 1) return invalidArgument("unsupported fatbin container version " + num(version));
  if (headerSize < kContainerHeaderBytes || headerSize > available)
    return dataLoss("container header size " + num(headerSize) + " outside [16, " +
                    num(available) + "]");
  if (payloadSize > available - headerSize)
    return dataLoss("container payload of " + num(payloadSize) + " bytes overruns the " +
                    num(available - headerSize) + " readable bytes");
  uint64_t at = headerSize, end = headerSize + payloadSize;
  for (int index = 0; at < end; ++index) {
    uint64_t length = 0;
    Status s = readEntry(c + at, end - at, length, out);
    if (!s) return s.withContext("entry " + num(index) + " at container offset " + num(at));
    at += length;
  }
  consumed = end;
  return Status::ok();
}

// Compares byte by byte so that a short NUL-terminated string is never read past its end.
bool startsWith(const uint8_t* p, size_t size, std::string_view prefix) {
  if (size != 0 && size < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (p[i] != uint8_t(prefix[i])) return false;
  return true;
}

size_t skipSpaceAndComments(std::string_view t, size_t i) {
  while (i < t.size()) {
    if (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r') {
      ++i;
    } else if (t.substr(i, 2) == "//") {
      size_t eol = t.find('\n', i);
      i = eol == std::string_view::npos ? t.size() : eol + 1;
    } else if (t.substr(i, 2) == "/*") {
      size_t close = t.find("*/", i + 2);
      i = close == std::string_view::npos ? t.size() : close + 2;
    } else {
      break;
    }
  }
  return i;
}

unsigned parseNumber(std::string_view t, size_t& i) {
  unsigned v = 0;
  while (i < t.size() && t[i] >= '0' && t[i] <= '9' && v < 100000) v = v * 10 + (t[i++] - '0');
  return v;
}

Result<FatbinEntry> readPtxText(const char* p, size_t size) {
  std::string_view text(p, size != 0 ? strnlen(p, size) : std::strlen(p));
  size_t i = skipSpaceAndComments(text, 0);
  if (text.substr(i, 8) != ".version")
    return invalidArgument("PTX text must begin with a .version directive");
  FatbinEntry entry;
  entry.kind = FatbinEntry::Kind::Ptx;
  i = text.find_first_not_of(" \t", i + 8);
  if (i != std::string_view::npos) {
    entry.isaMajor = uint16_t(parseNumber(text, i));
    if (i < text.size() && text[i] == '.') entry.isaMinor = uint16_t(parseNumber(text, ++i));
  }
  size_t target = text.find(".target");
  if (target != std::string_view::npos) {
    size_t j = text.find_first_not_of(" \t", target + 7);
    if (j != std::string_view::npos && text.substr(j, 3) == "sm_") {
      j += 3;
      entry.smArch = parseNumber(text, j);
      if (j < text.size() && text[j] == 'a') entry.flags |= kFatbinFlagArchSpecific;
      if (j < text.size() && text[j] == 'f') entry.flags |= kFatbinFlagFamilySpecific;
    }
  }
  entry.payload.assign(text.begin(), text.end());
  return entry;
}

Result<FatbinEntry> readElf(const uint8_t* p, size_t size) {
  constexpr uint64_t kHeader = 64;
  if (size != 0 && size < kHeader) return dataLoss("ELF header truncated");
  if (p[4] != 2 || p[5] != 1) return invalidArgument("only 64-bit little-endian ELF cubins load");
  uint16_t machine = load<uint16_t>(p + 18);
  if (machine != kElfMachineCuda)
    return invalidArgument("ELF image is not a CUDA cubin (e_machine " + num(machine) + ")");
  uint64_t limit = size != 0 ? size : kMaxEntryBytes;
  uint64_t phoff = load<uint64_t>(p + 32), shoff = load<uint64_t>(p + 40);
  uint16_t phentsize = load<uint16_t>(p + 54), phnum = load<uint16_t>(p + 56);
  uint16_t shentsize = load<uint16_t>(p + 58), shnum = load<uint16_t>(p + 60);
  if ((shnum != 0 && shentsize < 64) || (phnum != 0 && phentsize < 56))
    return dataLoss("ELF header entry sizes too small");
  // Offsets first checked against the limit so that the sums below cannot overflow.
  if (phoff > limit || shoff > limit || phoff + uint64_t(phnum) * phentsize > limit ||
      shoff + uint64_t(shnum) * shentsize > limit)
    return dataLoss("ELF header tables lie past the " + num(limit) + "-byte image");
  uint64_t extent = std::max({kHeader, phoff + uint64_t(phnum) * phentsize,
                              shoff + uint64_t(shnum) * shentsize});
  for (uint16_t s = 0; s < shnum; ++s) {
    const uint8_t* sh = p + shoff + uint64_t(s) * shentsize;
    uint64_t offset = load<uint64_t>(sh + 24), length = load<uint64_t>(sh + 32);
    if (load<uint32_t>(sh + 4) == kElfSectionNoBits) continue;
    if (offset > limit || length > limit - offset)
      return dataLoss("ELF section " + num(s) + " lies past the " + num(limit) + "-byte image");
    extent = std::max(extent, offset + length);
  }
  FatbinEntry entry;
  entry.kind = FatbinEntry::Kind::Cubin;
  uint32_t flags = load<uint32_t>(p + 48);
  entry.smArch = p[8] >= 8 ? (flags >> 8) & 0xff : flags & 0xff; // EI_ABIVERSION 8 moved it
  entry.payload.assign(p, p + (size != 0 ? size : extent));
  return entry;
}

} // namespace

Result<std::vector<FatbinEntry>> readFatbin(const void* image, size_t size) {
  if (image == nullptr) return invalidArgument("null fatbin image");
  const uint8_t* p = static_cast<const uint8_t*>(image);
  std::vector<FatbinEntry> entries;
  uint64_t consumed = 0;
  if (size == 0) {
    Status s = readContainer(p, kContainerHeaderBytes + kMaxUnknownContainerBytes, consumed, entries);
    if (!s) return s;
    return entries;
  }
  for (uint64_t at = 0; at < size; at += consumed) {
    if (at > 0 && std::all_of(p + at, p + size, [](uint8_t b) { return b == 0; })) break;
    Status s = readContainer(p + at, size - at, consumed, entries);
    if (!s) return s.withContext("fatbin container at offset " + num(at));
  }
  return entries;
}

Result<ModuleImage> readModuleImage(const void* image, size_t size) {
  if (image == nullptr) return invalidArgument("null module image");
  const uint8_t* p = static_cast<const uint8_t*>(image);
  ModuleImage out;
  if (startsWith(p, size, "\xB1\x43\x62\x46")) {
    out.format = ModuleImage::Format::FatbinWrapper;
    if (size != 0 && size < kWrapperBytes) return dataLoss("fatbin wrapper truncated");
    uint32_t version = load<uint32_t>(p + 4);
    if (version != 1 && version != 2)
      return invalidArgument("unsupported fatbin wrapper version " + num(version));
    const void* data = load<const void*>(p + 8);
    if (data == nullptr) return invalidArgument("fatbin wrapper has no data pointer");
    auto entries = readFatbin(data, 0);
    if (!entries) return entries.status().withContext("fatbin wrapper");
    out.entries = std::move(*entries);
  } else if (startsWith(p, size, "\x50\xED\x55\xBA")) {
    out.format = ModuleImage::Format::Fatbin;
    auto entries = readFatbin(p, size);
    if (!entries) return entries.status();
    out.entries = std::move(*entries);
  } else if (startsWith(p, size, "\x7F" "ELF")) {
    out.format = ModuleImage::Format::Elf;
    auto entry = readElf(p, size);
    if (!entry) return entry.status();
    out.entries.push_back(std::move(*entry));
  } else if (p[0] != 0 && std::strchr(" \t\r\n/.", p[0]) != nullptr) {
    out.format = ModuleImage::Format::PtxText;
    auto entry = readPtxText(reinterpret_cast<const char*>(p), size);
    if (!entry) return entry.status();
    out.entries.push_back(std::move(*entry));
  } else {
    return invalidArgument("unrecognised module image: not a fatbin wrapper, fatbin, ELF cubin "
                           "or PTX text (first byte " + hex(p[0]) + ")");
  }
  return out;
}

const FatbinEntry* choosePtx(const std::vector<FatbinEntry>& entries, uint32_t smArch) {
  auto specificity = [](const FatbinEntry& e) {
    return (e.flags & kFatbinFlagArchSpecific) ? 2 : (e.flags & kFatbinFlagFamilySpecific) ? 1 : 0;
  };
  auto compatible = [&](const FatbinEntry& e) {
    if (e.flags & kFatbinFlagArchSpecific) return e.smArch == smArch;
    if (e.flags & kFatbinFlagFamilySpecific) return e.smArch / 10 == smArch / 10;
    return true;
  };
  // Smaller is better: compatible at or below, then anything at or below, then above.
  auto key = [&](const FatbinEntry& e) {
    int tier = e.smArch > smArch ? 2 : compatible(e) ? 0 : 1;
    int64_t distance = tier == 2 ? int64_t(e.smArch) : -int64_t(e.smArch);
    return std::make_tuple(tier, distance, specificity(e));
  };
  const FatbinEntry* best = nullptr;
  for (const FatbinEntry& e : entries) {
    if (e.kind != FatbinEntry::Kind::Ptx) continue;
    if (best == nullptr || key(e) < key(*best)) best = &e;
  }
  return best;
}

} // namespace tf::cuda
