// The worker as a process, and a client that speaks the protocol directly: shared by the
// worker tests (worker_test.cpp, worker_network_test.cpp).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <poll.h>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <cuda.h>

#include "cuda/catalog.h"
#include "remoting/protocol.h"
#include "remoting/transport.h"

namespace tf::remoting {
namespace {

using cuda::FnId;
using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Reads a line from fd within timeoutMs ("" on timeout or EOF).
std::string readLine(int fd, int timeoutMs) {
  std::string line;
  auto start = Clock::now();
  while (secondsSince(start) * 1000 < timeoutMs) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    char c;
    if (read(fd, &c, 1) != 1) break;
    if (c == '\n') return line;
    line += c;
  }
  return line;
}

class WorkerProcess {
public:
  // transport: "tcp", "tls" (extra must name --tls-cert and --tls-key) or "shm"; extra: more
  // worker arguments.
  WorkerProcess(const std::string& transport, const std::string& token,
                const std::vector<std::string>& extra = {}) {
    char dir[] = "/tmp/tf-remoting-test-XXXXXX";
    stateDir_ = mkdtemp(dir);
    std::string listen = transport == "tcp"   ? std::string("tcp://127.0.0.1:0")
                         : transport == "tls" ? std::string("tls://127.0.0.1:0")
                                              : "shm://tf-worker-test-" + std::to_string(getpid()) +
                                                    "-" + std::to_string(counter()++);
    int out[2];
    EXPECT_EQ(pipe(out), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      close(out[0]);
      setenv("TF_SOFTGPU_STATE_DIR", stateDir_.c_str(), 1);
      // TF_TEST_WORKER_BIN / TF_TEST_SOFTGPU_LIB: run the same attacks against another build
      // of the worker (a sanitizer build, say).
      const char* bin = getenv("TF_TEST_WORKER_BIN") ? getenv("TF_TEST_WORKER_BIN") : TF_WORKER_BIN;
      const char* lib = getenv("TF_TEST_SOFTGPU_LIB") ? getenv("TF_TEST_SOFTGPU_LIB") : TF_SOFTGPU_LIB;
      std::vector<const char*> args = {bin, "--listen", listen.c_str(), "--driver", lib,
                                       "--token", token.c_str()};
      for (const auto& a : extra) args.push_back(a.c_str());
      args.push_back(nullptr);
      execv(bin, const_cast<char* const*>(args.data()));
      _exit(127);
    }
    close(out[1]);
    std::string line = readLine(out[0], 10000);
    close(out[0]);
    const std::string prefix = "listening on ";
    if (line.rfind(prefix, 0) == 0) address_ = line.substr(prefix.size());
  }
  ~WorkerProcess() {
    kill9();
    std::string cmd = "rm -rf " + stateDir_;
    (void)system(cmd.c_str());
  }
  const std::string& address() const { return address_; }
  void kill9() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  // Hung, connections still open: only a heartbeat sees it. kill() returns before the worker
  // has actually stopped (it may still be answering on the other core), so wait until the
  // kernel reports it stopped ('T' in /proc/<pid>/stat).
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGSTOP);
    for (int i = 0; i < 2000; ++i) {
      char path[64], buf[512] = {};
      snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid_));
      FILE* f = fopen(path, "r");
      if (!f) return;
      size_t n = fread(buf, 1, sizeof buf - 1, f);
      fclose(f);
      const char* close = strrchr(buf, ')');
      if (n > 0 && close && close[1] == ' ' && (close[2] == 'T' || close[2] == 't')) return;
      usleep(1000);
    }
  }
  bool alive() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }
  pid_t pid() const { return pid_; }

private:
  static int& counter() {
    static int n = 0;
    return n;
  }
  pid_t pid_ = -1;
  std::string address_;
  std::string stateDir_;
};

