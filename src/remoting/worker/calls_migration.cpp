// The admin's migration ops (migration.h): MigrateOut on the source worker hands the order to
// the client's own thread and waits for it; Adopt on the target re-creates the session.
#include <chrono>

#include "remoting/tier_control.h"
#include "remoting/worker/calls.h"

namespace tf::remoting {

namespace {

CUresult refuse(CallOut& out, CUresult r, const std::string& why) {
  out.blob = why;
  return r;
}

CUresult codeOf(const Status& s) {
  switch (s.code()) {
  case Code::FailedPrecondition: return CUDA_ERROR_NOT_SUPPORTED;
  case Code::ResourceExhausted: return CUDA_ERROR_OUT_OF_MEMORY;
  case Code::PermissionDenied: return CUDA_ERROR_NOT_PERMITTED;
  case Code::InvalidArgument:
  case Code::DataLoss: return CUDA_ERROR_INVALID_VALUE;
  default: return CUDA_ERROR_UNKNOWN;
  }
}

}  // namespace

CUresult migrateOut(Session& s, CallIn& in, CallOut& out) {
  NEED(2);
  MigrateOrder order;
  if (Status st = decodeMigrateOrder(in.a.blob, &order); !st)
    return refuse(out, CUDA_ERROR_INVALID_VALUE, st.message());
  const uint32_t pid = static_cast<uint32_t>(A(0));
  std::shared_ptr<SessionInfo> info;
  int matches = 0;
  {
    std::lock_guard<std::mutex> lock(s.shared().sessionsMu);
    for (auto& [key, i] : s.shared().sessions)
      if (pid == 0 || i->pid == pid) {
        info = i;
        ++matches;
      }
  }
  if (matches == 0) return refuse(out, CUDA_ERROR_NOT_FOUND, "no such client on this worker");
  if (matches > 1)
    return refuse(out, CUDA_ERROR_INVALID_VALUE,
                  pid ? "that process has several sessions here" : "the worker has several clients: name one by pid");
  auto ticket = std::make_shared<MigrationTicket>();
  ticket->order = std::move(order);
  {
    std::lock_guard<std::mutex> lock(info->migrationMu);
    if (info->migration) return refuse(out, CUDA_ERROR_NOT_READY, "the client is already being moved");
    info->migration = ticket;
    info->migrationPending.store(true);
  }
  // The client moves at its next synchronous call; one that makes none in time is left alone.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::min<uint64_t>(A(1), 600000));
  std::unique_lock<std::mutex> lock(ticket->mu);
  if (!ticket->cv.wait_until(lock, deadline, [&] { return ticket->done; })) {
    lock.unlock();
    {
      std::lock_guard<std::mutex> orderLock(info->migrationMu);
      if (info->migration == ticket) {  // not taken: withdrawn
        info->migration.reset();
        info->migrationPending.store(false);
        return refuse(out, CUDA_ERROR_TIMEOUT, "the client made no synchronous call in time; it stays");
      }
    }
    lock.lock();
    ticket->cv.wait(lock, [&] { return ticket->done; });  // taken: under way, it ends either way
  }
  if (!ticket->result) return refuse(out, codeOf(ticket->result), ticket->result.message());
  out.put(ticket->pauseNs);
  out.put(ticket->bytes);
  out.put(ticket->resumeId);
  return CUDA_SUCCESS;
}

CUresult adoptSession(Session& s, CallIn& in, CallOut& out) {
  MigrationImage img;
  if (Status st = decodeMigrationImage(in.a.blob, &img); !st)
    return refuse(out, CUDA_ERROR_INVALID_VALUE, st.message());
  if (in.bulkLen != img.bulkBytes())
    return refuse(out, CUDA_ERROR_INVALID_VALUE, "the contents do not match the image");
  auto id = Session::adopt(s.shared(), img, [&](void* dst, size_t n) { return s.readBulk(dst, n); });
  if (!id) return refuse(out, codeOf(id.status()), id.status().message());
  out.put(*id);
  return CUDA_SUCCESS;
}

}  // namespace tf::remoting
