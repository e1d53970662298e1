// The worker's VRAM tiers as the node's hypervisor sees and steers them (protocol.h: the admin
// role, TierStatus and TierControl): what each client holds in each tier, how often and how
// long its memory moved, how much it is waiting for; and the order to freeze or thaw clients.
//
//   auto admin = WorkerAdmin::connect("shm://tf-abc", adminToken);
//   auto clients = (*admin)->status();                         // one TierRecord per client
//   (*admin)->control(TierAction::Freeze, /*minIdleMs=*/500);   // idle ones give memory back
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "remoting/protocol.h"
#include "remoting/transport.h"

namespace tf::remoting {

// Where a client's memory is: all on the device, some in host memory, some on disk.
enum class TierState : uint32_t { Hot = 0, Warm = 1, Cold = 2 };
const char* tierStateName(TierState s);

enum class TierAction : uint32_t {
  Freeze = 0,     // to host memory
  FreezeCold = 1, // to disk
  Thaw = 2,       // back onto the device now, before the client's next call
};
const char* tierActionName(TierAction a);

// One client of a worker, as TierStatus reports it.
struct TierRecord {
  uint32_t pid = 0;
  TierState state = TierState::Hot;
  uint64_t hotBytes = 0, warmBytes = 0, coldBytes = 0;
  uint64_t freezes = 0, thaws = 0;        // allocations moved off / back onto the device
  uint64_t freezeNs = 0, thawNs = 0;      // time those moves took, summed
  uint64_t idleMs = 0;                    // since its last call ended (0 while in a call)
  uint64_t waitingBytes = 0;              // device memory it is waiting for (a thaw, an allocation)
  uint64_t warmStoredBytes = 0, coldStoredBytes = 0;  // what warm and cold take: chunks not all zero
};
// u32 count, then per record: u32 pid, u32 state, 11 x u64 in the order above.
void encodeTierRecords(Writer& w, const std::vector<TierRecord>& records);
// A count that does not match the bytes, or an unknown state, is DataLoss.
Status decodeTierRecords(std::string_view blob, std::vector<TierRecord>* out);

// An admin connection to one worker (the hypervisor's). Not thread-safe: one caller at a time.
class WorkerAdmin {
public:
  static Result<std::unique_ptr<WorkerAdmin>> connect(const std::string& address,
                                                      const std::string& adminToken,
                                                      int timeoutMs = 2000);
  Result<std::vector<TierRecord>> status();
  // Freezes (or thaws) every client idle at least `minIdleMs`; waits up to `waitMs` for them to
  // have done it. Returns how many clients moved.
  Result<int> control(TierAction action, uint64_t minIdleMs, uint64_t waitMs);

private:
  explicit WorkerAdmin(TransportPtr t) : t_(std::move(t)) {}
  // One call: sends (fn, scalars), reads the reply.
  Status call(uint32_t fn, const std::vector<uint64_t>& scalars, CallArgs* reply,
              std::vector<uint8_t>* replyArgs);
  TransportPtr t_;
};

}  // namespace tf::remoting
