// The credential Secret's encoding and the synced objects' shape.
#include <gtest/gtest.h>

#include "agent/credentials.h"
#include "agent/synced_kinds.h"
#include "k8s/base64.h"
#include "k8s/builtin.h"

namespace tf::agent {
namespace {

using nlohmann::json;

TEST(CredentialsTest, RoundTripsThroughSecretData) {
  AgentCredential c{"acme:prod", "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n", "sha256:00", true};
  json secret{{"data", credentialToSecretData(c)}};
  EXPECT_EQ(secret["data"]["agentId"], k8s::base64Encode("acme:prod"));
  auto back = credentialFromSecret(secret);
  ASSERT_TRUE(back) << back.status().toString();
  EXPECT_EQ(back->agentId, c.agentId);
  EXPECT_EQ(back->privateKeyPem, c.privateKeyPem);
  EXPECT_EQ(back->portalPin, c.portalPin);
  EXPECT_TRUE(back->enrolled);
  c.enrolled = false;
  EXPECT_FALSE(credentialFromSecret(json{{"data", credentialToSecretData(c)}})->enrolled);
}

TEST(CredentialsTest, ABrokenSecretIsNamed) {
  AgentCredential c{"acme:prod", "key", "sha256:00", true};
  auto withData = [&](const std::function<void(json&)>& edit) {
    json s{{"data", credentialToSecretData(c)}};
    edit(s["data"]);
    return credentialFromSecret(s);
  };
  auto r = credentialFromSecret(json::object());
  EXPECT_EQ(r.status().message(), "agent Secret: no data");
  r = withData([](json& d) { d.erase("privateKey"); });
  EXPECT_EQ(r.status().message(), "agent Secret: data.privateKey missing");
  r = withData([](json& d) { d["enrolled"] = k8s::base64Encode("maybe"); });
  EXPECT_EQ(r.status().message(), "agent Secret: data.enrolled: expected true or false");
  r = withData([](json& d) { d["agentId"] = k8s::base64Encode(""); });
  EXPECT_EQ(r.status().message(), "agent Secret: data.agentId is empty");
  r = withData([](json& d) { d["agentId"] = "%%%"; });
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("data.agentId"), std::string::npos) << r.status().message();
}

TEST(SyncedKindsTest, CoverTheTensorFusionKindsAndVgpuPods) {
  std::vector<std::string> kinds;
  for (const auto& k : syncedKinds()) kinds.push_back(k.resource.kind);
  EXPECT_EQ(kinds, (std::vector<std::string>{"TensorFusionCluster", "GPUPool", "GPUNode", "GPU",
                                             "TensorFusionWorkload", "TensorFusionConnection", "Pod"}));
  EXPECT_EQ(syncedKinds().back().labelSelector, "tensor-fusion.ai/component in (worker,client)");
}

TEST(SyncedKindsTest, AnObjectKeepsItsIdentityAndDropsManagedFields) {
  json pod{{"metadata",
            {{"name", "p"}, {"namespace", "ml"}, {"resourceVersion", "77"}, {"managedFields", json::array({{{"manager", "x"}}})}}},
           {"spec", {{"nodeName", "n1"}}}};
  auto o = toSyncedObject(k8s::builtin::kPods, pod);
  ASSERT_TRUE(o) << o.status().toString();
  EXPECT_EQ(o->kind, "Pod");
  EXPECT_EQ(o->ns, "ml");
  EXPECT_EQ(o->name, "p");
  EXPECT_EQ(o->resourceVersion, "77");
  EXPECT_FALSE(o->body["metadata"].contains("managedFields"));
  EXPECT_EQ(o->body["spec"]["nodeName"], "n1");
  EXPECT_EQ(o->body["apiVersion"], "v1") << "a list's items lack it; the body always has it";
  EXPECT_EQ(o->body["kind"], "Pod");

  pod["metadata"].erase("resourceVersion");
  auto bad = toSyncedObject(k8s::builtin::kPods, pod);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().message(), "Pod p: metadata.resourceVersion missing");
  EXPECT_EQ(toSyncedObject(k8s::builtin::kPods, json{{"metadata", json::object()}}).status().message(),
            "Pod: metadata.name missing");
}

}  // namespace
}  // namespace tf::agent
