// The soft GPU's device address space. Device addresses are not host addresses: a PROT_NONE
// window of device addresses (so a host dereference of a device pointer faults), at the same
// place in every process (cuda/softgpu_extensions.h: kWindowBase, one kWindowStride per
// device), and a reservation of host pages that back them, addresses one to one. Kernels and
// copies translate through the allocation table; an address outside every allocation is
// illegal. One virtual address space for all devices, as CUDA's: an allocation of device B
// may sit in device A's window (a reservation at a given address, a placed module global).
//
//   AddressSpace& as = addressSpace();
//   auto p = as.allocate(device, bytes, AllocKind::Device, ctx);     // device address
//   uint8_t* host = as.hostOf(*p);                                    // where the bytes are
//   as.release(*p, &info);
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <shared_mutex>
#include <vector>

#include "common/status.h"
#include "cuda/kernel_executor.h"

namespace tf::softgpu {

struct Context;

enum class AllocKind : uint8_t {
  Device,         // cuMemAlloc, cuMemAllocPitch, pools
  Managed,        // cuMemAllocManaged: host-visible, same address on host and device
  HostPinned,     // cuMemHostAlloc / cuMemAllocHost: host memory the device can reach
  HostRegistered, // cuMemHostRegister: the caller's host memory
  VmmReserved,    // cuMemAddressReserve: addresses only, nothing behind them until mapped
  VmmMapped,      // cuMemMap of a cuMemCreate handle into a reserved range
};

struct Allocation {
  uint64_t base = 0;        // device address (== host address for host-visible kinds)
  uint64_t size = 0;        // what the caller asked for
  uint64_t span = 0;        // what it occupies in the address space (page-rounded)
  AllocKind kind = AllocKind::Device;
  int device = 0;
  Context* context = nullptr;
  uint8_t* host = nullptr;  // where the bytes live in this process
  unsigned flags = 0;
  uint64_t charged = 0;     // bytes counted against the device's memory
  uint64_t bufferId = 0;    // unique id (CU_POINTER_ATTRIBUTE_BUFFER_ID)
  int poolId = -1;          // stream-ordered allocations: the pool
  int shareFd = -1;         // Device memory exported for IPC, or managed memory shared:
                            // the memfd now behind it
  bool imported = false;    // Device memory of another process, opened by an IPC handle
};

class AddressSpace : public cuda::DeviceMemory {
public:
  // Reserves the windows of `deviceCount` devices (kMinWindows at least), each of at least
  // `perDevice` addresses, at kWindowBase if that range is free (elsewhere with a warning).
  Status init(int deviceCount, uint64_t perDevice);

  // Device memory: takes addresses and commits pages. Not charged here (the caller charges the
  // device state first).
  Result<uint64_t> allocate(int device, uint64_t size, AllocKind kind, Context* ctx,
                            uint64_t alignment = 512);
  // The same at exactly `address`, anywhere in the window (charged to `device` by the caller):
  // OutOfRange outside the window, InvalidArgument if not aligned to `alignment` or a page,
  // AlreadyExists if its range is not free.
  Result<uint64_t> allocateAt(int device, uint64_t address, uint64_t size, AllocKind kind,
                              Context* ctx, uint64_t alignment);
  // Host-visible memory owned by the driver (pinned, managed): host address == device address.
  Result<uint64_t> allocateHostVisible(int device, uint64_t size, AllocKind kind, Context* ctx,
                                       unsigned flags);
  // Records the caller's host memory as device-accessible.
  Status registerHost(void* ptr, uint64_t size, Context* ctx, unsigned flags);
  // VMM: a range of addresses with nothing behind them, and mappings into it. A `hint` that is
  // aligned and free anywhere in the window is where the range goes; otherwise it goes in
  // `device`'s window, as CUDA treats a hint.
  Result<uint64_t> reserveRange(int device, uint64_t size, uint64_t alignment, uint64_t hint);
  Status mapShared(uint64_t address, uint64_t size, int fd, uint64_t offset, int device,
                   uint64_t bufferId);
  Status setAccess(uint64_t address, uint64_t size, bool readWrite);
  Status unmap(uint64_t address, uint64_t size);

