#include "control_protocol/crypto.h"

#include <cctype>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace tf::protocol {
namespace {

constexpr size_t kEd25519KeyBytes = 32, kEd25519SigBytes = 64;
constexpr std::string_view kAuthContext{"tensor-fusion agent auth v1\0", 28};

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

std::shared_ptr<EVP_PKEY> own(EVP_PKEY* k) { return std::shared_ptr<EVP_PKEY>(k, EVP_PKEY_free); }

}  // namespace

std::string base64UrlEncode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), int(bytes.size()));
  out.resize(size_t(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

Result<std::string> base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return invalidArgument("base64url: bad length");
  std::string in(text);
  for (char& c : in) {
    if (c == '-') c = '+';
    else if (c == '_') c = '/';
    else if (!std::isalnum(static_cast<unsigned char>(c))) return invalidArgument("base64url: bad character");
  }
  const size_t pad = (4 - in.size() % 4) % 4;
  in.append(pad, '=');
  std::string out(in.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()), int(in.size()));
  if (n < 0) return invalidArgument("base64url: undecodable");
  out.resize(size_t(n) - pad);  // DecodeBlock counts the padding as zero bytes
  return out;
}

std::string sha256(std::string_view bytes) {
  std::string out(32, '\0');
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), reinterpret_cast<unsigned char*>(out.data()), &len, EVP_sha256(), nullptr);
  return out;
}

std::string hexEncode(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

Result<std::string> randomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), int(n)) != 1) return internalError("RAND_bytes failed");
  return out;
}

Result<std::string> randomToken(size_t n) {
  auto bytes = randomBytes(n);
  if (!bytes) return bytes.status();
  return base64UrlEncode(*bytes);
}

std::string authPayload(std::string_view nonceBytes, std::string_view agentId, std::string_view portalPin) {
  std::string p(kAuthContext);
  p += nonceBytes;
  p += agentId;
  p.push_back('\0');
  p += portalPin;
  return p;
}

Result<Ed25519Key> Ed25519Key::generate() {
  EVP_PKEY* k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (!k) return internalError("Ed25519 key generation failed");
  return Ed25519Key(own(k));
}

Result<Ed25519Key> Ed25519Key::fromPem(std::string_view pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
  EVP_PKEY* k = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (!k) return invalidArgument("not a PEM private key");
  auto key = own(k);
  if (EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) return invalidArgument("not an Ed25519 key");
  return Ed25519Key(key);
}

std::string Ed25519Key::privateKeyPem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, size_t(n));
}

std::string Ed25519Key::publicKeyBase64() const {
  std::string raw(kEd25519KeyBytes, '\0');
  size_t len = raw.size();
  EVP_PKEY_get_raw_public_key(key_.get(), reinterpret_cast<unsigned char*>(raw.data()), &len);
  raw.resize(len);
  return base64UrlEncode(raw);
}

Result<std::string> Ed25519Key::sign(std::string_view message) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  std::string sig(kEd25519SigBytes, '\0');
  size_t len = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1)
    return internalError("Ed25519 signing failed");
  sig.resize(len);
  return base64UrlEncode(sig);
}

Status verifyEd25519(std::string_view publicKey, std::string_view message, std::string_view signature) {
  auto raw = base64UrlDecode(publicKey);
  if (!raw || raw->size() != kEd25519KeyBytes) return invalidArgument("malformed Ed25519 public key");
  auto sig = base64UrlDecode(signature);
  if (!sig || sig->size() != kEd25519SigBytes) return invalidArgument("malformed Ed25519 signature");
  EVP_PKEY* k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                            reinterpret_cast<const unsigned char*>(raw->data()), raw->size());
  if (!k) return invalidArgument("malformed Ed25519 public key");
  auto key = own(k);
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, k) != 1)
    return internalError("Ed25519 verify setup failed");
  const int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()), sig->size(),
                                  reinterpret_cast<const unsigned char*>(message.data()), message.size());
  return rc == 1 ? Status::ok() : Status(Code::PermissionDenied, "signature does not verify");
}

Result<std::string> certificatePin(X509* cert) {
  if (!cert) return invalidArgument("no certificate");
  unsigned char* der = nullptr;
  const int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  if (n <= 0) return internalError("cannot encode the certificate's public key");
  std::string pin = "sha256:" + hexEncode(sha256(std::string_view(reinterpret_cast<char*>(der), size_t(n))));
  OPENSSL_free(der);
  return pin;
}

Result<std::string> certificatePin(std::string_view certPem) {
  BioPtr bio(BIO_new_mem_buf(certPem.data(), int(certPem.size())));
  X509* cert = bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (!cert) return invalidArgument("not a PEM certificate");
  auto pin = certificatePin(cert);
  X509_free(cert);
  return pin;
}

Result<std::string> peerCertificatePin(SSL* ssl) {
  X509* cert = ssl ? SSL_get1_peer_certificate(ssl) : nullptr;
  if (!cert) return invalidArgument("the peer presented no certificate");
  auto pin = certificatePin(cert);
  X509_free(cert);
  return pin;
}

}  // namespace tf::protocol
