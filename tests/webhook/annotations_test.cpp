// The annotation table: every kind parses what it should, refuses what it should with the
// key named, and formats back to the normalised text.
#include "webhook/annotations.h"

#include <gtest/gtest.h>

#include <set>

#include "k8s/api/well_known.h"

namespace tf::webhook {
namespace {

using nlohmann::json;

std::string denial(const json& annotations) {
  auto v = parseAnnotations(annotations);
  return v ? std::string("accepted") : v.status().message();
}

TEST(AnnotationTable, EveryKeyOnceInFieldOrderUnderOurDomain) {
  std::set<std::string> keys;
  const auto& table = annotationTable();
  ASSERT_EQ(table.size(), static_cast<size_t>(Field::Count));
  for (size_t i = 0; i < table.size(); ++i) {
    EXPECT_EQ(static_cast<size_t>(table[i].field), i);
    EXPECT_TRUE(keys.insert(table[i].key).second) << table[i].key;
    EXPECT_EQ(std::string(table[i].key).rfind("tensor-fusion.ai/", 0), 0u) << table[i].key;
  }
  // The contract with the scheduler (k8s2-shared.md) names these.
  for (const char* k : {k8s::api::kAnnotationTflopsRequest, k8s::api::kAnnotationVramLimit, k8s::api::kAnnotationQos,
                        k8s::api::kAnnotationGangGroupKey, k8s::api::kAnnotationGangRequiredMembers})
    EXPECT_TRUE(keys.count(k)) << k;
}

TEST(AnnotationParse, EachKindAcceptsAndNormalises) {
  auto v = parseAnnotations({{"tensor-fusion.ai/vram-limit", "1024Mi"},
                             {"tensor-fusion.ai/tflops-request", "0.5"},
                             {"tensor-fusion.ai/compute-percent-limit", "30"},
                             {"tensor-fusion.ai/gpu-count", "2"},
                             {"tensor-fusion.ai/is-local-gpu", "false"},
                             {"tensor-fusion.ai/qos", "critical"},
                             {"tensor-fusion.ai/eviction-protection", "1h30m"},
                             {"tensor-fusion.ai/gpupool", "pool-a"},
                             {"tensor-fusion.ai/gpu-model", "H100 SXM"},
                             {"tensor-fusion.ai/inject-container", "app, side"},
                             {"tensor-fusion.ai/gpu-indices", "0,3"},
                             {"unrelated/key", "x"}});
  ASSERT_TRUE(v) << v.status().message();
  auto text = formatAnnotations(*v);
  EXPECT_EQ(text.at("tensor-fusion.ai/vram-limit"), "1Gi");
  EXPECT_EQ(text.at("tensor-fusion.ai/tflops-request"), "500m");
  EXPECT_EQ(text.at("tensor-fusion.ai/compute-percent-limit"), "30");
  EXPECT_EQ(text.at("tensor-fusion.ai/gpu-count"), "2");
  EXPECT_EQ(text.at("tensor-fusion.ai/is-local-gpu"), "false");
  EXPECT_EQ(text.at("tensor-fusion.ai/qos"), "critical");
  EXPECT_EQ(text.at("tensor-fusion.ai/eviction-protection"), "1h30m");
  EXPECT_EQ(text.at("tensor-fusion.ai/gpu-model"), "H100 SXM");
  EXPECT_EQ(text.at("tensor-fusion.ai/inject-container"), "app,side");
  EXPECT_EQ(text.at("tensor-fusion.ai/gpu-indices"), "0,3");
  EXPECT_EQ(text.size(), 11u);  // nothing of other domains
}

struct BadCase {
  const char* key;
  const char* value;
  const char* expect;  // in the message, after the key
};

class AnnotationRejects : public testing::TestWithParam<BadCase> {};

TEST_P(AnnotationRejects, NamesTheAnnotation) {
  const auto& c = GetParam();
  const std::string msg = denial({{c.key, c.value}});
  EXPECT_EQ(msg.rfind(std::string(c.key) + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
}

INSTANTIATE_TEST_SUITE_P(
    EveryKind, AnnotationRejects,
    testing::Values(BadCase{"tensor-fusion.ai/tflops-limit", "10x", "is not a quantity"},
                    BadCase{"tensor-fusion.ai/vram-request", "-1Gi", "a quantity >= 0"},
                    BadCase{"tensor-fusion.ai/compute-percent-request", "101", "in 0..100"},
                    BadCase{"tensor-fusion.ai/compute-percent-limit", "thirty", "integer percentage"},
                    BadCase{"tensor-fusion.ai/gpu-count", "0", "in 1..128"},
                    BadCase{"tensor-fusion.ai/gpu-count", "129", "in 1..128"},
                    BadCase{"tensor-fusion.ai/gpu-count", "2.5", "an integer"},
                    BadCase{"tensor-fusion.ai/is-local-gpu", "yes", "\"true\" or \"false\""},
                    BadCase{"tensor-fusion.ai/dedicated-gpu", "True", "\"true\" or \"false\""},
                    BadCase{"tensor-fusion.ai/qos", "urgent", "one of low,medium,high,critical"},
                    BadCase{"tensor-fusion.ai/isolation", "strict", "one of shared,soft,hard,partitioned"},
                    BadCase{"tensor-fusion.ai/eviction-protection", "10 minutes", "a Go duration"},
                    BadCase{"tensor-fusion.ai/gang-timeout", "5", "a Go duration"},
                    BadCase{"tensor-fusion.ai/gang-timeout", "-5s", "a duration >= 0"},
                    BadCase{"tensor-fusion.ai/gpupool", "Pool_A", "an object name"},
                    BadCase{"tensor-fusion.ai/workload-profile", "", "an object name"},
                    BadCase{"tensor-fusion.ai/gpu-model", "", "a non-empty value"},
                    BadCase{"tensor-fusion.ai/inject-container", "app,,b", "comma-separated list of names"},
                    BadCase{"tensor-fusion.ai/gpu-indices", "0,-1", "integers >= 0"},
                    BadCase{"tensor-fusion.ai/gang-min-members", "-2", "in 0..2147483647"}));

TEST(AnnotationParse, WebhookOnlyKeysAreNotReadFromTheUser) {
  auto v = parseAnnotations({{"tensor-fusion.ai/gang-group-key", "x/y"}, {"tensor-fusion.ai/gang-required-members", "junk"}});
  ASSERT_TRUE(v) << v.status().message();
  EXPECT_TRUE(v->all().empty());
}

TEST(AnnotationParse, NonStringValueIsRefused) {
  EXPECT_EQ(denial({{"tensor-fusion.ai/gpu-count", 2}}), "tensor-fusion.ai/gpu-count: not a string");
  EXPECT_EQ(denial(json::array()), "metadata.annotations is not an object");
}

TEST(GoDuration, AsGoParsesThem) {
  EXPECT_EQ(*parseGoDuration("0"), 0);
  EXPECT_EQ(*parseGoDuration("300ms"), 300'000'000);
  EXPECT_EQ(*parseGoDuration("1h30m"), 5'400'000'000'000);
  EXPECT_EQ(*parseGoDuration("1.5s"), 1'500'000'000);
  EXPECT_EQ(*parseGoDuration("-2us"), -2'000);
  EXPECT_FALSE(parseGoDuration(""));
  EXPECT_FALSE(parseGoDuration("5"));
  EXPECT_FALSE(parseGoDuration("5d"));
  EXPECT_FALSE(parseGoDuration("1..2s"));
  EXPECT_FALSE(parseGoDuration("s"));
}

}  // namespace
}  // namespace tf::webhook
