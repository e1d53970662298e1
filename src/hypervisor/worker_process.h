// The worker a hard- or remote-isolated vGPU runs on: `tensor-fusion worker` started by the
// hypervisor with the limiter preloaded and the vGPU's quota region, so every call its clients
// make is limited, and a client, which never touches the driver, cannot get around it.
#pragma once

#include <string>
#include <vector>
#include <sys/types.h>

#include "common/status.h"

namespace tf::hypervisor {

struct WorkerSpec {
  std::string vgpuId;
  std::string regionPath;
  std::string listen;     // shm://name (hard) or tcp://host:0 (remote)
  std::string token;
  bool softGpu = false;
  std::string logPath;
  // VRAM tiers (tier_policy.h): off unless `tiers`; the admin token goes in the environment.
  bool tiers = false;
  uint64_t freezeIdleMs = 0, coldAfterMs = 0;
  int waitMs = 10000;
  std::string coldDir, adminToken;
  std::string migrationToken;  // another node's, to move a client here (Adopt only)
};
// The worker's command line after the binary (`worker --listen ...`).
std::vector<std::string> workerArguments(const WorkerSpec& spec, const std::string& driver);

struct WorkerHandle {
  pid_t pid = 0;
  std::string address;    // what clients connect to (the real port for tcp://host:0)
};

// The environment a worker starts with: not the hypervisor's, which may carry settings meant
// for other programs (a soft GPU timing mode, a limiter, a remote worker address), but the
// variables that say where and what the devices are, plus the limiter preloaded on the vGPU's
// region. `parent` is a NAME=value list (environ); `libDir` holds the limiter (and, for a
// soft GPU, the driver).
std::vector<std::string> workerEnvironment(const WorkerSpec& spec, const std::string& libDir,
                                           const char* const* parent);

// Starts the worker and waits (up to 10 s) for its "listening on" line.
Result<WorkerHandle> startWorker(const WorkerSpec& spec);
bool workerAlive(pid_t pid);
void stopWorker(pid_t pid);
// A random token for a worker's clients.
std::string newToken();

} // namespace tf::hypervisor
