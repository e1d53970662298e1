// The webhook's own CA and serving certificate (OpenSSL; ECDSA P-256, SHA-256), as PEM.
//
//   auto ca = makeCa("tensor-fusion-webhook-ca", std::chrono::hours(24 * 365));
//   auto serving = makeServing(*ca, {"svc.ns.svc", "svc.ns.svc.cluster.local"}, validity);
//   if (needsRotation(serving->certPem, now)) ...   // past 2/3 of its life, or unreadable
//
// Rotation makes a new CA and a new serving certificate together; the CA bundle the apiserver
// trusts holds the new CA and the previous one while it is still valid, so a replica still
// serving the old certificate is trusted until it has loaded the new one.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

typedef struct x509_st X509;
typedef struct evp_pkey_st EVP_PKEY;

namespace tf::webhook {

struct KeyPair {
  std::string certPem;
  std::string keyPem;
};

using SystemTime = std::chrono::system_clock::time_point;

Result<KeyPair> makeCa(const std::string& commonName, std::chrono::seconds validity);
// A server certificate signed by `ca`, naming `dnsNames` in its subjectAltName (an IPv4
// address there becomes an IP name).
Result<KeyPair> makeServing(const KeyPair& ca, const std::vector<std::string>& dnsNames,
                            std::chrono::seconds validity);

struct CertInfo {
  SystemTime notBefore, notAfter;
  std::vector<std::string> dnsNames;  // the subjectAltName's DNS names and IPv4 addresses (as text)
  bool isCa = false;
};
// The first certificate of a PEM text.
Result<CertInfo> inspectCert(const std::string& pem);
// Past 2/3 of its validity at `now`, expired, or not a readable certificate.
bool needsRotation(const std::string& certPem, SystemTime now);
// `cert` was issued by `caCert`'s key (signature check), and `key` is cert's private key.
Status verifyPair(const KeyPair& serving, const std::string& caCertPem);

// A KeyPair as OpenSSL objects, for a TLS server to hand to each handshake.
class TlsCredentials {
public:
  static Result<std::shared_ptr<TlsCredentials>> load(const KeyPair& pair);
  ~TlsCredentials();
  TlsCredentials(const TlsCredentials&) = delete;
  TlsCredentials& operator=(const TlsCredentials&) = delete;
  X509* cert() const { return cert_; }
  EVP_PKEY* key() const { return key_; }

private:
  TlsCredentials(X509* cert, EVP_PKEY* key) : cert_(cert), key_(key) {}
  X509* cert_;
  EVP_PKEY* key_;
};

// Every certificate of a PEM bundle, each as its own PEM text.
std::vector<std::string> splitPemBundle(const std::string& bundle);

}  // namespace tf::webhook
