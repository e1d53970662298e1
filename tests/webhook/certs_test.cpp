// Certificates: generation, names, rotation due dates, and the CertManager's Secret and
// configuration against a fake apiserver (creation, reuse, rotation keeping the old CA, a
// replica that loses the write race).
#include "webhook/certs.h"

#include <gtest/gtest.h>

#include "fake_apiserver.h"
#include "k8s/base64.h"
#include "webhook/server.h"

namespace tf::webhook {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

TEST(Certs, ServingCertNamesTheServiceAndIsSignedByTheCa) {
  auto ca = makeCa("test-ca", 3600s);
  ASSERT_TRUE(ca) << ca.status().message();
  auto serving = makeServing(*ca, {"svc.ns.svc", "svc.ns.svc.cluster.local", "127.0.0.1"}, 3600s);
  ASSERT_TRUE(serving) << serving.status().message();
  auto info = inspectCert(serving->certPem);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->dnsNames, (std::vector<std::string>{"svc.ns.svc", "svc.ns.svc.cluster.local", "127.0.0.1"}));
  EXPECT_FALSE(info->isCa);
  EXPECT_TRUE(inspectCert(ca->certPem)->isCa);
  EXPECT_TRUE(verifyPair(*serving, ca->certPem));
  auto otherCa = makeCa("other", 3600s);
  EXPECT_EQ(verifyPair(*serving, otherCa->certPem).message(), "the certificate is not signed by this CA");
  KeyPair mixed{serving->certPem, otherCa->keyPem};
  EXPECT_EQ(verifyPair(mixed, ca->certPem).message(), "the key does not belong to the certificate");
  const auto life = info->notAfter - info->notBefore;
  EXPECT_GE(life, 3600s);
  EXPECT_LE(life, 3661s);
}

TEST(Certs, RotationIsDueAfterTwoThirdsOfTheLife) {
  auto ca = makeCa("test-ca", 3000s);
  auto info = inspectCert(ca->certPem);
  const auto life = info->notAfter - info->notBefore;
  EXPECT_FALSE(needsRotation(ca->certPem, info->notBefore + life / 2));
  EXPECT_TRUE(needsRotation(ca->certPem, info->notBefore + life * 2 / 3 + 1s));
  EXPECT_TRUE(needsRotation(ca->certPem, info->notAfter + 1s));
  EXPECT_TRUE(needsRotation("not a certificate", info->notBefore));
}

TEST(Certs, BundleSplitsIntoItsCertificates) {
  auto a = makeCa("a", 600s), b = makeCa("b", 600s);
  auto parts = splitPemBundle(a->certPem + b->certPem);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[0], a->certPem);
  EXPECT_EQ(parts[1], b->certPem);
}

class CertManagerTest : public ::testing::Test {
protected:
  testing::FakeApiserver api;
  std::unique_ptr<k8s::Client> client = std::move(*k8s::Client::create(api.config()));
  WebhookOptions o = [] {
    WebhookOptions w;
    w.ns = "tf";
    w.validity = 3000s;
    return w;
  }();
  const std::string secretPath = "/api/v1/namespaces/tf/secrets/tensor-fusion-webhook-certs";
  const std::string configPath = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/tensor-fusion-webhook";

  std::string field(const char* key) {
    return *k8s::base64Decode(api.object(secretPath)["data"][key].get<std::string>(), key);
  }
  std::string caBundleOfConfig() {
    json c = api.object(configPath);
    return *k8s::base64Decode(c["webhooks"][0]["clientConfig"]["caBundle"].get<std::string>(), "caBundle");
  }
};

