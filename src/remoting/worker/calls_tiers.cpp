// The admin's view of the clients' VRAM tiers and its orders to them (tier_control.h). The
// orders are carried out by each client's own thread while it waits for its next call, so
// nothing here touches a session's memory.
#include <chrono>
#include <thread>
#include <vector>

#include "remoting/tier_control.h"
#include "remoting/worker/calls.h"

namespace tf::remoting {

namespace {

int64_t nowNs() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

std::vector<std::shared_ptr<SessionInfo>> clients(Session& s) {
  std::vector<std::shared_ptr<SessionInfo>> out;
  std::lock_guard<std::mutex> lock(s.shared().sessionsMu);
  for (auto& [key, info] : s.shared().sessions) out.push_back(info);
  return out;
}

uint64_t idleMs(const SessionInfo& info) {
  const int64_t since = info.idleSinceNs.load();
  return since ? static_cast<uint64_t>(std::max<int64_t>(0, nowNs() - since)) / 1000000 : 0;
}

}  // namespace

CUresult tierStatus(Session& s, CallIn&, CallOut& out) {
  std::vector<TierRecord> records;
  for (const auto& info : clients(s)) {
    TierRecord r;
    r.pid = info->pid;
    r.state = static_cast<TierState>(info->tierState.load());
    r.warmBytes = info->warmBytes.load();
    r.coldBytes = info->coldBytes.load();
    const uint64_t held = info->bytes.load();
    r.hotBytes = held > r.warmBytes + r.coldBytes ? held - r.warmBytes - r.coldBytes : 0;
    r.freezes = info->freezes.load();
    r.thaws = info->thaws.load();
    r.freezeNs = info->freezeNs.load();
    r.thawNs = info->thawNs.load();
    r.idleMs = idleMs(*info);
    r.waitingBytes = info->waitingBytes.load();
    r.warmStoredBytes = info->warmStoredBytes.load();
    r.coldStoredBytes = info->coldStoredBytes.load();
    records.push_back(r);
  }
  Writer w;
  encodeTierRecords(w, records);
  out.blob.assign(reinterpret_cast<const char*>(w.data()), w.size());
  out.put(s.shared().tenantSessions.load());
  return CUDA_SUCCESS;
}

CUresult tierControl(Session& s, CallIn& in, CallOut& out) {
  NEED(3);
  if (A(0) > static_cast<uint64_t>(TierAction::Thaw)) return CUDA_ERROR_INVALID_VALUE;
  const uint32_t order = static_cast<uint32_t>(A(0)) + 1;
  const uint64_t minIdleMs = A(1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::min<uint64_t>(A(2), 600000));
  // Clients idle long enough now (a client in a call is never idle) get the order; with no
  // minimum, every client, which carries it out as soon as its call in progress ends.
  std::vector<std::pair<std::shared_ptr<SessionInfo>, uint64_t>> ordered;
  for (auto& info : clients(s)) {
    if (minIdleMs > 0 && (info->idleSinceNs.load() == 0 || idleMs(*info) < minIdleMs)) continue;
    ordered.emplace_back(info, info->ordersDone.load());
    info->order.store(order);
  }
  int moved = 0;
  for (auto& [info, before] : ordered) {
    while (info->ordersDone.load() == before && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (info->ordersDone.load() != before && info->lastMoved.load()) ++moved;
  }
  out.put(static_cast<uint64_t>(moved));
  return CUDA_SUCCESS;
}

}  // namespace tf::remoting
