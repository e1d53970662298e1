// The handshake as docs/remoting.md states it: a Hello from a client of another protocol
// version or another driver-API catalog is refused with CUDA_ERROR_NOT_SUPPORTED, a wrong token
// with CUDA_ERROR_NOT_PERMITTED, a malformed Hello with CUDA_ERROR_INVALID_VALUE; each refused
// connection is closed, and the worker goes on accepting good clients. The worker runs in this
// process (so the sanitizer build covers it) on the soft GPU.
#include <chrono>
#include <filesystem>
#include <thread>
#include <unistd.h>

#include <cuda.h>
#include <gtest/gtest.h>

#include "cuda/catalog.h"
#include "remoting/protocol.h"
#include "remoting/transport.h"
#include "remoting/worker/worker.h"

namespace tf::remoting {
namespace {

class HandshakeTest : public ::testing::Test {
protected:
  void SetUp() override {
    state_ = std::filesystem::temp_directory_path() / ("tf-handshake-" + std::to_string(getpid()));
    std::filesystem::create_directories(state_);
    setenv("TF_SOFTGPU_STATE_DIR", state_.c_str(), 1);
    WorkerOptions o;
    o.listen = "tcp://127.0.0.1:0";
    o.driver = TF_SOFTGPU_LIB;
    o.token = "right";
    auto w = Worker::start(o);
    ASSERT_TRUE(w) << w.status().toString();
    worker_ = std::move(*w);
    serving_ = std::thread([this] { worker_->serve(); });
  }
  void TearDown() override {
    if (worker_) {
      worker_->stop();
      serving_.join();
      // Sessions run on their own threads: let them end before the worker goes.
      for (int i = 0; i < 1000 && worker_->activeClients() > 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      EXPECT_EQ(worker_->activeClients(), 0);
    }
    std::filesystem::remove_all(state_);
  }

  Hello goodHello() {
    Hello h;
    h.catalogSize = static_cast<uint32_t>(cuda::catalogSize());
    h.pid = static_cast<uint32_t>(getpid());
    h.host = "handshake-test";
    h.token = "right";
    return h;
  }

  // Sends `args` as a Hello frame and reads the HelloReply.
  struct Answer {
    bool replied = false;
    CUresult result = CUDA_SUCCESS;
    uint64_t sessionId = 0;
    TransportPtr transport;
  };
  Answer send(const Writer& args) {
    Answer a;
    auto t = connect(worker_->address(), 2000);
    EXPECT_TRUE(t) << t.status().toString();
    if (!t) return a;
    a.transport = std::move(*t);
    FrameHeader f;
    f.kind = static_cast<uint16_t>(Kind::Hello);
    f.argsLen = static_cast<uint32_t>(args.size());
    EXPECT_TRUE(sendFrame(*a.transport, f, args.data(), nullptr, 0).isOk());
    FrameHeader r;
    std::vector<uint8_t> reply;
    if (!readHeader(*a.transport, &r).isOk() || !readArgs(*a.transport, r, &reply).isOk()) return a;
    a.replied = r.kind == static_cast<uint16_t>(Kind::HelloReply);
    a.result = static_cast<CUresult>(r.result);
    CallArgs outs;
    if (decodeReply(reply.data(), reply.size(), &outs).isOk() && outs.count == 2) {
      EXPECT_EQ(outs.s[0], kProtocolVersion); // the worker says which version it speaks
      a.sessionId = outs.s[1];
    }
    return a;
  }
  Answer send(const Hello& h) {
    Writer w;
    encodeHello(w, h);
    return send(w);
  }
  // A refused client's connection is closed by the worker: the next read ends. (An accepted
  // one stays open and silent: false after 10 s, not a hang.)
  static bool closedByWorker(Answer& a) {
    if (!a.transport || !a.transport->waitReadable(10000)) return false;
    uint8_t byte;
    return !a.transport->readExact(&byte, 1).isOk();
  }

  std::filesystem::path state_;
  std::unique_ptr<Worker> worker_;
  std::thread serving_;
};

TEST_F(HandshakeTest, AnotherProtocolVersionIsRefusedAndClosed) {
  Hello h = goodHello();
  h.version = static_cast<uint16_t>(kProtocolVersion + 1);
  Answer a = send(h);
  ASSERT_TRUE(a.replied);
  EXPECT_EQ(a.result, CUDA_ERROR_NOT_SUPPORTED);
  EXPECT_EQ(a.sessionId, 0u);
  EXPECT_TRUE(closedByWorker(a));
  h.version = static_cast<uint16_t>(kProtocolVersion - 1);
  a = send(h);
  EXPECT_EQ(a.result, CUDA_ERROR_NOT_SUPPORTED);
  EXPECT_TRUE(closedByWorker(a));
}

TEST_F(HandshakeTest, AnotherCatalogIsRefusedAndClosed) {
  for (uint32_t size : {static_cast<uint32_t>(cuda::catalogSize()) + 1, static_cast<uint32_t>(cuda::catalogSize()) - 1, 0u}) {
    Hello h = goodHello();
    h.catalogSize = size;
    Answer a = send(h);
    ASSERT_TRUE(a.replied) << size;
    EXPECT_EQ(a.result, CUDA_ERROR_NOT_SUPPORTED) << size;
    EXPECT_TRUE(closedByWorker(a)) << size;
  }
}

TEST_F(HandshakeTest, AWrongTokenOrAMalformedHelloIsRefused) {
  Hello h = goodHello();
  h.token = "wrong";
  Answer a = send(h);
  EXPECT_EQ(a.result, CUDA_ERROR_NOT_PERMITTED);
  EXPECT_TRUE(closedByWorker(a));
  h = goodHello();
  h.magic = 0x12345678;
  a = send(h);
  EXPECT_EQ(a.result, CUDA_ERROR_INVALID_VALUE);
  EXPECT_TRUE(closedByWorker(a));
}

TEST_F(HandshakeTest, AfterRefusalsAGoodClientIsServed) {
  Hello bad = goodHello();
  bad.version = static_cast<uint16_t>(kProtocolVersion + 1);
  ASSERT_EQ(send(bad).result, CUDA_ERROR_NOT_SUPPORTED);
  bad = goodHello();
  bad.catalogSize += 1;
  ASSERT_EQ(send(bad).result, CUDA_ERROR_NOT_SUPPORTED);
  // The good Hello is accepted and gets a session.
  Answer good = send(goodHello());
  ASSERT_TRUE(good.replied);
  EXPECT_EQ(good.result, CUDA_SUCCESS);
  EXPECT_NE(good.sessionId, 0u);
  good.transport.reset(); // the client leaves; its session ends (TearDown waits for it)
}

} // namespace
} // namespace tf::remoting
