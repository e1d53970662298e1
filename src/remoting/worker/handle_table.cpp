#include "remoting/worker/handle_table.h"

#include <random>

namespace tf::remoting {

namespace {

// Remapped client values: the top bit set (no driver hands out such a pointer, nor 0 or the
// special streams 1 and 2), a random start below it, steps of 16 (they look like pointers).
constexpr uint64_t kRemapTop = uint64_t(1) << 63;
constexpr uint64_t kRemapStep = 16;

bool alwaysIdentity(HandleKind k) { return k == HandleKind::TexObject || k == HandleKind::SurfObject; }

} // namespace

HandleTable::HandleTable(Mode mode, uint64_t seed) : mode_(mode) {
  if (mode_ == Mode::Identity) return;
  if (!seed) {
    std::random_device rd;
    seed = (uint64_t(rd()) << 32) | rd();
  }
  // A random start with room for 2^58 handles before the range would wrap.
  next_ = kRemapTop | ((seed & ((uint64_t(1) << 62) - 1)) & ~(kRemapStep - 1));
}

uint64_t HandleTable::expose(HandleKind k, uint64_t driver) {
  if (!driver) return 0;
  Kind& kind = kinds_[static_cast<int>(k)];
  auto it = kind.toClient.find(driver);
  if (it != kind.toClient.end()) return it->second;
  uint64_t client = driver;
  if (mode_ == Mode::Remapped && !alwaysIdentity(k)) {
    do {
      client = next_;
      next_ = ((next_ + kRemapStep) & ~kRemapTop) | kRemapTop;
    } while (kind.toDriver.count(client)); // taken by an adopted handle
  }
  kind.toClient.emplace(driver, client);
  kind.toDriver.emplace(client, driver);
  return client;
}

bool HandleTable::adopt(HandleKind k, uint64_t client, uint64_t driver) {
  if (!client || !driver) return false;
  Kind& kind = kinds_[static_cast<int>(k)];
  if (kind.toClient.count(driver) || kind.toDriver.count(client)) return false;
  kind.toClient.emplace(driver, client);
  kind.toDriver.emplace(client, driver);
  return true;
}

void HandleTable::forget(HandleKind k, uint64_t driver) {
  Kind& kind = kinds_[static_cast<int>(k)];
  auto it = kind.toClient.find(driver);
  if (it == kind.toClient.end()) return;
  kind.toDriver.erase(it->second);
  kind.toClient.erase(it);
}

std::vector<uint64_t> HandleTable::drivers(HandleKind k) const {
  std::vector<uint64_t> out;
  const Kind& kind = kinds_[static_cast<int>(k)];
  out.reserve(kind.toClient.size());
  for (const auto& [driver, client] : kind.toClient) out.push_back(driver);
  return out;
}

void HandleTable::clear() {
  for (Kind& kind : kinds_) {
    kind.toDriver.clear();
    kind.toClient.clear();
  }
}

} // namespace tf::remoting
