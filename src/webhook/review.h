// admission.k8s.io/v1 AdmissionReview in and out (pure), and the Admitter that answers one
// for a pod: it reads what decide() needs from the apiserver, get-or-creates the pod's
// TensorFusionWorkload (reference §3.2), and returns the JSONPatch or the denial.
//
//   auto req = parseReview(body);            // 400 with req.status().message() when malformed
//   nlohmann::json answer = admitter.review(*req);
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "k8s/client.h"
#include "webhook/admission_cache.h"
#include "webhook/patch.h"

namespace tf::webhook {

struct ReviewRequest {
  std::string uid;
  std::string operation;  // CREATE, UPDATE, ...
  std::string ns;         // request.namespace
  bool dryRun = false;
  nlohmann::json object;  // the pod
};

// A malformed body (not JSON, not an AdmissionReview v1, no request.uid, no object) is an error.
Result<ReviewRequest> parseReview(const std::string& body);

nlohmann::json allowResponse(const std::string& uid, const nlohmann::json& patch = nullptr);
nlohmann::json denyResponse(const std::string& uid, int code, const std::string& message);

// The pod's top controller reference: a ReplicaSet's Deployment, a Job's CronJob, else the
// pod's own controller; null for a standalone pod. `controllerOf(kind, ns, name)` reads an
// owner and gives its controller reference (null when it has none or cannot be read).
using OwnerLookup = std::function<nlohmann::json(const std::string& kind, const std::string& ns, const std::string& name)>;
nlohmann::json topOwnerOf(const nlohmann::json& pod, const std::string& ns, const OwnerLookup& controllerOf);
// The workload's name: the top owner's, else the pod's, else generateName + 8 random characters.
std::string workloadNameOf(const nlohmann::json& pod, const nlohmann::json& topOwner);

class Admitter {
public:
  // `cache` (optional, outliving the Admitter): where pools, profiles, quotas and GPUs are read
  // once it has synced; without one, or before, each admission reads them from the apiserver.
  Admitter(k8s::Client& client, PatchOptions options, AdmissionCache* cache = nullptr)
      : client_(client), options_(std::move(options)), cache_(cache) {}

  // The AdmissionReview answer for one request (always a response, never a throw).
  nlohmann::json review(const ReviewRequest& request);

  // Admissions whose cluster view came from the cache / from the apiserver.
  uint64_t cachedViews() const { return cachedViews_.load(); }
  uint64_t liveViews() const { return liveViews_.load(); }

private:
  Result<nlohmann::json> admit(const ReviewRequest& request);  // the patch, or why not
  Result<ClusterView> viewFor(const Values& annotations, const std::string& ns);
  Status ensureWorkload(const nlohmann::json& topOwner, const std::string& ns, const Decision& d);

  k8s::Client& client_;
  PatchOptions options_;
  AdmissionCache* cache_;
  std::atomic<uint64_t> cachedViews_{0}, liveViews_{0};
};

}  // namespace tf::webhook
