#define TF_LOG_COMPONENT "webhook"
#include "webhook/server.h"

#include <openssl/ssl.h>

#include <httplib.h>

#include "common/log.h"
#include "k8s/base64.h"
#include "k8s/builtin.h"

namespace tf::webhook {
namespace {

using nlohmann::json;

std::string hostOfUrl(const std::string& url) {
  auto start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  auto end = url.find_first_of(":/", start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

struct SecretData {
  KeyPair ca, serving;
  std::string bundle;
};

std::optional<SecretData> readSecret(const json& secret) {
  const json data = secret.value("data", json::object());
  auto field = [&](const char* k) -> std::optional<std::string> {
    if (!data.contains(k) || !data[k].is_string()) return std::nullopt;
    auto v = k8s::base64Decode(data[k], k);
    return v ? std::optional(*v) : std::nullopt;
  };
  auto caCrt = field("ca.crt"), caKey = field("ca.key"), crt = field("tls.crt"), key = field("tls.key"),
       bundle = field("ca-bundle.crt");
  if (!caCrt || !caKey || !crt || !key || !bundle) return std::nullopt;
  return SecretData{{*caCrt, *caKey}, {*crt, *key}, *bundle};
}

bool usable(const SecretData& s, const std::vector<std::string>& names, SystemTime now) {
  if (needsRotation(s.ca.certPem, now) || needsRotation(s.serving.certPem, now)) return false;
  if (!verifyPair(s.serving, s.ca.certPem)) return false;
  if (s.bundle.find(s.ca.certPem) == std::string::npos) return false;
  auto info = inspectCert(s.serving.certPem);
  for (const auto& n : names)
    if (std::find(info->dnsNames.begin(), info->dnsNames.end(), n) == info->dnsNames.end()) return false;
  return true;
}

}  // namespace

std::vector<std::string> servingNames(const WebhookOptions& o) {
  std::vector<std::string> names = {o.serviceName + "." + o.ns + ".svc", o.serviceName + "." + o.ns + ".svc.cluster.local"};
  if (!o.url.empty()) names.push_back(hostOfUrl(o.url));
  return names;
}

json webhookConfiguration(const WebhookOptions& o, const std::string& caBundle) {
  json client = {{"caBundle", k8s::base64Encode(caBundle)}};
  if (!o.url.empty()) client["url"] = o.url + kMutatePath;
  else client["service"] = {{"namespace", o.ns}, {"name", o.serviceName}, {"path", kMutatePath}, {"port", o.servicePort}};
  json hook = {{"name", "pods.webhook.tensor-fusion.ai"},
               {"admissionReviewVersions", {"v1"}},
               // The webhook creates TensorFusionWorkloads, but never on a dry run.
               {"sideEffects", "NoneOnDryRun"},
               {"failurePolicy", o.failurePolicy},
               {"timeoutSeconds", 10},
               {"matchPolicy", "Equivalent"},
               {"reinvocationPolicy", "Never"},
               {"clientConfig", client},
               {"rules", {{{"operations", {"CREATE"}}, {"apiGroups", {""}}, {"apiVersions", {"v1"}},
                           {"resources", {"pods"}}, {"scope", "Namespaced"}}}},
               {"objectSelector", {{"matchLabels", {{"tensor-fusion.ai/enabled", "true"}}}}}};
  return {{"apiVersion", "admissionregistration.k8s.io/v1"},
          {"kind", "MutatingWebhookConfiguration"},
          {"metadata", {{"name", o.configName}, {"labels", {{"app.kubernetes.io/part-of", "tensor-fusion"}}}}},
          {"webhooks", {hook}}};
}

Result<KeyPair> CertManager::sync(SystemTime now) {
  const auto names = servingNames(o_);
  auto secret = client_.get(k8s::builtin::kSecrets, o_.ns, o_.secretName);
  if (!secret && !secret.error().isNotFound()) return unavailable("reading Secret: " + secret.error().toString());
  std::optional<SecretData> current = secret ? readSecret(*secret) : std::nullopt;
  SecretData use;
  if (current && usable(*current, names, now)) {
    use = *current;
  } else {
    auto ca = makeCa("tensor-fusion-webhook-ca", o_.validity);
    if (!ca) return ca.status();
    auto serving = makeServing(*ca, names, o_.validity);
    if (!serving) return serving.status();
    use = {*ca, *serving, ca->certPem};
    // The previous CA stays trusted while replicas may still serve what it signed.
    if (current) {
      auto old = inspectCert(current->ca.certPem);
      if (old && old->notAfter > now) use.bundle += current->ca.certPem;
    }
    json data = {{"ca.crt", k8s::base64Encode(use.ca.certPem)}, {"ca.key", k8s::base64Encode(use.ca.keyPem)},
                 {"tls.crt", k8s::base64Encode(use.serving.certPem)}, {"tls.key", k8s::base64Encode(use.serving.keyPem)},
                 {"ca-bundle.crt", k8s::base64Encode(use.bundle)}};
    if (secret) {
      json updated = *secret;
      updated["data"] = data;  // with its resourceVersion: a replica that wrote first wins (409)
      auto r = client_.update(k8s::builtin::kSecrets, updated);
      if (!r) return unavailable("rotating Secret " + o_.secretName + ": " + r.error().toString());
      TF_LOG(Info, "rotated the webhook certificates in Secret %s/%s", o_.ns.c_str(), o_.secretName.c_str());
    } else {
      json object = {{"apiVersion", "v1"}, {"kind", "Secret"}, {"type", "Opaque"},
                     {"metadata", {{"name", o_.secretName}, {"namespace", o_.ns}}}, {"data", data}};
      auto r = client_.create(k8s::builtin::kSecrets, object, o_.ns);
      if (!r) return unavailable("creating Secret " + o_.secretName + ": " + r.error().toString());
      TF_LOG(Info, "made the webhook certificates in Secret %s/%s", o_.ns.c_str(), o_.secretName.c_str());
    }
  }
  // Every replica applies the bundle before serving what it trusts (a no-op when unchanged).
  auto applied = client_.apply(k8s::builtin::kMutatingWebhookConfigurations, webhookConfiguration(o_, use.bundle),
                               "tensor-fusion-webhook", /*force=*/true);
  if (!applied) return unavailable("applying MutatingWebhookConfiguration: " + applied.error().toString());
  return use.serving;
}

WebhookServer::WebhookServer(k8s::Client& client, WebhookOptions options)
    : client_(client),
      o_(std::move(options)),
      certs_(client, o_),
      cache_(o_.cacheReads ? std::make_unique<AdmissionCache>(client) : nullptr),
      admitter_(client, o_.patch, cache_.get()) {}

WebhookServer::~WebhookServer() { stop(); }

Status WebhookServer::refresh() {
  auto pair = certs_.sync(std::chrono::system_clock::now());
  if (!pair) return pair.status();
  std::lock_guard lock(mu_);
  if (pair->certPem == certPem_) return Status::ok();
  auto creds = TlsCredentials::load(*pair);
  if (!creds) return creds.status();
  creds_ = *creds;
  certPem_ = pair->certPem;
  return Status::ok();
}

Status WebhookServer::start() {
  Status s = refresh();
  for (int i = 0; !s && s.code() == Code::Unavailable && i < 5; ++i) {  // another replica wrote first
    if (stop_.waitFor(std::chrono::milliseconds(200 * (i + 1)))) return s;
    s = refresh();
  }
  if (!s) return s;
  // Admissions read the apiserver until the informers have listed (admission_cache.h).
  if (cache_) cache_->start();
  server_ = std::make_unique<httplib::SSLServer>([this](SSL_CTX& ctx) {
    SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
    // Each handshake takes the credentials of the moment, so a rotation needs no restart.
    SSL_CTX_set_cert_cb(
        &ctx,
        [](SSL* ssl, void* arg) -> int {
          auto* self = static_cast<WebhookServer*>(arg);
          std::shared_ptr<TlsCredentials> creds;
          {
            std::lock_guard lock(self->mu_);
            creds = self->creds_;
          }
          if (!creds) return 0;
          return SSL_use_certificate(ssl, creds->cert()) == 1 && SSL_use_PrivateKey(ssl, creds->key()) == 1 ? 1 : 0;
        },
        this);
    return true;
  });
  if (!server_->is_valid()) return internalError("webhook: cannot make the TLS context");
  // The answer goes out in more than one write: without TCP_NODELAY each admission waited on
  // the apiserver's delayed ACK (~40 ms).
  server_->set_tcp_nodelay(true);
  server_->Post(kMutatePath, [this](const httplib::Request& req, httplib::Response& res) {
    auto review = parseReview(req.body);
    if (!review) {
      res.status = 400;
      res.set_content("tensor-fusion webhook: malformed AdmissionReview: " + review.status().message() + "\n", "text/plain");
      return;
    }
    res.set_content(admitter_.review(*review).dump(), "application/json");
  });
  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  port_ = o_.port == 0 ? server_->bind_to_any_port(o_.listenHost) : (server_->bind_to_port(o_.listenHost, o_.port) ? o_.port : -1);
  if (port_ < 0) return unavailable("webhook: cannot listen on " + o_.listenHost + ":" + std::to_string(o_.port));
  serveThread_ = std::thread([this] { server_->listen_after_bind(); });
  const auto period = std::min<std::chrono::seconds>(o_.resync, std::max<std::chrono::seconds>(std::chrono::seconds(1), o_.validity / 10));
  rotateThread_ = std::thread([this, period] {
    while (!stop_.waitFor(period))
      if (Status s = refresh(); !s) TF_LOG(Warn, "webhook certificates: %s", s.toString().c_str());
  });
  TF_LOG(Info, "webhook serving https on %s:%d%s", o_.listenHost.c_str(), port_, kMutatePath);
  return Status::ok();
}

void WebhookServer::stop() {
  stop_.stop();
  if (server_) server_->stop();
  if (serveThread_.joinable()) serveThread_.join();
  if (rotateThread_.joinable()) rotateThread_.join();
  if (cache_) cache_->stop();
}

std::string WebhookServer::servingCertForTest() const {
  std::lock_guard lock(mu_);
  return certPem_;
}

}  // namespace tf::webhook
