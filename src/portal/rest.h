// The console's REST API under /api/v1/ (JSON). Every route but login checks the session
// cookie (401 without one); every state-changing route also wants the session's CSRF token in
// X-CSRF-Token (403 without it). Routes: see README.md. No Beast here: the server converts.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "portal/context.h"

namespace tf::portal {

struct HttpRequest {
  std::string method, path, query, body;
  std::string cookie;      // the Cookie header
  std::string csrfToken;   // the X-CSRF-Token header
  std::string peer;        // client address
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string contentType = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

class RestApi {
public:
  explicit RestApi(PortalContext& ctx) : ctx_(ctx) {}
  HttpResponse handle(const HttpRequest& req);

private:
  PortalContext& ctx_;
};

// The first admin: from a password (a file's first line) or, when none is given, a generated
// one returned for printing once. Does nothing when a user exists (returns "").
Result<std::string> ensureAdmin(Store& store, const std::string& givenPassword, int64_t now);

}  // namespace tf::portal
