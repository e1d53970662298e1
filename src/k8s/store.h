// The informer's cache: objects by key ("namespace/name", or "name" when cluster-scoped),
// thread-safe, with indexes (by namespace, by a label's value, or any function returning
// index values). Objects are shared immutable snapshots: readers never copy the JSON.
//
//   Store store;
//   store.addIndexer("byNode", [](const json& o) { return std::vector<std::string>{o["spec"]["nodeName"]}; });
//   for (const ObjectPtr& pod : store.byIndex("byNode", "n1")) ...
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace tf::k8s {

using ObjectPtr = std::shared_ptr<const nlohmann::json>;
using IndexFunc = std::function<std::vector<std::string>(const nlohmann::json&)>;

std::string objectKey(const nlohmann::json& object);
std::string objectKey(std::string_view ns, std::string_view name);

inline constexpr const char* kNamespaceIndex = "namespace";
IndexFunc namespaceIndexFunc();
// Indexes objects by the value of one label; objects without it are not indexed.
IndexFunc labelIndexFunc(std::string labelKey);

class Store {
public:
  // Adds an index; existing objects are indexed at once.
  void addIndexer(const std::string& name, IndexFunc func);

  // Inserts or replaces; returns the previous object (null if new).
  ObjectPtr upsert(ObjectPtr object);
  // Removes; returns what was there (null if nothing).
  ObjectPtr remove(const std::string& key);

  ObjectPtr get(const std::string& key) const;
  std::vector<ObjectPtr> list() const;
  std::vector<std::string> keys() const;
  // Objects whose index `name` yields `value`; empty for an unknown index.
  std::vector<ObjectPtr> byIndex(const std::string& name, const std::string& value) const;
  bool hasIndex(const std::string& name) const;
  size_t size() const;

private:
  void indexLocked(const std::string& key, const nlohmann::json& object, bool add);

  mutable std::mutex mu_;
  std::unordered_map<std::string, ObjectPtr> items_;
  std::map<std::string, IndexFunc> indexers_;
  // index name -> value -> keys
  std::map<std::string, std::unordered_map<std::string, std::set<std::string>>> indices_;
};

}  // namespace tf::k8s
