// One client's handles on the worker, as a translation: the value the client sees for each
// handle (its "client value") and the driver's value behind it, per kind. Handlers resolve
// what the client names into driver values, work on driver values only, and expose the
// handles the driver hands out, turning them into client values for the reply.
//
//   HandleTable t(HandleTable::Mode::Remapped);
//   uint64_t c = t.expose(HandleKind::Stream, driverStream); // the client sees c
//   t.resolve(HandleKind::Stream, c);                        // driverStream
//   t.resolve(HandleKind::Stream, driverStream);             // nullopt: not a client value
//
// Identity: client value = driver value (today's worker, one hash lookup per name). Remapped:
// every handle gets a client value of its own, from a per-table counter in a range no driver
// hands out (the top bit set, a random start), so a handler that forgets to translate names a
// handle that does not exist. A session migrated to another worker runs remapped: the new
// driver's handles get the old client values (adopt), and the program never notices.
//
// Texture and surface objects are always identity: programs pass their values to kernels,
// which hand them to the device as they are (like device pointers, they are device-visible).
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

namespace tf::remoting {

// Every kind of handle a client can own (read by gen_wire.py for `h:Kind` roles).
enum class HandleKind : uint8_t {
  Context, Stream, Event, Module, Library, Kernel, Function, Pool, SharedPool,
  Graph, GraphExec, GraphNode, Array, ArrayLevel, MipmappedArray, TexObject, SurfObject,
  MemHandle, // virtual memory management's physical allocations (CUmemGenericAllocationHandle)
  Count
};

class HandleTable {
public:
  enum class Mode { Identity, Remapped };
  // seed: the first remapped client value's randomness (0: from std::random_device).
  explicit HandleTable(Mode mode = Mode::Identity, uint64_t seed = 0);

  Mode mode() const { return mode_; }
  // The driver value of a handle the client owns, by the value the client names.
  std::optional<uint64_t> resolve(HandleKind k, uint64_t client) const {
    if (!client) return std::nullopt;
    const auto& m = kinds_[static_cast<int>(k)].toDriver;
    auto it = m.find(client);
    if (it == m.end()) return std::nullopt;
    return it->second;
  }
  // Records a handle the driver handed out for the client; returns the value the client sees
  // (the same one every time the same handle is exposed). 0 stays 0 (no handle).
  uint64_t expose(HandleKind k, uint64_t driver);
  // Records a handle the client already knows by `client` (a session re-created elsewhere):
  // false if either value is taken by another handle of the kind.
  bool adopt(HandleKind k, uint64_t client, uint64_t driver);
  // The client value of a handle of the client's, by its driver value.
  std::optional<uint64_t> clientValue(HandleKind k, uint64_t driver) const {
    const auto& m = kinds_[static_cast<int>(k)].toClient;
    auto it = m.find(driver);
    if (it == m.end()) return std::nullopt;
    return it->second;
  }
  bool ownsDriver(HandleKind k, uint64_t driver) const { return clientValue(k, driver).has_value(); }
  // Forgets a handle (destroyed, closed), by its driver value.
  void forget(HandleKind k, uint64_t driver);
  // The driver values of every handle of a kind (releasing a session's resources).
  std::vector<uint64_t> drivers(HandleKind k) const;
  size_t count(HandleKind k) const { return kinds_[static_cast<int>(k)].toClient.size(); }
  void clear();

private:
  struct Kind {
    std::unordered_map<uint64_t, uint64_t> toDriver; // client value -> driver value
    std::unordered_map<uint64_t, uint64_t> toClient; // driver value -> client value
  };
  Mode mode_;
  uint64_t next_ = 0; // the next remapped client value
  Kind kinds_[static_cast<int>(HandleKind::Count)];
};

} // namespace tf::remoting
