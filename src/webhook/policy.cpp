#include "webhook/policy.h"

#include <algorithm>
#include <map>

#include "k8s/api/well_known.h"

namespace tf::webhook {
namespace {

using k8s::api::Quantity;

std::string key(Field f) { return specOf(f).key; }
std::string q(std::string_view s) { return "\"" + std::string(s) + "\""; }
Status deny(Field f, const std::string& why) { return invalidArgument(key(f) + ": " + why); }

const std::string& nameOf(const v1::ObjectMeta& m) {
  static const std::string empty;
  return m.name ? *m.name : empty;
}

// The resource fields of one layer (profile, quota, annotations) onto the accumulated
// values: tflops and compute-percent are alternatives, so a layer that sets one drops the
// other's earlier value.
void overlayResources(Values& into, const Values& layer) {
  const bool tflops = layer.has(Field::TflopsRequest) || layer.has(Field::TflopsLimit);
  const bool compute = layer.has(Field::ComputeRequest) || layer.has(Field::ComputeLimit);
  if (tflops) into.erase(Field::ComputeRequest), into.erase(Field::ComputeLimit);
  if (compute) into.erase(Field::TflopsRequest), into.erase(Field::TflopsLimit);
  for (const auto& [f, v] : layer.all()) into.set(f, v);
}

// A percentage held as a Quantity (the CRDs' `compute`) as the annotation's integer.
void setPercent(Values& v, Field f, const std::optional<Quantity>& compute) {
  if (compute) v.set(f, std::clamp<int64_t>(compute->value(), 0, 100));
}

void resourceLayer(Values& v, const v1::Resource& r, bool request) {
  v.set(request ? Field::TflopsRequest : Field::TflopsLimit, r.tflops);
  v.set(request ? Field::VramRequest : Field::VramLimit, r.vram);
  setPercent(v, request ? Field::ComputeRequest : Field::ComputeLimit, r.compute);
  if (r.compute && r.tflops.isZero()) v.erase(request ? Field::TflopsRequest : Field::TflopsLimit);
}

Values profileLayer(const v1::WorkloadProfileSpec& s) {
  Values v;
  if (s.poolName) v.set(Field::GpuPool, *s.poolName);
  if (s.resources) {
    resourceLayer(v, s.resources->requests, true);
    resourceLayer(v, s.resources->limits, false);
  }
  if (s.qos) v.set(Field::Qos, *s.qos);
  if (s.isLocalGPU) v.set(Field::IsLocalGpu, *s.isLocalGPU);
  if (s.sidecarWorker) v.set(Field::SidecarWorker, *s.sidecarWorker);
  if (s.isolation) v.set(Field::Isolation, *s.isolation);
  if (s.gpuModel) v.set(Field::GpuModel, *s.gpuModel);
  if (s.gpuCount) v.set(Field::GpuCount, static_cast<int64_t>(*s.gpuCount));
  if (s.gpuIndices) v.set(Field::GpuIndices, std::vector<int64_t>(s.gpuIndices->begin(), s.gpuIndices->end()));
  if (s.vendor) v.set(Field::Vendor, *s.vendor);
  if (s.gangScheduling) {
    if (s.gangScheduling->minMembers) v.set(Field::GangMinMembers, static_cast<int64_t>(*s.gangScheduling->minMembers));
    if (s.gangScheduling->timeout) v.set(Field::GangTimeout, *s.gangScheduling->timeout);
  }
  return v;
}

// Request defaults to limit and limit to request; a request above its limit is refused.
Status pairUp(Values& v, Field request, Field limit) {
  if (v.has(request) && !v.has(limit)) v.set(limit, v.all().at(request));
  if (v.has(limit) && !v.has(request)) v.set(request, v.all().at(limit));
  if (!v.has(request)) return Status::ok();
  const bool above = specOf(request).kind == Kind::Quantity ? *v.quantity(request) > *v.quantity(limit)
                                                            : *v.integer(request) > *v.integer(limit);
  if (above)
    return deny(request, formatValue(v.all().at(request)) + " is above " + key(limit) + " " +
                             formatValue(v.all().at(limit)));
  return Status::ok();
}

std::string labelOf(const v1::ObjectMeta& m, const char* label) {
  if (!m.labels) return {};
  auto it = m.labels->find(label);
  return it == m.labels->end() ? std::string() : it->second;
}

}  // namespace

std::string gpuModelOf(const v1::Gpu& g) {
  if (!g.status) return {};
  return g.status->gpuModel.empty() ? g.status->model.value_or("") : g.status->gpuModel;
}

PoolGpus summarizePoolGpus(const std::vector<v1::Gpu>& gpus, const std::string& pool) {
  PoolGpus out;
  std::map<std::string, int64_t> perNode;
  for (const auto& g : gpus) {
    if (labelOf(g.metadata, k8s::api::kLabelGpuPool) != pool) continue;
    out.mostOnOneNode = std::max(out.mostOnOneNode, ++perNode[labelOf(g.metadata, k8s::api::kLabelManagedBy)]);
    if (g.status) out.capacityByModel.insert_or_assign(gpuModelOf(g), g.status->capacity);
  }
  return out;
}

Result<std::string> choosePool(const Values& annotations, const std::optional<v1::WorkloadProfile>& profile,
                               const std::vector<v1::GpuPool>& pools) {
  std::optional<std::string> want = annotations.text(Field::GpuPool);
  if (!want && profile && profile->spec && profile->spec->poolName) want = profile->spec->poolName;
  if (want) {
    for (const auto& p : pools)
      if (nameOf(p.metadata) == *want) return *want;
    return deny(Field::GpuPool, "GPUPool " + q(*want) + " not found");
  }
  std::vector<std::string> defaults;
  for (const auto& p : pools)
    if (p.metadata.annotations && p.metadata.annotations->count(k8s::api::kAnnotationIsDefaultPool) &&
        p.metadata.annotations->at(k8s::api::kAnnotationIsDefaultPool) == "true")
      defaults.push_back(nameOf(p.metadata));
  std::sort(defaults.begin(), defaults.end());
  if (defaults.empty())
    return deny(Field::GpuPool, std::string("not set, and no GPUPool is annotated ") +
                                    k8s::api::kAnnotationIsDefaultPool + ": \"true\"");
  return defaults.front();  // several defaults: the first by name, every replica alike
}

Result<Decision> decide(const nlohmann::json& pod, const std::string& workload, const ClusterView& view) {
  const nlohmann::json& meta = pod.value("metadata", nlohmann::json::object());
  const std::string ns = meta.value("namespace", "");
  auto user = parseAnnotations(meta.contains("annotations") ? meta["annotations"] : nlohmann::json());
  if (!user) return user.status();

  // 1. WorkloadProfile.
  Values v;
  if (auto profileName = user->text(Field::WorkloadProfile)) {
    if (!view.profile || nameOf(view.profile->metadata) != *profileName)
      return deny(Field::WorkloadProfile, "WorkloadProfile " + q(*profileName) + " not found in namespace " + q(ns));
    if (view.profile->spec) overlayResources(v, profileLayer(*view.profile->spec));
  }

  // 2. The pool and its defaults.
  auto poolName = choosePool(*user, user->has(Field::WorkloadProfile) ? view.profile : std::nullopt, view.pools);
  if (!poolName) return poolName.status();
  const v1::GpuPool* pool = nullptr;
  for (const auto& p : view.pools)
    if (nameOf(p.metadata) == *poolName) pool = &p;
  const v1::GpuPoolSpec emptySpec{};
  const v1::GpuPoolSpec& ps = pool->spec ? *pool->spec : emptySpec;
  v.set(Field::GpuPool, *poolName);
  if (!v.has(Field::IsLocalGpu)) v.set(Field::IsLocalGpu, ps.defaultUsingLocalGPU.value_or(true));
  if (!v.has(Field::Isolation)) v.set(Field::Isolation, ps.nodeManagerConfig.defaultIsolationMode.value_or("soft"));

  // 3. The namespace's first GPUResourceQuota: defaults for resources not set yet.
  std::vector<const v1::GpuResourceQuota*> quotas;
  for (const auto& quota : view.quotas) quotas.push_back(&quota);
  std::sort(quotas.begin(), quotas.end(),
            [](auto* a, auto* b) { return nameOf(a->metadata) < nameOf(b->metadata); });
  if (!quotas.empty() && quotas.front()->spec && quotas.front()->spec->single) {
    const auto& single = *quotas.front()->spec->single;
    const bool haveResources = v.has(Field::TflopsRequest) || v.has(Field::TflopsLimit) ||
                               v.has(Field::ComputeRequest) || v.has(Field::ComputeLimit) ||
                               v.has(Field::VramRequest) || v.has(Field::VramLimit);
    if (!haveResources) {
      Values q;
      if (single.defaultRequests) resourceLayer(q, *single.defaultRequests, true);
      if (single.defaultLimits) resourceLayer(q, *single.defaultLimits, false);
      overlayResources(v, q);
    }
  }

  // 4. The pod's annotations. Within them, tflops and compute-percent exclude each other.
  const bool userTflops = user->has(Field::TflopsRequest) || user->has(Field::TflopsLimit);
  const bool userCompute = user->has(Field::ComputeRequest) || user->has(Field::ComputeLimit);
  if (userTflops && userCompute)
    return deny(user->has(Field::ComputeRequest) ? Field::ComputeRequest : Field::ComputeLimit,
                "given together with " + key(user->has(Field::TflopsRequest) ? Field::TflopsRequest : Field::TflopsLimit) +
                    "; ask for TFLOPS or a percentage of the GPU, not both");
  overlayResources(v, *user);
  v.set(Field::GpuPool, *poolName);

  if (v.boolean(Field::SidecarWorker).value_or(false))
    return deny(Field::SidecarWorker, "\"true\" is not supported yet (no sidecar worker in this release)");
  v.erase(Field::SidecarWorker);

  // 5. GPUs: indices, count, model, dedicated.
  if (auto indices = v.ints(Field::GpuIndices)) {
    const auto n = static_cast<int64_t>(indices->size());
    if (user->has(Field::GpuCount) && *user->integer(Field::GpuCount) != n)
      return deny(Field::GpuCount, std::to_string(*user->integer(Field::GpuCount)) + " does not match " +
                                       key(Field::GpuIndices) + " (" + std::to_string(n) + " GPUs)");
    if (n < specOf(Field::GpuCount).min || n > specOf(Field::GpuCount).max)
      return deny(Field::GpuIndices, std::to_string(n) + " GPUs, not in 1..128");
    v.set(Field::GpuCount, n);
  }
  if (!v.has(Field::GpuCount)) v.set(Field::GpuCount, int64_t{1});
  const int64_t gpuCount = *v.integer(Field::GpuCount);
  const int64_t most = view.poolGpus.mostOnOneNode;
  // A pool with no GPU yet may get nodes later; only a pool that has some is held to them.
  if (most > 0 && gpuCount > most)
    return deny(Field::GpuCount, std::to_string(gpuCount) + " GPUs, but no node of GPUPool " + q(*poolName) +
                                     " has more than " + std::to_string(most));

  if (v.boolean(Field::DedicatedGpu).value_or(false)) {
    auto model = v.text(Field::GpuModel);
    if (!model) return deny(Field::DedicatedGpu, "\"true\" needs " + key(Field::GpuModel) + " (the model whose whole GPU to take)");
    auto whole = view.poolGpus.capacityByModel.find(*model);
    if (whole == view.poolGpus.capacityByModel.end())
      return deny(Field::GpuModel, "no GPU of model " + q(*model) + " in GPUPool " + q(*poolName) +
                                       " to dedicate (" + key(Field::DedicatedGpu) + ")");
    Values full;
    resourceLayer(full, whole->second, true);
    resourceLayer(full, whole->second, false);
    overlayResources(v, full);
  }

  // 6. Requests and limits.
  for (auto [req, lim] : {std::pair{Field::TflopsRequest, Field::TflopsLimit}, {Field::VramRequest, Field::VramLimit},
                          {Field::ComputeRequest, Field::ComputeLimit}})
    if (Status s = pairUp(v, req, lim); !s) return s;
  for (Field f : {Field::TflopsRequest, Field::TflopsLimit, Field::VramRequest, Field::VramLimit})
    if (auto qty = v.quantity(f); qty && qty->isZero()) v.erase(f);

  // 7. Isolation this build can give.
  const std::string isolation = *v.text(Field::Isolation);
  const std::string vendor = v.text(Field::Vendor).value_or(ps.nodeManagerConfig.defaultVendor.value_or("NVIDIA"));
  if (isolation == "partitioned")
    return deny(Field::Isolation, "\"partitioned\" is not supported (no partition templates in this release)");
  if ((isolation == "soft" || isolation == "hard") && vendor != "NVIDIA")
    return deny(Field::Isolation, q(isolation) + " needs our CUDA limiter or stub, which vendor " + q(vendor) +
                                      " cannot use; use \"shared\"");

  const bool anyRequest = v.has(Field::TflopsRequest) || v.has(Field::ComputeRequest) || v.has(Field::VramRequest);
  if (!anyRequest && isolation != "shared")
    return deny(Field::TflopsRequest, "no GPU resources requested: set " + key(Field::TflopsRequest) + " or " +
                                          key(Field::ComputeRequest) + ", and " + key(Field::VramRequest) +
                                          " (or their limits), or name a " + key(Field::WorkloadProfile) +
                                          ", or give the namespace a GPUResourceQuota with defaults");

  // 8. Containers.
  std::vector<std::string> containers;
  for (const auto& c : pod.value("/spec/containers"_json_pointer, nlohmann::json::array()))
    containers.push_back(c.value("name", ""));
  Decision d;
  if (auto inject = v.list(Field::InjectContainer)) {
    for (const auto& name : *inject)
      if (std::find(containers.begin(), containers.end(), name) == containers.end())
        return deny(Field::InjectContainer, "the pod has no container " + q(name));
    d.containers = *inject;
  } else if (containers.size() > 1) {
    std::string names;
    for (const auto& c : containers) names += (names.empty() ? "" : ", ") + c;
    return deny(Field::InjectContainer, "required when the pod has more than one container (" + names + ")");
  } else {
    d.containers = containers;
  }
  if (!d.containers.empty()) v.set(Field::InjectContainer, d.containers);

  // 9. QoS: given, else high when requests equal limits (both non-zero), else the pool's default.
  if (!v.has(Field::Qos)) {
    auto same = [&](Field a, Field b) {
      if (specOf(a).kind == Kind::Quantity) return v.has(a) && v.has(b) && *v.quantity(a) == *v.quantity(b);
      return v.has(a) && v.has(b) && *v.integer(a) == *v.integer(b) && *v.integer(a) != 0;
    };
    const bool guaranteed = (same(Field::TflopsRequest, Field::TflopsLimit) || same(Field::ComputeRequest, Field::ComputeLimit)) &&
                            same(Field::VramRequest, Field::VramLimit);
    std::string qos = "medium";
    if (guaranteed) qos = "high";
    else if (ps.qosConfig && ps.qosConfig->defaultQoS) qos = *ps.qosConfig->defaultQoS;
    v.set(Field::Qos, qos);
  }

  // 10. The workload and the gang.
  d.workload = v.text(Field::Workload).value_or(workload);
  v.set(Field::Workload, d.workload);
  const auto minMembers = v.integer(Field::GangMinMembers);
  const auto gangEnabled = v.boolean(Field::GangEnabled);
  if (minMembers && *minMembers == 1)
    return deny(Field::GangMinMembers, "1 is not a gang: give 0 (no gang) or at least 2");
  if (gangEnabled.value_or(false) && minMembers.value_or(0) < 2)
    return deny(Field::GangMinMembers, std::string("required, at least 2, when ") + key(Field::GangEnabled) + " is \"true\"");
  if (gangEnabled.value_or(true) && minMembers.value_or(0) >= 2) {
    v.set(Field::GangGroupKey, ns + "/" + d.workload);
    v.set(Field::GangRequiredMembers, *minMembers);
  } else {
    v.erase(Field::GangTimeout);
  }

  d.pool = *poolName;
  d.ns = ns;
  d.isLocal = *v.boolean(Field::IsLocalGpu);
  d.isolation = isolation;
  d.qos = *v.text(Field::Qos);
  if (ps.componentConfig && ps.componentConfig->client) {
    const auto& c = *ps.componentConfig->client;
    d.clientImage = (d.isLocal ? c.embeddedModeImage : c.remoteModeImage).value_or(c.image.value_or(""));
    d.operatorEndpoint = c.operatorEndpoint.value_or("");
  }
  d.values = std::move(v);
  return d;
}

}  // namespace tf::webhook
