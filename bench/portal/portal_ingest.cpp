// portal_ingest: how fast the portal takes in agents' deltas. N agents (threads, each a real TLS
// WebSocket client from tests/portal) enroll, send a snapshot, then stream D deltas each (one
// GPU object per delta, a metrics batch every 10 deltas), each delta waited for until its ack:
// the ack comes only after the SQLite commit, so send->ack is the ingest latency. Baseline in
// the same run: the same number of deltas committed straight through SqliteStore::applyDelta
// (no network, no TLS, no JSON), one at a time. Prints p50/p99 of both, their ratio, the
// throughput and the process RSS (portal and clients share this process).
//
//   portal_ingest [agents=20] [deltas-per-agent=100]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
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

long statusKiB(const char* field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field));
  return -1;
}

protocol::SyncedObject gpuObject(int agent, uint64_t seq) {
  return {"GPU", "", "gpu-" + std::to_string(seq % 8), std::to_string(seq),
          {{"uuid", "GPU-" + std::to_string(agent) + "-" + std::to_string(seq % 8)},
           {"vramUsedMiB", seq * 3 % 81920}, {"computeUsed", double(seq % 100) / 100}, {"node", "node-" + std::to_string(agent)}}};
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

  // --- baseline: the same deltas straight into the store -----------------------------------
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

  // --- the portal with N agents -------------------------------------------------------------
  PortalOptions o;
  o.dataDir = (dir / "portal").string();
  o.adminPassword = "bench";
  o.settings.agentMessagesPerSecond = 1e6;
  o.settings.agentMessageBurst = 1e6;
  auto p = Portal::start(o);
  if (!p) return std::fprintf(stderr, "portal: %s\n", p.status().toString().c_str()), 1;
  auto& portal = *p;
  std::vector<std::string> tokens;
  for (int a = 0; a < agents; ++a) {
    auto c = portal->store().createCluster("bench:a" + std::to_string(a), "a", systemNowMs());
    const std::string token = *protocol::randomToken();
    if (!c || !portal->store().addEnrollToken(c->id, protocol::hexEncode(protocol::sha256(token)),
                                              systemNowMs() + 3600000, systemNowMs()))
      return 1;
    tokens.push_back(token);
  }
  const long rssBefore = statusKiB("VmRSS:");
  std::mutex mu;
  std::vector<double> lat;
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
      portal::testing::TestAgent agent(portal->port(), portal->pin());
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
        auto f = agent.read();
        if (f.type() != "ack" || f.json()["body"]["seq"] != seq) return fail("no ack");
        mine.push_back(us(Steady::now() - t0));
      }
      std::lock_guard<std::mutex> lock(mu);
      lat.insert(lat.end(), mine.begin(), mine.end());
    });
  for (auto& t : threads) t.join();
  const double wall = std::chrono::duration<double>(Steady::now() - start).count();
  const long rssAfter = statusKiB("VmRSS:"), hwm = statusKiB("VmHWM:");
  portal.reset();
  std::filesystem::remove_all(dir);
  if (failures || lat.size() != size_t(agents) * size_t(deltas)) {
    std::fprintf(stderr, "portal_ingest: %d agents failed; %zu of %d deltas acked\n", failures, lat.size(), agents * deltas);
    return 1;
  }
  const double p50 = pct(lat, 0.5), p99 = pct(lat, 0.99), b50 = pct(base, 0.5), b99 = pct(base, 0.99);
  std::printf("portal_ingest: %d agents x %d deltas (TLS WebSocket, ack after SQLite commit)\n", agents, deltas);
  std::printf("  ingest send->ack   p50 %8.0f us   p99 %8.0f us   %.0f deltas/s over all agents\n", p50, p99,
              double(lat.size()) / wall);
  std::printf("  baseline store.applyDelta (same deltas, no network)   p50 %8.0f us   p99 %8.0f us\n", b50, b99);
  std::printf("  ratio ingest/baseline   p50 %.2fx   p99 %.2fx\n", p50 / b50, p99 / b99);
  std::printf("  RSS (portal + %d client threads, one process): %ld KiB before, %ld KiB after, peak %ld KiB\n", agents,
              rssBefore, rssAfter, hwm);
  return 0;
}
