#define TF_LOG_COMPONENT "controller"
#include "common/log.h"
#include "controller/reconcilers.h"
#include "k8s/builtin.h"

namespace tf::controller {
namespace v1 = k8s::api::v1;
namespace wk = k8s::api;
using nlohmann::json;

namespace {

bool ended(const json& pod) {
  const std::string phase = pod.value("/status/phase"_json_pointer, std::string());
  return phase == "Succeeded" || phase == "Failed";
}

}  // namespace

std::vector<std::string> connectionIndexKeys(const json& pod) {
  const std::string ns = pod.value("/metadata/namespace"_json_pointer, "");
  std::vector<std::string> keys;
  for (const auto& n : connectionNamesOf(pod)) keys.push_back(k8s::objectKey(ns, n));
  if (isDedicatedWorker(pod)) keys.push_back(k8s::objectKey(ns, nameOf(pod)));
  return keys;
}

tf::Result<Outcome> ConnectionReconciler::reconcile(const std::string& key) {
  const auto slash = key.find('/');
  const std::string ns = key.substr(0, slash), name = key.substr(slash + 1);
  k8s::ObjectPtr conn = ctx_.connections.store().get(key);
  k8s::ObjectPtr client, worker;
  for (const auto& p : ctx_.pods.store().byIndex(kIndexConnection, key)) {
    if (isClientPod(*p)) client = p;
    else if (isDedicatedWorker(*p) && nameOf(*p) == name) worker = p;
  }
  if (conn && isDeleting(*conn)) return Outcome::done();  // the garbage collector takes the worker

  // The client is gone or done: so is its connection (and, through it, the worker and the GPU).
  if (!client || isDeleting(*client) || ended(*client)) {
    if (conn && client && ended(*client)) {
      k8s::DeleteOptions del;
      del.propagationPolicy = "Background";
      del.preconditionUid = (*conn)["metadata"].value("uid", "");
      auto r = ctx_.client.remove(v1::TensorFusionConnection::kResource, ns, name, del);
      if (!r && !r.error().isNotFound()) return toStatus(r.error(), "deleting TensorFusionConnection " + key);
      TF_LOG(Info, "connection %s released: its client %s ended", key.c_str(), nameOf(*client).c_str());
    }
    return Outcome::done();
  }

  if (!conn) {
    auto r = ctx_.client.create(v1::TensorFusionConnection::kResource, connectionFor(*client, name), ns);
    if (!r && !r.error().isAlreadyExists()) return toStatus(r.error(), "creating TensorFusionConnection " + key);
    return Outcome::done();  // its informer event brings us back
  }

  if (!worker) {
    json pool;
    const std::string poolName =
        client->value("/metadata/annotations"_json_pointer, json::object()).value(wk::kAnnotationGpuPool, "");
    if (k8s::ObjectPtr p = ctx_.pools.store().get(poolName)) pool = *p;
    auto r = ctx_.client.create(k8s::builtin::kPods, workerPodFor(*conn, *client, pool, options_), ns);
    if (!r && !r.error().isAlreadyExists()) {
      // Refused at admission (a quota, no pool...): the user sees why on the connection and the pod.
      (void)ctx_.events.event(*conn, k8s::EventType::Warning, "WorkerNotCreated", r.error().message);
      (void)ctx_.events.event(*client, k8s::EventType::Warning, "WorkerNotCreated", r.error().message);
      TF_RETURN_IF_ERROR(patchStatus(ctx_, v1::TensorFusionConnection::kResource, ns, name,
                                     {{"phase", "Failed"}, {"connectionURL", nullptr}, {"workerName", nullptr}}));
      return Outcome::after(std::chrono::seconds(10));
    }
    if (r) (void)ctx_.events.event(*conn, k8s::EventType::Normal, "WorkerCreated", "worker pod " + name + " for client " + nameOf(*client));
    return Outcome::done();
  }

  json want = connectionStatus(worker.get(), options_.port);
  const json have = conn->value("status", json::object());
  json merged = have;
  merged.merge_patch(want);
  if (merged != have)
    TF_RETURN_IF_ERROR(patchStatus(ctx_, v1::TensorFusionConnection::kResource, ns, name, want));
  // A worker that ended has lost its client's state: remove it, and a new one is made.
  if (ended(*worker) && !isDeleting(*worker)) {
    k8s::DeleteOptions del;
    del.preconditionUid = (*worker)["metadata"].value("uid", "");
    auto r = ctx_.client.remove(k8s::builtin::kPods, ns, name, del);
    if (!r && !r.error().isNotFound()) return toStatus(r.error(), "deleting the ended worker " + key);
    (void)ctx_.events.event(*conn, k8s::EventType::Warning, "WorkerEnded", "worker pod " + name + " ended (" +
                                                  worker->value("/status/phase"_json_pointer, std::string()) +
                                                  "); a new one is made");
  }
  return Outcome::done();
}

}  // namespace tf::controller
