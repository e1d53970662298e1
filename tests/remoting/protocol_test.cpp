// The wire protocol's encoders and decoders: round trips, and garbage (truncated, oversized,
// random mutations) rejected with a status, never a crash or a huge allocation.
#include <gtest/gtest.h>

#include <random>

#include "remoting/protocol.h"

namespace tf::remoting {
namespace {

TEST(Protocol, HeaderRoundTrip) {
  FrameHeader h;
  h.kind = static_cast<uint16_t>(Kind::Call);
  h.flags = kFlagNoReply;
  h.fn = 42;
  h.argsLen = 100;
  h.result = -3;
  h.bulkLen = 1 << 20;
  h.ctx = 0x1234;
  uint8_t raw[kHeaderSize];
  encodeHeader(h, raw);
  FrameHeader g;
  ASSERT_TRUE(decodeHeader(raw, &g).isOk());
  EXPECT_EQ(g.kind, h.kind);
  EXPECT_EQ(g.flags, h.flags);
  EXPECT_EQ(g.fn, 42u);
  EXPECT_EQ(g.argsLen, 100u);
  EXPECT_EQ(g.result, -3);
  EXPECT_EQ(g.bulkLen, uint64_t(1) << 20);
  EXPECT_EQ(g.ctx, 0x1234u);
}

TEST(Protocol, HeaderRejectsGarbage) {
  FrameHeader h;
  h.kind = static_cast<uint16_t>(Kind::Call);
  uint8_t raw[kHeaderSize];
  FrameHeader g;
  h.kind = 99;
  encodeHeader(h, raw);
  EXPECT_EQ(decodeHeader(raw, &g).code(), Code::DataLoss);
  h.kind = static_cast<uint16_t>(Kind::Call);
  h.argsLen = kMaxArgs + 1;
  encodeHeader(h, raw);
  EXPECT_EQ(decodeHeader(raw, &g).code(), Code::DataLoss);
  h.argsLen = 0;
  h.bulkLen = kMaxBulk + 1;
  encodeHeader(h, raw);
  EXPECT_EQ(decodeHeader(raw, &g).code(), Code::DataLoss);
  h.bulkLen = 0;
  h.flags = 0x80;
  encodeHeader(h, raw);
  EXPECT_EQ(decodeHeader(raw, &g).code(), Code::DataLoss);
}

TEST(Protocol, CallRoundTrip) {
  uint64_t s[3] = {1, 0xffffffffffffffffull, 7};
  const char blob[] = "kernel params";
  Writer w;
  encodeCall(w, s, 3, blob, sizeof(blob));
  CallArgs a;
  ASSERT_TRUE(decodeCall(w.data(), w.size(), &a).isOk());
  ASSERT_EQ(a.count, 3u);
  EXPECT_EQ(a.s[1], s[1]);
  EXPECT_EQ(a.blob, std::string_view(blob, sizeof(blob)));
}

TEST(Protocol, CallRejectsTruncatedAndOversized) {
  uint64_t s[2] = {1, 2};
  Writer w;
  encodeCall(w, s, 2, "abc", 3);
  CallArgs a;
  for (size_t n = 0; n < w.size(); ++n)
    EXPECT_EQ(decodeCall(w.data(), n, &a).code(), Code::DataLoss) << "truncated at " << n;
  // Too many scalars.
  std::vector<uint8_t> bad(w.buffer());
  bad[0] = kMaxScalars + 1;
  EXPECT_EQ(decodeCall(bad.data(), bad.size(), &a).code(), Code::DataLoss);
  // A blob length far past the end.
  bad = w.buffer();
  uint32_t huge = 0xfffffff0;
  std::memcpy(bad.data() + 1 + 16, &huge, 4);
  EXPECT_EQ(decodeCall(bad.data(), bad.size(), &a).code(), Code::DataLoss);
  // Trailing bytes.
  bad = w.buffer();
  bad.push_back(0);
  EXPECT_EQ(decodeCall(bad.data(), bad.size(), &a).code(), Code::DataLoss);
}

TEST(Protocol, HelloRoundTripAndRejects) {
  Hello h;
  h.catalogSize = 634;
  h.pid = 77;
  h.host = "node-1";
  h.token = "secret";
  Writer w;
  encodeHello(w, h);
  Hello g;
  ASSERT_TRUE(decodeHello(w.data(), w.size(), &g).isOk());
  EXPECT_EQ(g.host, "node-1");
  EXPECT_EQ(g.token, "secret");
  EXPECT_EQ(g.pid, 77u);
  EXPECT_EQ(g.catalogSize, 634u);
  EXPECT_EQ(g.version, kProtocolVersion);
  std::vector<uint8_t> bad(w.buffer());
  bad[0] ^= 1; // magic
  EXPECT_EQ(decodeHello(bad.data(), bad.size(), &g).code(), Code::DataLoss);
  h.token = std::string(kMaxToken + 1, 'x');
  w.clear();
  encodeHello(w, h);
  EXPECT_EQ(decodeHello(w.data(), w.size(), &g).code(), Code::DataLoss);
}

// Bounded fuzz: 20,000 mutations of valid frames (bit flips, truncation, length fields
// overwritten, random bytes) through every decoder. Passing means no crash, no sanitizer
// report, and every accepted message within its caps.
TEST(Protocol, FuzzDecoders) {
  std::mt19937_64 rng(12345);
  Hello h;
  h.catalogSize = 1;
  h.host = "h";
  h.token = "t";
  Writer hello;
  encodeHello(hello, h);
  uint64_t s[4] = {1, 2, 3, 4};
  Writer call;
  encodeCall(call, s, 4, "0123456789", 10);
  FrameHeader fh;
  fh.kind = static_cast<uint16_t>(Kind::Reply);
  fh.argsLen = 10;
  uint8_t head[kHeaderSize];
  encodeHeader(fh, head);
  Writer runs;
  encodeMirrorRuns(runs, {{0x1000, 100}, {0x3000, 4096}, {0x9000, 1}});
  const uint64_t runsBulk = 100 + 4096 + 1;
  const std::vector<uint8_t> seeds[4] = {hello.buffer(), call.buffer(),
                                         std::vector<uint8_t>(head, head + kHeaderSize),
                                         runs.buffer()};
  int accepted = 0, rejected = 0;
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> m = seeds[i % 4];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 4) {
      case 0: if (!m.empty()) m[rng() % m.size()] ^= uint8_t(1u << (rng() % 8)); break;
      case 1: m.resize(rng() % (m.size() + 1)); break;
      case 2: if (m.size() >= 4) { uint32_t v = static_cast<uint32_t>(rng()); std::memcpy(&m[rng() % (m.size() - 3)], &v, 4); } break;
      case 3: m.push_back(static_cast<uint8_t>(rng())); break;
      }
    }
    bool ok = false;
    if (i % 4 == 3) {
      std::vector<MirrorRun> got;
      std::string_view blob(reinterpret_cast<const char*>(m.data()), m.size());
      ok = decodeMirrorRuns(blob, runsBulk, &got).isOk();
      uint64_t total = 0;
      for (const MirrorRun& r : got) {
        EXPECT_GT(r.len, 0u);
        EXPECT_GE(r.addr + r.len, r.addr);
        total += r.len;
      }
      if (ok) { EXPECT_EQ(total, runsBulk); }
    } else if (i % 4 == 0) {
      Hello g;
      ok = decodeHello(m.data(), m.size(), &g).isOk();
      if (ok) { EXPECT_LE(g.token.size(), kMaxToken); }
    } else if (i % 4 == 1) {
      CallArgs a;
      ok = decodeCall(m.data(), m.size(), &a).isOk();
      if (ok) { EXPECT_LE(a.count, kMaxScalars); }
      if (ok) { EXPECT_LE(a.blob.size(), m.size()); }
    } else {
      if (m.size() < kHeaderSize) m.resize(kHeaderSize, 0xff);
      FrameHeader g;
      ok = decodeHeader(m.data(), &g).isOk();
      if (ok) { EXPECT_LE(g.argsLen, kMaxArgs); }
      if (ok) { EXPECT_LE(g.bulkLen, kMaxBulk); }
    }
    (ok ? accepted : rejected)++;
  }
  EXPECT_GT(rejected, 1000); // mutations do hit the checks
  EXPECT_GT(accepted, 0);    // and harmless ones still decode
}

TEST(Protocol, Fnv1aKnownValues) {
  EXPECT_EQ(fnv1a64("", 0), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a", 1), 0xaf63dc4c8601ec8cull);
}

} // namespace
} // namespace tf::remoting