  // IPC: device memory lives in this process's private pages until it is first exported; then
  // its contents move into a memfd mapped at the same addresses (shared from then on), whose
  // descriptor this returns (the allocation owns it). Only the base of Device memory.
  Result<int> shareDevice(uint64_t base);
  // The same for managed memory (at its host address), for a process that maps it at the same
  // address (remoting's client over shared memory): only the base of Managed memory.
  Result<int> shareManaged(uint64_t base);
  // Maps another process's exported memory (a descriptor of its memfd, which this takes) at
  // fresh device addresses of `device`: Device memory marked imported, charged to nobody here.
  Result<uint64_t> importShared(int device, int fd, uint64_t size, Context* ctx);

  // Removes the allocation starting exactly at `base`; `out` gets what it was.
  Status release(uint64_t base, std::optional<AllocKind> expected, Allocation* out);

  // The allocation containing [addr, addr+len) entirely, if any.
  std::optional<Allocation> find(uint64_t addr, uint64_t len = 1) const;
  // The allocation starting exactly at `base`.
  std::optional<Allocation> findBase(uint64_t base) const;
  // Host pointer for a device address inside an allocation (nullptr if none).
  uint8_t* hostOf(uint64_t addr, uint64_t len = 1) const;
  bool isDeviceWindow(uint64_t addr) const { return addr - windowBase_ < windowSize_; }
  // Whose window `addr` is in (-1: none; may be a device this process lacks). Not necessarily
  // the device of the memory there.
  int deviceOfWindowAddress(uint64_t addr) const;
  // Device `device`'s window; false for no such device. `fixed`: at kWindowBase.
  bool window(int device, uint64_t* base, uint64_t* bytes, bool* fixed) const;

  // cuda::DeviceMemory, for kernels.
  bool lookup(uint64_t addr, cuda::MemoryRange* out) const override;
  // Texture objects live in the driver (api_texture.cpp, lookupTexture).
  bool texture(uint64_t handle, cuda::TextureView* out) const override;

  std::vector<Allocation> allocationsOf(const Context* ctx) const;
  // Records how many bytes of device memory the allocation at `base` was charged.
  void setCharged(uint64_t base, uint64_t bytes);

private:
  Result<uint64_t> takeRange(int device, uint64_t span, uint64_t alignment, uint64_t hint);
  // Takes [start, start+span) if it is free (one free stretch holds it).
  bool takeExact(uint64_t start, uint64_t span);
  // Commits the pages of a range just taken and records it as device memory; under mu_.
  Result<uint64_t> commitDevice(uint64_t start, uint64_t size, AllocKind kind, int device,
                                Context* ctx);
  void giveRange(uint64_t start, uint64_t span);
  // Records device memory at `base` (its pages already committed); under mu_.
  uint64_t addDeviceAllocation(uint64_t base, uint64_t size, uint64_t span, AllocKind kind,
                               int device, Context* ctx, bool imported);
  uint8_t* heapOf(uint64_t addr) const { return heapBase_ + (addr - windowBase_); }
  // Moves the allocation's first `bytes` into a memfd mapped in their place; under mu_.
  Result<int> moveIntoMemfd(Allocation& a, uint64_t bytes);

  mutable std::shared_mutex mu_;
  uint64_t windowBase_ = 0, windowSize_ = 0, stride_ = 0;
  bool fixed_ = false;
  uint8_t* heapBase_ = nullptr;
  int deviceCount_ = 0;
  std::map<uint64_t, uint64_t> free_;            // start -> length (device window)
  std::map<uint64_t, Allocation> allocations_;   // base -> allocation (all kinds but mapped)
  std::map<uint64_t, Allocation> mappings_;      // VMM mappings inside reserved ranges
  uint64_t nextBufferId_ = 1;
};

AddressSpace& addressSpace();

// The texture object behind a CUtexObject handle (api_texture.cpp).
bool lookupTexture(uint64_t handle, cuda::TextureView* out);

} // namespace tf::softgpu
