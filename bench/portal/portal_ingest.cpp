// portal_ingest: how fast the portal takes in agents' deltas. N agents (threads, each a real TLS
// WebSocket client from tests/portal) enroll, send a snapshot, then stream D deltas each (one
// GPU object per delta, a metrics batch every 10 deltas), each delta waited for until its ack:
// the ack comes only after the SQLite commit, so send->ack is the ingest latency. Twice, each
// against its own portal process (forked first, so its RSS is its own): one transaction per
// delta (ServerOptions::groupCommit off, the baseline) and group commit (on). Also the same
// number of deltas committed straight through SqliteStore::applyDelta, one at a time (no
// network, no TLS, no JSON). Prints p50/p99, throughput, the ratios, and each portal's RSS idle
// and after the agents' streams.
//
//   portal_ingest [agents=20] [deltas-per-agent=100]      (the load test: 200 agents)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <sys/wait.h>
#include <unistd.h>

#include "control_protocol/crypto.h"
#include "portal/portal.h"
#include "test_agent.h"

namespace {
using namespace tf;
using namespace tf::portal;
using Steady = std::chrono::steady_clock;

double us(Steady::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p * double(v.size())))];
}

long statusKiB(pid_t pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field));
  return -1;
}

protocol::SyncedObject gpuObject(int agent, uint64_t seq) {
  return {"GPU", "", "gpu-" + std::to_string(seq % 8), std::to_string(seq),
          {{"uuid", "GPU-" + std::to_string(agent) + "-" + std::to_string(seq % 8)},
           {"vramUsedMiB", seq * 3 % 81920}, {"computeUsed", double(seq % 100) / 100}, {"node", "node-" + std::to_string(agent)}}};
}

struct ChildPortal {
  pid_t pid = -1;
  int stdinFd = -1;
  int port = 0;
  std::string pin;
  bool stop() {
    ::close(stdinFd);
    int st = 0;
    ::waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
  }
};

// A portal in a child process: it writes "port pin" to a pipe and serves until its stdin pipe
// closes. Forked before this process starts any thread.
bool forkPortal(const std::filesystem::path& dataDir, bool groupCommit, ChildPortal& out) {
  int toPortal[2], fromPortal[2];
  if (::pipe(toPortal) != 0 || ::pipe(fromPortal) != 0) return false;
  const pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    // Only its own pipe ends: an inherited write end of another portal's pipe would keep that
    // portal from ever seeing its end of input.
    for (int fd = 3; fd < 1024; ++fd)
      if (fd != toPortal[0] && fd != fromPortal[1]) ::close(fd);
    PortalOptions o;
    o.dataDir = dataDir.string();
    o.adminPassword = "bench";
    o.settings.agentMessagesPerSecond = 1e6;
    o.settings.agentMessageBurst = 1e6;
    o.server.groupCommit = groupCommit;
    auto p = Portal::start(o);
    if (!p) {
      std::fprintf(stderr, "portal: %s\n", p.status().toString().c_str());
      ::_exit(1);
    }
    const std::string hello = std::to_string((*p)->port()) + " " + (*p)->pin() + "\n";
    if (::write(fromPortal[1], hello.data(), hello.size()) != ssize_t(hello.size())) ::_exit(1);
    char c;
    while (::read(toPortal[0], &c, 1) > 0) {}
    p->reset();
    ::_exit(0);
  }
  ::close(toPortal[0]);
  ::close(fromPortal[1]);
  std::string hello;
  for (char c; hello.find('\n') == std::string::npos && ::read(fromPortal[0], &c, 1) == 1;) hello.push_back(c);
  ::close(fromPortal[0]);
  out = {pid, toPortal[1], std::atoi(hello.c_str()), ""};
  const auto space = hello.find(' ');
  if (space == std::string::npos) return false;
  out.pin = hello.substr(space + 1, hello.size() - space - 2);
  return true;
}

struct Run {
  std::vector<double> lat;  // send->ack, us
  double wall = 0;          // s
  long rssIdle = 0, rssAfter = 0, rssPeak = 0;  // KiB
};

