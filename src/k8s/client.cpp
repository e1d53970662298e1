#include "k8s/client.h"

#include <curl/curl.h>

#include "k8s/stop_signal.h"

namespace tf::k8s {
namespace {

using nlohmann::json;

// Query string built from name=value pairs, skipping empty values.
class Query {
public:
  Query& add(std::string_view key, std::string_view value) {
    if (value.empty()) return *this;
    text_ += text_.empty() ? "?" : "&";
    text_ += key;
    text_ += "=";
    text_ += urlEscape(value);
    return *this;
  }
  const std::string& str() const { return text_; }

private:
  std::string text_;
};

std::string metaField(const json& object, const char* field) {
  auto md = object.find("metadata");
  if (md == object.end() || !md->is_object()) return {};
  auto v = md->find(field);
  return v != md->end() && v->is_string() ? v->get<std::string>() : std::string();
}

ApiResult<json> parseBody(const HttpResponse& resp) {
  if (resp.code < 200 || resp.code >= 300) return ApiError::fromResponse(resp.code, resp.body);
  if (resp.body.empty()) return json::object();
  auto j = json::parse(resp.body, nullptr, false);
  if (j.is_discarded())
    return ApiError::decode("answer (HTTP " + std::to_string(resp.code) + ") is not JSON: " + resp.body.substr(0, 200));
  return j;
}

}  // namespace

std::string urlEscape(std::string_view text) {
  char* e = curl_easy_escape(nullptr, text.data(), static_cast<int>(text.size()));
  std::string out = e ? e : "";
  curl_free(e);
  return out;
}

const char* patchContentType(PatchType type) {
  switch (type) {
  case PatchType::Merge: return "application/merge-patch+json";
  case PatchType::Json: return "application/json-patch+json";
  case PatchType::StrategicMerge: return "application/strategic-merge-patch+json";
  case PatchType::Apply: return "application/apply-patch+yaml";
  }
  return "application/json";
}

Result<std::unique_ptr<Client>> Client::create(const Config& config, const ClientOptions& options) {
  auto http = HttpClient::create(config, options.timeoutMs);
  if (!http) return http.status();
  return std::unique_ptr<Client>(new Client(std::move(*http), options));
}

Client::Client(std::unique_ptr<HttpClient> http, const ClientOptions& options)
    : http_(std::move(http)), bucket_(options.qps, options.burst) {}

ApiResult<json> Client::request(const std::string& method, const std::string& path,
                                const std::string& body, const std::string& contentType) {
  bucket_.wait();
  auto resp = http_->send({method, path, body, contentType});
  if (!resp) return resp.error();
  return parseBody(*resp);
}

ApiResult<json> Client::get(const ResourceRef& ref, std::string_view ns, std::string_view name,
                            std::string_view subresource) {
  return request("GET", ref.objectPath(ns, name, subresource));
}

ApiResult<ObjectList> Client::list(const ResourceRef& ref, std::string_view ns, const ListOptions& o) {
  Query q;
  q.add("labelSelector", o.labelSelector).add("fieldSelector", o.fieldSelector)
      .add("limit", o.limit > 0 ? std::to_string(o.limit) : "")
      .add("continue", o.continueToken).add("resourceVersion", o.resourceVersion);
  auto r = request("GET", ref.collectionPath(ns) + q.str());
  if (!r) return r.error();
  json& body = *r;
  if (!body.contains("items") || !(body["items"].is_array() || body["items"].is_null()))
    return ApiError::decode("list of " + ref.plural + ": answer has no items array");
  ObjectList out;
  if (body["items"].is_array()) {
    out.items.reserve(body["items"].size());
    for (auto& item : body["items"]) {
      // Items of a list carry no apiVersion/kind; give them back so they stand alone.
      item["apiVersion"] = ref.apiVersion();
      item["kind"] = ref.kind;
      out.items.push_back(std::move(item));
    }
  }
  out.resourceVersion = metaField(body, "resourceVersion");
  out.continueToken = metaField(body, "continue");
  return out;
}

ApiResult<ObjectList> Client::listAll(const ResourceRef& ref, std::string_view ns, ListOptions o) {
  ObjectList all;
  bool first = true;
  do {
    auto page = list(ref, ns, o);
    if (!page) return page.error();
    if (first) all.resourceVersion = page->resourceVersion;
    first = false;
    for (auto& item : page->items) all.items.push_back(std::move(item));
    o.continueToken = page->continueToken;
  } while (!o.continueToken.empty());
  return all;
}

ApiResult<json> Client::create(const ResourceRef& ref, const json& object, std::string_view ns) {
  std::string n = ns.empty() ? metaField(object, "namespace") : std::string(ns);
  if (ref.namespaced && n.empty()) return ApiError::decode("create " + ref.kind + ": no namespace");
  return request("POST", ref.collectionPath(n), object.dump());
}

ApiResult<json> Client::update(const ResourceRef& ref, const json& object) {
  std::string name = metaField(object, "name");
  if (name.empty()) return ApiError::decode("update " + ref.kind + ": object has no metadata.name");
  return request("PUT", ref.objectPath(metaField(object, "namespace"), name), object.dump());
}

ApiResult<json> Client::updateStatus(const ResourceRef& ref, const json& object) {
  std::string name = metaField(object, "name");
  if (name.empty()) return ApiError::decode("update status of " + ref.kind + ": object has no metadata.name");
  return request("PUT", ref.objectPath(metaField(object, "namespace"), name, "status"), object.dump());
}

ApiResult<json> Client::patch(const ResourceRef& ref, std::string_view ns, std::string_view name,
                              PatchType type, const json& body, const PatchOptions& o) {
  if (type == PatchType::Apply && o.fieldManager.empty())
    return ApiError::decode("server-side apply needs a fieldManager");
  if (type == PatchType::Json && !body.is_array())
    return ApiError::decode("a JSON patch is an array of operations");
  Query q;
  q.add("fieldManager", o.fieldManager).add("force", type == PatchType::Apply && o.force ? "true" : "");
  // JSON is YAML, so an apply body is sent as JSON text.
  return request("PATCH", ref.objectPath(ns, name, o.subresource) + q.str(), body.dump(),
                 patchContentType(type));
}

ApiResult<json> Client::apply(const ResourceRef& ref, const json& object, const std::string& fieldManager,
                              bool force, std::string_view subresource) {
  std::string name = metaField(object, "name");
  if (name.empty()) return ApiError::decode("apply " + ref.kind + ": object has no metadata.name");
  json body = object;
  body["apiVersion"] = ref.apiVersion();
  body["kind"] = ref.kind;
  return patch(ref, metaField(object, "namespace"), name, PatchType::Apply, body,
               {fieldManager, force, std::string(subresource)});
}

ApiResult<json> Client::remove(const ResourceRef& ref, std::string_view ns, std::string_view name,
                               const DeleteOptions& o) {
  json body = {{"apiVersion", "v1"}, {"kind", "DeleteOptions"}};
  if (!o.propagationPolicy.empty()) body["propagationPolicy"] = o.propagationPolicy;
  if (o.gracePeriodSeconds) body["gracePeriodSeconds"] = *o.gracePeriodSeconds;
  if (o.preconditionUid) body["preconditions"]["uid"] = *o.preconditionUid;
  if (o.preconditionResourceVersion) body["preconditions"]["resourceVersion"] = *o.preconditionResourceVersion;
  return request("DELETE", ref.objectPath(ns, name), body.dump());
}

ApiResult<json> Client::removeCollection(const ResourceRef& ref, std::string_view ns, const ListOptions& o) {
  Query q;
  q.add("labelSelector", o.labelSelector).add("fieldSelector", o.fieldSelector);
  return request("DELETE", ref.collectionPath(ns) + q.str());
}

ApiResult<json> Client::createSubresource(const ResourceRef& ref, std::string_view ns, std::string_view name,
                                          std::string_view subresource, const json& body) {
  return request("POST", ref.objectPath(ns, name, subresource), body.dump());
}

ApiStatus Client::watch(const ResourceRef& ref, std::string_view ns, const WatchOptions& o,
                        const std::function<bool(const WatchEvent&)>& onEvent, StopSignal* stop) {
  Query q;
  q.add("watch", "1").add("resourceVersion", o.resourceVersion)
      .add("allowWatchBookmarks", o.allowBookmarks ? "true" : "")
      .add("timeoutSeconds", o.timeoutSeconds > 0 ? std::to_string(o.timeoutSeconds) : "")
      .add("labelSelector", o.labelSelector).add("fieldSelector", o.fieldSelector);
  bucket_.wait(stop);
  WatchDecoder decoder;
  std::vector<WatchEvent> events;
  std::optional<ApiError> failure;  // a bad line or an in-band ERROR ends the watch
  bool consumerEnded = false;
  auto onData = [&](std::string_view bytes) {
    events.clear();
    auto st = decoder.feed(bytes, events);
    for (auto& ev : events) {
      if (ev.type == WatchEventType::Error) {
        failure = ApiError::fromStatusObject(ev.object, 500);
        return false;
      }
      if (!onEvent(ev)) {
        consumerEnded = true;
        return false;
      }
    }
    if (!st) {
      failure = st.error();
      return false;
    }
    return true;
  };
  auto resp = http_->stream({"GET", ref.collectionPath(ns) + q.str(), "", ""}, onData, stop);
  if (failure) return *failure;
  if (!resp) return resp.error();
  if (resp->code < 200 || resp->code >= 300) return ApiError::fromResponse(resp->code, resp->body);
  if (!consumerEnded && !(stop && stop->stopped())) {
    auto st = decoder.finish();
    if (!st) return st;
  }
  return apiOk();
}

}  // namespace tf::k8s
