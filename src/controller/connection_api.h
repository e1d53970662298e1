// The operator's connection API (reference §3.5), served by every controller replica:
//
//   GET /api/connection?name=<connection>&namespace=<ns>[&timeout=<seconds>]
//   Authorization: Bearer <the client pod's service-account token>
//
// Long-polls (at most 5 minutes, or `timeout`) until the TensorFusionConnection is Running and
// answers 200 {"connectionURL": "native+<ip>+<port>+<worker>-<rv>", "workerName", "phase",
// "name", "namespace"}. 504 when it is not Running in time (the body says where it stands),
// 400 for a malformed query, 401 for a token the apiserver does not accept (TokenReview), 403
// for a token of another namespace's service account. Accepted tokens are remembered for 30
// minutes (by their SHA-256), as TensorFusion does. `disableAuth` (TensorFusion's
// DISABLE_CONNECTION_AUTH) skips the token check.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "k8s/client.h"
#include "k8s/informer.h"

namespace httplib {
class Server;
}

namespace tf::controller {

struct ConnectionApiOptions {
  bool disableAuth = false;
  std::chrono::seconds maxWait{300};
  std::chrono::seconds tokenCacheFor{1800};
};

struct ConnectionAnswer {
  int status = 200;
  nlohmann::json body;
};

class ConnectionApi {
public:
  ConnectionApi(k8s::Client& client, ConnectionApiOptions options);
  ~ConnectionApi();
  void start();
  void stop();  // wakes every waiting request (503)
  void registerOn(httplib::Server& http);

  // The handler without HTTP (tests): `authorization` is the header's value.
  ConnectionAnswer answer(const std::string& name, const std::string& ns, const std::string& authorization,
                          std::chrono::milliseconds wait);

private:
  // Empty when the token may read connections of `ns`; otherwise the refusal.
  std::optional<ConnectionAnswer> authorize(const std::string& authorization, const std::string& ns);

  k8s::Client& client_;
  ConnectionApiOptions o_;
  k8s::Informer connections_;
  std::mutex mu_;
  std::condition_variable changed_;
  bool stopping_ = false;
  // SHA-256 of an accepted token -> (its service account's namespace, until when).
  std::map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>> tokens_;
};

}  // namespace tf::controller
