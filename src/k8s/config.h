// Where the apiserver is and how to authenticate to it: from a kubeconfig (the files named by
// KUBECONFIG, else ~/.kube/config) or from inside a pod (service-account token and CA).
// TLS is verified unless the kubeconfig says insecure-skip-tls-verify.
//
//   auto cfg = tf::k8s::loadDefaultConfig();    // KUBECONFIG, ~/.kube/config, in-cluster
//   auto client = tf::k8s::Client::create(*cfg);
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tf::k8s {

struct Config {
  std::string server;         // "https://127.0.0.1:6443"
  std::string caPem;          // certificate authorities; empty: the system's
  std::string clientCertPem;  // client certificate and key (mutual TLS); empty: none
  std::string clientKeyPem;
  std::string token;          // bearer token given inline
  std::string tokenFile;      // bearer token read from a file, re-read when it changes
  std::string username, password;  // basic auth (rare; kept because kubeconfigs carry it)
  bool insecureSkipTlsVerify = false;
  std::string defaultNamespace = "default";  // the context's namespace
  std::string source;                        // where this came from, for messages
};

// Parses kubeconfig YAML. Relative file paths resolve against `baseDir`. `context` empty:
// the file's current-context.
Result<Config> parseKubeconfig(std::string_view yaml, const std::string& baseDir,
                               std::string_view context = {});
// Several files merged as kubectl does: the first file that names a cluster, user or context
// (or current-context) wins.
Result<Config> loadKubeconfigFiles(const std::vector<std::string>& paths,
                                   std::string_view context = {});

// In a pod: KUBERNETES_SERVICE_HOST/PORT and the service account's token, CA and namespace
// under `saDir`. The token is used as tokenFile, so rotated tokens are picked up.
struct InClusterOptions {
  std::string saDir = "/var/run/secrets/kubernetes.io/serviceaccount";
};
Result<Config> inClusterConfig(const InClusterOptions& options = {});

// KUBECONFIG (colon-separated) if set, else ~/.kube/config if it exists, else in-cluster.
Result<Config> loadDefaultConfig();

}  // namespace tf::k8s
