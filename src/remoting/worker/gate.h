// The worker's gate: a connection waits here, holding no thread, until its first frame (the
// Hello) has arrived whole; only then does the worker look at it (token, version) and, if it
// is accepted, give it a thread. One gate thread polls every waiting connection.
//
//   Gate gate(options, [](TransportPtr t, Status framing, const FrameHeader& h,
//                         std::vector<uint8_t>& args) { ... });   // runs on the gate thread
//   gate.admit(std::move(accepted));                               // from the accept loop
//
// Bounded against port scans and clients that connect and say nothing: a connection that has
// not sent its Hello within handshakeTimeoutMs is closed; at most maxPending wait at once and
// at most maxPendingPerPeer from one peer (IP address, or uid over shm). When a limit is
// reached the OLDEST waiting connection (of that peer) is closed to make room, so a flood of
// idle connections cannot keep a real client out: its Hello arrives right after it connects.
// (Connections accepted and not yet taken by the gate thread are capped at maxPending too, so
// for a moment up to twice maxPending may be open.)
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "remoting/protocol.h"
#include "remoting/transport.h"

namespace tf::remoting {

struct GateOptions {
  int handshakeTimeoutMs = 5000;
  size_t maxPending = 64;
  size_t maxPendingPerPeer = 8;
};

// A Hello is small (token, host name and a few numbers): anything larger is refused unread.
inline constexpr uint32_t kMaxHelloArgs = 4096;

class Gate {
public:
  // framing: whether the first header decoded (garbage is refused by the callee, who answers).
  using Ready = std::function<void(TransportPtr, Status framing, const FrameHeader& header,
                                   std::vector<uint8_t>& args)>;
  Gate(const GateOptions& options, Ready ready);
  ~Gate();
  void admit(TransportPtr t);
  void stop();
  // Connections waiting now, and closed so far for their deadline or to make room.
  size_t pending() const { return pendingCount_.load(); }
  uint64_t dropped() const { return dropped_.load(); }

private:
  struct Pending {
    TransportPtr t;
    std::string peer;
    int64_t deadlineMs = 0;
    std::vector<uint8_t> buf; // header, then args
    FrameHeader header;
    bool haveHeader = false;
  };
  using List = std::list<Pending>;
  void loop();
  // Reads what has arrived; true when the connection is finished with (handed on or dropped).
  bool progress(Pending& p);
  void drop(List::iterator it, const char* why);
  void take(std::deque<Pending>& incoming);

  GateOptions options_;
  Ready ready_;
  int wake_ = -1; // eventfd
  std::mutex mu_;
  std::deque<Pending> incoming_;
  List pending_; // oldest first; gate thread only
  std::atomic<size_t> pendingCount_{0};
  std::atomic<uint64_t> dropped_{0};
  int64_t lastDropLogMs_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

} // namespace tf::remoting
