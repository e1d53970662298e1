#define TF_LOG_COMPONENT "controller"
#include "controller/connection_api.h"

#include <openssl/sha.h>

#include <httplib.h>

#include "common/log.h"
#include "k8s/api/v1/types.h"
#include "k8s/api/well_known.h"
#include "k8s/builtin.h"

namespace tf::controller {
namespace v1 = k8s::api::v1;
using nlohmann::json;

namespace {

std::string sha256Hex(const std::string& s) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : d) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

ConnectionAnswer error(int status, const std::string& message) { return {status, {{"error", message}}}; }

bool validName(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s)
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.'))
      return false;
  return true;
}

}  // namespace

ConnectionApi::ConnectionApi(k8s::Client& client, ConnectionApiOptions options)
    : client_(client), o_(options), connections_(k8s::makeListerWatcher(client, v1::TensorFusionConnection::kResource)) {
  auto notify = [this] {
    std::lock_guard lock(mu_);
    changed_.notify_all();
  };
  connections_.addHandlers({.onAdd = [notify](const k8s::ObjectPtr&) { notify(); },
                            .onUpdate = [notify](const k8s::ObjectPtr&, const k8s::ObjectPtr&) { notify(); },
                            .onDelete = [notify](const k8s::ObjectPtr&) { notify(); }});
}

ConnectionApi::~ConnectionApi() { stop(); }

void ConnectionApi::start() { connections_.start(); }

void ConnectionApi::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    changed_.notify_all();
  }
  connections_.stop();
}

std::optional<ConnectionAnswer> ConnectionApi::authorize(const std::string& authorization, const std::string& ns) {
  if (o_.disableAuth) return std::nullopt;
  static const std::string kBearer = "Bearer ";
  if (authorization.rfind(kBearer, 0) != 0 || authorization.size() == kBearer.size())
    return error(401, "a service-account token is required (Authorization: Bearer ...)");
  const std::string token = authorization.substr(kBearer.size());
  const std::string key = sha256Hex(token);
  std::string tokenNs;
  {
    std::lock_guard lock(mu_);
    auto it = tokens_.find(key);
    if (it != tokens_.end() && it->second.second > std::chrono::steady_clock::now()) tokenNs = it->second.first;
  }
  if (tokenNs.empty()) {
    json review = {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenReview"}, {"spec", {{"token", token}}}};
    auto r = client_.create(k8s::builtin::kTokenReviews, review);
    if (!r) return error(503, "cannot review the token: " + r.error().message);
    const json& st = r->value("status", json::object());
    if (!st.value("authenticated", false))
      return error(401, "the token is not valid: " + st.value("error", std::string("not authenticated")));
    // system:serviceaccount:<namespace>:<name>
    const std::string user = st.value("/user/username"_json_pointer, std::string());
    static const std::string kPrefix = "system:serviceaccount:";
    if (user.rfind(kPrefix, 0) != 0) return error(403, "not a service account: " + user);
    tokenNs = user.substr(kPrefix.size(), user.find(':', kPrefix.size()) - kPrefix.size());
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    for (auto it = tokens_.begin(); it != tokens_.end();) it = it->second.second <= now ? tokens_.erase(it) : std::next(it);
    tokens_[key] = {tokenNs, now + o_.tokenCacheFor};
  }
  if (tokenNs != ns)
    return error(403, "a service account of namespace " + tokenNs + " may not read connections of " + ns);
  return std::nullopt;
}

ConnectionAnswer ConnectionApi::answer(const std::string& name, const std::string& ns, const std::string& authorization,
                                       std::chrono::milliseconds wait) {
  if (!validName(name) || !validName(ns)) return error(400, "name and namespace must be Kubernetes names");
  if (auto refused = authorize(authorization, ns)) return *refused;
  if (wait > o_.maxWait) wait = o_.maxWait;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  const std::string key = k8s::objectKey(ns, name);
  std::string where = "no TensorFusionConnection " + key + " yet";
  std::unique_lock lock(mu_);
  for (;;) {
    if (stopping_) return error(503, "the operator is stopping");
    if (k8s::ObjectPtr c = connections_.store().get(key)) {
      const json st = c->value("status", json::object());
      const std::string phase = st.value("phase", std::string("Pending"));
      const std::string url = st.value("connectionURL", std::string());
      if (phase == "Running" && !url.empty())
        return {200, {{"connectionURL", url}, {"workerName", st.value("workerName", "")}, {"phase", phase},
                      {"name", name}, {"namespace", ns}}};
      where = "connection " + key + " is " + phase;
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return error(504, where + " after " + std::to_string(wait.count() / 1000) + "s");
    changed_.wait_until(lock, deadline);
  }
}

void ConnectionApi::registerOn(httplib::Server& http) {
  http.Get(k8s::api::kConnectionApiPath, [this](const httplib::Request& req, httplib::Response& res) {
    std::chrono::milliseconds wait = o_.maxWait;
    if (req.has_param("timeout")) {
      const std::string t = req.get_param_value("timeout");
      char* end = nullptr;
      const long v = std::strtol(t.c_str(), &end, 10);
      if (t.empty() || *end || v < 0) {
        res.status = 400;
        res.set_content(json{{"error", "timeout must be a number of seconds"}}.dump(), "application/json");
        return;
      }
      wait = std::chrono::seconds(v);
    }
    ConnectionAnswer a = answer(req.get_param_value("name"), req.get_param_value("namespace"),
                                req.get_header_value("Authorization"), wait);
    if (a.status != 200)
      TF_LOG(Info, "GET %s for %s/%s: %d %s", k8s::api::kConnectionApiPath, req.get_param_value("namespace").c_str(),
             req.get_param_value("name").c_str(), a.status, a.body.value("error", "").c_str());
    res.status = a.status;
    res.set_content(a.body.dump(), "application/json");
  });
}

}  // namespace tf::controller
