#include "controller/conditions.h"
#include "controller/context.h"

#include <gtest/gtest.h>

namespace tf::controller {
namespace {
using nlohmann::json;

TEST(JsonSubset, IgnoresWhatTheServerAddedButNotWhatDiffers) {
  json want = {{"metadata", {{"name", "p"}, {"labels", {{"a", "1"}}}}}, {"spec", {{"x", 1}, {"list", {1, 2}}}}};
  json have = want;
  have["metadata"]["uid"] = "u";
  have["metadata"]["labels"]["extra"] = "2";
  have["spec"]["defaulted"] = "d";
  EXPECT_TRUE(jsonSubset(want, have));
  have["spec"]["x"] = 2;
  EXPECT_FALSE(jsonSubset(want, have));
  have["spec"]["x"] = 1;
  have["spec"]["list"] = {1, 2, 3};  // lists compare whole
  EXPECT_FALSE(jsonSubset(want, have));
  EXPECT_FALSE(jsonSubset(want, json::object()));
}

TEST(Conditions, TransitionTimeMovesOnlyWithTheStatus) {
  std::optional<std::vector<k8s::api::v1::Condition>> conds;
  setCondition(conds, "Ready", false, "Waiting", "not yet");
  ASSERT_EQ(conds->size(), 1u);
  auto first = conds->front();
  (*conds)[0].lastTransitionTime = "2020-01-01T00:00:00Z";
  setCondition(conds, "Ready", false, "StillWaiting", "still not");
  EXPECT_EQ((*conds)[0].lastTransitionTime, "2020-01-01T00:00:00Z");
  EXPECT_EQ((*conds)[0].reason, "StillWaiting");
  setCondition(conds, "Ready", true, "Done", "ready");
  EXPECT_NE((*conds)[0].lastTransitionTime, "2020-01-01T00:00:00Z");
  EXPECT_EQ((*conds)[0].status, "True");
  setCondition(conds, "Other", true, "R", "m");
  EXPECT_EQ(conds->size(), 2u);
  ASSERT_NE(findCondition(conds, "Other"), nullptr);
  EXPECT_EQ(findCondition(conds, "Missing"), nullptr);
}

TEST(Objects, DeletionFinalizersOwnersAndLabels) {
  json o = {{"apiVersion", "tensor-fusion.ai/v1"}, {"kind", "GPUPool"},
            {"metadata", {{"name", "p"}, {"uid", "u1"}, {"labels", {{"tensor-fusion.ai/managed-by", "c"}}},
                          {"finalizers", {"tensor-fusion.ai/finalizer"}}}}};
  EXPECT_FALSE(isDeleting(o));
  EXPECT_TRUE(hasFinalizer(o, "tensor-fusion.ai/finalizer"));
  EXPECT_FALSE(hasFinalizer(o, "other"));
  EXPECT_EQ(labelOf(o, "tensor-fusion.ai/managed-by"), "c");
  EXPECT_EQ(labelOf(o, "absent"), "");
  json ref = ownerReference(o, true);
  EXPECT_EQ(ref["uid"], "u1");
  EXPECT_EQ(ref["kind"], "GPUPool");
  EXPECT_TRUE(ref["controller"].get<bool>());
  json child = {{"metadata", {{"ownerReferences", json::array({ref})}}}};
  EXPECT_TRUE(hasOwner(child, "u1"));
  EXPECT_FALSE(hasOwner(child, "u2"));
  o["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  EXPECT_TRUE(isDeleting(o));
}

}  // namespace
}  // namespace tf::controller
