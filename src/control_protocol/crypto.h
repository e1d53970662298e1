// The protocol's cryptography (OpenSSL 3 EVP): random tokens, SHA-256, base64url, Ed25519
// proof of possession and the portal certificate pin. No I/O.
//
//   auto key = Ed25519Key::generate();                     // the agent's credential
//   std::string pub = key->publicKeyBase64();               // sent once, at enrollment
//   auto sig = key->sign(authPayload(nonce, agentId, pin)); // every connection
//   Status s = verifyEd25519(pub, authPayload(...), sig);   // on the portal
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

typedef struct evp_pkey_st EVP_PKEY;
typedef struct x509_st X509;
typedef struct ssl_st SSL;

namespace tf::protocol {

std::string base64UrlEncode(std::string_view bytes);  // no padding
Result<std::string> base64UrlDecode(std::string_view text);
std::string sha256(std::string_view bytes);            // raw 32 bytes
std::string hexEncode(std::string_view bytes);
Result<std::string> randomBytes(size_t n);
// n random bytes as base64url: EnrollTokens, nonces, session ids.
Result<std::string> randomToken(size_t n = 32);

// What the agent signs to prove possession of its key on one connection: a fixed context, the
// portal's nonce (decoded, 32 bytes), the agent id and the portal pin the agent trusts, so a
// signature is good for one challenge, one agent and one portal only.
std::string authPayload(std::string_view nonceBytes, std::string_view agentId, std::string_view portalPin);

class Ed25519Key {
public:
  static Result<Ed25519Key> generate();
  static Result<Ed25519Key> fromPem(std::string_view privateKeyPem);
  std::string privateKeyPem() const;
  std::string publicKeyBase64() const;  // raw 32 bytes, base64url
  Result<std::string> sign(std::string_view message) const;  // base64url signature

private:
  explicit Ed25519Key(std::shared_ptr<EVP_PKEY> key) : key_(std::move(key)) {}
  std::shared_ptr<EVP_PKEY> key_;
};

// Ok when `signature` (base64url) is `publicKey`'s (base64url, raw) signature of `message`;
// PermissionDenied otherwise, InvalidArgument for a malformed key or signature.
Status verifyEd25519(std::string_view publicKey, std::string_view message, std::string_view signature);

// "sha256:<hex>" of the DER SubjectPublicKeyInfo of the first certificate in `certPem`.
Result<std::string> certificatePin(std::string_view certPem);
Result<std::string> certificatePin(X509* cert);
// The pin of the certificate the peer of a finished TLS handshake presented.
Result<std::string> peerCertificatePin(SSL* ssl);

}  // namespace tf::protocol
