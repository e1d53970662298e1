// The portal's commands, as the agent carries them out: each allow-listed verb becomes one
// merge patch of desired state (never "+1"), so running it twice changes nothing more; ids are
// remembered with their results, so a command delivered again (at least once: the portal
// re-sends pending ones after every welcome) is answered from memory, not run again; a command
// past its deadline (portal time) is refused without running.
//
//   applyPoolSpec {pool, spec}                 -> GPUPool <pool>: spec merged in
//   scaleWorkload {namespace?, name, replicas} -> TensorFusionWorkload: spec.replicas
//   cordonGpu     {gpu, cordon?: true}         -> GPU <gpu>: label tensor-fusion.ai/cordoned
//
//   CommandRunner runner([&](const PatchPlan& p) { return patchThroughClient(p); });
//   send(runner.run(command, portalNowMs));
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "control_protocol/messages.h"
#include "k8s/api/resource_ref.h"

namespace tf::agent {

// One JSON merge patch (RFC 7386) of one object.
struct PatchPlan {
  k8s::ResourceRef resource;
  std::string ns, name;
  nlohmann::json patch;
};

// The patch a command asks for; InvalidArgument naming the bad argument, or an unknown verb.
Result<PatchPlan> planCommand(const protocol::Command& command);

class CommandRunner {
public:
  // Applies a plan; returns what to report (e.g. the object's new resourceVersion).
  using Executor = std::function<Result<nlohmann::json>(const PatchPlan&)>;
  explicit CommandRunner(Executor executor, size_t remember = 4096);

  // Thread-safe. The result to send back for `command`, run at most once per id.
  protocol::CommandResult run(const protocol::Command& command, int64_t portalNowMs);
  int executions() const { return executions_.load(); }

private:
  Executor executor_;
  size_t remember_;
  mutable std::mutex mu_;
  std::map<std::string, protocol::CommandResult> done_;
  std::deque<std::string> order_;  // oldest first, for forgetting
  std::atomic<int> executions_{0};
};

}  // namespace tf::agent
