#include "k8s/store.h"

namespace tf::k8s {

using nlohmann::json;

std::string objectKey(std::string_view ns, std::string_view name) {
  return ns.empty() ? std::string(name) : std::string(ns) + "/" + std::string(name);
}

std::string objectKey(const json& object) {
  const json& md = object.contains("metadata") ? object["metadata"] : json::object();
  return objectKey(md.value("namespace", ""), md.value("name", ""));
}

IndexFunc namespaceIndexFunc() {
  return [](const json& o) -> std::vector<std::string> {
    return {o.contains("metadata") ? o["metadata"].value("namespace", "") : ""};
  };
}

IndexFunc labelIndexFunc(std::string labelKey) {
  return [labelKey](const json& o) -> std::vector<std::string> {
    auto md = o.find("metadata");
    if (md == o.end()) return {};
    auto labels = md->find("labels");
    if (labels == md->end() || !labels->is_object()) return {};
    auto v = labels->find(labelKey);
    if (v == labels->end() || !v->is_string()) return {};
    return {v->get<std::string>()};
  };
}

void Store::indexLocked(const std::string& key, const json& object, bool add) {
  for (const auto& [name, func] : indexers_) {
    auto& index = indices_[name];
    for (const auto& value : func(object)) {
      if (add) {
        index[value].insert(key);
      } else if (auto it = index.find(value); it != index.end()) {
        it->second.erase(key);
        if (it->second.empty()) index.erase(it);
      }
    }
  }
}

void Store::addIndexer(const std::string& name, IndexFunc func) {
  std::lock_guard<std::mutex> lock(mu_);
  indexers_[name] = std::move(func);
  auto& index = indices_[name];
  index.clear();
  for (const auto& [key, obj] : items_)
    for (const auto& value : indexers_[name](*obj)) index[value].insert(key);
}

ObjectPtr Store::upsert(ObjectPtr object) {
  std::string key = objectKey(*object);
  std::lock_guard<std::mutex> lock(mu_);
  ObjectPtr& slot = items_[key];
  ObjectPtr old = slot;
  if (old) indexLocked(key, *old, false);
  slot = std::move(object);
  indexLocked(key, *slot, true);
  return old;
}

ObjectPtr Store::remove(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = items_.find(key);
  if (it == items_.end()) return nullptr;
  ObjectPtr old = std::move(it->second);
  items_.erase(it);
  indexLocked(key, *old, false);
  return old;
}

ObjectPtr Store::get(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = items_.find(key);
  return it == items_.end() ? nullptr : it->second;
}

std::vector<ObjectPtr> Store::list() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ObjectPtr> out;
  out.reserve(items_.size());
  for (const auto& [k, v] : items_) out.push_back(v);
  return out;
}

std::vector<std::string> Store::keys() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [k, v] : items_) out.push_back(k);
  return out;
}

std::vector<ObjectPtr> Store::byIndex(const std::string& name, const std::string& value) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ObjectPtr> out;
  auto idx = indices_.find(name);
  if (idx == indices_.end()) return out;
  auto keys = idx->second.find(value);
  if (keys == idx->second.end()) return out;
  for (const auto& k : keys->second) out.push_back(items_.at(k));
  return out;
}

bool Store::hasIndex(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  return indexers_.count(name) != 0;
}

size_t Store::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return items_.size();
}

}  // namespace tf::k8s
