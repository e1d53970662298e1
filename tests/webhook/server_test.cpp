// The webhook over real HTTPS (cpp-httplib + OpenSSL) against a fake apiserver: a malformed
// AdmissionReview is a 400 and the server goes on; pods not ours pass untouched; a labelled
// pod gets a patch that applies and its TensorFusionWorkload; a bad one is denied with the
// annotation named; a short-lived certificate is rotated while serving, with no restart.
#include "webhook/server.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include "fake_apiserver.h"
#include "k8s/base64.h"

namespace tf::webhook {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const char* kSecret = "/api/v1/namespaces/tf/secrets/tensor-fusion-webhook-certs";

json pod(json annotations, bool labelled = true) {
  json p = {{"apiVersion", "v1"}, {"kind", "Pod"},
            {"metadata", {{"name", "app-0"}, {"namespace", "team"}, {"annotations", annotations}}},
            {"spec", {{"containers", {{{"name", "app"}, {"image", "cuda"}}}}}}};
  if (labelled) p["metadata"]["labels"] = {{"tensor-fusion.ai/enabled", "true"}};
  return p;
}

json review(const json& object, bool dryRun = false) {
  return {{"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"},
          {"request", {{"uid", "u-1"}, {"operation", "CREATE"}, {"namespace", "team"}, {"dryRun", dryRun}, {"object", object}}}};
}

class WebhookServerTest : public ::testing::Test {
protected:
  testing::FakeApiserver api;
  std::unique_ptr<k8s::Client> client = std::move(*k8s::Client::create(api.config()));
  std::unique_ptr<WebhookServer> server;

  void start(std::chrono::seconds validity = 3600s) {
    api.put("/apis/tensor-fusion.ai/v1/gpupools/main",
            {{"apiVersion", "tensor-fusion.ai/v1"}, {"kind", "GPUPool"},
             {"metadata", {{"name", "main"}, {"annotations", {{"tensor-fusion.ai/is-default-pool", "true"}}}}},
             {"spec", {{"nodeManagerConfig", json::object()}}}});
    WebhookOptions o;
    o.listenHost = "127.0.0.1";
    o.port = 0;
    o.ns = "tf";
    o.url = "https://127.0.0.1";  // the certificate names the address the test dials
    o.validity = validity;
    o.patch.defaultClientImage = "img:1";
    // Every admission reads the fake apiserver, which has no watch; the informer-backed reads
    // run against the real apiserver in tests/cluster (e2e_webhook.py).
    o.cacheReads = false;
    server = std::make_unique<WebhookServer>(*client, o);
    Status s = server->start();
    ASSERT_TRUE(s) << s.toString();
  }

