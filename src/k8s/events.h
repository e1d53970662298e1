// An EventRecorder posts core/v1 Events about an object, so `kubectl describe` shows them:
// involvedObject (kind, name, namespace, uid, apiVersion, resourceVersion), reason, message,
// type Normal/Warning, source.component (and host). A repeat of the same (object, type,
// reason, message) within the cache's life bumps count and lastTimestamp on the existing
// Event instead of creating another, as client-go's correlator does.
//
//   EventRecorder recorder(client, "tensor-fusion-controller");
//   recorder.event(pool, EventType::Warning, "NoMatchingNodes", "selector matches no GPUNode");
#pragma once

#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "k8s/client.h"

namespace tf::k8s {

enum class EventType { Normal, Warning };

class EventRecorder {
public:
  EventRecorder(Client& client, std::string component, std::string host = {}, size_t cacheSize = 4096);

  // Posts (or aggregates) synchronously; returns the Event as stored.
  ApiResult<nlohmann::json> event(const nlohmann::json& object, EventType type, const std::string& reason,
                                  const std::string& message);

private:
  struct Seen {
    std::string ns, name;
    long count = 0;
  };

  Client& client_;
  std::string component_, host_;
  size_t cacheSize_;
  std::mutex mu_;
  std::list<std::string> lru_;  // most recent first
  std::unordered_map<std::string, std::pair<Seen, std::list<std::string>::iterator>> seen_;
};

}  // namespace tf::k8s
