#include "k8s/events.h"

#include <chrono>
#include <cstdio>

#include "k8s/builtin.h"
#include "k8s/time_format.h"

namespace tf::k8s {

using nlohmann::json;

EventRecorder::EventRecorder(Client& client, std::string component, std::string host, size_t cacheSize)
    : client_(client), component_(std::move(component)), host_(std::move(host)), cacheSize_(cacheSize) {}

ApiResult<json> EventRecorder::event(const json& object, EventType type, const std::string& reason,
                                     const std::string& message) {
  const json md = object.value("metadata", json::object());
  std::string objName = md.value("name", "");
  if (objName.empty() || !object.contains("kind"))
    return ApiError::decode("event about an object without kind or metadata.name");
  std::string objNs = md.value("namespace", "");
  std::string eventNs = objNs.empty() ? "default" : objNs;  // cluster-scoped objects: "default"
  const char* typeName = type == EventType::Warning ? "Warning" : "Normal";
  std::string now = formatTime(std::chrono::system_clock::now());

  json involved = {{"kind", object["kind"]}, {"name", objName}};
  if (!objNs.empty()) involved["namespace"] = objNs;
  for (const char* f : {"uid", "resourceVersion"})
    if (md.contains(f)) involved[f] = md[f];
  if (object.contains("apiVersion")) involved["apiVersion"] = object["apiVersion"];

  std::string key = object["kind"].get<std::string>() + "/" + objNs + "/" + objName + "/" +
                    md.value("uid", "") + "\x1f" + typeName + "\x1f" + reason + "\x1f" + message;
  std::optional<Seen> previous;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = seen_.find(key); it != seen_.end()) previous = it->second.first;
  }
  if (previous) {
    json patch = {{"count", previous->count + 1}, {"lastTimestamp", now}};
    auto r = client_.patch(builtin::kEvents, previous->ns, previous->name, PatchType::Merge, patch);
    if (r) {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = seen_.find(key); it != seen_.end()) it->second.first.count = previous->count + 1;
      return r;
    }
    if (!r.error().isNotFound()) return r;
    // The Event expired (events have a TTL): post a fresh one.
  }

  char suffix[32];
  snprintf(suffix, sizeof suffix, ".%llx",
           static_cast<unsigned long long>(std::chrono::system_clock::now().time_since_epoch().count()));
  json ev = {{"apiVersion", "v1"},
             {"kind", "Event"},
             {"metadata", {{"name", objName + suffix}, {"namespace", eventNs}}},
             {"involvedObject", involved},
             {"reason", reason},
             {"message", message},
             {"type", typeName},
             {"count", 1},
             {"firstTimestamp", now},
             {"lastTimestamp", now},
             {"source", {{"component", component_}}}};
  if (!host_.empty()) ev["source"]["host"] = host_;
  auto r = client_.create(builtin::kEvents, ev);
  if (!r) return r;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = seen_.find(key); it != seen_.end()) {
    lru_.erase(it->second.second);
    seen_.erase(it);
  }
  lru_.push_front(key);
  seen_[key] = {Seen{eventNs, ev["metadata"]["name"], 1}, lru_.begin()};
  while (seen_.size() > cacheSize_) {
    seen_.erase(lru_.back());
    lru_.pop_back();
  }
  return r;
}

}  // namespace tf::k8s
