// Both transports carry the same byte stream: frames and a large bulk in order, both ways,
// and a peer that goes away is reported as Unavailable instead of a hang.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <unistd.h>

#include "remoting/protocol.h"
#include "remoting/transport.h"

namespace tf::remoting {
namespace {

std::string shmName() { return "test-" + std::to_string(getpid()) + "-" + std::to_string(rand()); }

class TransportTest : public ::testing::TestWithParam<std::string> {
protected:
  std::string address() {
    return GetParam() == "tcp" ? std::string("tcp://127.0.0.1:0") : "shm://" + shmName();
  }
};

TEST_P(TransportTest, FramesAndBulkBothWays) {
  auto l = listen(address());
  ASSERT_TRUE(l.isOk()) << l.status().toString();
  std::string where = (*l)->address();
  const size_t big = (24 << 20) + 123; // larger than the shm ring: wraps many times
  std::vector<uint8_t> payload(big);
  for (size_t i = 0; i < big; ++i) payload[i] = static_cast<uint8_t>(i * 131 + (i >> 12));

  std::thread server([&] {
    auto t = (*l)->accept();
    ASSERT_TRUE(t.isOk());
    for (int round = 0; round < 3; ++round) {
      FrameHeader h;
      ASSERT_TRUE(readHeader(**t, &h).isOk());
      std::vector<uint8_t> args;
      ASSERT_TRUE(readArgs(**t, h, &args).isOk());
      std::vector<uint8_t> bulk(h.bulkLen);
      ASSERT_TRUE((*t)->readExact(bulk.data(), bulk.size()).isOk());
      FrameHeader r;
      r.kind = static_cast<uint16_t>(Kind::Reply);
      r.fn = h.fn;
      r.argsLen = static_cast<uint32_t>(args.size());
      r.bulkLen = bulk.size();
      iovec v{bulk.data(), bulk.size()};
      ASSERT_TRUE(sendFrame(**t, r, args.data(), &v, 1).isOk());
    }
  });
  auto c = connect(where, 2000);
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  for (int round = 0; round < 3; ++round) {
    size_t n = round == 2 ? big : 1000 * round + 7;
    Writer w;
    uint64_t s[1] = {static_cast<uint64_t>(round)};
    encodeCall(w, s, 1, nullptr, 0);
    FrameHeader h;
    h.kind = static_cast<uint16_t>(Kind::Call);
    h.fn = 100 + round;
    h.argsLen = static_cast<uint32_t>(w.size());
    h.bulkLen = n;
    iovec v{payload.data(), n};
    ASSERT_TRUE(sendFrame(**c, h, w.data(), &v, 1).isOk());
    FrameHeader r;
    ASSERT_TRUE(readHeader(**c, &r).isOk());
    EXPECT_EQ(r.fn, 100u + round);
    std::vector<uint8_t> args;
    ASSERT_TRUE(readArgs(**c, r, &args).isOk());
    CallArgs a;
    ASSERT_TRUE(decodeReply(args.data(), args.size(), &a).isOk());
    EXPECT_EQ(a.s[0], static_cast<uint64_t>(round));
    std::vector<uint8_t> back(r.bulkLen);
    ASSERT_EQ(back.size(), n);
    ASSERT_TRUE((*c)->readExact(back.data(), n).isOk());
    EXPECT_EQ(0, memcmp(back.data(), payload.data(), n));
  }
  server.join();
}

TEST_P(TransportTest, PeerGoneIsUnavailableNotAHang) {
  auto l = listen(address());
  ASSERT_TRUE(l.isOk());
  std::string where = (*l)->address();
  std::thread server([&] {
    auto t = (*l)->accept();
    ASSERT_TRUE(t.isOk());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    // The server object is destroyed here: the connection closes.
  });
  auto c = connect(where, 2000);
  ASSERT_TRUE(c.isOk());
  auto start = std::chrono::steady_clock::now();
  uint8_t b;
  Status s = (*c)->readExact(&b, 1);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  server.join();
  EXPECT_EQ(s.code(), Code::Unavailable);
  EXPECT_LT(secs, 2.0);
}

TEST_P(TransportTest, ConnectToNothingFails) {
  std::string where = GetParam() == "tcp" ? "tcp://127.0.0.1:1" : "shm://" + shmName();
  auto c = connect(where, 500);
  EXPECT_FALSE(c.isOk());
}

INSTANTIATE_TEST_SUITE_P(Both, TransportTest, ::testing::Values("tcp", "shm"));

TEST(Transport, BadAddresses) {
  EXPECT_EQ(listen("udp://x").status().code(), Code::InvalidArgument);
  EXPECT_EQ(listen("tcp://127.0.0.1").status().code(), Code::InvalidArgument);
  EXPECT_FALSE(connect("nonsense", 100).isOk());
}

} // namespace
} // namespace tf::remoting
