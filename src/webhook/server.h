// The webhook as a service: HTTPS at /mutate-v1-pod (cpp-httplib over OpenSSL), certificates
// kept in a Secret that every replica shares, the MutatingWebhookConfiguration kept pointing at
// us with our CA in caBundle, rotation before expiry. Every replica serves; no leader needed
// (creating and rotating the Secret is a create / an update with the resourceVersion, so one
// replica wins and the others read what it wrote).
//
//   WebhookOptions o; o.port = 9443; o.ns = "tensor-fusion-sys";
//   WebhookServer server(client, o);
//   if (Status s = server.start(); !s) ...;   // first sync, then serve; rotation runs behind
//   server.stop();
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "k8s/client.h"
#include "k8s/stop_signal.h"
#include "webhook/certs.h"
#include "webhook/review.h"

namespace httplib {
class SSLServer;
}

namespace tf::webhook {

inline constexpr const char* kMutatePath = "/mutate-v1-pod";

struct WebhookOptions {
  std::string listenHost = "0.0.0.0";
  int port = 9443;  // 0: any free port
  std::string ns = "tensor-fusion-sys";  // of the Service and the Secret
  std::string serviceName = "tensor-fusion-webhook";
  int servicePort = 443;
  std::string secretName = "tensor-fusion-webhook-certs";
  std::string configName = "tensor-fusion-webhook";  // the MutatingWebhookConfiguration
  // When set, the apiserver calls this URL (a controller run outside the cluster) instead of
  // the Service; its host is added to the certificate.
  std::string url;
  std::chrono::seconds validity = std::chrono::hours(24 * 365);
  std::chrono::seconds resync = std::chrono::seconds(60);  // re-read the Secret, rotate when due
  // Fail: a labelled pod is refused while no replica answers (docs/kubernetes.md says why).
  std::string failurePolicy = "Fail";
  PatchOptions patch;
  // Read pools, profiles, quotas and GPUs from informers (admission_cache.h) rather than from
  // the apiserver at every admission.
  bool cacheReads = true;
};

// The names the serving certificate carries: <svc>.<ns>.svc, .svc.cluster.local, the URL's host.
std::vector<std::string> servingNames(const WebhookOptions& o);
// The MutatingWebhookConfiguration we keep applied, with `caBundle` (PEM).
nlohmann::json webhookConfiguration(const WebhookOptions& o, const std::string& caBundle);

// Keeps the Secret and the configuration right; returns the serving pair to use.
class CertManager {
public:
  CertManager(k8s::Client& client, WebhookOptions options) : client_(client), o_(std::move(options)) {}
  // One pass: read the Secret; create it, or rotate it when a certificate is past 2/3 of its
  // life, unreadable, or misses a name; apply the configuration with its CA bundle. A
  // conflict (another replica wrote first) is an Unavailable error: call again.
  Result<KeyPair> sync(SystemTime now);

private:
  k8s::Client& client_;
  WebhookOptions o_;
};

class WebhookServer {
public:
  WebhookServer(k8s::Client& client, WebhookOptions options);
  ~WebhookServer();
  // Syncs the certificates (retrying conflicts), binds, serves, and starts the rotation loop.
  Status start();
  void stop();
  int port() const { return port_; }
  // The serving certificate in use now (PEM).
  std::string servingCertForTest() const;
  const Admitter& admitter() const { return admitter_; }

private:
  Status refresh();

  k8s::Client& client_;
  WebhookOptions o_;
  CertManager certs_;
  std::unique_ptr<AdmissionCache> cache_;  // with cacheReads
  Admitter admitter_;
  std::unique_ptr<httplib::SSLServer> server_;
  mutable std::mutex mu_;
  std::shared_ptr<TlsCredentials> creds_;
  std::string certPem_;
  int port_ = -1;
  k8s::StopSignal stop_;
  std::thread serveThread_, rotateThread_;
};

}  // namespace tf::webhook
