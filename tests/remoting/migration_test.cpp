// A running CUDA program moved from one worker to another (worker/migration.h): two workers,
// each on a soft GPU of its own (two processes, as two GPUs or two nodes would be), the program
// on the first. The admin orders the move mid-run; the program finishes on the second with
// every byte as an unmoved run computes it, its graphs too. A move that cannot happen (a graph
// with a node that cannot move yet, a target that refuses or dies mid-way) leaves the program
// running where it was.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/wait.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "remoting/tier_control.h"
#include "remoting/transport.h"
#include "worker_harness.h"

namespace tf::remoting {
namespace {

// The program, its stdout read line by line.
class Program {
public:
  Program(const std::string& address, const std::string& token, std::vector<std::string> args) {
    int out[2];
    EXPECT_EQ(pipe(out), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      dup2(out[1], 2);
      close(out[0]);
      setenv("TF_REMOTE_WORKER", address.c_str(), 1);
      setenv("TF_REMOTE_TOKEN", token.c_str(), 1);
      setenv("LD_LIBRARY_PATH", TF_STUB_DIR, 1);
      std::vector<const char*> argv = {TF_MIGRATE_PROGRAM};
      for (const auto& a : args) argv.push_back(a.c_str());
      argv.push_back(nullptr);
      execv(TF_MIGRATE_PROGRAM, const_cast<char* const*>(argv.data()));
      _exit(127);
    }
    close(out[1]);
    fd_ = out[0];
  }
  ~Program() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }
  pid_t pid() const { return pid_; }
  // Reads lines until one equals `line` (true) or the program's output ends.
  bool waitFor(const std::string& line, int timeoutMs = 120000) {
    for (;;) {
      std::string l = readLine(fd_, timeoutMs);
      if (l.empty() && !alive()) return false;
      output_ += l + "\n";
      if (l == line) return true;
      if (l.empty()) return false;
    }
  }
  // The rest of the output and the exit status.
  int finish() {
    for (std::string l; !(l = readLine(fd_, 120000)).empty();) output_ += l + "\n";
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  const std::string& output() const { return output_; }

private:
  bool alive() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string output_;
};

class MigrationTest : public ::testing::TestWithParam<std::string> {
protected:
  void SetUp() override {
    source_ = start(adminA_);
    target_ = start(adminB_);
    ASSERT_FALSE(source_->address().empty());
    ASSERT_FALSE(target_->address().empty());
  }
  std::unique_ptr<WorkerProcess> start(const std::string& admin) {
    return std::make_unique<WorkerProcess>(GetParam(), token_,
                                           std::vector<std::string>{"--tiers", "--admin-token", admin});
  }
  std::unique_ptr<WorkerAdmin> admin(const WorkerProcess& w, const std::string& token) {
    auto a = WorkerAdmin::connect(w.address(), token);
    EXPECT_TRUE(a.isOk()) << a.status().toString();
    return a.isOk() ? std::move(*a) : nullptr;
  }
  // Whether the worker serves a client of this pid.
  bool serves(const WorkerProcess& w, const std::string& token, pid_t pid) {
    auto a = admin(w, token);
    if (!a) return false;
    auto s = a->status();
    EXPECT_TRUE(s.isOk()) << s.status().toString();
    if (!s.isOk()) return false;
    for (const auto& r : *s)
      if (r.pid == static_cast<uint32_t>(pid)) return true;
    return false;
  }
  std::string token_ = "tenant-" + std::to_string(getpid());
  std::string adminA_ = "admin-a-" + std::to_string(getpid());
  std::string adminB_ = "admin-b-" + std::to_string(getpid());
  std::unique_ptr<WorkerProcess> source_, target_;
};

TEST_P(MigrationTest, MovesARunningProgramThatFinishesWithTheSameResults) {
  Program p(source_->address(), token_, {"64", "8", "150"});
  ASSERT_TRUE(p.waitFor("round 2")) << p.output();
  auto a = admin(*source_, adminA_);
  ASSERT_TRUE(a);
  auto moved = a->migrateOut(static_cast<uint32_t>(p.pid()), target_->address(), adminB_, 30000);
  ASSERT_TRUE(moved.isOk()) << moved.status().toString() << "\n" << p.output();
  EXPECT_GE(moved->bytes, 64ull << 20);  // both buffers went, and the images and variables
  printf("moved %.1f MiB, the call held %.1f ms\n", moved->bytes / 1048576.0, moved->pauseNs / 1e6);
  // The program goes on on the target; the source lets go of it.
  ASSERT_TRUE(p.waitFor("round 5")) << p.output();
  EXPECT_TRUE(serves(*target_, adminB_, p.pid()));
  EXPECT_FALSE(serves(*source_, adminA_, p.pid()));
  EXPECT_EQ(p.finish(), 0) << p.output();
  EXPECT_NE(p.output().find("OK 64 MiB, 8 rounds"), std::string::npos) << p.output();
  // Its NVML followed it: the device it reports holds the program's memory (the source's no
  // longer does).
  long long used = -1;
  if (auto at = p.output().find("nvml used "); at != std::string::npos)
    used = std::atoll(p.output().c_str() + at + 10);
  EXPECT_GE(used, 64) << p.output();
  EXPECT_TRUE(source_->alive());
  EXPECT_TRUE(target_->alive());
}

// Graphs move too: an executable whose graph is gone (updated from another), a graph the
// program keeps with its executable, changed through the executable by its own node every
// round, before and after the move, with a node disabled in the executable (it would spoil the
// results if it ran), and a graph with a child graph node whose embedded graph the program
// holds and reads after the move.
TEST_P(MigrationTest, MovesAProgramWithGraphsThatFinishesWithTheSameResults) {
  Program p(source_->address(), token_, {"16", "6", "150", "graph"});
  ASSERT_TRUE(p.waitFor("round 2")) << p.output();
  auto a = admin(*source_, adminA_);
  ASSERT_TRUE(a);
  auto moved = a->migrateOut(static_cast<uint32_t>(p.pid()), target_->address(), adminB_, 30000);
  ASSERT_TRUE(moved.isOk()) << moved.status().toString() << "\n" << p.output();
  ASSERT_TRUE(p.waitFor("round 4")) << p.output();
  EXPECT_TRUE(serves(*target_, adminB_, p.pid()));
  EXPECT_FALSE(serves(*source_, adminA_, p.pid()));
  EXPECT_EQ(p.finish(), 0) << p.output();
  EXPECT_NE(p.output().find("OK 16 MiB, 6 rounds"), std::string::npos) << p.output();
}

TEST_P(MigrationTest, ASessionHoldingAGraphThatAllocatesIsRefusedAndStays) {
  Program p(source_->address(), token_, {"16", "5", "100", "allocgraph"});
  ASSERT_TRUE(p.waitFor("round 1")) << p.output();
  auto a = admin(*source_, adminA_);
  ASSERT_TRUE(a);
  auto moved = a->migrateOut(static_cast<uint32_t>(p.pid()), target_->address(), adminB_, 30000);
  ASSERT_FALSE(moved.isOk());
  EXPECT_EQ(moved.status().code(), Code::FailedPrecondition) << moved.status().toString();
  EXPECT_NE(moved.status().message().find("has a memory"), std::string::npos) << moved.status().toString();
  EXPECT_TRUE(serves(*source_, adminA_, p.pid()));
  EXPECT_EQ(p.finish(), 0) << p.output();
  EXPECT_NE(p.output().find("OK 16 MiB, 5 rounds"), std::string::npos) << p.output();
}

TEST_P(MigrationTest, ATargetThatRefusesLeavesTheProgramWhereItWas) {
  Program p(source_->address(), token_, {"16", "5", "100"});
  ASSERT_TRUE(p.waitFor("round 1")) << p.output();
  auto a = admin(*source_, adminA_);
  ASSERT_TRUE(a);
  auto moved = a->migrateOut(static_cast<uint32_t>(p.pid()), target_->address(), "not-the-admin-token", 30000);
  ASSERT_FALSE(moved.isOk());
  EXPECT_NE(moved.status().message().find("refused"), std::string::npos) << moved.status().toString();
  // Nor can a tenant's token open the admin side of a worker.
  moved = a->migrateOut(static_cast<uint32_t>(p.pid()), target_->address(), token_, 30000);
  ASSERT_FALSE(moved.isOk());
  EXPECT_TRUE(serves(*source_, adminA_, p.pid()));
  EXPECT_EQ(p.finish(), 0) << p.output();
  EXPECT_NE(p.output().find("OK 16 MiB, 5 rounds"), std::string::npos) << p.output();
}

// A target that dies mid-way: it takes the admin connection, reads part of what is sent and is
// gone (it listens on TCP; the source reaches it whatever its own clients' transport). The
// program carries on at the source, every byte right.
TEST_P(MigrationTest, ATargetDyingMidwayLeavesTheProgramRunningAtTheSource) {
  auto l = listen("tcp://127.0.0.1:0", {});
  ASSERT_TRUE(l.isOk()) << l.status().toString();
  std::string deadTarget = (*l)->address();
  std::atomic<uint64_t> taken{0};
  std::thread dying([&] {
    auto t = (*l)->accept();
    if (!t) return;
    FrameHeader h;
    std::vector<uint8_t> args;
    if (!readHeader(**t, &h).isOk() || !readArgs(**t, h, &args).isOk()) return;
    FrameHeader reply;
    reply.kind = static_cast<uint16_t>(Kind::HelloReply);
    Writer w;
    uint64_t v[2] = {kProtocolVersion, 1};
    encodeReply(w, v, 2, nullptr, 0);
    reply.argsLen = static_cast<uint32_t>(w.size());
    if (!sendFrame(**t, reply, w.data(), nullptr, 0).isOk()) return;
    if (!readHeader(**t, &h).isOk() || !readArgs(**t, h, &args).isOk()) return;
    std::vector<uint8_t> part(h.bulkLen / 2);
    if ((*t)->readExact(part.data(), part.size()).isOk()) taken = part.size();
    (*t)->shutdown();  // and gone, half way through the contents
  });
  Program p(source_->address(), token_, {"32", "5", "100"});
  ASSERT_TRUE(p.waitFor("round 1")) << p.output();
  auto a = admin(*source_, adminA_);
  ASSERT_TRUE(a);
  auto moved = a->migrateOut(static_cast<uint32_t>(p.pid()), deadTarget, adminB_, 30000);
  dying.join();
  ASSERT_FALSE(moved.isOk());
  EXPECT_GT(taken.load(), 8ull << 20) << "the target died before the contents were under way";
  EXPECT_TRUE(serves(*source_, adminA_, p.pid()));
  EXPECT_EQ(p.finish(), 0) << p.output();
  EXPECT_NE(p.output().find("OK 32 MiB, 5 rounds"), std::string::npos) << p.output();
}

TEST_P(MigrationTest, BadOrdersAreRefusedClearly) {
  auto a = admin(*source_, adminA_);
  ASSERT_TRUE(a);
  auto moved = a->migrateOut(4242424, target_->address(), adminB_, 100);
  ASSERT_FALSE(moved.isOk());
  EXPECT_NE(moved.status().message().find("no such client"), std::string::npos) << moved.status().toString();
  // A program that makes no synchronous call in time is left alone.
  Program p(source_->address(), token_, {"16", "3", "3000"});
  ASSERT_TRUE(p.waitFor("round 1")) << p.output();
  moved = a->migrateOut(static_cast<uint32_t>(p.pid()), target_->address(), adminB_, 200);
  ASSERT_FALSE(moved.isOk());
  EXPECT_NE(moved.status().message().find("no synchronous call in time"), std::string::npos)
      << moved.status().toString();
  // The Adopt op is the admin's: a tenant cannot make it.
  RawClient c;
  ASSERT_EQ(c.open(target_->address(), token_), CUDA_SUCCESS);
  EXPECT_EQ(c.call(static_cast<uint32_t>(Op::Adopt), {}, c.context()), CUDA_ERROR_NOT_PERMITTED);
  EXPECT_EQ(p.finish(), 0) << p.output();
}

INSTANTIATE_TEST_SUITE_P(Transports, MigrationTest, ::testing::Values("tcp", "shm"));

}  // namespace
}  // namespace tf::remoting
