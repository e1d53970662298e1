#include "portal/auth.h"

#include <sstream>
#include <vector>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "control_protocol/crypto.h"

namespace tf::portal {
namespace {

constexpr size_t kSaltBytes = 16, kHashBytes = 32;

Result<std::string> scrypt(const std::string& password, const std::string& salt, const ScryptParams& p) {
  if (p.log2N < 10 || p.log2N > 20 || p.r < 1 || p.r > 32 || p.p < 1 || p.p > 16)
    return invalidArgument("scrypt parameters out of range");
  std::string out(kHashBytes, '\0');
  const uint64_t n = uint64_t(1) << p.log2N;
  const uint64_t maxMem = 128 * n * uint64_t(p.r) * uint64_t(p.p) + (1 << 20);
  if (EVP_PBE_scrypt(password.data(), password.size(), reinterpret_cast<const unsigned char*>(salt.data()),
                     salt.size(), n, uint64_t(p.r), uint64_t(p.p), maxMem,
                     reinterpret_cast<unsigned char*>(out.data()), out.size()) != 1)
    return internalError("scrypt failed");
  return out;
}

}  // namespace

Result<std::string> hashPassword(const std::string& password, ScryptParams params) {
  auto salt = protocol::randomBytes(kSaltBytes);
  if (!salt) return salt.status();
  auto hash = scrypt(password, *salt, params);
  if (!hash) return hash.status();
  return "scrypt$" + std::to_string(params.log2N) + "$" + std::to_string(params.r) + "$" + std::to_string(params.p) +
         "$" + protocol::base64UrlEncode(*salt) + "$" + protocol::base64UrlEncode(*hash);
}

bool verifyPassword(const std::string& password, const std::string& encoded) {
  std::vector<std::string> parts;
  std::stringstream ss(encoded);
  for (std::string part; std::getline(ss, part, '$');) parts.push_back(part);
  if (parts.size() != 6 || parts[0] != "scrypt") return false;
  ScryptParams p;
  try {
    p = {std::stoi(parts[1]), std::stoi(parts[2]), std::stoi(parts[3])};
  } catch (const std::exception&) {
    return false;
  }
  auto salt = protocol::base64UrlDecode(parts[4]);
  auto want = protocol::base64UrlDecode(parts[5]);
  if (!salt || !want || want->size() != kHashBytes) return false;
  auto got = scrypt(password, *salt, p);
  return got && CRYPTO_memcmp(got->data(), want->data(), kHashBytes) == 0;
}

std::string sessionKey(const std::string& cookieValue) {
  return protocol::hexEncode(protocol::sha256(cookieValue));
}

}  // namespace tf::portal
