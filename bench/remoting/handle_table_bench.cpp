// The worker's handle lookups (worker/handle_table.h), the cost every handle a call names pays:
// HandleTable::resolve in the identity mode and remapped, beside the std::set membership test
// the worker's ownership check was before handles were translated. A session's typical table:
// a few dozen handles per kind (streams, events, functions); a graph-heavy one: thousands of
// nodes. Each figure is lookups per second; the ratio is against the set, in this run.
//
//   ninja -C build/<preset> handle_table_bench_run
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <set>
#include <vector>

#include "remoting/worker/handle_table.h"

namespace {

using tf::remoting::HandleKind;
using tf::remoting::HandleTable;
using Clock = std::chrono::steady_clock;

constexpr int kLookups = 20'000'000;

// Lookups per second of `lookup` over `names` (cycled), best of 3.
template <typename F> double rate(const std::vector<uint64_t>& names, F&& lookup) {
  double best = 0;
  for (int round = 0; round < 3; ++round) {
    uint64_t found = 0;
    auto start = Clock::now();
    for (int i = 0; i < kLookups; ++i) found += lookup(names[static_cast<size_t>(i) % names.size()]);
    double s = std::chrono::duration<double>(Clock::now() - start).count();
    if (found != static_cast<uint64_t>(kLookups)) {
      fprintf(stderr, "handle_table_bench: %llu of %d lookups found their handle\n",
              static_cast<unsigned long long>(found), kLookups);
      std::exit(1);
    }
    best = std::max(best, kLookups / s);
  }
  return best;
}

void measure(size_t handles) {
  std::mt19937_64 rng(handles);
  std::vector<uint64_t> drivers(handles);
  for (auto& d : drivers) d = 0x7f0000000000 + (rng() % (uint64_t(1) << 36)) * 16;
  std::set<uint64_t> set(drivers.begin(), drivers.end());
  HandleTable identity(HandleTable::Mode::Identity), remapped(HandleTable::Mode::Remapped, 42);
  std::vector<uint64_t> remappedNames;
  for (uint64_t d : drivers) {
    identity.expose(HandleKind::Stream, d);
    remappedNames.push_back(remapped.expose(HandleKind::Stream, d));
  }
  // Names in a random order, as calls name them.
  std::vector<size_t> order(handles);
  for (size_t i = 0; i < handles; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<uint64_t> named, namedRemapped;
  for (size_t i : order) {
    named.push_back(drivers[i]);
    namedRemapped.push_back(remappedNames[i]);
  }
  double base = rate(named, [&](uint64_t h) { return set.count(h); });
  double id = rate(named, [&](uint64_t h) { return identity.resolve(HandleKind::Stream, h) ? 1 : 0; });
  double re = rate(namedRemapped, [&](uint64_t h) { return remapped.resolve(HandleKind::Stream, h) ? 1 : 0; });
  printf("  %6zu handles  set %8.1f M/s   identity %8.1f M/s (%.2fx)   remapped %8.1f M/s (%.2fx)\n",
         handles, base / 1e6, id / 1e6, id / base, re / 1e6, re / base);
}

} // namespace

int main() {
  printf("handle lookups per second, against the std::set ownership check (this run):\n");
  for (size_t n : {8, 64, 4096}) measure(n);
  return 0;
}
