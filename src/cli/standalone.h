// Shared by the standalone-mode commands (hypervisor, up, down, run, ps): where the node's
// hypervisor keeps its state and how to reach it.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace tf::cli {

// TF_HOME, else /tmp/tensor-fusion-<uid>.
std::string defaultStateDir();
// Directory of this executable's libraries (<exe dir>/../lib).
std::string libraryDir();

struct HypervisorInfo {
  int pid = 0;
  std::string host;
  int port = 0;
  bool softGpu = false;
};
// From TF_HYPERVISOR (host:port) or <stateDir>/hypervisor.json; Unavailable with a clear
// message when no hypervisor is running.
Result<HypervisorInfo> findHypervisor(const std::string& stateDir);

// One HTTP call: status code and parsed JSON body (or an error for transport failures).
struct HttpReply {
  int status = 0;
  nlohmann::json body;
};
Result<HttpReply> http(const HypervisorInfo& h, const std::string& method, const std::string& path,
                       const nlohmann::json* body = nullptr);

} // namespace tf::cli
