// AdmissionReview parsing and answers, and the workload's name from the pod's owners.
#include "webhook/review.h"

#include <gtest/gtest.h>

#include "k8s/base64.h"

namespace tf::webhook {
namespace {

using nlohmann::json;

json ref(const std::string& kind, const std::string& name) {
  return {{"apiVersion", "apps/v1"}, {"kind", kind}, {"name", name}, {"uid", "u-" + name}, {"controller", true}};
}

json podOwnedBy(json owner) {
  json p = {{"metadata", {{"name", "p-1"}}}};
  if (!owner.is_null()) p["metadata"]["ownerReferences"] = json::array({{{"kind", "Other"}, {"name", "not-controller"}}, owner});
  return p;
}

TEST(TopOwner, ReplicaSetLeadsToItsDeploymentAndJobToItsCronJob) {
  std::vector<std::string> asked;
  auto lookup = [&](const std::string& kind, const std::string& ns, const std::string& name) -> json {
    asked.push_back(kind + " " + ns + "/" + name);
    if (name == "web-abc") return ref("Deployment", "web");
    if (name == "nightly-1") return ref("CronJob", "nightly");
    return nullptr;
  };
  json top = topOwnerOf(podOwnedBy(ref("ReplicaSet", "web-abc")), "ns", lookup);
  EXPECT_EQ(top["kind"], "Deployment");
  EXPECT_EQ(workloadNameOf(podOwnedBy(nullptr), top), "web");
  EXPECT_EQ(topOwnerOf(podOwnedBy(ref("Job", "nightly-1")), "ns", lookup)["name"], "nightly");
  EXPECT_EQ(asked, (std::vector<std::string>{"ReplicaSet ns/web-abc", "Job ns/nightly-1"}));
  // A bare ReplicaSet (no Deployment) and a StatefulSet are the owners themselves.
  EXPECT_EQ(topOwnerOf(podOwnedBy(ref("ReplicaSet", "bare")), "ns", lookup)["name"], "bare");
  EXPECT_EQ(topOwnerOf(podOwnedBy(ref("StatefulSet", "db")), "ns", lookup)["name"], "db");
}

TEST(TopOwner, StandalonePodIsItsOwnWorkload) {
  auto never = [](const std::string&, const std::string&, const std::string&) -> json {
    ADD_FAILURE() << "no lookup for a standalone pod";
    return nullptr;
  };
  json pod = podOwnedBy(nullptr);
  EXPECT_TRUE(topOwnerOf(pod, "ns", never).is_null());
  EXPECT_EQ(workloadNameOf(pod, nullptr), "p-1");
  json generated = {{"metadata", {{"generateName", "job-"}}}};
  const std::string name = workloadNameOf(generated, nullptr);
  EXPECT_EQ(name.size(), 12u);
  EXPECT_EQ(name.rfind("job-", 0), 0u);
}

TEST(Review, ParsesARequestAndRefusesMalformedOnes) {
  json good = {{"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"},
               {"request", {{"uid", "u"}, {"operation", "CREATE"}, {"namespace", "ns"}, {"dryRun", true}, {"object", {{"kind", "Pod"}}}}}};
  auto r = parseReview(good.dump());
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->uid, "u");
  EXPECT_EQ(r->ns, "ns");
  EXPECT_TRUE(r->dryRun);
  json noObject = good;
  noObject["request"]["object"] = "text";
  EXPECT_EQ(parseReview(noObject.dump()).status().message(), "request.object is missing");
  json noUid = good;
  noUid["request"]["uid"] = 7;
  EXPECT_EQ(parseReview(noUid.dump()).status().message(), "request.uid is missing");
  EXPECT_EQ(parseReview("[]").status().message(), "expected an admission.k8s.io/v1 AdmissionReview");
  EXPECT_EQ(parseReview("").status().message(), "the body is not JSON");
}

TEST(Review, AnswersCarryTheUidAndABase64Patch) {
  json patch = json::array({{{"op", "add"}, {"path", "/metadata/labels/a~1b"}, {"value", "c"}}});
  json allow = allowResponse("u", patch)["response"];
  EXPECT_EQ(allow["uid"], "u");
  EXPECT_EQ(allow["allowed"], true);
  EXPECT_EQ(allow["patchType"], "JSONPatch");
  EXPECT_EQ(json::parse(*k8s::base64Decode(allow["patch"], "patch")), patch);
  EXPECT_FALSE(allowResponse("u")["response"].contains("patch"));
  json deny = denyResponse("u", 403, "tensor-fusion.ai/qos: bad")["response"];
  EXPECT_EQ(deny["allowed"], false);
  EXPECT_EQ(deny["status"]["code"], 403);
  EXPECT_EQ(deny["status"]["message"], "tensor-fusion.ai/qos: bad");
}

}  // namespace
}  // namespace tf::webhook
