// What names one kind of Kubernetes object on the wire: its group, version, plural resource
// name, kind and scope. The generated tensor-fusion.ai/v1 types and the client's table of
// built-in kinds both describe themselves with it; the client builds every URL from it.
//
//   const ResourceRef& gpus = tf::k8s::api::v1::Gpu::kResource;
//   gpus.collectionPath("")          // "/apis/tensor-fusion.ai/v1/gpus"
//   pods.objectPath("default", "p")  // "/api/v1/namespaces/default/pods/p"
#pragma once

#include <string>
#include <string_view>

namespace tf::k8s {

struct ResourceRef {
  std::string group;    // "" for the core group
  std::string version;  // "v1"
  std::string plural;   // "gpus", "pods"
  std::string kind;     // "GPU", "Pod"
  bool namespaced = false;

  // "tensor-fusion.ai/v1", or "v1" for the core group.
  std::string apiVersion() const { return group.empty() ? version : group + "/" + version; }

  // "/api/v1" or "/apis/<group>/<version>".
  std::string groupVersionPath() const {
    return group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  }

  // The collection: all namespaces when `ns` is empty (or the kind is cluster-scoped).
  std::string collectionPath(std::string_view ns) const {
    std::string path = groupVersionPath();
    if (namespaced && !ns.empty()) {
      path += "/namespaces/";
      path += ns;
    }
    return path + "/" + plural;
  }

  // One object; `subresource` ("status", "binding", ...) is appended when given.
  std::string objectPath(std::string_view ns, std::string_view name,
                         std::string_view subresource = {}) const {
    std::string path = collectionPath(ns) + "/";
    path += name;
    if (!subresource.empty()) {
      path += "/";
      path += subresource;
    }
    return path;
  }
};

}  // namespace tf::k8s
