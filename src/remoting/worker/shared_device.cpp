// Device memory a client maps, for synchronous copies between it and pageable memory with one
// CPU copy instead of two (docs/remoting.md, "Pageable copies with one CPU copy"). Over shared
// memory and on a driver that keeps device memory in host pages it can hand out (the soft
// GPU: cuda/softgpu_extensions.h), ShareDevice passes the client a descriptor of one of its
// allocations; for each copy, AwaitHostCopy waits as a synchronous copy on the legacy stream
// would wait for earlier work, and the client then copies through its mapping, the worker
// idle. Elsewhere ShareDevice answers NOT_SUPPORTED and the bytes travel in the transport.
// ShareManaged does the same for a managed allocation, which the client then maps at its
// address in place of its mirror: one memory for both, nothing to exchange.
#include <unistd.h>

#include "remoting/worker/calls.h"

namespace tf::remoting {

namespace {

uint64_t bufferIdOf(Session& s, CUdeviceptr p) {
  auto attr = s.d().fn<decltype(&::cuPointerGetAttribute)>(FnId::cuPointerGetAttribute);
  unsigned long long id = 0;
  if (!attr || attr(&id, CU_POINTER_ATTRIBUTE_BUFFER_ID, p) != CUDA_SUCCESS) return 0;
  return id;
}

// (base, size) -> (bytes, buffer id), the descriptor sent just before the reply.
CUresult shareDevice(Session& s, CallIn& in, CallOut& out) {
  NEED(2);
  DPTR(A(0), A(1));
  auto share = s.d().shareDeviceMemory();
  // Shared memory only: the client must be on this machine to map the descriptor.
  if (!share || !s.transport().supportsViews()) return CUDA_ERROR_NOT_SUPPORTED;
  int fd = -1;
  size_t bytes = 0;
  if (share(A(0), &fd, &bytes) != CUDA_SUCCESS) return CUDA_ERROR_NOT_SUPPORTED;
  uint64_t id = bufferIdOf(s, A(0));
  bool sent = bytes == A(1) && id != 0 && s.transport().sendFd(fd).isOk();
  close(fd);
  if (!sent) return CUDA_ERROR_NOT_SUPPORTED;
  out.put(bytes);
  out.put(id);
  return CUDA_SUCCESS;
}

// (ptr, n, buffer id): a one-byte synchronous copy out of the range waits exactly as the
// client's copy must (earlier work on the legacy stream, a context's sticky error), and the
// driver may run it inline when nothing is pending.
CUresult awaitHostCopy(Session& s, CallIn& in) {
  NEED(3);
  if (A(1) == 0) return CUDA_ERROR_INVALID_VALUE;
  DPTR(A(0), A(1));
  if (A(2) == 0 || bufferIdOf(s, A(0)) != A(2) || bufferIdOf(s, A(0) + A(1) - 1) != A(2))
    return CUDA_ERROR_NOT_SUPPORTED; // freed and allocated again: the mapping is stale
  DRV_AT(copy, cuMemcpyDtoH_v2, cuMemcpyDtoH_v2);
  uint8_t byte;
  return copy(&byte, A(0), 1);
}

// (base) -> (bytes), the descriptor sent just before the reply. Asked right after the
// allocation, before the client has written it or launched work on it, so the mirror being
// dropped holds nothing the client lacks (both all zero).
CUresult shareManaged(Session& s, const CallIn& in, CallOut& out) {
  NEED(1);
  uint64_t base = 0, size = 0;
  if (!s.mirrors().base(A(0), &base, &size) || base != A(0)) return CUDA_ERROR_INVALID_VALUE;
  DPTR(base, size); // the driver refuses anything but managed memory (a host mirror)
  auto share = s.d().shareManagedMemory();
  if (!share || !s.transport().supportsViews()) return CUDA_ERROR_NOT_SUPPORTED;
  int fd = -1;
  size_t bytes = 0;
  if (share(base, &fd, &bytes) != CUDA_SUCCESS) return CUDA_ERROR_NOT_SUPPORTED;
  bool sent = bytes >= size && s.transport().sendFd(fd).isOk();
  close(fd);
  if (!sent) return CUDA_ERROR_NOT_SUPPORTED; // still mirrored: the memfd is only its backing
  s.mirrors().remove(base);
  out.put(bytes);
  return CUDA_SUCCESS;
}

} // namespace

CUresult dispatchSharedDevice(Session& s, CallIn& in, CallOut& out) {
  switch (static_cast<Op>(in.fn)) {
  case Op::ShareDevice: return shareDevice(s, in, out);
  case Op::AwaitHostCopy: return awaitHostCopy(s, in);
  case Op::ShareManaged: return shareManaged(s, in, out);
  default: return CUDA_ERROR_NOT_SUPPORTED;
  }
}

} // namespace tf::remoting
