// The worker's VRAM tiers as the node's hypervisor sees and steers them (protocol.h: the admin
// role, TierStatus and TierControl): what each client holds in each tier, how often and how
// long its memory moved, how much it is waiting for; and the order to freeze or thaw clients.
//
//   auto admin = WorkerAdmin::connect("shm://tf-abc", adminToken);
//   auto clients = (*admin)->status();                         // one TierRecord per client
//   (*admin)->control(TierAction::Freeze, /*minIdleMs=*/500);   // idle ones give memory back
#pragma once

#include <cstdint>
#include <functional>
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

// What the admin gives a worker whose client is to move (MigrateOut): where the target worker
// is and how to open an admin session there.
struct MigrateOrder {
  std::string address;     // the target worker (tcp://, tls://, shm://): the client goes there too
  std::string adminToken;  // the target's admin token
};
void encodeMigrateOrder(Writer& w, const MigrateOrder& o);
// No address or no token, or trailing bytes: DataLoss.
Status decodeMigrateOrder(std::string_view blob, MigrateOrder* out);

// An admin connection to one worker (the hypervisor's). Not thread-safe: one caller at a time.
class WorkerAdmin {
public:
  static Result<std::unique_ptr<WorkerAdmin>> connect(const std::string& address,
                                                      const std::string& adminToken,
                                                      int timeoutMs = 2000);
  // `sessions`: every session of the worker's tenants (drivers, NVML), moved ones' included: a
  // worker with none can be stopped.
  Result<std::vector<TierRecord>> status(uint64_t* sessions = nullptr);
  // Freezes (or thaws) every client idle at least `minIdleMs`; waits up to `waitMs` for them to
  // have done it. Returns how many clients moved.
  Result<int> control(TierAction action, uint64_t minIdleMs, uint64_t waitMs);

  // Migration (worker/migration.h). Orders the client `pid` (0: the worker's only client) to
  // move to the worker at `targetAddress` at its next synchronous call, waiting up to `waitMs`
  // for that call. The client stays where it is if anything fails (the error says why).
  struct Migrated {
    uint64_t pauseNs = 0;  // the client's call held while it was captured, sent and re-created
    uint64_t bytes = 0;    // memory, globals and images sent
    uint64_t resumeId = 0;
  };
  Result<Migrated> migrateOut(uint32_t pid, const std::string& targetAddress,
                              const std::string& targetAdminToken, uint64_t waitMs);
  // The worker-to-worker half: sends an encoded MigrationImage and its contents (`bulkLen`
  // bytes, written by `writeBulk`); returns the resume id of the re-created session.
  Result<uint64_t> adopt(const Writer& image, uint64_t bulkLen,
                         const std::function<Status(Transport&)>& writeBulk);

private:
  explicit WorkerAdmin(TransportPtr t) : t_(std::move(t)) {}
  // One call: sends (fn, scalars, blob, bulk), reads the reply. A refusal's reason comes back
  // as the reply's blob, in the error.
  Status call(uint32_t fn, const std::vector<uint64_t>& scalars, CallArgs* reply,
              std::vector<uint8_t>* replyArgs, std::string_view blob = {}, uint64_t bulkLen = 0,
              const std::function<Status(Transport&)>* writeBulk = nullptr);
  TransportPtr t_;
};

}  // namespace tf::remoting
