// The worker's dispatch: the extra ops by their switch, catalog calls by the generated call
// table (wire_table.inc, from src/remoting/gen_wire.py).
#include "remoting/worker/call_table.h"

#include "remoting/worker/calls.h"

namespace tf::remoting {

// Every handler of the table: the generated ones (calls_generated.cpp) and the hand-written.
#define TF_WIRE_DECLARE
#include "remoting/wire_table.inc"
#undef TF_WIRE_DECLARE

namespace {

constexpr CallEntry kTable[] = {
#define TF_WIRE_ENTRY(symbol, how, handler) {#symbol, Disposition::how, handler},
#include "remoting/wire_table.inc"
#undef TF_WIRE_ENTRY
};
static_assert(sizeof(kTable) / sizeof(kTable[0]) == static_cast<size_t>(FnId::Count),
              "the call table has one entry per catalog function");

// The extra ops (protocol.h) the worker answers itself.
CUresult dispatchOp(Session& s, CallIn& in, CallOut& out) {
  switch (static_cast<Op>(in.fn)) {
  case Op::DeviceInfo: return deviceInfo(s, in, out);
  case Op::ParamLayout: return paramLayout(s, in, out);
  case Op::ErrorString: return errorString(s, in, out);
  case Op::Ping: return CUDA_SUCCESS;
  case Op::HostToDeviceAtStreamTime: return hostToDeviceAtStreamTime(s, in);
  case Op::DeviceMemory: return deviceMemory(s, in, out);
  case Op::DeviceProcesses: return deviceProcesses(s, in, out);
  case Op::WaitStream: return waitStream(s, in);
  case Op::WaitEvent: return waitEvent(s, in);
  case Op::MirrorHost:
  case Op::MirrorRelease:
  case Op::MirrorPush:
  case Op::MirrorPull:
  case Op::CopyHostByRef:
  case Op::ShareHost: return dispatchMirror(s, in, out);
  case Op::ShareDevice:
  case Op::AwaitHostCopy:
  case Op::ShareManaged: return dispatchSharedDevice(s, in, out);
  case Op::TierStatus: return tierStatus(s, in, out);
  case Op::TierControl: return tierControl(s, in, out);
  case Op::MigrateOut: return migrateOut(s, in, out);
  case Op::Adopt: return adoptSession(s, in, out);
  }
  return CUDA_ERROR_NOT_SUPPORTED;
}

} // namespace

const char* dispositionName(Disposition d) {
  switch (d) {
  case Disposition::Unsupported: return "unsupported";
  case Disposition::Generated: return "generated";
  case Disposition::HandWritten: return "hand-written";
  case Disposition::StubOnly: return "stub-only";
  }
  return "?";
}

const CallEntry& callEntry(int index) { return kTable[index]; }

CUresult dispatch(Session& s, CallIn& in, CallOut& out) {
  if (in.fn >= kOpBase) return dispatchOp(s, in, out);
  if (in.fn >= static_cast<uint32_t>(FnId::Count)) return CUDA_ERROR_NOT_SUPPORTED;
  const CallEntry& e = kTable[in.fn];
  return e.handler ? e.handler(s, in, out) : CUDA_ERROR_NOT_SUPPORTED;
}

} // namespace tf::remoting
