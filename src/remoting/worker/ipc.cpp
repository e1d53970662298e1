#include "remoting/worker/ipc.h"

#include <cstring>
#include <random>

namespace tf::remoting {

namespace {

constexpr char kMagic[8] = {'T', 'F', 'I', 'P', 'C', 'v', '1', 0};

// magic (8) | kind (1) | pad (7) | id (8) | secret (16) | zero
void encodeHandle(const IpcEntry& e, uint8_t h[kIpcHandleSize]) {
  std::memset(h, 0, kIpcHandleSize);
  std::memcpy(h, kMagic, 8);
  h[8] = static_cast<uint8_t>(e.kind);
  std::memcpy(h + 16, &e.id, 8);
  std::memcpy(h + 24, e.secret.data(), e.secret.size());
}

bool sameSecret(const std::array<uint8_t, 16>& a, const uint8_t* b) {
  uint8_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= a[i] ^ b[i];
  return diff == 0;
}

} // namespace

void IpcRegistry::exportObject(IpcKind kind, const void* owner, uint32_t tenant, uint64_t object,
                               uint64_t size, CUcontext ctx, uint8_t handle[kIpcHandleSize]) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, e] : entries_)
    if (e.kind == kind && e.owner == owner && e.object == object) return encodeHandle(e, handle);
  IpcEntry e;
  e.id = nextId_++;
  e.kind = kind;
  e.owner = owner;
  e.tenant = tenant;
  e.object = object;
  e.size = size;
  e.ctx = ctx;
  std::random_device rd;
  for (size_t i = 0; i < e.secret.size(); i += 4) {
    uint32_t v = rd();
    std::memcpy(e.secret.data() + i, &v, 4);
  }
  encodeHandle(e, handle);
  entries_.emplace(e.id, std::move(e));
}

CUresult IpcRegistry::open(IpcKind kind, const uint8_t h[kIpcHandleSize], const void* opener,
                           uint32_t tenant, IpcEntry* out) {
  if (std::memcmp(h, kMagic, 8) != 0 || h[8] != static_cast<uint8_t>(kind))
    return CUDA_ERROR_INVALID_VALUE;
  uint64_t id;
  std::memcpy(&id, h + 16, 8);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  // Another tenant's handle looks like one this worker never made: nothing is said about it.
  if (it == entries_.end() || !sameSecret(it->second.secret, h + 24) ||
      it->second.tenant != tenant || !it->second.owner)
    return CUDA_ERROR_INVALID_VALUE;
  if (it->second.owner == opener) return CUDA_ERROR_INVALID_CONTEXT; // as in the same process
  ++it->second.importers[opener];
  *out = it->second;
  return CUDA_SUCCESS;
}

bool IpcRegistry::opened(IpcKind kind, const void* opener, uint64_t object, uint64_t* id) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [i, e] : entries_)
    if (e.kind == kind && e.object == object && e.importers.count(opener)) {
      *id = i;
      return true;
    }
  return false;
}

std::vector<IpcEntry> IpcRegistry::dueLocked(std::map<uint64_t, IpcEntry>::iterator it) {
  if (it->second.owner || !it->second.importers.empty()) return {};
  std::vector<IpcEntry> due{std::move(it->second)};
  entries_.erase(it);
  if (due[0].destroyCtx) // the context goes with the last of its objects
    for (auto& [id, e] : entries_)
      if (e.ctx == due[0].ctx && !e.owner) {
        e.destroyCtx = true;
        due[0].destroyCtx = false;
        break;
      }
  return due;
}

std::vector<IpcEntry> IpcRegistry::close(uint64_t id, const void* opener) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return {};
  auto imp = it->second.importers.find(opener);
  if (imp == it->second.importers.end()) return {};
  if (--imp->second == 0) it->second.importers.erase(imp);
  return dueLocked(it);
}

std::vector<IpcEntry> IpcRegistry::closeAll(const void* opener) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<IpcEntry> due;
  for (auto it = entries_.begin(); it != entries_.end();) {
    auto next = std::next(it);
    if (it->second.importers.erase(opener))
      for (auto& e : dueLocked(it)) due.push_back(std::move(e));
    it = next;
  }
  return due;
}

bool IpcRegistry::ownerReleases(IpcKind kind, const void* owner, uint64_t object) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    IpcEntry& e = it->second;
    if (e.kind != kind || e.owner != owner || e.object != object) continue;
    if (e.importers.empty()) {
      entries_.erase(it);
      return true;
    }
    e.owner = nullptr; // no new opens; the last close releases it
    return false;
  }
  return true;
}

bool IpcRegistry::adoptContext(const void* owner, CUcontext ctx) {
  std::lock_guard<std::mutex> lock(mu_);
  // The objects of ctx the owner released while importers hold them (their owner is null
  // already): one carries the context, passed on until the last is released (dueLocked).
  (void)owner;
  for (auto& [id, e] : entries_)
    if (!e.owner && e.ctx == ctx) {
      e.destroyCtx = true;
      return true;
    }
  return false;
}

} // namespace tf::remoting
