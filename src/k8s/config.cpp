#include "k8s/config.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "common/env.h"
#include "k8s/base64.h"

namespace tf::k8s {
namespace {

namespace fs = std::filesystem;

Result<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return notFound("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string resolve(const std::string& path, const std::string& baseDir) {
  if (path.empty() || fs::path(path).is_absolute() || baseDir.empty()) return path;
  return (fs::path(baseDir) / path).string();
}

// One named entry of clusters/users/contexts, with the directory of the file it came from.
struct Entry {
  YAML::Node node;
  std::string baseDir;
};
struct Merged {
  std::map<std::string, Entry> clusters, users, contexts;
  std::string currentContext;
};

Status mergeInto(Merged& m, const YAML::Node& root, const std::string& baseDir,
                 const std::string& source) {
  if (!root.IsMap()) return invalidArgument(source + ": not a kubeconfig (top level is not a map)");
  auto take = [&](const char* key, const char* inner, std::map<std::string, Entry>& into) -> Status {
    YAML::Node list = root[key];
    if (!list) return Status::ok();
    if (!list.IsSequence()) return invalidArgument(source + ": " + key + " is not a list");
    for (const auto& item : list) {
      if (!item["name"] || !item[inner])
        return invalidArgument(source + ": an entry of " + key + " lacks name or " + inner);
      into.emplace(item["name"].as<std::string>(), Entry{item[inner], baseDir});  // first wins
    }
    return Status::ok();
  };
  TF_RETURN_IF_ERROR(take("clusters", "cluster", m.clusters));
  TF_RETURN_IF_ERROR(take("users", "user", m.users));
  TF_RETURN_IF_ERROR(take("contexts", "context", m.contexts));
  if (m.currentContext.empty() && root["current-context"])
    m.currentContext = root["current-context"].as<std::string>();
  return Status::ok();
}

// `key-data` (base64, inline) or `key` (a file path); empty when neither is set.
Result<std::string> dataOrFile(const Entry& e, const std::string& key, const std::string& what) {
  if (auto d = e.node[key + "-data"]) return base64Decode(d.as<std::string>(), what + " " + key + "-data");
  if (auto f = e.node[key]) return readFile(resolve(f.as<std::string>(), e.baseDir));
  return std::string();
}

Result<Config> build(const Merged& m, std::string_view contextName, const std::string& source) {
  std::string ctxName = contextName.empty() ? m.currentContext : std::string(contextName);
  if (ctxName.empty()) return invalidArgument(source + ": no current-context and none asked for");
  auto ctx = m.contexts.find(ctxName);
  if (ctx == m.contexts.end()) return notFound(source + ": context \"" + ctxName + "\" not found");
  const YAML::Node& c = ctx->second.node;
  std::string clusterName = c["cluster"] ? c["cluster"].as<std::string>() : "";
  auto cl = m.clusters.find(clusterName);
  if (cl == m.clusters.end())
    return notFound(source + ": cluster \"" + clusterName + "\" of context \"" + ctxName + "\" not found");

  Config cfg;
  cfg.source = source + " (context " + ctxName + ")";
  if (c["namespace"]) cfg.defaultNamespace = c["namespace"].as<std::string>();
  const Entry& cluster = cl->second;
  if (!cluster.node["server"]) return invalidArgument(source + ": cluster \"" + clusterName + "\" has no server");
  cfg.server = cluster.node["server"].as<std::string>();
  while (!cfg.server.empty() && cfg.server.back() == '/') cfg.server.pop_back();
  if (auto s = cluster.node["insecure-skip-tls-verify"]) cfg.insecureSkipTlsVerify = s.as<bool>();
  auto ca = dataOrFile(cluster, "certificate-authority", "cluster " + clusterName);
  if (!ca) return ca.status();
  cfg.caPem = *ca;

  std::string userName = c["user"] ? c["user"].as<std::string>() : "";
  if (!userName.empty()) {
    auto u = m.users.find(userName);
    if (u == m.users.end()) return notFound(source + ": user \"" + userName + "\" not found");
    const Entry& user = u->second;
    auto cert = dataOrFile(user, "client-certificate", "user " + userName);
    if (!cert) return cert.status();
    auto key = dataOrFile(user, "client-key", "user " + userName);
    if (!key) return key.status();
    if (cert->empty() != key->empty())
      return invalidArgument(source + ": user \"" + userName + "\" has a client certificate without a key or a key without a certificate");
    cfg.clientCertPem = *cert;
    cfg.clientKeyPem = *key;
    if (auto t = user.node["token"]) cfg.token = t.as<std::string>();
    if (auto t = user.node["tokenFile"]) cfg.tokenFile = resolve(t.as<std::string>(), user.baseDir);
    if (auto t = user.node["username"]) cfg.username = t.as<std::string>();
    if (auto t = user.node["password"]) cfg.password = t.as<std::string>();
    if (user.node["exec"] || user.node["auth-provider"])
      return unimplemented(source + ": user \"" + userName + "\" uses exec/auth-provider credentials, which this client does not run");
  }
  return cfg;
}

Result<Merged> parseInto(Merged m, std::string_view yaml, const std::string& baseDir,
                         const std::string& source) {
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    TF_RETURN_IF_ERROR(mergeInto(m, root, baseDir, source));
  } catch (const YAML::Exception& e) {
    return invalidArgument(source + ": " + e.what());
  }
  return m;
}

}  // namespace

