// Typed helpers over the dynamic client for any T with `static const ResourceRef kResource`
// and nlohmann to_json/from_json (the generated tensor-fusion.ai types have both). A body
// that does not convert is an ApiError with reason "Decode".
//
//   auto gpu = typed::get<api::v1::Gpu>(client, "", "GPU-1234");
//   auto all = typed::list<api::v1::Gpu>(client, "", {.labelSelector = "pool=a"});
#pragma once

#include <vector>

#include "k8s/client.h"

namespace tf::k8s::typed {

template <typename T> ApiResult<T> decodeAs(ApiResult<nlohmann::json> r) {
  if (!r) return r.error();
  try {
    return r->template get<T>();
  } catch (const nlohmann::json::exception& e) {
    return ApiError::decode(T::kResource.kind + ": " + e.what());
  }
}

template <typename T> nlohmann::json encode(const T& object) {
  nlohmann::json j = object;
  j["apiVersion"] = T::kResource.apiVersion();
  j["kind"] = T::kResource.kind;
  return j;
}

template <typename T> ApiResult<T> get(Client& c, std::string_view ns, std::string_view name) {
  return decodeAs<T>(c.get(T::kResource, ns, name));
}

template <typename T> ApiResult<std::vector<T>> list(Client& c, std::string_view ns, const ListOptions& o = {}) {
  auto r = c.listAll(T::kResource, ns, o);
  if (!r) return r.error();
  std::vector<T> out;
  out.reserve(r->items.size());
  for (auto& item : r->items) {
    auto t = decodeAs<T>(std::move(item));
    if (!t) return t.error();
    out.push_back(std::move(*t));
  }
  return out;
}

template <typename T> ApiResult<T> create(Client& c, const T& object) {
  return decodeAs<T>(c.create(T::kResource, encode(object)));
}
template <typename T> ApiResult<T> update(Client& c, const T& object) {
  return decodeAs<T>(c.update(T::kResource, encode(object)));
}
template <typename T> ApiResult<T> updateStatus(Client& c, const T& object) {
  return decodeAs<T>(c.updateStatus(T::kResource, encode(object)));
}
template <typename T> ApiResult<T> apply(Client& c, const T& object, const std::string& fieldManager,
                                         bool force = false) {
  return decodeAs<T>(c.apply(T::kResource, encode(object), fieldManager, force));
}
template <typename T> ApiResult<nlohmann::json> remove(Client& c, std::string_view ns, std::string_view name,
                                                       const DeleteOptions& o = {}) {
  return c.remove(T::kResource, ns, name, o);
}

}  // namespace tf::k8s::typed
