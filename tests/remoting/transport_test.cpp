// Both transports carry the same byte stream: frames and a large bulk in order, both ways; many
// small writes through a full ring and to a sleeping reader,
// and a peer that goes away is reported as Unavailable instead of a hang.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>
#include <sys/stat.h>
#include <unistd.h>

#include "remoting/protocol.h"
#include "remoting/transport.h"

namespace tf::remoting {
namespace {

namespace fs = std::filesystem;

std::string shmName() { return "test-" + std::to_string(getpid()) + "-" + std::to_string(rand()); }

// A fresh directory for socket files ("shm:///dir/name"), removed with its contents.
struct SocketDir {
  fs::path path = fs::temp_directory_path() / ("tf-transport-" + shmName());
  SocketDir() { fs::create_directories(path); }
  ~SocketDir() { fs::remove_all(path); }
};

class TransportTest : public ::testing::TestWithParam<std::string> {
protected:
  std::string address() {
    if (GetParam() == "tcp") return "tcp://127.0.0.1:0";
    if (GetParam() == "shmfile") return "shm://" + (dir_.path / "worker.sock").string();
    return "shm://" + shmName();
  }
  SocketDir dir_;
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

// A stream of small writes of several pieces each, against a reader that first lets the ring
// fill (the writer waits for space in the middle of a write) and later waits for every write
// (it sleeps and must be woken): every byte arrives once, in order.
TEST_P(TransportTest, ManySmallWritesThroughAFullRingAndASleepingReader) {
  auto l = listen(address());
  ASSERT_TRUE(l.isOk());
  std::string where = (*l)->address();
  const int writes = 200000, slowWrites = 20;
  auto byteAt = [](uint64_t i) { return static_cast<uint8_t>(i * 7 + (i >> 9)); };
  auto sizeOf = [](int w) { return size_t(1 + (w * 37) % 150); };
  uint64_t total = 0;
  for (int w = 0; w < writes + slowWrites; ++w) total += 3 * sizeOf(w);
  std::thread server([&] {
    auto t = (*l)->accept();
    ASSERT_TRUE(t.isOk());
    std::this_thread::sleep_for(std::chrono::milliseconds(300)); // the writer fills the ring
    std::vector<uint8_t> buf(4096);
    uint64_t at = 0, bad = 0;
    while (at < total) {
      size_t n = std::min<uint64_t>(buf.size(), total - at);
      ASSERT_TRUE((*t)->readExact(buf.data(), n).isOk());
      for (size_t i = 0; i < n; ++i) bad += buf[i] != byteAt(at + i);
      at += n;
    }
    EXPECT_EQ(bad, 0u);
  });
  auto c = connect(where, 2000);
  ASSERT_TRUE(c.isOk());
  std::vector<uint8_t> piece(3 * 150);
  uint64_t at = 0;
  for (int w = 0; w < writes + slowWrites; ++w) {
    if (w >= writes) std::this_thread::sleep_for(std::chrono::milliseconds(20)); // reader sleeps
    size_t n = sizeOf(w);
    for (size_t i = 0; i < 3 * n; ++i) piece[i] = byteAt(at + i);
    iovec v[3] = {{piece.data(), n}, {piece.data() + n, n}, {piece.data() + 2 * n, n}};
    ASSERT_TRUE((*c)->writeV(v, 3).isOk());
    at += 3 * n;
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
  std::string where = GetParam() == "tcp" ? "tcp://127.0.0.1:1" : address();
  auto c = connect(where, 500);
  ASSERT_FALSE(c.isOk());
  EXPECT_EQ(c.status().code(), Code::Unavailable) << c.status().toString();
}

INSTANTIATE_TEST_SUITE_P(Both, TransportTest, ::testing::Values("tcp", "shm", "shmfile"));

// One round trip over a listener at `address`: what the socket-file cases below check works.
void expectRoundTrip(const std::string& address) {
  auto l = listen(address);
  ASSERT_TRUE(l.isOk()) << l.status().toString();
  std::thread server([&] {
    auto t = (*l)->accept();
    ASSERT_TRUE(t.isOk()) << t.status().toString();
    uint8_t b = 0;
    ASSERT_TRUE((*t)->readExact(&b, 1).isOk());
    b = static_cast<uint8_t>(b + 1);
    iovec v{&b, 1};
    ASSERT_TRUE((*t)->writeV(&v, 1).isOk());
  });
  auto c = connect(address, 2000);
  ASSERT_TRUE(c.isOk()) << c.status().toString();
  uint8_t b = 41;
  iovec v{&b, 1};
  ASSERT_TRUE((*c)->writeV(&v, 1).isOk());
  ASSERT_TRUE((*c)->readExact(&b, 1).isOk());
  EXPECT_EQ(b, 42);
  server.join();
}

// A socket file: any user of the pod sharing the directory may connect; the file goes with the
// listener.
TEST(Transport, ShmSocketFileIsOpenToAllAndRemovedOnClose) {
  SocketDir dir;
  const fs::path sock = dir.path / "worker.sock";
  {
    auto l = listen("shm://" + sock.string());
    ASSERT_TRUE(l.isOk()) << l.status().toString();
    struct stat st {};
    ASSERT_EQ(lstat(sock.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0666u);
  }
  EXPECT_FALSE(fs::exists(fs::symlink_status(sock)));
}

// A pod's worker moved: the hypervisor links the pod's worker.sock to the new worker's socket
// (a second name reaches the same listener), and the old listener, closing, leaves that name.
TEST(Transport, ShmSocketReachedThroughASecondNameWhichItsPredecessorLeaves) {
  SocketDir dir;
  const fs::path named = dir.path / "worker.sock", moved = dir.path / "worker-m1.sock";
  {
    auto old = listen("shm://" + named.string());
    ASSERT_TRUE(old.isOk());
    auto l = listen("shm://" + moved.string());
    ASSERT_TRUE(l.isOk());
    fs::create_hard_link(moved, dir.path / "worker.sock.new");
    fs::rename(dir.path / "worker.sock.new", named);
    std::thread server([&] { (void)(*l)->accept(); });
    auto c = connect("shm://" + named.string(), 2000);
    EXPECT_TRUE(c.isOk()) << c.status().toString();
    server.join();
  }  // both listeners close: each removes only the name that is still its own
  EXPECT_TRUE(fs::exists(fs::symlink_status(named)));
  EXPECT_FALSE(fs::exists(fs::symlink_status(moved)));
}

// A Moved reply's socket the client cannot see (a pod's directory, which its container mounts
// elsewhere) is looked for beside the socket it uses; anything else is taken as given.
TEST(Transport, MovedAddressIsFoundBesideTheCurrentSocketWhenNotVisible) {
  SocketDir dir;
  const std::string here = "shm://" + (dir.path / "worker.sock").string();
  EXPECT_EQ(movedAddressFrom("shm:///node/pods/ns/uid/worker-m1.sock", here),
            "shm://" + (dir.path / "worker-m1.sock").string());
  const std::string visible = "shm://" + (dir.path / "sub").string();
  fs::create_directories(dir.path / "sub");
  EXPECT_EQ(movedAddressFrom(visible, "shm:///elsewhere/worker.sock"), visible);
  EXPECT_EQ(movedAddressFrom("tcp://10.0.0.2:7000", here), "tcp://10.0.0.2:7000");
  EXPECT_EQ(movedAddressFrom("shm://tf-mv-m1", here), "shm://tf-mv-m1");         // abstract names
  EXPECT_EQ(movedAddressFrom("shm:///gone/worker.sock", "shm://tf-mv"), "shm:///gone/worker.sock");
}

// Longer than sun_path (108 bytes), as <pod root>/<namespace>/<pod UID>/worker.sock can be.
TEST(Transport, ShmSocketFileWithALongPath) {
  SocketDir dir;
  const fs::path deep = dir.path / std::string(60, 'n') / "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
  fs::create_directories(deep);
  const std::string path = (deep / "worker.sock").string();
  ASSERT_GT(path.size(), 108u);
  expectRoundTrip("shm://" + path);
}

// A worker restarted on the same path replaces the socket its predecessor left; a file that is
// not a socket is never removed.
TEST(Transport, ShmSocketFileLeftByADeadWorkerIsReplacedButAFileIsNot) {
  SocketDir dir;
  const fs::path sock = dir.path / "worker.sock";
  // A socket file with nobody behind it, as a killed worker leaves it.
  {
    auto crashed = listen("shm://" + sock.string());
    ASSERT_TRUE(crashed.isOk());
    fs::rename(sock, dir.path / "kept.sock");  // the listener's close no longer finds its file
  }
  fs::rename(dir.path / "kept.sock", sock);
  expectRoundTrip("shm://" + sock.string());

  const fs::path plain = dir.path / "notes.txt";
  std::ofstream(plain) << "keep me";
  auto refused = listen("shm://" + plain.string());
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.status().code(), Code::Unavailable);
  EXPECT_NE(refused.status().message().find(plain.string()), std::string::npos) << refused.status().message();
  EXPECT_TRUE(fs::exists(plain));
}

TEST(Transport, ShmSocketFileNamesThatCannotWork) {
  SocketDir dir;
  EXPECT_EQ(listen("shm://" + dir.path.string() + "/").status().code(), Code::InvalidArgument);
  auto missing = connect("shm://" + (dir.path / "nobody.sock").string(), 200);
  ASSERT_FALSE(missing.isOk());
  EXPECT_EQ(missing.status().code(), Code::Unavailable);
  EXPECT_NE(missing.status().message().find("nobody.sock"), std::string::npos);
}

// Shared memory's zero-copy views carry the same bytes as plain reads and writes, across the
// ring's wrap-around.
TEST(Transport, ShmViewsRoundTrip) {
  auto l = listen("shm://" + shmName());
  ASSERT_TRUE(l.isOk());
  const size_t n = (20 << 20) + 4321;
  std::vector<uint8_t> data(n);
  for (size_t i = 0; i < n; ++i) data[i] = static_cast<uint8_t>(i * 7 + (i >> 16));
  std::thread server([&] {
    auto t = (*l)->accept();
    ASSERT_TRUE(t.isOk());
    ASSERT_TRUE((*t)->supportsViews());
    std::vector<uint8_t> got;
    while (got.size() < n) { // read in place
      const uint8_t* p = nullptr;
      size_t k = 0;
      ASSERT_TRUE((*t)->peekRead(n - got.size(), &p, &k).isOk());
      ASSERT_GT(k, 0u);
      got.insert(got.end(), p, p + k);
      (*t)->consumeRead(k);
    }
    EXPECT_TRUE(got == data);
    for (size_t off = 0; off < n;) { // and write in place
      uint8_t* p = nullptr;
      size_t k = 0;
      ASSERT_TRUE((*t)->reserveWrite(std::min<size_t>(n - off, 1 << 20), &p, &k).isOk());
      memcpy(p, data.data() + off, k);
      (*t)->commitWrite(k);
      off += k;
    }
  });
  auto c = connect((*l)->address(), 2000);
  ASSERT_TRUE(c.isOk());
  iovec v{data.data(), n};
  ASSERT_TRUE((*c)->writeV(&v, 1).isOk());
  std::vector<uint8_t> back(n);
  ASSERT_TRUE((*c)->readExact(back.data(), n).isOk());
  server.join();
  EXPECT_TRUE(back == data);
}

TEST(Transport, TcpHasNoViews) {
  auto l = listen("tcp://127.0.0.1:0");
  ASSERT_TRUE(l.isOk());
  std::thread server([&] { auto t = (*l)->accept(); });
  auto c = connect((*l)->address(), 2000);
  ASSERT_TRUE(c.isOk());
  EXPECT_FALSE((*c)->supportsViews());
  const uint8_t* p;
  size_t k;
  EXPECT_EQ((*c)->peekRead(1, &p, &k).code(), Code::Unimplemented);
  server.join();
}

TEST(Transport, BadAddresses) {
  EXPECT_EQ(listen("udp://x").status().code(), Code::InvalidArgument);
  EXPECT_EQ(listen("tcp://127.0.0.1").status().code(), Code::InvalidArgument);
  EXPECT_EQ(connect("nonsense", 100).status().code(), Code::InvalidArgument);
}

} // namespace
} // namespace tf::remoting
