#include "agent/commands.h"

#include "k8s/api/v1/types.h"
#include "k8s/api/well_known.h"

namespace tf::agent {
namespace {

namespace v1 = k8s::api::v1;
using nlohmann::json;

Result<std::string> nameArg(const json& args, const std::string& verb, const char* field, bool required = true,
                            const std::string& fallback = "") {
  auto it = args.find(field);
  if (it == args.end()) {
    if (!required) return fallback;
    return invalidArgument(verb + ": args." + field + " missing");
  }
  if (!it->is_string() || it->get<std::string>().empty() || it->get<std::string>().size() > protocol::kMaxNameBytes)
    return invalidArgument(verb + ": args." + field + ": expected an object name");
  return it->get<std::string>();
}

}  // namespace

Result<PatchPlan> planCommand(const protocol::Command& c) {
  const json& a = c.args;
  if (!a.is_object()) return invalidArgument(c.verb + ": args: expected an object");
  if (c.verb == "applyPoolSpec") {
    auto pool = nameArg(a, c.verb, "pool");
    if (!pool) return pool.status();
    auto spec = a.find("spec");
    if (spec == a.end() || !spec->is_object()) return invalidArgument("applyPoolSpec: args.spec: expected an object");
    return PatchPlan{v1::GpuPool::kResource, "", *pool, {{"spec", *spec}}};
  }
  if (c.verb == "scaleWorkload") {
    auto ns = nameArg(a, c.verb, "namespace", false, "default");
    if (!ns) return ns.status();
    auto name = nameArg(a, c.verb, "name");
    if (!name) return name.status();
    auto r = a.find("replicas");
    if (r == a.end() || !r->is_number_integer() || r->get<int64_t>() < 0 || r->get<int64_t>() > INT32_MAX)
      return invalidArgument("scaleWorkload: args.replicas: expected an integer from 0 to 2147483647");
    return PatchPlan{v1::TensorFusionWorkload::kResource, *ns, *name, {{"spec", {{"replicas", r->get<int64_t>()}}}}};
  }
  if (c.verb == "cordonGpu") {
    auto gpu = nameArg(a, c.verb, "gpu");
    if (!gpu) return gpu.status();
    bool cordon = true;
    if (auto f = a.find("cordon"); f != a.end()) {
      if (!f->is_boolean()) return invalidArgument("cordonGpu: args.cordon: expected true or false");
      cordon = f->get<bool>();
    }
    json label = cordon ? json("true") : json(nullptr);  // null removes the label
    return PatchPlan{v1::Gpu::kResource, "", *gpu, {{"metadata", {{"labels", {{k8s::api::kLabelCordoned, label}}}}}}};
  }
  return invalidArgument("unknown verb \"" + c.verb + "\"");
}

CommandRunner::CommandRunner(Executor executor, size_t remember)
    : executor_(std::move(executor)), remember_(remember == 0 ? 1 : remember) {}

protocol::CommandResult CommandRunner::run(const protocol::Command& c, int64_t portalNowMs) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = done_.find(c.id); it != done_.end()) return it->second;
  protocol::CommandResult r{c.id, false, "", json::object()};
  if (c.deadlineMs > 0 && portalNowMs > c.deadlineMs) {
    r.detail = "deadline passed before the agent could run it";
  } else if (auto plan = planCommand(c); !plan) {
    r.detail = plan.status().message();
  } else {
    ++executions_;
    auto out = executor_(*plan);
    if (out) {
      r.ok = true;
      r.result = *out;
      r.detail = plan->resource.kind + " " + (plan->ns.empty() ? "" : plan->ns + "/") + plan->name + " patched";
    } else {
      r.detail = out.status().message();
    }
  }
  done_[c.id] = r;
  order_.push_back(c.id);
  while (order_.size() > remember_) {
    done_.erase(order_.front());
    order_.pop_front();
  }
  return r;
}

}  // namespace tf::agent
