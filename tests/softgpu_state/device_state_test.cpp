#include "softgpu/device_state.h"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include "common/units.h"

namespace tf::softgpu {
namespace {

using units::KiB;
using units::MiB;
using Clock = std::chrono::steady_clock;

// Each test gets its own TF_SOFTGPU_STATE_DIR, so tests never see each other's devices.
class DeviceStateTest : public ::testing::Test {
protected:
  void SetUp() override {
    char dir[] = "/tmp/tf-softgpu-state-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    setenv("TF_SOFTGPU_STATE_DIR", dir_.c_str(), 1);
    device_ = deviceWith("H100:1MiB");
  }
  void TearDown() override {
    if (DIR* d = opendir(dir_.c_str())) {
      while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') unlink((dir_ + "/" + e->d_name).c_str());
      closedir(d);
    }
    rmdir(dir_.c_str());
    unsetenv("TF_SOFTGPU_STATE_DIR");
  }
  static DeviceConfig deviceWith(const std::string& spec) {
    auto cfg = parseDeviceSpec(spec, "state-test");
    EXPECT_TRUE(cfg);
    return cfg->devices[0];
  }
  std::unique_ptr<DeviceState> openState(const DeviceConfig& device) {
    auto state = DeviceState::open(device);
    EXPECT_TRUE(state) << state.status().toString();
    return state ? std::move(*state) : nullptr;
  }
  // Forks a child that runs `body` and then waits to be killed; returns once the child has
  // written its ready byte.
  pid_t forkHolding(const std::function<void(DeviceState&, int slot)>& body) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
      close(fds[0]);
      auto state = DeviceState::open(device_);
      if (!state) _exit(2);
      auto slot = (*state)->attach();
      if (!slot) _exit(3);
      body(**state, *slot);
      char ok = 1;
      if (write(fds[1], &ok, 1) != 1) _exit(4);
      for (;;) pause();
    }
    close(fds[1]);
    char ok = 0;
    EXPECT_EQ(read(fds[0], &ok, 1), 1) << "child did not get ready";
    close(fds[0]);
    return pid;
  }
  static void killAndReap(pid_t pid) {
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
  }

  std::string dir_;
  DeviceConfig device_;
};

TEST_F(DeviceStateTest, ReserveAndRelease) {
  auto state = openState(device_);
  ASSERT_TRUE(state);
  EXPECT_EQ(state->path(), dir_ + "/tf-softgpu-" + device_.uuidString);
  EXPECT_EQ(state->totalMemory(), 1 * MiB);
  auto slot = state->attach();
  ASSERT_TRUE(slot);
  EXPECT_EQ(*state->attach(), *slot); // one slot per process
  ASSERT_TRUE(state->reserveMemory(*slot, 600 * KiB));
  EXPECT_EQ(state->usedMemory(), 600 * KiB);

  Status over = state->reserveMemory(*slot, 500 * KiB);
  EXPECT_EQ(over.code(), Code::ResourceExhausted);
  EXPECT_NE(over.message().find("free"), std::string::npos);
  EXPECT_EQ(state->usedMemory(), 600 * KiB);

  // A second handle in the same process sees the same device.
  auto second = openState(device_);
  EXPECT_EQ(second->usedMemory(), 600 * KiB);

  state->releaseMemory(*slot, 600 * KiB);
  EXPECT_EQ(state->usedMemory(), 0u);
  EXPECT_TRUE(state->reserveMemory(*slot, 1 * MiB));
  EXPECT_FALSE(state->reserveMemory(*slot, 1));
  auto procs = state->processes();
  ASSERT_EQ(procs.size(), 1u);
  EXPECT_EQ(procs[0].pid, getpid());
  EXPECT_EQ(procs[0].memoryBytes, 1 * MiB);

  state->detach(*slot);
  EXPECT_EQ(state->usedMemory(), 0u);
  EXPECT_TRUE(state->processes().empty());
  EXPECT_EQ(state->reserveMemory(*slot, 1).code(), Code::FailedPrecondition); // slot given back
}

