// Console users: scrypt password hashes (parameters and salt stored with the hash) and session
// and CSRF tokens. Sessions live in the Store, keyed by the SHA-256 of the cookie's value.
//
//   auto h = hashPassword("s3cret");            // "scrypt$15$8$1$<salt>$<hash>"
//   bool ok = verifyPassword("s3cret", *h);      // constant-time compare
#pragma once

#include <string>

#include "common/status.h"

namespace tf::portal {

struct ScryptParams {
  int log2N = 15;  // N = 32768, r = 8: 32 MiB and tens of ms per hash
  int r = 8;
  int p = 1;
};

Result<std::string> hashPassword(const std::string& password, ScryptParams params = {});
// False for a wrong password or a malformed hash.
bool verifyPassword(const std::string& password, const std::string& encoded);

// The stored form of a session cookie's value (hex SHA-256).
std::string sessionKey(const std::string& cookieValue);

inline constexpr const char* kSessionCookie = "tf_session";

}  // namespace tf::portal
