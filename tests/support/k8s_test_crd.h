// A small namespaced CRD (widgets.test.tensor-fusion.ai) with a status subresource and a
// schema, for the client's cluster tests and its benchmark; installed on demand.
#pragma once

#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "k8s/builtin.h"
#include "k8s/client.h"

namespace tf::k8s::testing {

inline const ResourceRef kWidgets{"test.tensor-fusion.ai", "v1", "widgets", "Widget", true};

inline nlohmann::json widgetCrd() {
  return nlohmann::json::parse(R"({
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.test.tensor-fusion.ai"},
    "spec": {"group": "test.tensor-fusion.ai", "scope": "Namespaced",
      "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
      "versions": [{"name": "v1", "served": true, "storage": true,
        "subresources": {"status": {}},
        "schema": {"openAPIV3Schema": {"type": "object", "properties": {
          "spec": {"type": "object", "properties": {
            "size": {"type": "integer", "minimum": 0},
            "counter": {"type": "integer"},
            "color": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}}}},
          "status": {"type": "object", "properties": {
            "phase": {"type": "string"}, "observedGeneration": {"type": "integer"}}}}}}}]}})");
}

// Creates the CRD unless present and waits until the apiserver serves widgets.
inline ApiStatus ensureWidgetCrd(Client& client) {
  auto created = client.create(builtin::kCustomResourceDefinitions, widgetCrd());
  if (!created && !created.error().isAlreadyExists()) return created.error();
  for (int i = 0; i < 300; ++i) {
    auto probe = client.list(kWidgets, "default", ListOptions{.limit = 1});
    if (probe) return apiOk();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return ApiError::transport("widgets CRD not served after 30 s");
}

}  // namespace tf::k8s::testing
