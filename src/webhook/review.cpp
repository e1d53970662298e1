#define TF_LOG_COMPONENT "webhook"
#include "webhook/review.h"

#include <random>

#include "common/log.h"
#include "k8s/api/well_known.h"
#include "k8s/base64.h"
#include "k8s/builtin.h"
#include "k8s/typed.h"

namespace tf::webhook {
namespace {

using nlohmann::json;
namespace wk = k8s::api;

json controllerRefOf(const json& object) {
  for (const auto& ref : object.value("/metadata/ownerReferences"_json_pointer, json::array()))
    if (ref.value("controller", false)) return ref;
  return nullptr;
}

bool labelled(const json& pod) {
  return pod.value("/metadata/labels"_json_pointer, json::object()).value(wk::kLabelEnabled, "") == "true";
}

}  // namespace

Result<ReviewRequest> parseReview(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return invalidArgument("the body is not JSON");
  if (!j.is_object() || j.value("apiVersion", "") != "admission.k8s.io/v1" || j.value("kind", "") != "AdmissionReview")
    return invalidArgument("expected an admission.k8s.io/v1 AdmissionReview");
  if (!j.contains("request") || !j["request"].is_object()) return invalidArgument("AdmissionReview without a request");
  const json& r = j["request"];
  if (!r.contains("uid") || !r["uid"].is_string() || r["uid"].get<std::string>().empty())
    return invalidArgument("request.uid is missing");
  if (!r.contains("object") || !r["object"].is_object()) return invalidArgument("request.object is missing");
  ReviewRequest out;
  out.uid = r["uid"];
  out.operation = r.value("operation", "");
  out.ns = r.contains("namespace") && r["namespace"].is_string() ? r["namespace"].get<std::string>() : "";
  out.dryRun = r.contains("dryRun") && r["dryRun"].is_boolean() && r["dryRun"].get<bool>();
  out.object = r["object"];
  return out;
}

json allowResponse(const std::string& uid, const json& patch) {
  json response = {{"uid", uid}, {"allowed", true}};
  if (patch.is_array() && !patch.empty()) {
    response["patchType"] = "JSONPatch";
    response["patch"] = k8s::base64Encode(patch.dump());
  }
  return {{"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"response", response}};
}

json denyResponse(const std::string& uid, int code, const std::string& message) {
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"response", {{"uid", uid}, {"allowed", false}, {"status", {{"code", code}, {"message", message}}}}}};
}

json topOwnerOf(const json& pod, const std::string& ns, const OwnerLookup& controllerOf) {
  json ref = controllerRefOf(pod);
  if (!ref.is_object() || ref.value("name", "").empty()) return nullptr;
  const std::string kind = ref.value("kind", "");
  if (kind == "ReplicaSet" || kind == "Job") {
    json top = controllerOf(kind, ns, ref["name"]);
    const std::string want = kind == "ReplicaSet" ? "Deployment" : "CronJob";
    if (top.is_object() && top.value("kind", "") == want && !top.value("name", "").empty()) return top;
  }
  return ref;
}

std::string workloadNameOf(const json& pod, const json& topOwner) {
  if (topOwner.is_object()) return topOwner["name"];
  const std::string name = pod.value("/metadata/name"_json_pointer, std::string());
  if (!name.empty()) return name;
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  std::random_device rd;
  std::string suffix;
  for (int i = 0; i < 8; ++i) suffix += kAlphabet[rd() % (sizeof kAlphabet - 1)];
  return pod.value("/metadata/generateName"_json_pointer, std::string("pod-")) + suffix;
}

json Admitter::review(const ReviewRequest& request) {
  try {
    auto patch = admit(request);
    if (patch) return allowResponse(request.uid, *patch);
    const Status& s = patch.status();
    const int code = s.code() == Code::InvalidArgument ? 403 : 500;
    TF_LOG(Info, "pod %s/%s denied: %s", request.ns.c_str(),
           request.object.value("/metadata/name"_json_pointer, request.object.value("/metadata/generateName"_json_pointer, std::string())).c_str(),
           s.message().c_str());
    return denyResponse(request.uid, code, s.message());
  } catch (const std::exception& e) {
    return denyResponse(request.uid, 500, std::string("tensor-fusion webhook: ") + e.what());
  }
}

Result<json> Admitter::admit(const ReviewRequest& r) {
  const json& pod = r.object;
  // Not ours, or already done: pass untouched (the objectSelector should have kept them away).
  if (r.operation != "CREATE" || pod.value("kind", "Pod") != "Pod" || !labelled(pod) || alreadyInjected(pod))
    return json(nullptr);
  const std::string ns = r.ns.empty() ? pod.value("/metadata/namespace"_json_pointer, std::string()) : r.ns;
  json withNs = pod;
  withNs["metadata"]["namespace"] = ns;

  auto user = parseAnnotations(pod.value("/metadata/annotations"_json_pointer, json()));
  if (!user) return user.status();
  auto view = viewFor(*user, ns);
  if (!view) return view.status();

  const json owner = topOwnerOf(pod, ns, [this](const std::string& kind, const std::string& ns, const std::string& name) -> json {
    auto o = client_.get(kind == "ReplicaSet" ? k8s::builtin::kReplicaSets : k8s::builtin::kJobs, ns, name);
    return o ? controllerRefOf(*o) : json(nullptr);
  });
  auto d = decide(withNs, workloadNameOf(pod, owner), *view);
  if (!d) return d.status();
  if (!d->isLocal) d->connectionName = newConnectionName(pod);
  if (!r.dryRun)
    if (Status s = ensureWorkload(owner, ns, *d); !s) return s;
  return podPatch(pod, *d, options_);
}

Result<ClusterView> Admitter::viewFor(const Values& user, const std::string& ns) {
  const auto profileName = user.text(Field::WorkloadProfile);
  if (cache_ && cache_->synced()) {
    ClusterView view;
    view.pools = cache_->pools();
    if (profileName) view.profile = cache_->profile(ns, *profileName);
    view.quotas = cache_->quotas(ns);
    // What the cache has not seen yet (a pool or profile created a moment ago) is read live.
    if (auto pool = choosePool(user, view.profile, view.pools); pool && (!profileName || view.profile)) {
      view.poolGpus = cache_->poolGpus(*pool);
      cachedViews_.fetch_add(1, std::memory_order_relaxed);
      return view;
    }
  }
  liveViews_.fetch_add(1, std::memory_order_relaxed);
  ClusterView view;
  auto pools = k8s::typed::list<v1::GpuPool>(client_, "");
  if (!pools) return unavailable("listing GPUPools: " + pools.error().toString());
  view.pools = std::move(*pools);
  if (profileName) {
    auto p = k8s::typed::get<v1::WorkloadProfile>(client_, ns, *profileName);
    if (p) view.profile = std::move(*p);
    else if (!p.error().isNotFound()) return unavailable("reading WorkloadProfile: " + p.error().toString());
  }
  auto quotas = k8s::typed::list<v1::GpuResourceQuota>(client_, ns);
  if (!quotas) return unavailable("listing GPUResourceQuotas: " + quotas.error().toString());
  view.quotas = std::move(*quotas);
  if (auto pool = choosePool(user, view.profile, view.pools)) {
    auto gpus = k8s::typed::list<v1::Gpu>(client_, "", {.labelSelector = std::string(wk::kLabelGpuPool) + "=" + *pool});
    if (!gpus) return unavailable("listing GPUs: " + gpus.error().toString());
    view.poolGpus = summarizePoolGpus(*gpus, *pool);
  }
  return view;
}

Status Admitter::ensureWorkload(const json& topOwner, const std::string& ns, const Decision& d) {
  auto existing = client_.get(v1::TensorFusionWorkload::kResource, ns, d.workload);
  if (existing) return Status::ok();
  if (!existing.error().isNotFound()) return unavailable("reading TensorFusionWorkload: " + existing.error().toString());
  const Values& v = d.values;
  json spec = {{"poolName", d.pool}, {"qos", d.qos}, {"isLocalGPU", d.isLocal}, {"isolation", d.isolation},
               {"gpuCount", *v.integer(Field::GpuCount)}};
  auto resource = [&](Field tflops, Field compute, Field vram) {
    json r = {{"tflops", v.quantity(tflops).value_or(k8s::api::Quantity()).toString()},
              {"vram", v.quantity(vram).value_or(k8s::api::Quantity()).toString()}};
    if (auto c = v.integer(compute)) r["compute"] = std::to_string(*c);
    return r;
  };
  spec["resources"] = {{"requests", resource(Field::TflopsRequest, Field::ComputeRequest, Field::VramRequest)},
                       {"limits", resource(Field::TflopsLimit, Field::ComputeLimit, Field::VramLimit)}};
  if (auto m = v.text(Field::GpuModel)) spec["gpuModel"] = *m;
  if (auto m = v.text(Field::Vendor)) spec["vendor"] = *m;
  if (auto n = v.integer(Field::GangRequiredMembers)) {
    spec["gangScheduling"] = {{"minMembers", *n}};
    if (auto t = v.text(Field::GangTimeout)) spec["gangScheduling"]["timeout"] = *t;
  }
  json meta = {{"name", d.workload}, {"namespace", ns}, {"labels", {{wk::kLabelGpuPool, d.pool}}}};
  // The workload belongs to the pod's top owner (a Deployment, a CronJob...), and goes with it.
  // A standalone pod's workload has no owner (the pod's UID is not known before it exists).
  if (topOwner.is_object() && d.workload == topOwner.value("name", "")) {
    json ref = topOwner;
    ref.erase("blockOwnerDeletion");  // would need update on the owner's finalizers
    meta["ownerReferences"] = json::array({ref});
  }
  json object = {{"apiVersion", v1::TensorFusionWorkload::kResource.apiVersion()},
                 {"kind", "TensorFusionWorkload"},
                 {"metadata", meta},
                 {"spec", spec}};
  auto created = client_.create(v1::TensorFusionWorkload::kResource, object, ns);
  if (!created && !created.error().isAlreadyExists())
    return unavailable("creating TensorFusionWorkload " + d.workload + ": " + created.error().toString());
  return Status::ok();
}

}  // namespace tf::webhook
