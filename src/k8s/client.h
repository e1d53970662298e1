// The Kubernetes client: a dynamic client over nlohmann::json objects keyed by ResourceRef.
// Every request passes the client's token bucket (QPS + burst); errors come back as
// ApiError with the apiserver's Status. Thread-safe; share one per process.
//
//   auto client = Client::create(*loadDefaultConfig());
//   auto pod = (*client)->get(builtin::kPods, "default", "p");
//   (*client)->apply(gpus, obj, "tensor-fusion-controller", /*force=*/true);
//   (*client)->patch(builtin::kPods, "default", "p", PatchType::Merge, R"({"metadata":{...}})");
// Typed use over generated types (T::kResource + to_json/from_json): k8s/typed.h.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "k8s/api/resource_ref.h"
#include "k8s/api_error.h"
#include "k8s/config.h"
#include "k8s/http.h"
#include "k8s/rate_limiter.h"
#include "k8s/watch.h"

namespace tf::k8s {

class StopSignal;

struct ClientOptions {
  double qps = 50;       // client-side rate limit, shared by all threads of this client
  int burst = 100;
  long timeoutMs = 30000;  // per request (watches have none: they use timeoutSeconds)
};

struct ListOptions {
  std::string labelSelector;  // "app=x,tier!=db"
  std::string fieldSelector;  // "metadata.name=x"
  int limit = 0;              // page size; 0 = everything in one answer
  std::string continueToken;  // from the previous page
  std::string resourceVersion;
};

struct ObjectList {
  std::vector<nlohmann::json> items;
  std::string resourceVersion;  // the list's: start a watch from here
  std::string continueToken;    // non-empty when more pages remain
};

enum class PatchType { Merge, Json, StrategicMerge, Apply };
const char* patchContentType(PatchType type);

struct PatchOptions {
  std::string fieldManager;  // required for Apply
  bool force = false;        // Apply: take over fields other managers own
  std::string subresource;   // "status" ...
};

struct DeleteOptions {
  std::string propagationPolicy;  // "Foreground", "Background", "Orphan"; "" = server default
  std::optional<std::string> preconditionUid;
  std::optional<std::string> preconditionResourceVersion;
  std::optional<long> gracePeriodSeconds;
};

class Client {
public:
  static Result<std::unique_ptr<Client>> create(const Config& config, const ClientOptions& options = {});

  // `subresource` reads e.g. "status" or "scale".
  ApiResult<nlohmann::json> get(const ResourceRef& ref, std::string_view ns, std::string_view name,
                                std::string_view subresource = {});
  // One page.
  ApiResult<ObjectList> list(const ResourceRef& ref, std::string_view ns, const ListOptions& options = {});
  // Every page (options.limit sets the page size); the resourceVersion is the first page's.
  ApiResult<ObjectList> listAll(const ResourceRef& ref, std::string_view ns, ListOptions options = {});

  // The namespace comes from metadata.namespace (or `ns` when given).
  ApiResult<nlohmann::json> create(const ResourceRef& ref, const nlohmann::json& object,
                                   std::string_view ns = {});
  // PUT with metadata.resourceVersion: a stale one gives 409 Conflict.
  ApiResult<nlohmann::json> update(const ResourceRef& ref, const nlohmann::json& object);
  ApiResult<nlohmann::json> updateStatus(const ResourceRef& ref, const nlohmann::json& object);
  ApiResult<nlohmann::json> patch(const ResourceRef& ref, std::string_view ns, std::string_view name,
                                  PatchType type, const nlohmann::json& body, const PatchOptions& options = {});
  // Server-side apply of `object` (apiVersion, kind, metadata.name required).
  ApiResult<nlohmann::json> apply(const ResourceRef& ref, const nlohmann::json& object,
                                  const std::string& fieldManager, bool force = false,
                                  std::string_view subresource = {});
  // Returns what the apiserver answers: the object (finalizers pending) or a Status.
  ApiResult<nlohmann::json> remove(const ResourceRef& ref, std::string_view ns, std::string_view name,
                                   const DeleteOptions& options = {});
  // DELETE on the collection: every object the selectors match.
  ApiResult<nlohmann::json> removeCollection(const ResourceRef& ref, std::string_view ns,
                                             const ListOptions& selectors = {});
  // POST to a subresource, e.g. pods/binding or serviceaccounts/token.
  ApiResult<nlohmann::json> createSubresource(const ResourceRef& ref, std::string_view ns,
                                              std::string_view name, std::string_view subresource,
                                              const nlohmann::json& body);

  // Streams events to `onEvent` (return false to end) until the server ends the watch after
  // timeoutSeconds (ok), `stop` is set (ok), or an error: HTTP or in-band ERROR (410 =
  // expired: isGone()), transport, or a malformed line. BOOKMARKs are passed on.
  ApiStatus watch(const ResourceRef& ref, std::string_view ns, const WatchOptions& options,
                  const std::function<bool(const WatchEvent&)>& onEvent, StopSignal* stop = nullptr);

  // Any request; `path` includes the query. The body parsed, or an ApiError for non-2xx.
  ApiResult<nlohmann::json> request(const std::string& method, const std::string& path,
                                    const std::string& body = {},
                                    const std::string& contentType = "application/json");

  const Config& config() const { return http_->config(); }
  TokenBucket& rateLimiter() { return bucket_; }

private:
  Client(std::unique_ptr<HttpClient> http, const ClientOptions& options);

  std::unique_ptr<HttpClient> http_;
  TokenBucket bucket_;
};

// Query-string escaping for selectors and names.
std::string urlEscape(std::string_view text);

}  // namespace tf::k8s
