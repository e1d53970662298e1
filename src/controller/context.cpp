#include "controller/context.h"

#include <algorithm>

namespace tf::controller {

tf::Status toStatus(const k8s::ApiError& e, const std::string& what) {
  return e.toStatus().withContext(what);
}

bool jsonSubset(const nlohmann::json& want, const nlohmann::json& have) {
  if (want.is_object()) {
    if (!have.is_object()) return false;
    for (const auto& [k, v] : want.items()) {
      auto it = have.find(k);
      if (it == have.end()) {
        if (v.is_null()) continue;
        return false;
      }
      if (!jsonSubset(v, *it)) return false;
    }
    return true;
  }
  return want == have;
}

nlohmann::json ownerReference(const nlohmann::json& owner, bool controller) {
  nlohmann::json ref = {{"apiVersion", owner.value("apiVersion", "")},
                        {"kind", owner.value("kind", "")},
                        {"name", nameOf(owner)},
                        {"uid", owner["metadata"].value("uid", "")}};
  if (controller) {
    ref["controller"] = true;
    ref["blockOwnerDeletion"] = true;
  }
  return ref;
}

bool hasOwner(const nlohmann::json& object, const std::string& uid) {
  auto refs = object["metadata"].find("ownerReferences");
  if (refs == object["metadata"].end() || !refs->is_array()) return false;
  return std::any_of(refs->begin(), refs->end(), [&](const nlohmann::json& r) { return r.value("uid", "") == uid; });
}

bool isDeleting(const nlohmann::json& object) {
  return object.contains("metadata") && object["metadata"].contains("deletionTimestamp") &&
         !object["metadata"]["deletionTimestamp"].is_null();
}

bool hasFinalizer(const nlohmann::json& object, const std::string& finalizer) {
  auto f = object["metadata"].find("finalizers");
  if (f == object["metadata"].end() || !f->is_array()) return false;
  return std::find(f->begin(), f->end(), finalizer) != f->end();
}

bool podReady(const nlohmann::json& pod) {
  for (const auto& c : pod.value("/status/conditions"_json_pointer, nlohmann::json::array()))
    if (c.value("type", "") == "Ready") return c.value("status", "") == "True";
  return false;
}

std::string nameOf(const nlohmann::json& object) { return object["metadata"].value("name", ""); }

std::string labelOf(const nlohmann::json& object, const std::string& key) {
  auto meta = object.find("metadata");
  if (meta == object.end()) return {};
  auto labels = meta->find("labels");
  if (labels == meta->end() || !labels->is_object()) return {};
  return labels->value(key, "");
}

std::vector<k8s::ObjectPtr> managedBy(const k8s::Informer& informer, const std::string& owner) {
  return informer.store().byIndex(kIndexManagedBy, owner);
}

tf::Status patchStatus(Context& ctx, const k8s::ResourceRef& ref, const std::string& ns, const std::string& name,
                       const nlohmann::json& status) {
  k8s::PatchOptions opts;
  opts.subresource = "status";
  auto r = ctx.client.patch(ref, ns, name, k8s::PatchType::Merge, {{"status", status}}, opts);
  if (!r) return toStatus(r.error(), "status of " + ref.kind + " " + name);
  return tf::Status::ok();
}

tf::Status removeFinalizer(Context& ctx, const k8s::ResourceRef& ref, const nlohmann::json& object,
                           const std::string& finalizer) {
  nlohmann::json kept = nlohmann::json::array();
  for (const auto& f : object["metadata"].value("finalizers", nlohmann::json::array()))
    if (f != finalizer) kept.push_back(f);
  nlohmann::json patch = nlohmann::json::array(
      {{{"op", "test"}, {"path", "/metadata/resourceVersion"}, {"value", object["metadata"].value("resourceVersion", "")}},
       {{"op", "replace"}, {"path", "/metadata/finalizers"}, {"value", kept}}});
  auto r = ctx.client.patch(ref, object["metadata"].value("namespace", ""), nameOf(object), k8s::PatchType::Json, patch);
  if (!r && !r.error().isNotFound()) return toStatus(r.error(), "finalizer of " + ref.kind + " " + nameOf(object));
  return tf::Status::ok();
}

tf::Result<Outcome> finalizeAfterChildren(Context& ctx, const k8s::ResourceRef& ownerRef, const nlohmann::json& owner,
                                          const k8s::ResourceRef& childRef, const std::vector<k8s::ObjectPtr>& children) {
  if (!hasFinalizer(owner, k8s::api::kFinalizer)) return Outcome::done();
  for (const auto& child : children) {
    if (isDeleting(*child)) continue;
    auto r = ctx.client.remove(childRef, "", nameOf(*child));
    if (!r && !r.error().isNotFound()) return toStatus(r.error(), "deleting " + childRef.kind + " " + nameOf(*child));
  }
  if (!children.empty()) return Outcome::after(std::chrono::seconds(1));
  TF_RETURN_IF_ERROR(removeFinalizer(ctx, ownerRef, owner, k8s::api::kFinalizer));
  return Outcome::done();
}

}  // namespace tf::controller
