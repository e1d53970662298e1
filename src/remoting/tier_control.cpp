#include "remoting/tier_control.h"

#include <unistd.h>

#include <cuda.h>

#include "cuda/catalog.h"

namespace tf::remoting {

const char* tierStateName(TierState s) {
  switch (s) {
  case TierState::Hot: return "hot";
  case TierState::Warm: return "warm";
  case TierState::Cold: return "cold";
  }
  return "?";
}

const char* tierActionName(TierAction a) {
  switch (a) {
  case TierAction::Freeze: return "freeze";
  case TierAction::FreezeCold: return "freeze-cold";
  case TierAction::Thaw: return "thaw";
  }
  return "?";
}

namespace {
constexpr size_t kRecordBytes = 4 + 4 + 11 * 8;
constexpr uint32_t kMaxRecords = 65536;
}  // namespace

void encodeTierRecords(Writer& w, const std::vector<TierRecord>& records) {
  w.u32(static_cast<uint32_t>(records.size()));
  for (const TierRecord& r : records) {
    w.u32(r.pid);
    w.u32(static_cast<uint32_t>(r.state));
    for (uint64_t v : {r.hotBytes, r.warmBytes, r.coldBytes, r.freezes, r.thaws, r.freezeNs,
                       r.thawNs, r.idleMs, r.waitingBytes, r.warmStoredBytes, r.coldStoredBytes})
      w.u64(v);
  }
}

Status decodeTierRecords(std::string_view blob, std::vector<TierRecord>* out) {
  Reader r(blob.data(), blob.size());
  const uint32_t n = r.u32();
  if (!r.ok()) return r.status();
  if (n > kMaxRecords || r.remaining() != n * kRecordBytes)
    return dataLoss("tier records: " + std::to_string(n) + " records in " +
                    std::to_string(r.remaining()) + " bytes");
  out->clear();
  for (uint32_t i = 0; i < n; ++i) {
    TierRecord t;
    t.pid = r.u32();
    const uint32_t state = r.u32();
    if (state > static_cast<uint32_t>(TierState::Cold))
      return dataLoss("tier records: unknown state " + std::to_string(state));
    t.state = static_cast<TierState>(state);
    for (uint64_t* v : {&t.hotBytes, &t.warmBytes, &t.coldBytes, &t.freezes, &t.thaws,
                        &t.freezeNs, &t.thawNs, &t.idleMs, &t.waitingBytes, &t.warmStoredBytes,
                        &t.coldStoredBytes})
      *v = r.u64();
    out->push_back(t);
  }
  return r.status();
}

void encodeMigrateOrder(Writer& w, const MigrateOrder& o) {
  w.str(o.address);
  w.str(o.adminToken);
}

Status decodeMigrateOrder(std::string_view blob, MigrateOrder* out) {
  Reader r(blob.data(), blob.size());
  out->address = std::string(r.blob(4096));
  out->adminToken = std::string(r.blob(kMaxToken));
  if (r.ok() && r.remaining()) r.fail("trailing bytes");
  if (r.ok() && out->address.empty()) r.fail("no target address");
  if (r.ok() && out->adminToken.empty()) r.fail("no admin token for the target");
  return r.status();
}

Result<std::unique_ptr<WorkerAdmin>> WorkerAdmin::connect(const std::string& address,
                                                          const std::string& adminToken,
                                                          int timeoutMs) {
  auto t = remoting::connect(address, timeoutMs, tlsOptionsFromEnvironment());
  if (!t) return t.status().withContext("worker " + address);
  int32_t result = 0;
  std::vector<uint8_t> args;
  CallArgs ids;
  TF_RETURN_IF_ERROR(sayHello(**t, localHello(adminToken, kRoleAdmin), &result, &args, &ids));
  if (result != CUDA_SUCCESS)
    return Status(Code::PermissionDenied,
                  "worker " + address + " refused the admin connection (" + std::to_string(result) + ")");
  return std::unique_ptr<WorkerAdmin>(new WorkerAdmin(std::move(*t)));
}

Status WorkerAdmin::call(uint32_t fn, const std::vector<uint64_t>& scalars, CallArgs* reply,
                         std::vector<uint8_t>* replyArgs, std::string_view blob, uint64_t bulkLen,
                         const std::function<Status(Transport&)>* writeBulk) {
  Writer w;
  encodeCall(w, scalars.data(), static_cast<uint32_t>(scalars.size()), blob.data(), blob.size());
  FrameHeader h;
  h.kind = static_cast<uint16_t>(Kind::Call);
  h.fn = fn;
  h.argsLen = static_cast<uint32_t>(w.size());
  h.bulkLen = bulkLen;
  TF_RETURN_IF_ERROR(sendFrame(*t_, h, w.data(), nullptr, 0));
  if (bulkLen) TF_RETURN_IF_ERROR((*writeBulk)(*t_));
  FrameHeader r;
  TF_RETURN_IF_ERROR(readHeader(*t_, &r));
  if (r.kind != static_cast<uint16_t>(Kind::Reply) || r.fn != fn) return dataLoss("unexpected reply");
  TF_RETURN_IF_ERROR(readArgs(*t_, r, replyArgs));
  if (r.bulkLen) return dataLoss("an admin reply carries no bulk");
  TF_RETURN_IF_ERROR(decodeReply(replyArgs->data(), replyArgs->size(), reply));
  if (r.result != CUDA_SUCCESS)
    return Status(r.result == CUDA_ERROR_NOT_PERMITTED ? Code::PermissionDenied
                  : r.result == CUDA_ERROR_NOT_SUPPORTED ? Code::FailedPrecondition
                  : r.result == CUDA_ERROR_TIMEOUT        ? Code::Unavailable
                                                          : Code::Internal,
                  reply->blob.empty() ? "worker answered " + std::to_string(r.result) : std::string(reply->blob));
  return Status::ok();
}

Result<WorkerAdmin::Migrated> WorkerAdmin::migrateOut(uint32_t pid, const std::string& targetAddress,
                                                      const std::string& targetAdminToken, uint64_t waitMs) {
  Writer order;
  encodeMigrateOrder(order, MigrateOrder{targetAddress, targetAdminToken});
  CallArgs reply;
  std::vector<uint8_t> args;
  TF_RETURN_IF_ERROR(call(static_cast<uint32_t>(Op::MigrateOut), {pid, waitMs}, &reply, &args,
                          std::string_view(reinterpret_cast<const char*>(order.data()), order.size())));
  if (reply.count < 3) return dataLoss("MigrateOut reply without its figures");
  return Migrated{reply.s[0], reply.s[1], reply.s[2]};
}

Result<uint64_t> WorkerAdmin::adopt(const Writer& image, uint64_t bulkLen,
                                    const std::function<Status(Transport&)>& writeBulk) {
  CallArgs reply;
  std::vector<uint8_t> args;
  TF_RETURN_IF_ERROR(call(static_cast<uint32_t>(Op::Adopt), {}, &reply, &args,
                          std::string_view(reinterpret_cast<const char*>(image.data()), image.size()),
                          bulkLen, &writeBulk));
  if (reply.count < 1 || !reply.s[0]) return dataLoss("Adopt reply without a resume id");
  return reply.s[0];
}

Result<std::vector<TierRecord>> WorkerAdmin::status(uint64_t* sessions) {
  CallArgs reply;
  std::vector<uint8_t> args;
  TF_RETURN_IF_ERROR(call(static_cast<uint32_t>(Op::TierStatus), {}, &reply, &args));
  if (sessions) *sessions = reply.count > 0 ? reply.s[0] : 0;
  std::vector<TierRecord> records;
  TF_RETURN_IF_ERROR(decodeTierRecords(reply.blob, &records));
  return records;
}

Result<int> WorkerAdmin::control(TierAction action, uint64_t minIdleMs, uint64_t waitMs) {
  CallArgs reply;
  std::vector<uint8_t> args;
  TF_RETURN_IF_ERROR(call(static_cast<uint32_t>(Op::TierControl),
                          {static_cast<uint64_t>(action), minIdleMs, waitMs}, &reply, &args));
  if (reply.count < 1) return dataLoss("TierControl reply without a count");
  return static_cast<int>(reply.s[0]);
}

}  // namespace tf::remoting
