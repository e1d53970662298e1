#define TF_LOG_COMPONENT "scheduler"
#include "scheduler/extender.h"

#include <algorithm>

#include "common/log.h"
#include "k8s/api/well_known.h"
#include "scheduler/extender_api.h"

namespace tf::scheduler {
namespace api = k8s::api;
using allocator::Request;

namespace {

const char* kNotReady = "the TensorFusion ledger is not ready (no leader, or it is still rebuilding)";

Reply badRequest(const Status& s, std::string body) {
  TF_LOG(Warn, "extender: %s", s.message().c_str());
  return {400, std::move(body)};
}

}  // namespace

int64_t extenderScore(int score) {
  return std::clamp<int64_t>((static_cast<int64_t>(score) * kMaxExtenderPriority + 50) / 100, 0, kMaxExtenderPriority);
}

Extender::Extender(allocator::Allocator& ledger, ClusterOps& ops, ExtenderOptions options)
    : ledger_(ledger), ops_(ops), options_(std::move(options)) {}

void Extender::setReady(bool ready) { ready_ = ready; }

size_t Extender::pendingPreemptionsForTest() const {
  std::lock_guard lock(mu_);
  return preemptions_.size();
}

namespace {

Reply filterReply(const FilterResult& out, const ExtenderArgs& args) {
  return {200, encodeFilterResult(out, args), out.nodeNames.empty() || !out.error.empty()};
}

}  // namespace

Reply Extender::filter(const std::string& body) {
  auto args = parseExtenderArgs(body);
  if (!args) {
    FilterResult r;
    r.error = args.status().message();
    return badRequest(args.status(), encodeFilterResult(r, ExtenderArgs{}));
  }
  FilterResult out;
  if (!allocator::isWorkerPod(args->pod)) {
    out.nodeNames = args->nodeNames;  // not ours
    return filterReply(out, *args);
  }
  if (!ready_) {
    out.error = kNotReady;
    return filterReply(out, *args);
  }
  auto req = allocator::requestFromPod(args->pod);
  if (!req) {
    for (const auto& n : args->nodeNames) out.failedNodes.emplace_back(n, req.status().message());
    return filterReply(out, *args);
  }
  ledger_.expireReservations(options_.now());
  if (std::string waiting = preemptionUnderWay(req->uid); !waiting.empty()) {
    for (const auto& n : args->nodeNames) out.failedNodes.emplace_back(n, waiting);
    return filterReply(out, *args);
  }
  uint64_t generation = 0;
  auto fits = ledger_.filter(*req, args->nodeNames, &generation);
  if (!fits) {
    for (const auto& n : args->nodeNames) out.failedNodes.emplace_back(n, fits.status().message());
    return filterReply(out, *args);
  }
  LastFilter last{req->uid, generation, {}};
  last.passed.reserve(fits->size());
  for (auto& f : *fits) {
    if (f.fits) {
      last.passed.emplace_back(f.node, f.score);
      out.nodeNames.push_back(std::move(f.node));
    } else {
      out.failedNodes.emplace_back(std::move(f.node), std::move(f.reason));
    }
  }
  {
    std::lock_guard lock(mu_);
    last_ = std::move(last);
  }
  if (out.nodeNames.empty() && req->qos >= allocator::Qos::High) {
    const std::string note = preempt(*req, args->pod, args->nodeNames);
    if (!note.empty())
      for (auto& [node, why] : out.failedNodes) why = note;
  }
  return filterReply(out, *args);
}

// The reason to show while the pod's victims still hold their GPUs ("" when none do).
std::string Extender::preemptionUnderWay(const std::string& uid) {
  std::lock_guard lock(mu_);
  auto it = preemptions_.find(uid);
  if (it == preemptions_.end()) return "";
  size_t left = 0;
  for (const auto& v : it->second) left += ledger_.allocation(v).has_value();
  if (left > 0) return "waiting for " + std::to_string(left) + " preempted pod(s) to release their GPUs";
  preemptions_.erase(it);
  return "";
}

// Returns the reason to show while a preemption is under way ("" if none).
std::string Extender::preempt(const Request& r, const nlohmann::json& pod, const std::vector<std::string>& nodes) {
  auto plan = ledger_.planPreemption(r, nodes, options_.now());
  if (!plan) return "";
  // What the victims free is the preemptor's from now on, before they are even asked to go.
  if (Status s = ledger_.reserve(r, *plan, options_.now() + options_.reservationTtl); !s) {
    TF_LOG(Warn, "preempting for %s/%s: %s", r.ns.c_str(), r.name.c_str(), s.message().c_str());
    return "";
  }
  std::vector<std::string> uids;
  std::string names;
  for (const auto& v : plan->victims) {
    uids.push_back(v.uid);
    names += (names.empty() ? "" : ", ") + v.ns + "/" + v.name + " (" + allocator::qosName(v.qos) + ")";
  }
  {
    std::lock_guard lock(mu_);
    preemptions_[r.uid] = uids;
  }
  ops_.podEvent(pod, false, "Preempting",
                "preempting " + names + " on node " + plan->node + " for this " + allocator::qosName(r.qos) +
                    "-QoS pod");
  for (const auto& v : plan->victims) {
    Status s = ops_.deletePod(v.ns, v.name, v.uid);
    if (!s) TF_LOG(Warn, "preempting %s/%s: %s", v.ns.c_str(), v.name.c_str(), s.message().c_str());
    else TF_LOG(Info, "preempted %s/%s for %s/%s", v.ns.c_str(), v.name.c_str(), r.ns.c_str(), r.name.c_str());
  }
  return "preempting " + std::to_string(plan->victims.size()) + " lower-QoS pod(s) on node " + plan->node;
}

Reply Extender::prioritize(const std::string& body) {
  auto args = parseExtenderArgs(body);
  if (!args) return badRequest(args.status(), encodeHostPriorities({}));
  std::vector<HostPriority> list;
  std::optional<Request> req;
  if (allocator::isWorkerPod(args->pod) && ready_)
    if (auto r = allocator::requestFromPod(args->pod)) req = std::move(*r);
  if (req) {
    {
      // The nodes that passed the last filter of this pod, scored then, if nothing changed since.
      std::lock_guard lock(mu_);
      if (!req->uid.empty() && last_.uid == req->uid && last_.generation == ledger_.generation()) {
        list.reserve(args->nodeNames.size());
        size_t j = 0;  // the nodes asked about are a subsequence of those that passed
        for (const auto& n : args->nodeNames) {
          while (j < last_.passed.size() && last_.passed[j].first != n) ++j;
          if (j == last_.passed.size()) break;  // not one the filter passed, or another order: decide again
          list.push_back({n, extenderScore(last_.passed[j++].second)});
        }
        if (list.size() != args->nodeNames.size()) list.clear();
      }
    }
    if (list.empty())
      if (auto fits = ledger_.filter(*req, args->nodeNames))
        for (const auto& f : *fits) list.push_back({f.node, f.fits ? extenderScore(f.score) : 0});
  }
  if (list.empty())
    for (const auto& n : args->nodeNames) list.push_back({n, 0});
  return {200, encodeHostPriorities(list)};
}

Reply Extender::bind(const std::string& body) {
  auto args = parseBindingArgs(body);
  if (!args) return badRequest(args.status(), encodeBindingResult(args.status().message()));
  const auto fail = [](const std::string& why) { return Reply{200, encodeBindingResult(why), !why.empty()}; };
  if (!ready_) return fail(kNotReady);
  const std::string who = args->podNamespace + "/" + args->podName;
  auto pod = ops_.getPod(args->podNamespace, args->podName);
  if (!pod) return fail("pod " + who + ": " + pod.status().message());
  auto req = allocator::requestFromPod(*pod);
  if (!req) return fail("pod " + who + ": " + req.status().message());
  if (!args->podUid.empty() && req->uid != args->podUid)
    return fail("pod " + who + " has UID " + req->uid + ", the binding names " + args->podUid);
  if (!allocator::isWorkerPod(*pod)) {
    Status s = ops_.bindPod(req->ns, req->name, req->uid, args->node, {});
    return fail(s ? "" : s.message());
  }
  const bool recorded = !req->gpuIds.empty();  // an earlier attempt wrote gpu-ids
  if (recorded) ledger_.observe(*req, args->node);
  auto ids = ledger_.assume(*req, args->node);
  if (!ids) return fail("pod " + who + ": " + ids.status().message());
  if (!recorded) {
    const auto wait = req->gangTimeout.count() > 0
                          ? std::min<std::chrono::nanoseconds>(req->gangTimeout, options_.maxGangWait)
                          : std::chrono::nanoseconds(options_.maxGangWait);
    if (Status s = ledger_.waitForGang(*req, std::chrono::steady_clock::now() + wait); !s) {
      ledger_.rollback(req->uid);
      ops_.podEvent(*pod, true, "GangTimeout", s.message());
      return fail("pod " + who + ": " + s.message());
    }
    std::map<std::string, std::string> ann;
    std::string joined;
    for (const auto& id : *ids) joined += (joined.empty() ? "" : ",") + id;
    ann[api::kAnnotationGpuIds] = joined;
    if (req->isolation == allocator::Isolation::Hard && req->limit.computePercent < 0 && req->limit.milliTflops > 0)
      if (auto g = ledger_.gpu(ids->front()); g && g->capacity.milliTflops > 0) {
        const int64_t pct = (req->limit.milliTflops * 100 + g->capacity.milliTflops - 1) / g->capacity.milliTflops;
        ann[api::kAnnotationEffectiveHardSmPercent] = std::to_string(std::clamp<int64_t>(pct, 1, 100));
      }
    if (Status s = ops_.bindPod(req->ns, req->name, req->uid, args->node, ann); !s) {
      // The write may have happened with its answer lost: the apiserver's pod says.
      auto now = ops_.readPod(req->ns, req->name);
      const bool bound = now && now->value("/spec/nodeName"_json_pointer, std::string()) == args->node &&
                         now->value("/metadata/uid"_json_pointer, std::string()) == req->uid &&
                         now->value("/metadata/annotations"_json_pointer, nlohmann::json::object())
                                 .value(api::kAnnotationGpuIds, std::string()) == joined;
      if (!bound) {
        ledger_.rollback(req->uid);
        return fail("pod " + who + ": binding to " + args->node + ": " + s.message());
      }
      TF_LOG(Info, "pod %s: the binding's answer was lost (%s) but it is bound as asked", who.c_str(),
             s.message().c_str());
    }
    // Bound with gpu-ids: the booking is the cluster's record from here on.
    Status commit = ledger_.commit(req->uid);
    return fail(commit ? "" : "pod " + who + ": " + commit.message());
  }
  // gpu-ids was written by an earlier attempt: the record stands; bind on it.
  Status commit = ledger_.commit(req->uid);
  if (!commit) return fail("pod " + who + ": " + commit.message());
  if (Status s = ops_.bindPod(req->ns, req->name, req->uid, args->node, {}); !s)
    return fail("pod " + who + ": binding to " + args->node + ": " + s.message());
  return {200, encodeBindingResult("")};
}

}  // namespace tf::scheduler
