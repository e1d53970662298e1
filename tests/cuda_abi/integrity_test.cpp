// MD2, HMAC-MD2 and the INTEGRITY_CHECK answer. Expected HMAC values come from an independent
// Python implementation of RFC 1319 / RFC 2104 (its MD2 checked against the RFC vectors).
#include "cuda/integrity.h"

#include <cstring>
#include <string>

#include <gtest/gtest.h>

namespace tf::cuda {
namespace {

std::string hexOf(const Md2Digest& d) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (uint8_t b : d) s += digits[b >> 4], s += digits[b & 15];
  return s;
}

std::string md2Hex(const std::string& s) { return hexOf(md2(s.data(), s.size())); }

TEST(Md2Test, Rfc1319TestSuite) {
  EXPECT_EQ(md2Hex(""), "8350e5a3e24c153df2275c9f80692773");
  EXPECT_EQ(md2Hex("a"), "32ec01ec4a6dac72c0ab96fb34c0b5d1");
  EXPECT_EQ(md2Hex("abc"), "da853b0d3f88d99b30283a69e6ded6bb");
  EXPECT_EQ(md2Hex("message digest"), "ab4f496bfb2a530b219ff33031fe06b0");
  EXPECT_EQ(md2Hex("abcdefghijklmnopqrstuvwxyz"), "4e8ddff3650292ab5a4108c3aa47940b");
  EXPECT_EQ(md2Hex("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
            "da33def2a42df13975352846c30338cd");
  EXPECT_EQ(md2Hex("1234567890123456789012345678901234567890"
                   "1234567890123456789012345678901234567890"),
            "d5976f79d83d3a0dc9806c3c66f3efd8");
}

TEST(Md2Test, StreamingMatchesOneShotAcrossBlockBoundaries) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += char('a' + i % 26);
  for (size_t chunk : {1u, 3u, 15u, 16u, 17u, 64u}) {
    Md2 h;
    for (size_t at = 0; at < text.size(); at += chunk)
      h.update(text.data() + at, std::min(chunk, text.size() - at));
    EXPECT_EQ(hexOf(h.finish()), md2Hex(text)) << "chunk " << chunk;
  }
}

TEST(HmacMd2Test, KnownAnswers) {
  std::string fox = "The quick brown fox jumps over the lazy dog";
  EXPECT_EQ(hexOf(hmacMd2("key", 3, fox.data(), fox.size())), "13758b9534bfb38d850457814613b0c1");
  EXPECT_EQ(hexOf(hmacMd2("", 0, "", 0)), "6f6e031223b36cd2a997787a03d16bf5");
  uint8_t longKey[40];
  for (int i = 0; i < 40; ++i) longKey[i] = uint8_t(i);
  EXPECT_EQ(hexOf(hmacMd2(longKey, sizeof longKey, "Hi There", 8)),
            "4d305c7e1d07c296feb392650a7566f7");
}

TEST(HmacMd2Test, IsMd2OfOuterPadAndInnerDigest) {
  const uint8_t key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  std::string msg = "payload that spans more than one sixteen-byte block";
  std::string inner, outer;
  for (uint8_t k : key) inner += char(k ^ 0x36), outer += char(k ^ 0x5c);
  inner += msg;
  Md2Digest innerDigest = md2(inner.data(), inner.size());
  outer.append(reinterpret_cast<const char*>(innerDigest.data()), innerDigest.size());
  EXPECT_EQ(hexOf(hmacMd2(key, 16, msg.data(), msg.size())), md2Hex(outer));
  // A key longer than a block is replaced by its digest.
  std::string longKey(33, 'k');
  Md2Digest hashed = md2(longKey.data(), longKey.size());
  EXPECT_EQ(hexOf(hmacMd2(longKey.data(), longKey.size(), msg.data(), msg.size())),
            hexOf(hmacMd2(hashed.data(), hashed.size(), msg.data(), msg.size())));
}

const void* fakePointer(uintptr_t v) { return reinterpret_cast<const void*>(v); }

void answer(uint32_t version, const std::vector<IntegrityDevice>& devices, uint64_t out[2]) {
  integrityCheckAnswer(13000, version, 4242, 0xdeadbeef, fakePointer(0x7f0000001000),
                       fakePointer(0x7f0000002000), fakePointer(0x7f0000003000), 1700000000,
                       devices, out);
}

TEST(IntegrityCheckTest, FixedAnswersForVersionsEndingInZeroAndOne) {
  uint64_t out[2] = {};
  answer(13000, {}, out);
  EXPECT_EQ(out[0], 0x3341181C03CB675CULL);
  EXPECT_EQ(out[1], 0x8ED383AA1F4CD1E8ULL);
  integrityCheckAnswer(12345, 12010, 1, 2, nullptr, nullptr, nullptr, 3, {}, out);
  EXPECT_EQ(out[0], 0x3341181C03CB675CULL);
  answer(13001, {}, out);
  EXPECT_EQ(out[0], 0x1841181C03CB675CULL);
  EXPECT_EQ(out[1], 0x8ED383AA1F4CD1E8ULL);
}

TEST(IntegrityCheckTest, MessageLayout) {
  IntegrityDevice dev{};
  for (int i = 0; i < 16; ++i) dev.uuid[i] = uint8_t(0xa0 + i);
  dev.pciDomain = 1, dev.pciBus = 0x41, dev.pciDevice = -1;
  auto m = integrityCheckMessage(13000, 13002, 4242, 0xdeadbeef, fakePointer(0x1122334455667788),
                                 fakePointer(2), fakePointer(3), 0x0102030405060708ULL, {dev, dev});
  ASSERT_EQ(m.size(), 48u + 2 * 28);
  auto u32At = [&](size_t at) { uint32_t v; std::memcpy(&v, &m[at], 4); return v; };
  auto u64At = [&](size_t at) { uint64_t v; std::memcpy(&v, &m[at], 8); return v; };
  EXPECT_EQ(u32At(0), 13000u);
  EXPECT_EQ(u32At(4), 13002u);
  EXPECT_EQ(u32At(8), 4242u);
  EXPECT_EQ(u32At(12), 0xdeadbeefu);
  EXPECT_EQ(u64At(16), 0x1122334455667788ULL);
  EXPECT_EQ(u64At(24), 2u);
  EXPECT_EQ(u64At(32), 3u);
  EXPECT_EQ(u64At(40), 0x0102030405060708ULL);
  EXPECT_EQ(m[48], 0xa0);
  EXPECT_EQ(m[63], 0xaf);
  EXPECT_EQ(u32At(64), 1u);
  EXPECT_EQ(u32At(68), 0x41u);
  EXPECT_EQ(u32At(72), 0xffffffffu);
  EXPECT_EQ(m[76], 0xa0);
}

TEST(IntegrityCheckTest, HmacAnswerForOtherVersions) {
  uint64_t out[2] = {};
  answer(13002, {}, out);
  EXPECT_EQ(out[0], 0xff6e4813b26610bfULL);
  EXPECT_EQ(out[1], 0xb9fa28982e21ca8aULL);

  IntegrityDevice a{}, b{};
  for (int i = 0; i < 16; ++i) a.uuid[i] = uint8_t(i), b.uuid[i] = uint8_t(16 + i);
  a.pciDomain = 0, a.pciBus = 0x41, a.pciDevice = 0;
  b.pciDomain = 1, b.pciBus = 2, b.pciDevice = 3;
  answer(13002, {a, b}, out);
  EXPECT_EQ(out[0], 0x235b2f05c1c7accdULL);
  EXPECT_EQ(out[1], 0xd19c4e5c198767e3ULL);
}

} // namespace
} // namespace tf::cuda
