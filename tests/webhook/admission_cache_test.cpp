// The webhook cache's per-pool GPU summaries: kept right as GPUs come, change and go, and
// recomputed only when what they hold changes (not when a GPU's available capacity does).
// The informers themselves run against the real apiserver in tests/cluster (e2e_webhook.py).
#include "webhook/admission_cache.h"

#include <gtest/gtest.h>

namespace tf::webhook {
namespace {

using nlohmann::json;

json gpu(const std::string& name, const std::string& node, const std::string& pool, const std::string& model,
         const std::string& available = "100") {
  return {{"apiVersion", "tensor-fusion.ai/v1"},
          {"kind", "GPU"},
          {"metadata", {{"name", name}, {"labels", {{"tensor-fusion.ai/managed-by", node}, {"tensor-fusion.ai/gpupool", pool}}}}},
          {"status",
           {{"phase", "Running"}, {"vendor", "NVIDIA"}, {"uuid", name}, {"gpuModel", model}, {"message", ""},
            {"nodeSelector", {{"kubernetes.io/hostname", node}}},
            {"capacity", {{"tflops", "100"}, {"vram", "16Gi"}}},
            {"available", {{"tflops", available}, {"vram", "16Gi"}}}}}};
}

// The store and the summaries as an informer drives them: the store first, then the handler.
class Summaries : public testing::Test {
protected:
  Summaries() { store.addIndexer(PoolGpuSummaries::kPoolIndex, k8s::labelIndexFunc("tensor-fusion.ai/gpupool")); }
  void add(const json& g) {
    store.upsert(std::make_shared<json>(g));
    s.onAdd(g);
  }
  void update(const json& g) {
    auto old = store.upsert(std::make_shared<json>(g));
    s.onUpdate(*old, g);
  }
  void remove(const std::string& name) {
    auto old = store.remove(name);
    s.onDelete(*old);
  }
  k8s::Store store;
  PoolGpuSummaries s;
};

TEST_F(Summaries, FollowGpusAcrossPoolsAndNodes) {
  add(gpu("a", "n1", "p", "A100"));
  add(gpu("b", "n1", "p", "A100"));
  add(gpu("c", "n2", "q", "T4"));
  EXPECT_EQ(s.of("p", store).mostOnOneNode, 2);
  EXPECT_EQ(s.of("q", store).capacityByModel.count("T4"), 1u);
  // b moves to pool q: both pools change.
  update(gpu("b", "n1", "q", "A100"));
  EXPECT_EQ(s.of("p", store).mostOnOneNode, 1);
  EXPECT_EQ(s.of("q", store).capacityByModel.size(), 2u);
  remove("a");
  PoolGpus p = s.of("p", store);
  EXPECT_EQ(p.mostOnOneNode, 0);
  EXPECT_TRUE(p.capacityByModel.empty());
  EXPECT_EQ(s.of("nothing", store).mostOnOneNode, 0);
}

TEST_F(Summaries, AnAllocationDoesNotRecompute) {
  add(gpu("a", "n1", "p", "A100"));
  EXPECT_EQ(s.of("p", store).mostOnOneNode, 1);
  const int computed = s.recomputations();
  update(gpu("a", "n1", "p", "A100", "40"));  // 60 TFLOPS booked: available changed only
  EXPECT_EQ(s.of("p", store).mostOnOneNode, 1);
  EXPECT_EQ(s.recomputations(), computed);
  update(gpu("a", "n1", "p", "H100", "40"));  // the model changed: recomputed
  EXPECT_EQ(s.of("p", store).capacityByModel.count("H100"), 1u);
  EXPECT_EQ(s.recomputations(), computed + 1);
}

TEST_F(Summaries, AMalformedGpuIsSkipped) {
  add(gpu("a", "n1", "p", "A100"));
  json bad = gpu("b", "n1", "p", "A100");
  bad["status"]["capacity"]["vram"] = "lots";  // not a quantity
  add(bad);
  PoolGpus p = s.of("p", store);
  EXPECT_EQ(p.mostOnOneNode, 1);
  EXPECT_EQ(p.capacityByModel.size(), 1u);
}

}  // namespace
}  // namespace tf::webhook
