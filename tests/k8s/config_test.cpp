#include "k8s/config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace tf::k8s {
namespace {

namespace fs = std::filesystem;

class TempDir {
public:
  TempDir() {
    char tmpl[] = "/tmp/k8s-config-test.XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string write(const std::string& name, const std::string& text) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  const std::string& path() const { return path_; }

private:
  std::string path_;
};

// base64 of "CA-PEM", "CERT-PEM", "KEY-PEM".
constexpr const char* kTwoContexts = R"(
apiVersion: v1
kind: Config
current-context: admin
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: Q0EtUEVN
- name: other
  cluster:
    server: https://10.0.0.1:443
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    client-certificate-data: Q0VSVC1QRU0=
    client-key-data: S0VZLVBFTQ==
- name: robot
  user:
    tokenFile: tokens/robot
contexts:
- name: admin
  context: {cluster: local, user: admin}
- name: robot
  context: {cluster: other, user: robot, namespace: tf-system}
)";

TEST(KubeconfigTest, CurrentContextWithInlineData) {
  auto cfg = parseKubeconfig(kTwoContexts, "/base");
  ASSERT_TRUE(cfg) << cfg.status().toString();
  EXPECT_EQ(cfg->server, "https://127.0.0.1:6443");  // trailing slash dropped
  EXPECT_EQ(cfg->caPem, "CA-PEM");
  EXPECT_EQ(cfg->clientCertPem, "CERT-PEM");
  EXPECT_EQ(cfg->clientKeyPem, "KEY-PEM");
  EXPECT_FALSE(cfg->insecureSkipTlsVerify);
  EXPECT_EQ(cfg->defaultNamespace, "default");
}

TEST(KubeconfigTest, NamedContextTokenFileRelativeToTheFile) {
  auto cfg = parseKubeconfig(kTwoContexts, "/base", "robot");
  ASSERT_TRUE(cfg) << cfg.status().toString();
  EXPECT_EQ(cfg->server, "https://10.0.0.1:443");
  EXPECT_TRUE(cfg->insecureSkipTlsVerify);
  EXPECT_EQ(cfg->tokenFile, "/base/tokens/robot");
  EXPECT_EQ(cfg->defaultNamespace, "tf-system");
  EXPECT_TRUE(cfg->caPem.empty());
}

TEST(KubeconfigTest, FilesForCaCertKeyAndInlineToken) {
  TempDir dir;
  dir.write("ca.crt", "FILE-CA");
  dir.write("c.crt", "FILE-CERT");
  dir.write("c.key", "FILE-KEY");
  std::string path = dir.write("config", R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://h:1", certificate-authority: ca.crt}}]
users: [{name: u, user: {client-certificate: c.crt, client-key: c.key, token: abc}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
)");
  auto cfg = loadKubeconfigFiles({path});
  ASSERT_TRUE(cfg) << cfg.status().toString();
  EXPECT_EQ(cfg->caPem, "FILE-CA");
  EXPECT_EQ(cfg->clientCertPem, "FILE-CERT");
  EXPECT_EQ(cfg->clientKeyPem, "FILE-KEY");
  EXPECT_EQ(cfg->token, "abc");
}

TEST(KubeconfigTest, MergedFilesFirstWins) {
  TempDir dir;
  std::string a = dir.write("a", R"(
current-context: ca
clusters: [{name: k, cluster: {server: "https://first:1"}}]
contexts: [{name: ca, context: {cluster: k}}]
)");
  std::string b = dir.write("b", R"(
current-context: cb
clusters: [{name: k, cluster: {server: "https://second:1"}}, {name: k2, cluster: {server: "https://k2:1"}}]
contexts: [{name: cb, context: {cluster: k2}}]
)");
  auto cfg = loadKubeconfigFiles({a, b});
  ASSERT_TRUE(cfg) << cfg.status().toString();
  EXPECT_EQ(cfg->server, "https://first:1");
  auto other = loadKubeconfigFiles({a, b}, "cb");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->server, "https://k2:1");
  // KUBECONFIG lists both.
  setenv("KUBECONFIG", (b + ":" + a).c_str(), 1);
  auto env = loadDefaultConfig();
  unsetenv("KUBECONFIG");
  ASSERT_TRUE(env) << env.status().toString();
  EXPECT_EQ(env->server, "https://k2:1");  // b is first: its current-context cb wins
}

TEST(KubeconfigTest, ClearErrors) {
  auto missing = parseKubeconfig(kTwoContexts, "", "nope");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().code(), Code::NotFound);
  EXPECT_NE(missing.status().message().find("context \"nope\""), std::string::npos);

  auto badYaml = parseKubeconfig("clusters: [unclosed", "");
  ASSERT_FALSE(badYaml);
  EXPECT_EQ(badYaml.status().code(), Code::InvalidArgument);

  auto badB64 = parseKubeconfig(R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://h:1", certificate-authority-data: "@@@"}}]
contexts: [{name: c, context: {cluster: k}}]
)", "");
  ASSERT_FALSE(badB64);
  EXPECT_NE(badB64.status().message().find("base64"), std::string::npos);

  auto certNoKey = parseKubeconfig(R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://h:1"}}]
users: [{name: u, user: {client-certificate-data: Q0VSVC1QRU0=}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
)", "");
  ASSERT_FALSE(certNoKey);
  EXPECT_NE(certNoKey.status().message().find("without a key"), std::string::npos);

  auto exec = parseKubeconfig(R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://h:1"}}]
users: [{name: u, user: {exec: {command: aws}}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
)", "");
  ASSERT_FALSE(exec);
  EXPECT_EQ(exec.status().code(), Code::Unimplemented);

  auto noFile = loadKubeconfigFiles({"/nonexistent/kubeconfig"});
  ASSERT_FALSE(noFile);
  EXPECT_EQ(noFile.status().code(), Code::NotFound);
}

TEST(InClusterTest, ServiceAccountFiles) {
  TempDir dir;
  dir.write("token", "tok\n");
  dir.write("ca.crt", "SA-CA");
  dir.write("namespace", "tf-system\n");
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto cfg = inClusterConfig({dir.path()});
  ASSERT_TRUE(cfg) << cfg.status().toString();
  EXPECT_EQ(cfg->server, "https://10.96.0.1:443");
  EXPECT_EQ(cfg->caPem, "SA-CA");
  EXPECT_EQ(cfg->tokenFile, dir.path() + "/token");
  EXPECT_EQ(cfg->defaultNamespace, "tf-system");

  setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  auto v6 = inClusterConfig({dir.path()});
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->server, "https://[fd00::1]:443");

  auto noToken = inClusterConfig({dir.path() + "/nope"});
  EXPECT_FALSE(noToken);
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  auto outside = inClusterConfig({dir.path()});
  ASSERT_FALSE(outside);
  EXPECT_EQ(outside.status().code(), Code::FailedPrecondition);
}

}  // namespace
}  // namespace tf::k8s
