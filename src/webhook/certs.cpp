#include "webhook/certs.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <memory>

namespace tf::webhook {
namespace {

template <typename T, void (*F)(T*)> struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

Status sslError(const std::string& what) {
  char buf[256] = "unknown error";
  if (unsigned long e = ERR_get_error()) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return internalError(what + ": " + buf);
}

std::string bioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

Result<std::string> keyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) return sslError("writing key");
  return bioText(bio.get());
}

Result<std::string> certPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), cert)) return sslError("writing certificate");
  return bioText(bio.get());
}

X509Ptr readCert(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

PkeyPtr readKey(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return PkeyPtr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

bool addExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) return false;
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A new certificate for a new key, signed by `issuerKey` (itself when null).
Result<KeyPair> issue(const std::string& cn, std::chrono::seconds validity, X509* issuer, EVP_PKEY* issuerKey,
                      bool ca, const std::vector<std::string>& dnsNames) {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return sslError("generating a key");
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return sslError("random serial");
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  // Backdated (a minute, less for short lives): a node whose clock is a little behind still
  // accepts it, and rotation at 2/3 of the life stays after most of the validity asked for.
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -std::min<long>(60, static_cast<long>(validity.count()) / 10));
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(validity.count()));
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509* iss = issuer ? issuer : cert.get();
  bool ok = true;
  if (ca) {
    ok = addExt(cert.get(), iss, NID_basic_constraints, "critical,CA:TRUE") &&
         addExt(cert.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign") &&
         addExt(cert.get(), iss, NID_subject_key_identifier, "hash");
  } else {
    std::string san;
    for (const auto& d : dnsNames) {
      const bool ip = !d.empty() && d.find_first_not_of("0123456789.") == std::string::npos;
      san += std::string(san.empty() ? "" : ",") + (ip ? "IP:" : "DNS:") + d;
    }
    ok = addExt(cert.get(), iss, NID_basic_constraints, "critical,CA:FALSE") &&
         addExt(cert.get(), iss, NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
         addExt(cert.get(), iss, NID_ext_key_usage, "serverAuth") &&
         (san.empty() || addExt(cert.get(), iss, NID_subject_alt_name, san));
  }
  if (!ok) return sslError("certificate extensions");
  if (!X509_sign(cert.get(), issuerKey ? issuerKey : key.get(), EVP_sha256())) return sslError("signing");
  auto c = certPem(cert.get());
  if (!c) return c.status();
  auto k = keyPem(key.get());
  if (!k) return k.status();
  return KeyPair{*c, *k};
}

SystemTime toTime(const ASN1_TIME* t) {
  struct tm tm {};
  ASN1_TIME_to_tm(t, &tm);
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace

Result<KeyPair> makeCa(const std::string& commonName, std::chrono::seconds validity) {
  return issue(commonName, validity, nullptr, nullptr, true, {});
}

Result<KeyPair> makeServing(const KeyPair& ca, const std::vector<std::string>& dnsNames,
                            std::chrono::seconds validity) {
  X509Ptr caCert = readCert(ca.certPem);
  PkeyPtr caKey = readKey(ca.keyPem);
  if (!caCert || !caKey) return invalidArgument("the CA's certificate or key is not readable PEM");
  return issue(dnsNames.empty() ? "tensor-fusion-webhook" : dnsNames.front(), validity, caCert.get(), caKey.get(),
               false, dnsNames);
}

Result<CertInfo> inspectCert(const std::string& pem) {
  X509Ptr cert = readCert(pem);
  if (!cert) {
    ERR_clear_error();
    return invalidArgument("not a PEM certificate");
  }
  CertInfo info;
  info.notBefore = toTime(X509_get0_notBefore(cert.get()));
  info.notAfter = toTime(X509_get0_notAfter(cert.get()));
  info.isCa = X509_check_ca(cert.get()) != 0;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type == GEN_DNS) {
      info.dnsNames.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.dNSName)),
                                 ASN1_STRING_length(n->d.dNSName));
    } else if (n->type == GEN_IPADD && ASN1_STRING_length(n->d.iPAddress) == 4) {
      const unsigned char* a = ASN1_STRING_get0_data(n->d.iPAddress);
      info.dnsNames.push_back(std::to_string(a[0]) + "." + std::to_string(a[1]) + "." + std::to_string(a[2]) + "." +
                              std::to_string(a[3]));
    }
  }
  GENERAL_NAMES_free(names);
  return info;
}

bool needsRotation(const std::string& pem, SystemTime now) {
  auto info = inspectCert(pem);
  if (!info) return true;
  const auto life = info->notAfter - info->notBefore;
  return now >= info->notBefore + life * 2 / 3;
}

Status verifyPair(const KeyPair& serving, const std::string& caCertPem) {
  X509Ptr cert = readCert(serving.certPem);
  X509Ptr ca = readCert(caCertPem);
  PkeyPtr key = readKey(serving.keyPem);
  if (!cert || !ca || !key) {
    ERR_clear_error();
    return invalidArgument("unreadable certificate, CA or key");
  }
  PkeyPtr caPub(X509_get_pubkey(ca.get()));
  if (X509_verify(cert.get(), caPub.get()) != 1) {
    ERR_clear_error();
    return invalidArgument("the certificate is not signed by this CA");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return invalidArgument("the key does not belong to the certificate");
  }
  return Status::ok();
}

Result<std::shared_ptr<TlsCredentials>> TlsCredentials::load(const KeyPair& pair) {
  X509Ptr cert = readCert(pair.certPem);
  PkeyPtr key = readKey(pair.keyPem);
  if (!cert || !key) {
    ERR_clear_error();
    return invalidArgument("unreadable certificate or key");
  }
  return std::shared_ptr<TlsCredentials>(new TlsCredentials(cert.release(), key.release()));
}

TlsCredentials::~TlsCredentials() {
  X509_free(cert_);
  EVP_PKEY_free(key_);
}

std::vector<std::string> splitPemBundle(const std::string& bundle) {
  std::vector<std::string> out;
  static const std::string kEnd = "-----END CERTIFICATE-----";
  size_t pos = 0;
  while (true) {
    size_t begin = bundle.find("-----BEGIN CERTIFICATE-----", pos);
    if (begin == std::string::npos) return out;
    size_t end = bundle.find(kEnd, begin);
    if (end == std::string::npos) return out;
    out.push_back(bundle.substr(begin, end + kEnd.size() - begin) + "\n");
    pos = end + kEnd.size();
  }
}

}  // namespace tf::webhook