// The state keeps this process's pid without asking the kernel each time; a child forked
// with the state open is another process all the same: a slot of its own, its own pid there.
TEST_F(DeviceStateTest, AForkedChildIsAnotherProcess) {
  auto state = openState(device_);
  ASSERT_TRUE(state);
  auto slot = state->attach();
  ASSERT_TRUE(slot);
  ASSERT_TRUE(state->reserveMemory(*slot, 100 * KiB));
  pid_t child = fork();
  if (child == 0) {
    auto own = state->attach();
    if (!own) _exit(2);
    if (*own == *slot) _exit(3); // took its parent's slot
    if (!state->reserveMemory(*own, 200 * KiB)) _exit(4);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  // The parent's own slot kept its memory; the child's, gone with it, is reclaimed.
  state->reapDeadProcesses();
  auto procs = state->processes();
  ASSERT_EQ(procs.size(), 1u);
  EXPECT_EQ(procs[0].pid, getpid());
  EXPECT_EQ(procs[0].memoryBytes, 100 * KiB);
}

TEST_F(DeviceStateTest, ConcurrentReservationsNeverExceedTheTotal) {
  constexpr int kChildren = 3, kRounds = 3000;
  std::vector<pid_t> children;
  for (int c = 0; c < kChildren; ++c) {
    pid_t pid = fork();
    if (pid == 0) {
      auto state = DeviceState::open(device_);
      if (!state) _exit(2);
      auto slot = (*state)->attach();
      if (!slot) _exit(3);
      unsigned seed = 1234 + c;
      uint64_t held = 0;
      for (int i = 0; i < kRounds; ++i) {
        uint64_t bytes = (1 + rand_r(&seed) % 300) * KiB;
        if ((*state)->reserveMemory(*slot, bytes)) held += bytes;
        if ((*state)->usedMemory() > (*state)->totalMemory()) _exit(10);
        if (held > 0 && rand_r(&seed) % 2) {
          (*state)->releaseMemory(*slot, held);
          held = 0;
        }
      }
      (*state)->releaseMemory(*slot, held);
      _exit(0);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "10 means the device went over its total";
  }
  EXPECT_EQ(openState(device_)->usedMemory(), 0u);
}

TEST_F(DeviceStateTest, KilledProcessMemoryIsReclaimed) {
  auto state = openState(device_);
  pid_t child = forkHolding([](DeviceState& s, int slot) {
    if (!s.reserveMemory(slot, 768 * KiB)) _exit(5);
  });
  EXPECT_EQ(state->usedMemory(), 768 * KiB);
  auto procs = state->processes();
  ASSERT_EQ(procs.size(), 1u);
  EXPECT_EQ(procs[0].pid, child);
  auto slot = state->attach();
  ASSERT_TRUE(slot);
  EXPECT_FALSE(state->reserveMemory(*slot, 512 * KiB));

  // Killed but not yet waited for (a zombie): its memory is already free.
  kill(child, SIGKILL);
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (state->usedMemory() != 0 && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(state->usedMemory(), 0u);
  int status;
  waitpid(child, &status, 0);
  EXPECT_TRUE(state->reserveMemory(*slot, 1 * MiB)); // the whole device again
  ASSERT_EQ(state->processes().size(), 1u);
  EXPECT_EQ(state->processes()[0].pid, getpid());
}

TEST_F(DeviceStateTest, ReserveReapsDeadProcessesWhenFull) {
  auto state = openState(device_);
  pid_t child = forkHolding([](DeviceState& s, int slot) {
    if (!s.reserveMemory(slot, 1 * MiB)) _exit(5);
  });
  killAndReap(child);
  auto slot = state->attach();
  ASSERT_TRUE(slot);
  // No usedMemory()/processes() call in between: the reservation itself finds the dead slot.
  EXPECT_TRUE(state->reserveMemory(*slot, 1 * MiB));
}

// On a node, containers share the device state but not their pids: a process whose pid means
// nothing (or someone else) in our namespace is alive as long as it lives, and its memory is
// not taken from it. Its slot is freed once it dies.
TEST_F(DeviceStateTest, AProcessOfAnotherPidNamespaceKeepsItsSlot) {
  auto state = openState(device_);
  auto slot = state->attach();
  ASSERT_TRUE(slot);
  // One pipe per writer: the two writes race, and which pid is which must not depend on it.
  int fromMiddle[2], fromInner[2];
  ASSERT_EQ(pipe(fromMiddle), 0);
  ASSERT_EQ(pipe(fromInner), 0);
  pid_t middle = fork();
  if (middle == 0) {
    // A new pid namespace for the next child (needs CAP_SYS_ADMIN: the tests run as root, as
    // the cluster tests must).
    if (unshare(CLONE_NEWPID) != 0) _exit(3);
    pid_t inner = fork();
    if (inner == 0) {  // pid 1 of its namespace
      auto s = DeviceState::open(device_);
      if (!s) _exit(4);
      auto childSlot = (*s)->attach();
      if (!childSlot || !(*s)->reserveMemory(*childSlot, 1 * MiB)) _exit(5);
      int32_t me = getpid();
      if (write(fromInner[1], &me, sizeof me) != sizeof me) _exit(6);
      for (;;) pause();
    }
    if (write(fromMiddle[1], &inner, sizeof inner) != sizeof inner) _exit(6);
    int st = 0;
    waitpid(inner, &st, 0);
    _exit(0);
  }
  close(fromMiddle[1]);
  close(fromInner[1]);
  int32_t innerHere = 0, innerThere = 0;
  ASSERT_EQ(read(fromMiddle[0], &innerHere, sizeof innerHere), int(sizeof innerHere)) << "unshare(CLONE_NEWPID) refused?";
  ASSERT_GT(innerHere, 1);  // never signal our own namespace's init below
  ASSERT_EQ(read(fromInner[0], &innerThere, sizeof innerThere), int(sizeof innerThere));
  EXPECT_EQ(innerThere, 1);  // its slot says pid 1: here, that is init
  // However often we look, it keeps its slot and its memory.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(state->usedMemory(), 1 * MiB);
    EXPECT_FALSE(state->reserveMemory(*slot, 1)) << "the device is full while it lives";
    state->reapDeadProcesses();
  }
  kill(innerHere, SIGKILL);
  int status = 0;
  waitpid(middle, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_TRUE(state->reserveMemory(*slot, 1 * MiB)) << "its memory is free once it is gone";
}

// Exclusion is shown by order, not by a clock: the child says it is letting go before it does,
// so a lock granted while the child held it finds nothing said yet.
TEST_F(DeviceStateTest, ExecutionLockExcludesOtherProcesses) {
  auto state = openState(device_);
  auto slot = state->attach();
  ASSERT_TRUE(slot);
  int ready[2], releasing[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(releasing), 0);
  pid_t child = fork();
  if (child == 0) {
    auto s = DeviceState::open(device_);
    auto childSlot = (*s)->attach();
    auto lock = (*s)->lockExecution(*childSlot);
    char ok = 1;
    if (write(ready[1], &ok, 1) != 1) _exit(4);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    if (write(releasing[1], &ok, 1) != 1) _exit(4);
    lock.reset();
    for (;;) pause(); // stays alive (and in processes()) until killed
  }
  char ok;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  {
    auto lock = state->lockExecution(*slot);
    pollfd p{releasing[0], POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 0), 1) << "lock was not exclusive: granted while the child held it";
  }
  // The child's 300 ms with the lock were device time, in its process's account.
  uint64_t childBusy = 0;
  auto deadline = Clock::now() + std::chrono::seconds(5);
  do {
    for (const auto& u : state->processes())
      if (u.pid == child) childBusy = u.busyNs;
  } while (childBusy < 300'000'000u && Clock::now() < deadline &&
           (std::this_thread::sleep_for(std::chrono::milliseconds(5)), true));
  EXPECT_GE(childBusy, 300'000'000u);
  killAndReap(child);
  for (int fd : {ready[0], ready[1], releasing[0], releasing[1]}) close(fd);
}

TEST_F(DeviceStateTest, KilledLockHolderDoesNotBlockOthers) {
  auto state = openState(device_);
  pid_t child = forkHolding([](DeviceState& s, int slot) {
    if (!s.reserveMemory(slot, 256 * KiB)) _exit(5);
    auto* lock = s.lockExecution(slot).release(); // held until the process dies
    (void)lock;
  });
  killAndReap(child);
  alarm(20); // a lock that is never recovered fails the test instead of hanging it
  auto slot = state->attach();
  ASSERT_TRUE(slot);
  {
    auto lock = state->lockExecution(*slot);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  { auto again = state->lockExecution(*slot); }
  alarm(0);
  EXPECT_EQ(state->usedMemory(), 0u);
  auto procs = state->processes();
  ASSERT_EQ(procs.size(), 1u);
  EXPECT_GE(procs[0].busyNs, 50'000'000u);
}

TEST_F(DeviceStateTest, BusyTimeGivesUtilization) {
  auto state = openState(device_);
  auto slot = state->attach();
  ASSERT_TRUE(slot);
  EXPECT_EQ(state->utilizationPercent(1000), 0u);
  state->addBusyTime(*slot, 500'000'000);
  unsigned util = state->utilizationPercent(1000);
  EXPECT_GE(util, 45u);
  EXPECT_LE(util, 60u);
  EXPECT_LE(state->utilizationPercent(60000), 2u); // 0.5 s of a minute
  auto recent = state->recentProcessUsage(1000);
  ASSERT_EQ(recent.size(), 1u);
  EXPECT_NEAR(double(recent[0].busyNs), 500e6, 1e6);
  auto procs = state->processes();
  EXPECT_EQ(procs[0].busyNs, 500'000'000u);
  EXPECT_GT(procs[0].lastSeenNs, 0u);
  state->addBusyTime(*slot, 5'000'000'000ull); // more than the window: capped at 100
  EXPECT_EQ(state->utilizationPercent(1000), 100u);
}

TEST_F(DeviceStateTest, MemorySizeChangeIsAdoptedOnlyWhenIdle) {
  { auto state = openState(device_); }
  auto bigger = openState(deviceWith("H100:2MiB"));
  ASSERT_TRUE(bigger);
  EXPECT_EQ(bigger->totalMemory(), 2 * MiB);
  ASSERT_TRUE(bigger->attach());
  auto refused = DeviceState::open(deviceWith("H100:4MiB"));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.status().code(), Code::FailedPrecondition);
}

class CorruptStateTest : public DeviceStateTest {
protected:
  std::string pathOf() { return dir_ + "/tf-softgpu-" + device_.uuidString; }
  void patch(off_t offset, const void* data, size_t size) {
    int fd = ::open(pathOf().c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, data, size, offset), ssize_t(size));
    ::close(fd);
  }
  std::string openError() {
    auto state = DeviceState::open(device_);
    EXPECT_FALSE(state);
    return state ? "" : state.status().toString();
  }
};

TEST_F(CorruptStateTest, WrongSize) {
  int fd = ::open(pathOf().c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "garbage", 7), 7);
  ::close(fd);
  std::string error = openError();
  EXPECT_NE(error.find("7 bytes"), std::string::npos) << error;
  EXPECT_NE(error.find("remove it"), std::string::npos) << error;
}

TEST_F(CorruptStateTest, BadMagic) {
  { openState(device_); }
  uint64_t junk = 0x1234;
  patch(0, &junk, sizeof junk);
  std::string error = openError();
  EXPECT_NE(error.find("bad magic"), std::string::npos) << error;
}

TEST_F(CorruptStateTest, VersionMismatch) {
  { openState(device_); }
  uint32_t version = DeviceState::kVersion + 1;
  patch(8, &version, sizeof version);
  std::string error = openError();
  EXPECT_NE(error.find("version " + std::to_string(DeviceState::kVersion + 1)), std::string::npos) << error;
}

TEST_F(CorruptStateTest, OtherDevicesFile) {
  { openState(device_); }
  auto other = deviceWith("L4");
  ASSERT_EQ(rename(pathOf().c_str(), (dir_ + "/tf-softgpu-" + other.uuidString).c_str()), 0);
  auto state = DeviceState::open(other);
  ASSERT_FALSE(state);
  EXPECT_NE(state.status().message().find(device_.uuidString), std::string::npos);
}

} // namespace
} // namespace tf::softgpu
