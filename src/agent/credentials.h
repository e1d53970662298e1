// The agent's long-lived identity: its AgentID and Ed25519 private key, kept in a Kubernetes
// Secret of its namespace, plus whether the portal has accepted the key (enrolled). The key is
// saved before the agent enrolls, so a crash between enrolling and saving cannot strand it (the
// portal accepts the same token with the same key again); once enrolled, the agent proves
// possession of the key on every connection and never sends the EnrollToken again.
//
//   SecretCredentialStore store(client, "tensor-fusion-sys", "tensor-fusion-agent-credentials");
//   auto cred = store.load();             // NotFound the first time
//   store.save(cred);                     // create or update
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace tf::k8s {
class Client;
}

namespace tf::agent {

struct AgentCredential {
  std::string agentId;
  std::string privateKeyPem;
  std::string portalPin;  // the portal this key is enrolled with
  bool enrolled = false;
};

// The Secret's data (base64 values, as the API wants them) and back. Decoding names the
// missing or bad key.
nlohmann::json credentialToSecretData(const AgentCredential& credential);
Result<AgentCredential> credentialFromSecret(const nlohmann::json& secret);

class CredentialStore {
public:
  virtual ~CredentialStore() = default;
  virtual Result<AgentCredential> load() = 0;  // NotFound when there is none yet
  virtual Status save(const AgentCredential& credential) = 0;
};

class SecretCredentialStore : public CredentialStore {
public:
  SecretCredentialStore(k8s::Client& client, std::string ns, std::string name)
      : client_(client), ns_(std::move(ns)), name_(std::move(name)) {}
  Result<AgentCredential> load() override;
  Status save(const AgentCredential& credential) override;

private:
  k8s::Client& client_;
  std::string ns_, name_;
};

}  // namespace tf::agent