Result<Config> parseKubeconfig(std::string_view yaml, const std::string& baseDir,
                               std::string_view context) {
  auto m = parseInto({}, yaml, baseDir, "kubeconfig");
  if (!m) return m.status();
  try {
    return build(*m, context, "kubeconfig");
  } catch (const YAML::Exception& e) {
    return invalidArgument(std::string("kubeconfig: ") + e.what());
  }
}

Result<Config> loadKubeconfigFiles(const std::vector<std::string>& paths, std::string_view context) {
  Merged m;
  std::string source;
  for (const auto& path : paths) {
    if (path.empty()) continue;
    auto text = readFile(path);
    if (!text) return text.status();
    auto merged = parseInto(std::move(m), *text, fs::absolute(path).parent_path().string(), path);
    if (!merged) return merged.status();
    m = std::move(*merged);
    source += (source.empty() ? "" : ":") + path;
  }
  if (source.empty()) return invalidArgument("no kubeconfig file given");
  try {
    return build(m, context, source);
  } catch (const YAML::Exception& e) {
    return invalidArgument(source + ": " + e.what());
  }
}

Result<Config> inClusterConfig(const InClusterOptions& options) {
  auto host = env::get("KUBERNETES_SERVICE_HOST");
  auto port = env::get("KUBERNETES_SERVICE_PORT");
  if (!host || !port || host->empty() || port->empty())
    return failedPrecondition("not in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set");
  Config cfg;
  cfg.source = "in-cluster";
  bool ipv6 = host->find(':') != std::string::npos;
  cfg.server = "https://" + (ipv6 ? "[" + *host + "]" : *host) + ":" + *port;
  cfg.tokenFile = options.saDir + "/token";
  if (!fs::exists(cfg.tokenFile)) return notFound("in-cluster: no service-account token at " + cfg.tokenFile);
  auto ca = readFile(options.saDir + "/ca.crt");
  if (!ca) return ca.status().withContext("in-cluster");
  cfg.caPem = *ca;
  if (auto ns = readFile(options.saDir + "/namespace"); ns && !ns->empty()) {
    cfg.defaultNamespace = *ns;
    while (!cfg.defaultNamespace.empty() && isspace(static_cast<unsigned char>(cfg.defaultNamespace.back())))
      cfg.defaultNamespace.pop_back();
  }
  return cfg;
}

Result<Config> loadDefaultConfig() {
  if (auto kc = env::get("KUBECONFIG"); kc && !kc->empty()) {
    std::vector<std::string> paths;
    std::stringstream ss(*kc);
    for (std::string p; std::getline(ss, p, ':');)
      if (!p.empty()) paths.push_back(p);
    return loadKubeconfigFiles(paths);
  }
  if (auto home = env::get("HOME")) {
    std::string path = *home + "/.kube/config";
    if (fs::exists(path)) return loadKubeconfigFiles({path});
  }
  return inClusterConfig();
}

}  // namespace tf::k8s
