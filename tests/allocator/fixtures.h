// Pods and GPUs as the cluster holds them, for the allocator's tests.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "allocator/types.h"

namespace tf::allocator::testing {

inline nlohmann::json pod(const std::string& name, std::map<std::string, std::string> annotations,
                          const std::string& ns = "default") {
  nlohmann::json ann = nlohmann::json::object();
  for (auto& [k, v] : annotations) ann["tensor-fusion.ai/" + k] = v;
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", name},
            {"namespace", ns},
            {"uid", "uid-" + name},
            {"creationTimestamp", "2026-01-01T00:00:00Z"},
            {"labels", {{"tensor-fusion.ai/component", "worker"}, {"tensor-fusion.ai/workload", name}}},
            {"annotations", ann}}},
          {"spec", {{"schedulerName", "tensor-fusion-scheduler"}}}};
}

inline Request request(const std::string& name, std::map<std::string, std::string> annotations,
                       const std::string& ns = "default") {
  auto r = requestFromPod(pod(name, std::move(annotations), ns));
  if (!r) throw std::runtime_error(r.status().toString());
  return *r;
}

// capacity in whole TFLOPS and GiB.
inline Gpu gpu(const std::string& name, const std::string& node, int64_t tflops = 100, int64_t vramGi = 40,
               const std::string& model = "A100", const std::string& pool = "pool-a") {
  Gpu g;
  g.name = name;
  g.node = node;
  g.pool = pool;
  g.model = model;
  g.vendor = "NVIDIA";
  g.phase = "Running";
  g.isolationMode = "soft";
  g.capacity = {tflops * 1000, vramGi << 30};
  return g;
}

}  // namespace tf::allocator::testing
