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

Result<std::unique_ptr<WorkerAdmin>> WorkerAdmin::connect(const std::string& address,
                                                          const std::string& adminToken,
                                                          int timeoutMs) {
  auto t = remoting::connect(address, timeoutMs, tlsOptionsFromEnvironment());
  if (!t) return t.status().withContext("worker " + address);
  Hello hello;
  hello.catalogSize = static_cast<uint32_t>(cuda::catalogSize());
  hello.pid = static_cast<uint32_t>(getpid());
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  hello.host = host;
  hello.token = adminToken;
  hello.role = kRoleAdmin;
  Writer w;
  encodeHello(w, hello);
  FrameHeader h;
  h.kind = static_cast<uint16_t>(Kind::Hello);
  h.argsLen = static_cast<uint32_t>(w.size());
  TF_RETURN_IF_ERROR(sendFrame(**t, h, w.data(), nullptr, 0));
  FrameHeader r;
  TF_RETURN_IF_ERROR(readHeader(**t, &r));
  if (r.kind != static_cast<uint16_t>(Kind::HelloReply)) return dataLoss("no HelloReply");
  std::vector<uint8_t> args;
  TF_RETURN_IF_ERROR(readArgs(**t, r, &args));
  if (r.result != CUDA_SUCCESS)
    return Status(Code::PermissionDenied,
                  "worker " + address + " refused the admin connection (" + std::to_string(r.result) + ")");
  return std::unique_ptr<WorkerAdmin>(new WorkerAdmin(std::move(*t)));
}

Status WorkerAdmin::call(uint32_t fn, const std::vector<uint64_t>& scalars, CallArgs* reply,
                         std::vector<uint8_t>* replyArgs) {
  Writer w;
  encodeCall(w, scalars.data(), static_cast<uint32_t>(scalars.size()), nullptr, 0);
  FrameHeader h;
  h.kind = static_cast<uint16_t>(Kind::Call);
  h.fn = fn;
  h.argsLen = static_cast<uint32_t>(w.size());
  TF_RETURN_IF_ERROR(sendFrame(*t_, h, w.data(), nullptr, 0));
  FrameHeader r;
  TF_RETURN_IF_ERROR(readHeader(*t_, &r));
  if (r.kind != static_cast<uint16_t>(Kind::Reply) || r.fn != fn) return dataLoss("unexpected reply");
  TF_RETURN_IF_ERROR(readArgs(*t_, r, replyArgs));
  if (r.bulkLen) return dataLoss("an admin reply carries no bulk");
  TF_RETURN_IF_ERROR(decodeReply(replyArgs->data(), replyArgs->size(), reply));
  if (r.result != CUDA_SUCCESS)
    return Status(r.result == CUDA_ERROR_NOT_PERMITTED ? Code::PermissionDenied : Code::Internal,
                  "worker answered " + std::to_string(r.result));
  return Status::ok();
}

Result<std::vector<TierRecord>> WorkerAdmin::status() {
  CallArgs reply;
  std::vector<uint8_t> args;
  TF_RETURN_IF_ERROR(call(static_cast<uint32_t>(Op::TierStatus), {}, &reply, &args));
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