// A client that speaks the protocol directly.
class RawClient {
public:
  CUresult open(const std::string& address, const std::string& token,
                const TlsOptions& tls = {}, uint32_t role = kRoleDriver) {
    auto t = connect(address, 2000, tls);
    if (!t) return CUDA_ERROR_DEVICE_UNAVAILABLE;
    t_ = std::move(*t);
    Hello h;
    h.catalogSize = static_cast<uint32_t>(cuda::catalogSize());
    h.pid = static_cast<uint32_t>(getpid());
    h.host = "test";
    h.token = token;
    h.role = role;
    Writer w;
    encodeHello(w, h);
    FrameHeader f;
    f.kind = static_cast<uint16_t>(Kind::Hello);
    f.argsLen = static_cast<uint32_t>(w.size());
    if (!sendFrame(*t_, f, w.data(), nullptr, 0).isOk()) return CUDA_ERROR_DEVICE_UNAVAILABLE;
    FrameHeader r;
    std::vector<uint8_t> args;
    if (!readHeader(*t_, &r).isOk() || !readArgs(*t_, r, &args).isOk())
      return CUDA_ERROR_DEVICE_UNAVAILABLE;
    return static_cast<CUresult>(r.result);
  }

  CUresult call(uint32_t fn, std::vector<uint64_t> in, uint64_t ctx, uint64_t* outs = nullptr,
                std::vector<uint8_t>* bulkIn = nullptr, const std::vector<uint8_t>* bulkOut = nullptr,
                const std::string& blob = "", uint16_t flags = kFlagNone, FrameHeader* reply = nullptr,
                std::string* replyBlob = nullptr) {
    Writer w;
    encodeCall(w, in.data(), static_cast<uint32_t>(in.size()), blob.data(), blob.size());
    FrameHeader f;
    f.kind = static_cast<uint16_t>(Kind::Call);
    f.flags = flags;
    f.fn = fn;
    f.ctx = ctx;
    f.argsLen = static_cast<uint32_t>(w.size());
    iovec v{};
    int n = 0;
    if (bulkOut) {
      v = {const_cast<uint8_t*>(bulkOut->data()), bulkOut->size()};
      f.bulkLen = bulkOut->size();
      n = 1;
    }
    if (!sendFrame(*t_, f, w.data(), &v, n).isOk()) return CUDA_ERROR_DEVICE_UNAVAILABLE;
    FrameHeader r;
    std::vector<uint8_t> args;
    if (!readHeader(*t_, &r).isOk() || !readArgs(*t_, r, &args).isOk())
      return CUDA_ERROR_DEVICE_UNAVAILABLE;
    CallArgs a;
    if (!decodeReply(args.data(), args.size(), &a).isOk()) return CUDA_ERROR_UNKNOWN;
    for (uint32_t i = 0; outs && i < a.count; ++i) outs[i] = a.s[i];
    if (reply) *reply = r;
    if (replyBlob) replyBlob->assign(a.blob);
    std::vector<uint8_t> bulk(r.bulkLen);
    if (r.bulkLen && !t_->readExact(bulk.data(), bulk.size()).isOk())
      return CUDA_ERROR_DEVICE_UNAVAILABLE;
    if (bulkIn) *bulkIn = std::move(bulk);
    return static_cast<CUresult>(r.result);
  }
  CUresult call(FnId fn, std::vector<uint64_t> in, uint64_t ctx, uint64_t* outs = nullptr,
                std::vector<uint8_t>* bulkIn = nullptr, const std::vector<uint8_t>* bulkOut = nullptr) {
    return call(static_cast<uint32_t>(fn), std::move(in), ctx, outs, bulkIn, bulkOut);
  }

  uint64_t context() {
    uint64_t c = 0;
    EXPECT_EQ(call(FnId::cuDevicePrimaryCtxRetain, {0}, 0, &c), CUDA_SUCCESS);
    return c;
  }
  Transport& transport() { return *t_; }
  // Sends a bare header (lengths as given, nothing after it): for frames that lie.
  Status sendHeader(const FrameHeader& f) {
    uint8_t raw[kHeaderSize];
    encodeHeader(f, raw);
    iovec v{raw, kHeaderSize};
    return t_->writeV(&v, 1);
  }
  // True when the worker has closed this connection (within timeoutMs).
  bool droppedWithin(int timeoutMs) {
    std::atomic<bool> done{false};
    std::thread guard([&] {
      auto start = Clock::now();
      while (!done && secondsSince(start) * 1000 < timeoutMs)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (!done) t_->shutdown();
    });
    uint8_t b;
    Status s = t_->readExact(&b, 1);
    done = true;
    guard.join();
    return s.code() == Code::Unavailable;
  }

private:
  TransportPtr t_;
};

} // namespace
} // namespace tf::remoting
