// Moving a running client to another worker (another GPU, another node), unnoticed by the
// program. The session captures itself at a call boundary, on its own thread: its contexts,
// the calls that made its other handles (a replay log: streams, events, modules, libraries,
// functions, kernels, and the attribute calls made on them), the module images, the names and
// contents of module globals, its tiered memory (addresses, sizes, contents), and its graphs
// and executable graphs, walked node by node (GraphImage). The target
// worker re-creates it all (`Adopt`): contexts and replayed calls get the client's old handle
// values (handle_table.h, adopt), memory and globals the same device addresses. The source
// then answers the client's pending call with `Moved` (protocol.h, kFlagMoved); the stub
// reconnects to the target with the resume id and sends the call again.
//
//   // the admin (the hypervisor) asks the source worker:
//   MigrateOut(pid, wait ms) with MigrateOrder{target address, target's admin token}
//   // the client's session, at its next synchronous call:
//   MigrationImage img = capture();  -> Adopt(img, contents) on the target -> resume id
//   reply Moved(resume id, address)   // or, if anything failed, run the call here as usual
//
// What cannot move yet is refused before anything happens (the client stays, a clear error
// goes to the admin): graphs with nodes other than kernels, memsets, device copies, host
// functions, child graphs and empty ones, streams being captured, arrays and textures, IPC, pools, the client's own virtual
// memory management, memory that is not the tiers' (a worker without --tiers, pitched or
// stream-ordered allocations), host memory the device reaches by address (mirrors, managed).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "remoting/protocol.h"
#include "remoting/tier_control.h"
#include "remoting/worker/handle_table.h"

namespace tf::remoting {

// A call that made handles (or changed one) and can be made again on another worker.
struct Recipe {
  uint32_t fn = 0;
  uint64_t ctx = 0;                 // the client's current context at the call (its value)
  std::vector<uint64_t> args;       // as the client sent them
  std::string blob;
  struct Made {
    HandleKind kind;
    uint64_t client;
  };
  std::vector<Made> made;           // the handles it made, in order, by their client values
};

// How a call is replayed: it makes handles, or changes the handle named by args[ownerArg] of
// ownerKind (ownerArg -1: the call's context).
struct ReplayRule {
  bool makes = false;
  HandleKind ownerKind = HandleKind::Count;
  int ownerArg = -1;
};
// The rule of a catalog call, or nullptr if the call is not replayed.
const ReplayRule* replayRule(uint32_t fn);

// The module-scope variables (`.global` and `.const`) a module image defines, by name, from its
// PTX: every one must move with the client, whether or not it ever asked for it (kernels keep
// state in them). Images without PTX (cubin only) list none: DataLoss says so.
Result<std::vector<std::string>> moduleVariables(const void* image, size_t size);

// A graph walked at capture and built again on the target, node by node: one of the client's
// graphs (client != 0), or the body of one of its executable graphs (exec != 0; the driver
// cannot read an executable back, so the worker makes each from a copy it keeps in step:
// Session::ExecBody).
struct GraphImage {
  uint64_t ctx = 0;     // the client's context it is built in
  uint64_t client = 0;  // the client's graph, or 0 (a body)
  // Each node's cuGraphAdd*Node call as a client sends it, without dependencies; args[0] (the
  // graph) is filled in on the target; made: the node's client value, if the client has one.
  std::vector<Recipe> nodes;
  std::vector<std::pair<uint32_t, uint32_t>> edges;  // node indexes
  // A body: its executable, its flags, the client's graph it was made from (0: gone), which
  // node of the body each of that graph's nodes (client values) names, nodes disabled.
  uint64_t exec = 0, flags = 0, from = 0;
  std::vector<std::pair<uint64_t, uint32_t>> stands;
  std::vector<uint32_t> disabled;
  // The graphs embedded in its child graph nodes (a node's args[1] is its index here); client:
  // the embedded graph's client value, if the client asked for it.
  std::vector<GraphImage> children;
};
// The node-making calls a GraphImage may hold.
bool isNodeRecipe(uint32_t fn);

struct MigrationImage {
  uint32_t pid = 0;
  int32_t latched = 0;  // an asynchronous error not yet reported to the client
  struct Context {
    uint64_t client = 0;
    int32_t device = 0;
    uint32_t flags = 0;
    bool primary = false;
  };
  std::vector<Context> contexts;
  std::vector<Recipe> recipes;  // in the order they were made
  struct Image {
    uint64_t hash = 0, size = 0;  // the bytes travel in the bulk
  };
  std::vector<Image> images;
  struct Memory {
    int32_t device = 0;
    uint64_t base = 0, span = 0;  // span: what the tiers hold (bulk bytes)
    uint64_t size = 0;            // what the client asked for
  };
  std::vector<Memory> memory;
  struct Global {
    HandleKind ownerKind = HandleKind::Module;  // Module or Library
    uint64_t owner = 0;                         // its client value
    std::string name;
    uint64_t address = 0, size = 0;             // contents in the bulk
    uint64_t sourceCtx = 0;                     // (not sent) the source's context to read it in
  };
  std::vector<Global> globals;
  std::vector<GraphImage> graphs;  // the client's graphs first, then the bodies
  // The bulk, in order: every image, every memory span, every global.
  uint64_t bulkBytes() const;
};
void encodeMigrationImage(Writer& w, const MigrationImage& img);
// Counts, kinds and sizes checked; anything malformed is DataLoss.
Status decodeMigrationImage(std::string_view blob, MigrationImage* out);

}  // namespace tf::remoting
