// The generated tensor-fusion.ai/v1 types against the sample manifests in deploy/samples
// (converted to JSON at build time): every kind round-trips unchanged, and bad input is an
// error naming the field.
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "k8s/api/v1/types.h"

namespace tf::k8s::api::v1 {
namespace {

using nlohmann::json;

json readJson(const std::filesystem::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return json::parse(in);
}

json sample(const std::string& name) { return readJson(std::filesystem::path(TF_SAMPLES_JSON_DIR) / (name + ".json")); }

// Same JSON, except that a quantity may come back in the apiserver's canonical form
// ("1000" as "1k"), as Go clients write it too. Adds each difference to `diffs`.
void sameUpToQuantityForm(const json& a, const json& b, const std::string& path,
                          std::vector<std::string>& diffs) {
  if (a.is_object() && b.is_object()) {
    for (const auto& [key, value] : a.items()) {
      if (!b.contains(key)) diffs.push_back(path + "." + key + " was dropped");
      else sameUpToQuantityForm(value, b[key], path + "." + key, diffs);
    }
    for (const auto& [key, value] : b.items()) {
      if (!a.contains(key)) diffs.push_back(path + "." + key + " was added");
    }
  } else if (a.is_array() && b.is_array() && a.size() == b.size()) {
    for (size_t i = 0; i < a.size(); ++i) sameUpToQuantityForm(a[i], b[i], path + "[" + std::to_string(i) + "]", diffs);
  } else if (a != b) {
    Result<Quantity> qa = Quantity::parse(a.is_string() ? a.get<std::string>() : a.dump());
    Result<Quantity> qb = Quantity::parse(b.is_string() ? b.get<std::string>() : "not a quantity");
    bool sameQuantity = qa.isOk() && qb.isOk() && *qa == *qb && b.get<std::string>() == qa->toString();
    if (!sameQuantity) diffs.push_back(path + ": " + a.dump() + " became " + b.dump());
  }
}

template <typename T> void expectRoundTrip(const json& original, const std::string& file) {
  Result<T> decoded = decode<T>(original);
  ASSERT_TRUE(decoded.isOk()) << file << ": " << decoded.status().toString();
  std::vector<std::string> diffs;
  sameUpToQuantityForm(original, encode(*decoded), "", diffs);
  for (const std::string& d : diffs) ADD_FAILURE() << file << ": " << d;
  // Written again, the canonical form stays as it is.
  EXPECT_EQ(encode(*decode<T>(encode(*decoded))), encode(*decoded)) << file;
  // Decoding what was written gives the same object.
  Result<T> again = decode<T>(encode(*decoded));
  ASSERT_TRUE(again.isOk());
  EXPECT_TRUE(*again == *decoded) << file;
}

TEST(ApiTypesTest, EverySampleRoundTripsUnchanged) {
  std::set<std::string> kindsSeen, kindsAll;
#define TF_ADD_KIND(T) kindsAll.insert(T::kResource.kind);
  TF_K8S_API_V1_KINDS(TF_ADD_KIND)
#undef TF_ADD_KIND
  EXPECT_EQ(kindsAll.size(), 12u);
  for (const auto& entry : std::filesystem::directory_iterator(TF_SAMPLES_JSON_DIR)) {
    json doc = readJson(entry.path());
    std::string kind = doc.value("kind", "");
    std::string file = entry.path().filename().string();
    bool matched = false;
#define TF_TRY_KIND(T)                                                                            \
  if (kind == T::kResource.kind) {                                                                \
    matched = true;                                                                               \
    expectRoundTrip<T>(doc, file);                                                                \
  }
    TF_K8S_API_V1_KINDS(TF_TRY_KIND)
#undef TF_TRY_KIND
    EXPECT_TRUE(matched) << file << ": no generated type for kind " << kind;
    kindsSeen.insert(kind);
  }
  EXPECT_EQ(kindsSeen, kindsAll) << "every kind needs a sample in deploy/samples";
}

TEST(ApiTypesTest, TypedFieldsReadTheManifest) {
  Result<Gpu> gpu = decode<Gpu>(sample("gpu"));
  ASSERT_TRUE(gpu.isOk()) << gpu.status().toString();
  ASSERT_TRUE(gpu->status.has_value());
  EXPECT_EQ(gpu->status->capacity.vram.value(), int64_t{80} << 30);
  EXPECT_EQ(gpu->status->capacity.tflops, Quantity::fromInt(312));
  EXPECT_EQ(gpu->status->nodeSelector.at("kubernetes.io/hostname"), "gpu-node-1");
  EXPECT_EQ(gpu->status->runningApps->at(0).pods->at(0).namespace_, "default");
  EXPECT_EQ(gpu->metadata.labels->at("tensor-fusion.ai/managed-by"), "gpu-node-1");

  Result<GpuPool> pool = decode<GpuPool>(sample("gpupool"));
  ASSERT_TRUE(pool.isOk()) << pool.status().toString();
  const NodeManagerConfig& nodes = pool->spec->nodeManagerConfig;
  EXPECT_EQ(nodes.provisioningMode, "AutoSelect");
  EXPECT_EQ(nodes.nodeSelector->nodeSelectorTerms.at(0).matchExpressions->at(0).key, "tensor-fusion.ai/gpu-node");
  EXPECT_EQ(pool->spec->capacityConfig->oversubscription->tflopsOversellRatio, 500);
  EXPECT_FALSE(pool->status.has_value());

  Result<GpuResourceQuota> quota = decode<GpuResourceQuota>(sample("gpuresourcequota"));
  ASSERT_TRUE(quota.isOk()) << quota.status().toString();
  EXPECT_EQ(quota->metadata.namespace_, "team-a");
  EXPECT_EQ(quota->spec->total->maxWorkers, 50);
}

TEST(ApiTypesTest, ResourceRefsNameTheRestPaths) {
  EXPECT_EQ(Gpu::kResource.collectionPath(""), "/apis/tensor-fusion.ai/v1/gpus");
  EXPECT_FALSE(Gpu::kResource.namespaced);
  EXPECT_TRUE(TensorFusionWorkload::kResource.namespaced);
  EXPECT_EQ(TensorFusionWorkload::kResource.objectPath("default", "w", "status"),
            "/apis/tensor-fusion.ai/v1/namespaces/default/tensorfusionworkloads/w/status");
  EXPECT_EQ(GpuNodeClass::kResource.plural, "gpunodeclasses");
  EXPECT_EQ(GpuResourceQuota::kResource.kind, "GPUResourceQuota");
}

TEST(ApiTypesTest, UnsetOptionalsAreOmittedAndNullIsUnset) {
  Gpu gpu;
  gpu.metadata.name = "gpu-1";
  GpuStatus& s = gpu.status.emplace();
  s.phase = "Running";
  s.uuid = "GPU-1";
  s.capacity.tflops = Quantity::fromInt(100);
  s.capacity.vram = *Quantity::parse("16Gi");
  json j = encode(gpu);
  EXPECT_EQ(j, json::parse(R"({"apiVersion":"tensor-fusion.ai/v1","kind":"GPU","metadata":{"name":"gpu-1"},
    "status":{"phase":"Running","vendor":"","uuid":"GPU-1","gpuModel":"","message":"","nodeSelector":{},
              "capacity":{"tflops":"100","vram":"16Gi"},"available":{"tflops":"0","vram":"0"}}})"));

  json withNull = sample("workloadprofile");
  withNull["spec"]["replicas"] = nullptr;
  Result<WorkloadProfile> p = decode<WorkloadProfile>(withNull);
  ASSERT_TRUE(p.isOk()) << p.status().toString();
  EXPECT_FALSE(p->spec->replicas.has_value());
  EXPECT_FALSE(encode(*p)["spec"].contains("replicas"));
}

TEST(ApiTypesTest, UnknownMetadataIsKeptTypedMetadataIsTyped) {
  json doc = sample("gpunode");
  doc["metadata"]["managedFields"] = json::array({{{"manager", "kubectl"}, {"operation", "Apply"}}});
  doc["metadata"]["ownerReferences"] = json::array(
      {{{"apiVersion", "tensor-fusion.ai/v1"}, {"kind", "GPUPool"}, {"name", "p"}, {"uid", "u-1"},
        {"controller", true}}});
  doc["metadata"]["resourceVersion"] = "42";
  doc["metadata"]["generation"] = 3;
  Result<GpuNode> node = decode<GpuNode>(doc);
  ASSERT_TRUE(node.isOk()) << node.status().toString();
  EXPECT_EQ(node->metadata.resourceVersion, "42");
  EXPECT_EQ(node->metadata.generation, 3);
  EXPECT_EQ(node->metadata.ownerReferences->at(0).kind, "GPUPool");
  EXPECT_TRUE(node->metadata.extra.contains("managedFields"));
  EXPECT_EQ(encode(*node), doc);
}

TEST(ApiTypesTest, ListsDecode) {
  json list = {{"apiVersion", "tensor-fusion.ai/v1"},
               {"kind", "GPUList"},
               {"metadata", {{"resourceVersion", "7"}, {"continue", "abc"}}},
               {"items", json::array({sample("gpu"), sample("gpu")})}};
  Result<GpuList> gpus = decode<GpuList>(list);
  ASSERT_TRUE(gpus.isOk()) << gpus.status().toString();
  EXPECT_EQ(gpus->items.size(), 2u);
  EXPECT_EQ(gpus->metadata.continueToken, "abc");
  EXPECT_EQ(encode(*gpus), list);
}

// Bad input: the error names the kind and the field path, and says what was wrong.
template <typename T> void expectDecodeError(const json& doc, const std::string& want) {
  Result<T> r = decode<T>(doc);
  ASSERT_FALSE(r.isOk()) << "accepted: " << doc.dump();
  EXPECT_EQ(r.status().code(), Code::InvalidArgument);
  EXPECT_NE(r.status().message().find(want), std::string::npos)
      << "message: " << r.status().message() << "\nwanted: " << want;
}

TEST(ApiTypesTest, BadInputIsAnErrorNamingTheField) {
  json doc = sample("workloadprofile");
  doc["spec"]["gpuCount"] = "one";
  expectDecodeError<WorkloadProfile>(doc, "WorkloadProfile: spec.gpuCount: expected a uint32, got string");

  doc = sample("workloadprofile");
  doc["spec"]["gpuCount"] = -1;
  expectDecodeError<WorkloadProfile>(doc, "spec.gpuCount: -1 does not fit in a uint32");

  doc = sample("gpu");
  doc["status"]["capacity"]["tflops"] = "312TF";
  expectDecodeError<Gpu>(doc, "status.capacity.tflops: invalid quantity \"312TF\": unknown suffix");

  doc = sample("gpu");
  doc["status"]["runningApps"][0]["pods"][0]["limits"]["vram"] = true;
  expectDecodeError<Gpu>(doc, "status.runningApps[0].pods[0].limits.vram: expected a quantity");

  doc = sample("gpu");
  doc["status"]["nodeSelector"]["kubernetes.io/hostname"] = 7;
  expectDecodeError<Gpu>(doc, "status.nodeSelector[\"kubernetes.io/hostname\"]: expected a string");

  doc = sample("gpunodeclaim");
  doc["spec"].erase("tflopsOffered");
  expectDecodeError<GpuNodeClaim>(doc, "spec.tflopsOffered: required field is missing");

  doc = sample("gpupool");
  doc["spec"]["capacityConfig"]["oversubscription"]["tflopsOversellRatio"] = 5000000000;
  expectDecodeError<GpuPool>(doc, "tflopsOversellRatio: 5000000000 does not fit in an int32");

  doc = sample("gpupool");
  doc["spec"]["nodeManagerConfig"] = json::array();
  expectDecodeError<GpuPool>(doc, "spec.nodeManagerConfig: expected an object, got array");

  expectDecodeError<Gpu>(sample("gpunode"), "kind: is \"GPUNode\", expected \"GPU\"");
  json other = sample("gpu");
  other["apiVersion"] = "tensor-fusion.ai/v2";
  expectDecodeError<Gpu>(other, "apiVersion: is \"tensor-fusion.ai/v2\"");
  expectDecodeError<Gpu>(json::array(), "expected an object, got array");
  expectDecodeError<Gpu>(json("text"), "expected an object, got string");
}

} // namespace
} // namespace tf::k8s::api::v1
