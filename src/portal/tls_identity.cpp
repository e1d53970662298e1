#include "portal/tls_identity.h"

#include <fstream>
#include <memory>
#include <sstream>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "control_protocol/crypto.h"

namespace tf::portal {
namespace {

constexpr long kValiditySeconds = 10L * 365 * 24 * 3600;  // pinned, not CA-trusted: rotation is a pin change

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

Result<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return notFound("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status writeFile(const std::string& path, const std::string& data, mode_t mode) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out || !(out << data) || !out.flush()) return unavailable("cannot write " + tmp);
  }
  if (::chmod(tmp.c_str(), mode) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0)
    return unavailable("cannot install " + path);
  return Status::ok();
}

std::string bioText(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, size_t(n));
}

Result<TlsIdentity> makeSelfSigned(const std::vector<std::string>& hostNames) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"),
                                                            EVP_PKEY_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  if (!key || !cert) return internalError("key generation failed");
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return internalError("RAND_bytes failed");
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), kValiditySeconds);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("tensor-fusion-portal"),
                             -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  std::string san;
  for (const auto& h : hostNames) {
    in_addr addr;
    san += (san.empty() ? "" : ",") + std::string(inet_pton(AF_INET, h.c_str(), &addr) == 1 ? "IP:" : "DNS:") + h;
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  if (!san.empty()) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
    if (!ext) return invalidArgument("bad host names for the certificate: " + san);
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return internalError("certificate signing failed");
  std::unique_ptr<BIO, decltype(&BIO_free)> certBio(BIO_new(BIO_s_mem()), BIO_free), keyBio(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_X509(certBio.get(), cert.get());
  PEM_write_bio_PrivateKey(keyBio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  TlsIdentity id;
  id.certPem = bioText(certBio.get());
  id.keyPem = bioText(keyBio.get());
  id.generated = true;
  return id;
}

}  // namespace

Result<TlsIdentity> loadOrCreateTlsIdentity(const std::string& certPath, const std::string& keyPath,
                                            const std::vector<std::string>& hostNames) {
  TlsIdentity id;
  const bool haveCert = exists(certPath), haveKey = exists(keyPath);
  if (haveCert != haveKey)
    return failedPrecondition("found only one of " + certPath + " and " + keyPath + "; give both or neither");
  if (haveCert) {
    auto cert = readFile(certPath);
    if (!cert) return cert.status();
    auto key = readFile(keyPath);
    if (!key) return key.status();
    id.certPem = *cert;
    id.keyPem = *key;
  } else {
    auto made = makeSelfSigned(hostNames);
    if (!made) return made.status();
    id = *made;
    TF_RETURN_IF_ERROR(writeFile(keyPath, id.keyPem, 0600));
    TF_RETURN_IF_ERROR(writeFile(certPath, id.certPem, 0644));
  }
  auto pin = protocol::certificatePin(id.certPem);
  if (!pin) return pin.status().withContext(certPath);
  id.pin = *pin;
  return id;
}

}  // namespace tf::portal
