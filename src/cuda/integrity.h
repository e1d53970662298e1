// The answer to cudart's INTEGRITY_CHECK export table (slot 1): without it every runtime call
// fails with cudaErrorIntegrityCheckFailed. The rule is in shared/reference/cuda-driver.md:
// two fixed answers, otherwise HMAC-MD2 over the caller's identity and the devices.
//
//   uint64_t out[2];
//   integrityCheckAnswer(13000, version, getpid(), uint32_t(pthread_self()), cudartTable,
//                        integrityTable, (const void*)&slot1, unixSeconds, devices, out);
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tf::cuda {

using Md2Digest = std::array<uint8_t, 16>;

// MD2 (RFC 1319).
class Md2 {
public:
  Md2();
  void update(const void* data, size_t size);
  Md2Digest finish(); // pads, appends the checksum; the object is spent afterwards

private:
  void block(const uint8_t* in);

  std::array<uint8_t, 48> state_{};
  std::array<uint8_t, 16> checksum_{};
  std::array<uint8_t, 16> buffer_{};
  size_t buffered_ = 0;
};

Md2Digest md2(const void* data, size_t size);

// HMAC (RFC 2104) over MD2: 16-byte blocks, so a longer key is hashed first.
Md2Digest hmacMd2(const void* key, size_t keySize, const void* data, size_t size);

struct IntegrityDevice {
  uint8_t uuid[16];
  int32_t pciDomain, pciBus, pciDevice;
};

// The message that is HMAC'd: 48 bytes, then 28 per device, little-endian and packed.
std::vector<uint8_t> integrityCheckMessage(uint32_t driverVersion, uint32_t version, uint32_t pid,
                                           uint32_t threadId, const void* cudartInterfaceTable,
                                           const void* integrityTable, const void* slot1Function,
                                           uint64_t unixSeconds,
                                           const std::vector<IntegrityDevice>& devices);

void integrityCheckAnswer(uint32_t driverVersion, uint32_t version, uint32_t pid, uint32_t threadId,
                          const void* cudartInterfaceTable, const void* integrityTable,
                          const void* slot1Function, uint64_t unixSeconds,
                          const std::vector<IntegrityDevice>& devices, uint64_t out[2]);

} // namespace tf::cuda
