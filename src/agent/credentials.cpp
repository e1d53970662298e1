#include "agent/credentials.h"

#include "k8s/base64.h"
#include "k8s/builtin.h"
#include "k8s/client.h"

namespace tf::agent {

using nlohmann::json;

json credentialToSecretData(const AgentCredential& c) {
  return {{"agentId", k8s::base64Encode(c.agentId)},
          {"privateKey", k8s::base64Encode(c.privateKeyPem)},
          {"portalPin", k8s::base64Encode(c.portalPin)},
          {"enrolled", k8s::base64Encode(c.enrolled ? "true" : "false")}};
}

Result<AgentCredential> credentialFromSecret(const json& secret) {
  auto data = secret.find("data");
  if (data == secret.end() || !data->is_object()) return invalidArgument("agent Secret: no data");
  auto field = [&](const char* key) -> Result<std::string> {
    auto it = data->find(key);
    if (it == data->end() || !it->is_string()) return invalidArgument(std::string("agent Secret: data.") + key + " missing");
    return k8s::base64Decode(it->get<std::string>(), std::string("agent Secret data.") + key);
  };
  AgentCredential c;
  auto id = field("agentId");
  if (!id) return id.status();
  auto key = field("privateKey");
  if (!key) return key.status();
  auto pin = field("portalPin");
  if (!pin) return pin.status();
  auto enrolled = field("enrolled");
  if (!enrolled) return enrolled.status();
  if (*enrolled != "true" && *enrolled != "false") return invalidArgument("agent Secret: data.enrolled: expected true or false");
  if (id->empty()) return invalidArgument("agent Secret: data.agentId is empty");
  if (key->empty()) return invalidArgument("agent Secret: data.privateKey is empty");
  c.agentId = *id;
  c.privateKeyPem = *key;
  c.portalPin = *pin;
  c.enrolled = *enrolled == "true";
  return c;
}

Result<AgentCredential> SecretCredentialStore::load() {
  auto s = client_.get(k8s::builtin::kSecrets, ns_, name_);
  if (!s) {
    if (s.error().isNotFound()) return notFound("Secret " + ns_ + "/" + name_ + " not found");
    return s.error().toStatus();
  }
  return credentialFromSecret(*s);
}

Status SecretCredentialStore::save(const AgentCredential& c) {
  json secret{{"apiVersion", "v1"},
              {"kind", "Secret"},
              {"metadata",
               {{"name", name_},
                {"namespace", ns_},
                {"labels", {{"app.kubernetes.io/part-of", "tensor-fusion"}, {"app.kubernetes.io/component", "agent"}}}}},
              {"type", "Opaque"},
              {"data", credentialToSecretData(c)}};
  // Merge-patch the one Secret (its name is fixed, so RBAC can name it); create it the first time.
  auto patched = client_.patch(k8s::builtin::kSecrets, ns_, name_, k8s::PatchType::Merge,
                               json{{"data", secret["data"]}, {"metadata", {{"labels", secret["metadata"]["labels"]}}}});
  if (patched) return Status::ok();
  if (!patched.error().isNotFound()) return patched.error().toStatus();
  auto created = client_.create(k8s::builtin::kSecrets, secret, ns_);
  if (!created) return created.error().toStatus();
  return Status::ok();
}

}  // namespace tf::agent