  // A client that trusts exactly these CAs (PEM) and checks the server's name.
  httplib::Result post(const std::string& body, const std::string& trusted) {
    httplib::SSLClient cli("127.0.0.1", server->port());
    X509_STORE* store = X509_STORE_new();
    for (const auto& pem : splitPemBundle(trusted)) {
      BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
      X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
      X509_STORE_add_cert(store, cert);
      X509_free(cert);
      BIO_free(bio);
    }
    cli.set_ca_cert_store(store);  // the client owns it
    cli.enable_server_certificate_verification(true);
    cli.set_connection_timeout(5);
    return cli.Post(kMutatePath, body, "application/json");
  }
  std::string secretField(const char* key) {
    return *k8s::base64Decode(api.object(kSecret)["data"][key].get<std::string>(), key);
  }
  json admit(const json& object, bool dryRun = false) {
    auto res = post(review(object, dryRun).dump(), secretField("ca-bundle.crt"));
    EXPECT_TRUE(res) << httplib::to_string(res.error());
    if (!res) return nullptr;
    EXPECT_EQ(res->status, 200) << res->body;
    return json::parse(res->body)["response"];
  }
};

TEST_F(WebhookServerTest, MalformedReviewIsA400AndTheServerGoesOn) {
  start();
  const std::string ca = secretField("ca-bundle.crt");
  for (auto [body, why] : {std::pair{std::string("{not json"), "the body is not JSON"},
                           {json({{"apiVersion", "admission.k8s.io/v1beta1"}, {"kind", "AdmissionReview"}}).dump(),
                            "expected an admission.k8s.io/v1 AdmissionReview"},
                           {json({{"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"request", {{"uid", "x"}}}}).dump(),
                            "request.object is missing"},
                           {json({{"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"request", {{"object", json::object()}}}}).dump(),
                            "request.uid is missing"}}) {
    auto res = post(body, ca);
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, 400);
    EXPECT_EQ(res->body, std::string("tensor-fusion webhook: malformed AdmissionReview: ") + why + "\n");
  }
  auto ok = admit(pod(json::object(), /*labelled=*/false));
  EXPECT_EQ(ok["allowed"], true);
}

TEST_F(WebhookServerTest, PodWithoutTheLabelPassesUntouched) {
  start();
  json r = admit(pod({{"tensor-fusion.ai/vram-limit", "junk"}}, /*labelled=*/false));
  EXPECT_EQ(r["uid"], "u-1");
  EXPECT_EQ(r["allowed"], true);
  EXPECT_FALSE(r.contains("patch"));
}

TEST_F(WebhookServerTest, LabelledPodIsPatchedAndItsWorkloadMade) {
  start();
  json p = pod({{"tensor-fusion.ai/vram-limit", "1Gi"}, {"tensor-fusion.ai/tflops-limit", "10"}});
  json dry = admit(p, /*dryRun=*/true);
  EXPECT_EQ(dry["allowed"], true);
  EXPECT_TRUE(api.object("/apis/tensor-fusion.ai/v1/namespaces/team/tensorfusionworkloads/app-0").is_null());

  json r = admit(p);
  ASSERT_EQ(r["allowed"], true) << r.dump();
  EXPECT_EQ(r["patchType"], "JSONPatch");
  json patched = p.patch(json::parse(*k8s::base64Decode(r["patch"], "patch")));
  EXPECT_EQ(patched["spec"]["schedulerName"], "tensor-fusion-scheduler");
  EXPECT_EQ(patched["spec"]["initContainers"][0]["image"], "img:1");
  EXPECT_EQ(patched["metadata"]["labels"]["tensor-fusion.ai/workload"], "app-0");
  EXPECT_EQ(patched["metadata"]["annotations"]["tensor-fusion.ai/qos"], "high");
  json wl = api.object("/apis/tensor-fusion.ai/v1/namespaces/team/tensorfusionworkloads/app-0");
  ASSERT_TRUE(wl.is_object());
  EXPECT_EQ(wl["spec"]["poolName"], "main");
  EXPECT_EQ(wl["spec"]["resources"]["limits"]["vram"], "1Gi");
  EXPECT_EQ(wl["metadata"]["labels"]["tensor-fusion.ai/gpupool"], "main");

  // Already patched (our init container present): not patched twice.
  json again = admit(patched);
  EXPECT_EQ(again["allowed"], true);
  EXPECT_FALSE(again.contains("patch"));
}

TEST_F(WebhookServerTest, DeploymentPodsShareTheDeploymentsWorkload) {
  start();
  json dep = {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "web"}, {"uid", "d-1"},
              {"controller", true}, {"blockOwnerDeletion", true}};
  api.put("/apis/apps/v1/namespaces/team/replicasets/web-abc",
          {{"apiVersion", "apps/v1"}, {"kind", "ReplicaSet"}, {"metadata", {{"name", "web-abc"}, {"ownerReferences", {dep}}}}});
  json p = pod({{"tensor-fusion.ai/vram-limit", "1Gi"}, {"tensor-fusion.ai/tflops-limit", "1"}});
  p["metadata"]["ownerReferences"] = {{{"apiVersion", "apps/v1"}, {"kind", "ReplicaSet"}, {"name", "web-abc"}, {"uid", "r-1"}, {"controller", true}}};
  json r = admit(p);
  ASSERT_EQ(r["allowed"], true) << r.dump();
  json patched = p.patch(json::parse(*k8s::base64Decode(r["patch"], "patch")));
  EXPECT_EQ(patched["metadata"]["labels"]["tensor-fusion.ai/workload"], "web");
  json wl = api.object("/apis/tensor-fusion.ai/v1/namespaces/team/tensorfusionworkloads/web");
  ASSERT_TRUE(wl.is_object());
  json owner = dep;
  owner.erase("blockOwnerDeletion");
  EXPECT_EQ(wl["metadata"]["ownerReferences"], json::array({owner}));
}

TEST_F(WebhookServerTest, BadAnnotationIsDeniedWithItsName) {
  start();
  json r = admit(pod({{"tensor-fusion.ai/gpupool", "missing"}, {"tensor-fusion.ai/vram-limit", "1Gi"}}));
  EXPECT_EQ(r["allowed"], false);
  EXPECT_EQ(r["status"]["code"], 403);
  EXPECT_EQ(r["status"]["message"], "tensor-fusion.ai/gpupool: GPUPool \"missing\" not found");
}

TEST_F(WebhookServerTest, ApiserverTroubleRefusesThePodWithA500) {
  start();
  api.failGets("/apis/tensor-fusion.ai/v1/gpupools");
  json r = admit(pod({{"tensor-fusion.ai/vram-limit", "1Gi"}}));
  EXPECT_EQ(r["allowed"], false);
  EXPECT_EQ(r["status"]["code"], 500);
  EXPECT_EQ(r["status"]["message"].get<std::string>().rfind("listing GPUPools: ", 0), 0u) << r.dump();
  // Not ours: no read needed, still allowed.
  EXPECT_EQ(admit(pod({}, /*labelled=*/false))["allowed"], true);
}

TEST_F(WebhookServerTest, OnlyCreateIsOurs) {
  start();
  json rev = review(pod({{"tensor-fusion.ai/vram-limit", "junk"}}));
  rev["request"]["operation"] = "UPDATE";
  auto res = post(rev.dump(), secretField("ca-bundle.crt"));
  ASSERT_TRUE(res);
  json r = json::parse(res->body)["response"];
  EXPECT_EQ(r["allowed"], true);
  EXPECT_FALSE(r.contains("patch"));
}

TEST_F(WebhookServerTest, ShortLivedCertificateIsRotatedWhileServing) {
  start(6s);  // rotation due after 4 s; the loop looks every second
  const std::string first = server->servingCertForTest();
  const std::string firstCa = secretField("ca.crt");
  ASSERT_TRUE(post(review(pod({}, false)).dump(), firstCa));
  std::string now = first;
  for (int i = 0; i < 200 && now == first; ++i) {
    std::this_thread::sleep_for(50ms);
    now = server->servingCertForTest();
  }
  ASSERT_NE(now, first) << "not rotated within 10 s";
  const std::string newCa = secretField("ca.crt");
  EXPECT_NE(newCa, firstCa);
  EXPECT_EQ(secretField("tls.crt"), now);
  // A client that trusts only the new CA gets through: the new certificate is being served.
  auto res = post(review(pod({}, false)).dump(), newCa);
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
}

}  // namespace
}  // namespace tf::webhook
