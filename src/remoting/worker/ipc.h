// IPC memory and event handles inside one worker. Every client of a worker runs in the
// worker's process, so the driver's own handles (which refuse the process that made them) cannot
// serve them: the worker makes its own. A handle names an export by id and carries 128 random
// bits; it opens only for a client of the same tenant (token) as the exporter, in another
// session, and only with the right bits (a handle from another worker, a guessed or a forged
// one is INVALID_VALUE, as garbage is). Memory and events stay alive while any importer holds
// them, as the driver keeps an exporter's memory for its importers: what the exporter frees or
// leaves with its session is released when the last importer closes it.
//
//   IpcRegistry r;
//   uint8_t handle[64];
//   r.exportObject(IpcKind::Memory, &exporter, tenant, ptr, size, ctx, handle);
//   IpcEntry e;
//   CUresult rc = r.open(IpcKind::Memory, handle, &importer, tenant, &e); // e.object == ptr
//   std::vector<IpcEntry> due = r.close(e.id, &importer);  // what to release now (if any)
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include <cuda.h>

namespace tf::remoting {

enum class IpcKind : uint8_t { Memory, Event };
inline constexpr size_t kIpcHandleSize = 64; // CUipcMemHandle, CUipcEventHandle

struct IpcEntry {
  uint64_t id = 0;
  IpcKind kind = IpcKind::Memory;
  const void* owner = nullptr; // the exporting session; null once it released the object
  uint32_t tenant = 0;
  uint64_t object = 0; // device pointer or CUevent
  uint64_t size = 0;
  CUcontext ctx = nullptr;
  std::array<uint8_t, 16> secret{};
  std::map<const void*, int> importers; // session -> opens not yet closed
  bool destroyCtx = false;              // the exporter left: its context goes with the object
};

class IpcRegistry {
public:
  // The handle of (owner, object): the same handle each time it is asked again.
  void exportObject(IpcKind kind, const void* owner, uint32_t tenant, uint64_t object,
                    uint64_t size, CUcontext ctx, uint8_t handle[kIpcHandleSize]);
  // CUDA_ERROR_INVALID_VALUE for a handle this worker did not make for that tenant and kind,
  // or whose exporter released it; CUDA_ERROR_INVALID_CONTEXT in the exporter's own session.
  CUresult open(IpcKind kind, const uint8_t handle[kIpcHandleSize], const void* opener,
                uint32_t tenant, IpcEntry* out);
  // The entry `opener` opened holding `object`, or false.
  bool opened(IpcKind kind, const void* opener, uint64_t object, uint64_t* id) const;
  // One close by an importer. Returns the entries to release now (the exporter had released
  // the object and this was the last open).
  std::vector<IpcEntry> close(uint64_t id, const void* opener);
  // Every open of a leaving session closed.
  std::vector<IpcEntry> closeAll(const void* opener);
  // The exporter frees or destroys the object: true if it may do so now (no importer holds
  // it); otherwise it is released by the last close.
  bool ownerReleases(IpcKind kind, const void* owner, uint64_t object);
  // The exporter leaves: objects of ctx still held by importers take ctx with them (the
  // session must not destroy it). Returns whether any does.
  bool adoptContext(const void* owner, CUcontext ctx);

private:
  std::vector<IpcEntry> dueLocked(std::map<uint64_t, IpcEntry>::iterator it);
  mutable std::mutex mu_;
  std::map<uint64_t, IpcEntry> entries_;
  uint64_t nextId_ = 1;
};

} // namespace tf::remoting
