#include "k8s/base64.h"

#include <cctype>

#include <openssl/evp.h>

namespace tf::k8s {

std::string base64Encode(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<std::string> base64Decode(const std::string& text, const std::string& what) {
  std::string clean;
  for (char c : text)
    if (!isspace(static_cast<unsigned char>(c))) clean += c;
  if (clean.size() % 4 != 0) return invalidArgument(what + ": not base64 (length)");
  std::string out(clean.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(clean.data()),
                          static_cast<int>(clean.size()));
  if (n < 0) return invalidArgument(what + ": not base64");
  size_t pad = 0;
  if (!clean.empty() && clean.back() == '=') pad = clean.size() >= 2 && clean[clean.size() - 2] == '=' ? 2 : 1;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

}  // namespace tf::k8s
