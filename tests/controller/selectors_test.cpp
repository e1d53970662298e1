#include "controller/selectors.h"

#include <gtest/gtest.h>

namespace tf::controller {
namespace {
namespace v1 = k8s::api::v1;
using nlohmann::json;

json node(const std::string& name, json labels) { return {{"metadata", {{"name", name}, {"labels", labels}}}}; }

v1::NodeSelector selector(json terms) {
  return k8s::api::decode<v1::NodeSelector>(json{{"nodeSelectorTerms", terms}}).value();
}

TEST(NodeSelector, OperatorsFollowKubernetes) {
  const json n = node("n1", {{"gpu", "true"}, {"count", "4"}, {"zone", "a"}});
  auto one = [&](json expr) { return matches(selector(json::array({{{"matchExpressions", json::array({expr})}}})), n); };
  EXPECT_TRUE(one({{"key", "gpu"}, {"operator", "In"}, {"values", {"true"}}}));
  EXPECT_FALSE(one({{"key", "gpu"}, {"operator", "In"}, {"values", {"false"}}}));
  EXPECT_FALSE(one({{"key", "absent"}, {"operator", "In"}, {"values", {"x"}}}));
  EXPECT_TRUE(one({{"key", "zone"}, {"operator", "NotIn"}, {"values", {"b"}}}));
  EXPECT_FALSE(one({{"key", "zone"}, {"operator", "NotIn"}, {"values", {"a"}}}));
  EXPECT_TRUE(one({{"key", "absent"}, {"operator", "NotIn"}, {"values", {"a"}}}));
  EXPECT_TRUE(one({{"key", "gpu"}, {"operator", "Exists"}}));
  EXPECT_FALSE(one({{"key", "absent"}, {"operator", "Exists"}}));
  EXPECT_TRUE(one({{"key", "absent"}, {"operator", "DoesNotExist"}}));
  EXPECT_FALSE(one({{"key", "gpu"}, {"operator", "DoesNotExist"}}));
  EXPECT_TRUE(one({{"key", "count"}, {"operator", "Gt"}, {"values", {"3"}}}));
  EXPECT_FALSE(one({{"key", "count"}, {"operator", "Gt"}, {"values", {"4"}}}));
  EXPECT_TRUE(one({{"key", "count"}, {"operator", "Lt"}, {"values", {"5"}}}));
  EXPECT_FALSE(one({{"key", "zone"}, {"operator", "Gt"}, {"values", {"1"}}}));  // not a number
  EXPECT_FALSE(one({{"key", "gpu"}, {"operator", "Sideways"}, {"values", {"true"}}}));
}

TEST(NodeSelector, TermsAreOredRequirementsAnded) {
  const json n = node("n1", {{"a", "1"}, {"b", "2"}});
  json both = {{"matchExpressions", json::array({{{"key", "a"}, {"operator", "Exists"}}, {{"key", "b"}, {"operator", "In"}, {"values", {"3"}}}})}};
  json other = {{"matchExpressions", json::array({{{"key", "b"}, {"operator", "In"}, {"values", {"2"}}}})}};
  EXPECT_FALSE(matches(selector(json::array({both})), n));
  EXPECT_TRUE(matches(selector(json::array({both, other})), n));
}

TEST(NodeSelector, EmptyTermsAndSelectorsMatchNothing) {
  const json n = node("n1", {{"a", "1"}});
  EXPECT_FALSE(matches(selector(json::array()), n));
  EXPECT_FALSE(matches(selector(json::array({json::object()})), n));
}

TEST(NodeSelector, MatchFieldsByName) {
  auto s = selector(json::array({{{"matchFields", json::array({{{"key", "metadata.name"}, {"operator", "In"}, {"values", {"n2"}}}})}}}));
  EXPECT_FALSE(matches(s, node("n1", json::object())));
  EXPECT_TRUE(matches(s, node("n2", json::object())));
}

TEST(PoolSelectsNode, MultiVendorTakesPrecedenceAndNoSelectorTakesNothing) {
  const json gpu = node("g", {{"nvidia.com/gpu.present", "true"}});
  const json amd = node("a", {{"amd.com/gpu", "true"}});
  auto spec = k8s::api::decode<v1::GpuPoolSpec>(json{{"nodeManagerConfig", json::object()}}).value();
  EXPECT_FALSE(poolSelectsNode(spec, gpu));
  spec = k8s::api::decode<v1::GpuPoolSpec>(json{
      {"nodeManagerConfig",
       {{"nodeSelector", {{"nodeSelectorTerms", json::array({{{"matchExpressions", json::array({{{"key", "nvidia.com/gpu.present"}, {"operator", "Exists"}}})}}})}}},
        {"multiVendorNodeSelector",
         {{"AMD", {{"nodeSelectorTerms", json::array({{{"matchExpressions", json::array({{{"key", "amd.com/gpu"}, {"operator", "Exists"}}})}}})}}}}}}}}).value();
  EXPECT_TRUE(poolSelectsNode(spec, amd));
  EXPECT_FALSE(poolSelectsNode(spec, gpu));  // multiVendorNodeSelector given: nodeSelector is not consulted
}

TEST(LabelSelector, MatchLabelsAndExpressions) {
  auto s = k8s::api::decode<v1::LabelSelector>(json{{"matchLabels", {{"a", "1"}}},
                                                     {"matchExpressions", json::array({{{"key", "b"}, {"operator", "NotIn"}, {"values", {"x"}}}})}})
               .value();
  EXPECT_TRUE(matches(s, Labels{{"a", "1"}, {"b", "y"}}));
  EXPECT_FALSE(matches(s, Labels{{"a", "1"}, {"b", "x"}}));
  EXPECT_FALSE(matches(s, Labels{{"a", "2"}}));
}

}  // namespace
}  // namespace tf::controller