// N agents enroll with `portal` and stream their deltas; false when any failed.
bool streamAgents(ChildPortal& portal, int agents, int deltas, Run& run) {
  portal::testing::ConsoleClient admin(portal.port);
  if (admin.login("admin", "bench").status != 200) return std::fprintf(stderr, "admin login failed\n"), false;
  std::vector<std::string> tokens;
  for (int a = 0; a < agents; ++a) {
    auto r = admin.post("/api/v1/clusters", {{"agentId", "bench:a" + std::to_string(a)}});
    if (r.status != 201) return std::fprintf(stderr, "create cluster: %s\n", r.body.c_str()), false;
    tokens.push_back(r.json()["enrollToken"]);
  }
  run.rssIdle = statusKiB(portal.pid, "VmRSS:");
  std::mutex mu;
  int failures = 0;
  const auto start = Steady::now();
  std::vector<std::thread> threads;
  for (int a = 0; a < agents; ++a)
    threads.emplace_back([&, a] {
      std::vector<double> mine;
      auto fail = [&](const char* what) {
        std::lock_guard<std::mutex> lock(mu);
        if (failures++ < 5) std::fprintf(stderr, "agent %d: %s\n", a, what);
      };
      portal::testing::TestAgent agent(portal.port, portal.pin);
      auto key = protocol::Ed25519Key::generate();
      if (!agent.connect().isOk()) return fail("connect");
      const uint64_t epoch = uint64_t(a) + 100;
      if (!agent.authenticate("bench:a" + std::to_string(a), *key, tokens[size_t(a)], epoch, 0).ok)
        return fail("authenticate");
      if (!agent.send(protocol::Snapshot{epoch, 1, {}}).isOk() || agent.read().type() != "ack") return fail("snapshot");
      for (int i = 0; i < deltas; ++i) {
        const uint64_t seq = uint64_t(i) + 2;
        if (i % 10 == 0)
          (void)agent.send(protocol::Metrics{{{"gpu/" + std::to_string(a) + "/util", systemNowMs(), 0.5}}});
        const auto t0 = Steady::now();
        if (!agent.send(protocol::Delta{epoch, seq, {gpuObject(a, seq)}, {}}).isOk()) return fail("send");
        auto f = agent.read(std::chrono::seconds(60));
        if (f.type() != "ack" || f.json()["body"]["seq"] != seq) return fail("no ack");
        mine.push_back(us(Steady::now() - t0));
      }
      std::lock_guard<std::mutex> lock(mu);
      run.lat.insert(run.lat.end(), mine.begin(), mine.end());
    });
  for (auto& t : threads) t.join();
  run.wall = std::chrono::duration<double>(Steady::now() - start).count();
  run.rssAfter = statusKiB(portal.pid, "VmRSS:");
  run.rssPeak = statusKiB(portal.pid, "VmHWM:");
  if (failures || run.lat.size() != size_t(agents) * size_t(deltas)) {
    std::fprintf(stderr, "portal_ingest: %d agents failed; %zu of %d deltas acked\n", failures, run.lat.size(),
                 agents * deltas);
    return false;
  }
  return true;
}

void print(const char* name, const Run& r, int agents) {
  std::printf("  %-34s p50 %8.0f us   p99 %8.0f us   %6.0f deltas/s   RSS idle %ld KiB, with %d agents %ld KiB, peak %ld KiB\n",
              name, pct(r.lat, 0.5), pct(r.lat, 0.99), double(r.lat.size()) / r.wall, r.rssIdle, agents, r.rssAfter,
              r.rssPeak);
}

}  // namespace

int main(int argc, char** argv) {
  const int agents = argc > 1 ? std::atoi(argv[1]) : 20;
  const int deltas = argc > 2 ? std::atoi(argv[2]) : 100;
  if (agents < 1 || deltas < 1) {
    std::fprintf(stderr, "usage: portal_ingest [agents>=1] [deltas-per-agent>=1]\n");
    return 2;
  }
  const auto dir = std::filesystem::temp_directory_path() / ("tf-portal-ingest-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  ChildPortal serial, grouped;
  if (!forkPortal(dir / "serial", false, serial) || !forkPortal(dir / "grouped", true, grouped))
    return std::fprintf(stderr, "the portals did not start\n"), 1;

  // --- the store alone: the same number of deltas, one transaction each ----------------------
  std::vector<double> base;
  {
    auto store = SqliteStore::open((dir / "baseline.db").string());
    if (!store) return std::fprintf(stderr, "baseline store: %s\n", store.status().toString().c_str()), 1;
    auto c = (*store)->createCluster("bench:base", "base", 1);
    if (!c || !(*store)->applySnapshot(c->id, protocol::Snapshot{1, 1, {}})) return 1;
    for (int i = 0; i < agents * deltas; ++i) {
      const uint64_t seq = uint64_t(i) + 2;
      const auto t0 = Steady::now();
      auto r = (*store)->applyDelta(c->id, protocol::Delta{1, seq, {gpuObject(0, seq)}, {}});
      base.push_back(us(Steady::now() - t0));
      if (!r || *r != DeltaOutcome::Applied) return std::fprintf(stderr, "baseline delta %d not applied\n", i), 1;
    }
  }

  Run one, group;
  const bool ok = streamAgents(serial, agents, deltas, one) && streamAgents(grouped, agents, deltas, group);
  const bool stopped = serial.stop() & grouped.stop();
  std::filesystem::remove_all(dir);
  if (!ok) return 1;
  if (!stopped) return std::fprintf(stderr, "portal_ingest: a portal process failed\n"), 1;
  std::printf("portal_ingest: %d agents x %d deltas (TLS WebSocket, ack after SQLite commit, synchronous=FULL)\n",
              agents, deltas);
  print("one transaction per delta (before)", one, agents);
  print("group commit (after)", group, agents);
  std::printf("  %-34s p50 %8.0f us   p99 %8.0f us\n", "store.applyDelta alone", pct(base, 0.5), pct(base, 0.99));
  std::printf("  group commit vs one per delta: p99 %.2fx lower, throughput %.2fx\n",
              pct(one.lat, 0.99) / pct(group.lat, 0.99),
              (double(group.lat.size()) / group.wall) / (double(one.lat.size()) / one.wall));
  std::printf("  group commit vs the store alone: p50 %.2fx, p99 %.2fx\n", pct(group.lat, 0.5) / pct(base, 0.5),
              pct(group.lat, 0.99) / pct(base, 0.99));
  return 0;
}