TEST_F(CertManagerTest, CreatesTheSecretAndTheConfigurationThenReusesThem) {
  CertManager m(*client, o);
  const auto now = std::chrono::system_clock::now();
  auto first = m.sync(now);
  ASSERT_TRUE(first) << first.status().message();
  EXPECT_EQ(field("tls.crt"), first->certPem);
  EXPECT_EQ(caBundleOfConfig(), field("ca.crt"));
  EXPECT_TRUE(verifyPair(*first, field("ca.crt")));
  auto names = inspectCert(first->certPem)->dnsNames;
  EXPECT_EQ(names, (std::vector<std::string>{"tensor-fusion-webhook.tf.svc", "tensor-fusion-webhook.tf.svc.cluster.local"}));
  json hook = api.object(configPath)["webhooks"][0];
  EXPECT_EQ(hook["clientConfig"]["service"]["path"], "/mutate-v1-pod");
  EXPECT_EQ(hook["failurePolicy"], "Fail");
  EXPECT_EQ(hook["objectSelector"]["matchLabels"]["tensor-fusion.ai/enabled"], "true");

  // A second replica (or the next pass) takes what is there.
  CertManager other(*client, o);
  auto second = other.sync(now + 10s);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->certPem, first->certPem);
  EXPECT_EQ(api.writes("POST"), 1);
  EXPECT_EQ(api.writes("PUT"), 0);
}

TEST_F(CertManagerTest, RotatesBeforeExpiryAndKeepsTrustingTheOldCa) {
  CertManager m(*client, o);
  const auto now = std::chrono::system_clock::now();
  auto first = m.sync(now);
  ASSERT_TRUE(first);
  const std::string oldCa = field("ca.crt");
  auto rotated = m.sync(now + 2100s);  // past 2/3 of 3000 s
  ASSERT_TRUE(rotated) << rotated.status().message();
  EXPECT_NE(rotated->certPem, first->certPem);
  EXPECT_EQ(api.writes("PUT"), 1);
  const std::string newCa = field("ca.crt");
  EXPECT_NE(newCa, oldCa);
  EXPECT_TRUE(verifyPair(*rotated, newCa));
  EXPECT_EQ(caBundleOfConfig(), newCa + oldCa);  // a replica still on the old certificate is trusted

  // Once the old CA has expired it leaves the bundle at the next rotation.
  auto again = m.sync(now + 3000s + 2100s);
  ASSERT_TRUE(again);
  EXPECT_EQ(splitPemBundle(caBundleOfConfig()).size(), 1u);
}

TEST_F(CertManagerTest, ReplacesASecretWithMissingNamesOrGarbage) {
  api.put(secretPath, {{"apiVersion", "v1"}, {"kind", "Secret"}, {"metadata", {{"name", "tensor-fusion-webhook-certs"}, {"namespace", "tf"}}},
                       {"data", {{"tls.crt", k8s::base64Encode("junk")}}}});
  CertManager m(*client, o);
  auto pair = m.sync(std::chrono::system_clock::now());
  ASSERT_TRUE(pair) << pair.status().message();
  EXPECT_EQ(api.writes("PUT"), 1);
  EXPECT_EQ(field("tls.crt"), pair->certPem);
}

TEST_F(CertManagerTest, LosingTheWriteRaceIsARetryableError) {
  CertManager m(*client, o);
  const auto now = std::chrono::system_clock::now();
  ASSERT_TRUE(m.sync(now));
  api.conflictNextPut = true;
  auto lost = m.sync(now + 2100s);
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.status().code(), Code::Unavailable);
  EXPECT_NE(lost.status().message().find("rotating Secret tensor-fusion-webhook-certs"), std::string::npos);
  EXPECT_TRUE(m.sync(now + 2100s));  // the next pass succeeds
}

TEST_F(CertManagerTest, UrlModeNamesTheHostAndCallsTheUrl) {
  o.url = "https://10.1.2.3:9443";
  CertManager m(*client, o);
  auto pair = m.sync(std::chrono::system_clock::now());
  ASSERT_TRUE(pair);
  json client = api.object(configPath)["webhooks"][0]["clientConfig"];
  EXPECT_EQ(client["url"], "https://10.1.2.3:9443/mutate-v1-pod");
  EXPECT_FALSE(client.contains("service"));
  // The next pass finds the address in the certificate and keeps it (no rotation loop).
  auto again = m.sync(std::chrono::system_clock::now() + 10s);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->certPem, pair->certPem);
  EXPECT_EQ(api.writes("PUT"), 0);
}

}  // namespace
}  // namespace tf::webhook
