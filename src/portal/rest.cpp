#include "portal/rest.h"

#include <charconv>
#include <regex>
#include <sstream>

#include "control_protocol/crypto.h"
#include "portal/auth.h"

namespace tf::portal {
namespace {

using nlohmann::json;

HttpResponse reply(int status, const json& body) { return {status, body.dump(-1, ' ', false, json::error_handler_t::replace)}; }
HttpResponse error(int status, const std::string& message) { return reply(status, {{"error", message}}); }

HttpResponse fromStatus(const Status& s) {
  switch (s.code()) {
  case Code::NotFound: return error(404, s.message());
  case Code::AlreadyExists: return error(409, s.message());
  case Code::InvalidArgument: return error(400, s.message());
  case Code::PermissionDenied: return error(403, s.message());
  default: return error(500, s.message());
  }
}

std::vector<std::string> splitPath(const std::string& path) {
  std::vector<std::string> out;
  std::stringstream ss(path);
  for (std::string seg; std::getline(ss, seg, '/');)
    if (!seg.empty()) out.push_back(seg);
  return out;
}

std::string urlDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') out.push_back(' ');
    else if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(uint8_t(s[i + 1])) && std::isxdigit(uint8_t(s[i + 2]))) {
      out.push_back(char(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else out.push_back(s[i]);
  }
  return out;
}

std::string queryParam(const std::string& query, const std::string& key) {
  std::stringstream ss(query);
  for (std::string kv; std::getline(ss, kv, '&');) {
    auto eq = kv.find('=');
    if (urlDecode(kv.substr(0, eq)) == key) return eq == std::string::npos ? "" : urlDecode(kv.substr(eq + 1));
  }
  return {};
}

bool parseId(const std::string& s, int64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && out > 0;
}

std::string cookieValue(const std::string& header, const std::string& name) {
  std::stringstream ss(header);
  for (std::string part; std::getline(ss, part, ';');) {
    auto b = part.find_first_not_of(' ');
    if (b == std::string::npos) continue;
    part = part.substr(b);
    if (part.compare(0, name.size() + 1, name + "=") == 0) return part.substr(name.size() + 1);
  }
  return {};
}

// "org:env" or a plain name: letters, digits, '.', '_', '-', at most one ':'.
bool validAgentId(const std::string& id) {
  static const std::regex re("^[A-Za-z0-9._-]{1,100}(:[A-Za-z0-9._-]{1,100})?$");
  return std::regex_match(id, re);
}

json clusterJson(const ClusterRecord& c, bool online) {
  return {{"id", c.id}, {"agentId", c.agentId}, {"name", c.name}, {"createdAt", c.createdAt},
          {"enrolled", !c.publicKey.empty()}, {"revokedAt", c.revokedAt}, {"lastSeen", c.lastSeen},
          {"agentVersion", c.agentVersion}, {"online", online}, {"epoch", std::to_string(c.epoch)},
          {"lastSeq", c.lastSeq}};
}

json tokenJson(const TokenRecord& t, int64_t now) {
  const char* state = t.revokedAt ? "revoked" : t.usedAt ? "used" : t.expiresAt <= now ? "expired" : "active";
  return {{"id", t.id}, {"createdAt", t.createdAt}, {"expiresAt", t.expiresAt}, {"usedAt", t.usedAt},
          {"revokedAt", t.revokedAt}, {"state", state}};
}

json commandJson(const CommandRecord& c) {
  return {{"id", c.id}, {"verb", c.verb}, {"args", json::parse(c.argsJson, nullptr, false)}, {"deadline", c.deadline},
          {"state", c.state}, {"detail", c.detail}, {"result", json::parse(c.resultJson, nullptr, false)},
          {"createdAt", c.createdAt}, {"updatedAt", c.updatedAt}};
}

class Handler {
public:
  Handler(PortalContext& ctx, const HttpRequest& req) : ctx_(ctx), req_(req), now_(ctx.now()) {}

  HttpResponse run() {
    auto seg = splitPath(req_.path);
    if (seg.size() < 3 || seg[0] != "api" || seg[1] != "v1") return error(404, "not found");
    seg.erase(seg.begin(), seg.begin() + 2);
    if (seg == std::vector<std::string>{"login"} && req_.method == "POST") return login();
    if (HttpResponse r; !authenticate(r)) return r;
    const bool mutating = req_.method != "GET" && req_.method != "HEAD";
    if (mutating && (req_.csrfToken.empty() || req_.csrfToken != session_.csrfToken))
      return error(403, "missing or wrong X-CSRF-Token");
    if (mutating && !body_.is_object()) return error(400, "body: expected a JSON object");
    return route(seg);
  }

private:
  bool authenticate(HttpResponse& r) {
    const std::string cookie = cookieValue(req_.cookie, kSessionCookie);
    auto s = cookie.empty() ? Result<SessionRecord>(notFound("")) : ctx_.store.session(sessionKey(cookie), now_);
    auto u = s ? ctx_.store.userById(s->userId) : Result<UserRecord>(notFound(""));
    if (!s || !u) {
      r = error(401, "log in first");
      return false;
    }
    session_ = *s;
    user_ = *u;
    body_ = req_.body.empty() ? json::object() : json::parse(req_.body, nullptr, false);
    return true;
  }

  HttpResponse route(const std::vector<std::string>& seg) {
    const std::string& m = req_.method;
    if (seg.size() == 1 && seg[0] == "logout" && m == "POST") return logout();
    if (seg.size() == 1 && seg[0] == "me" && m == "GET")
      return reply(200, {{"user", user_.name}, {"admin", user_.admin}, {"csrfToken", session_.csrfToken}});
    if (seg[0] != "clusters") return error(404, "not found");
    if (seg.size() == 1 && m == "GET") return listClusters();
    if (seg.size() == 1 && m == "POST") return createCluster();
    int64_t id = 0;
    if (!parseId(seg[1], id)) return error(404, "no such cluster");
    auto cluster = ctx_.store.clusterById(id);
    if (!cluster) return fromStatus(cluster.status());
    const ClusterRecord& c = *cluster;
    const std::string sub = seg.size() > 2 ? seg[2] : "";
    if (seg.size() == 2 && m == "GET") return reply(200, clusterJson(c, ctx_.registry.online(id)));
    if (seg.size() == 2 && m == "DELETE") return deleteCluster(c);
    if (sub == "tokens" && seg.size() == 3 && m == "GET") return listTokens(c);
    if (sub == "tokens" && seg.size() == 3 && m == "POST") return createToken(c, 201);
    if (sub == "tokens" && seg.size() == 4 && m == "DELETE") return revokeToken(c, seg[3]);
    if (sub == "agent" && seg.size() == 4 && m == "POST" && seg[3] == "revoke") return revokeAgent(c, false);
    if (sub == "agent" && seg.size() == 4 && m == "POST" && seg[3] == "rotate") return revokeAgent(c, true);
    if (sub == "objects" && seg.size() == 3 && m == "GET") return objects(c);
    if (sub == "metrics" && seg.size() == 3 && m == "GET") return metrics(c);
    if (sub == "commands" && seg.size() == 3 && m == "POST") return queueCommand(c);
    if (sub == "commands" && seg.size() == 4 && m == "GET") return getCommand(c, seg[3]);
    return error(404, "not found");
  }

  HttpResponse login() {
    json b = json::parse(req_.body, nullptr, false);
    if (!b.is_object() || !b.value("username", json()).is_string() || !b.value("password", json()).is_string())
      return error(400, "expected {\"username\": ..., \"password\": ...}");
    const std::string name = b["username"], password = b["password"];
    const std::string userKey = "user:" + name, addrKey = "addr:" + req_.peer;
    const int64_t wait = std::max(ctx_.loginLimiter.retryAfter(userKey, now_), ctx_.addressLimiter.retryAfter(addrKey, now_));
    if (wait > 0) {
      auto r = error(429, "too many failed logins; try again later");
      r.headers.emplace_back("Retry-After", std::to_string(wait));
      return r;
    }
    auto user = ctx_.store.userByName(name);
    // A missing user costs a hash too, so timing does not tell which names exist.
    static const std::string kDummy = *hashPassword("dummy");
    const bool ok = verifyPassword(password, user ? user->passwordHash : kDummy) && user;
    if (!ok) {
      ctx_.loginLimiter.recordFailure(userKey, now_);
      ctx_.addressLimiter.recordFailure(addrKey, now_);
      (void)ctx_.store.audit(now_, "user:" + name, "login-failed", 0, req_.peer, "");
      return error(401, "wrong user name or password");
    }
    auto cookie = protocol::randomToken(32);
    auto csrf = protocol::randomToken(32);
    if (!cookie || !csrf) return error(500, "no randomness");
    const int64_t ttl = ctx_.settings.sessionTtlSeconds;
    if (Status s = ctx_.store.addSession({sessionKey(*cookie), user->id, *csrf, now_, now_ + ttl * 1000}); !s)
      return fromStatus(s);
    auto r = reply(200, {{"user", user->name}, {"admin", user->admin}, {"csrfToken", *csrf}});
    r.headers.emplace_back("Set-Cookie", std::string(kSessionCookie) + "=" + *cookie + "; Path=/; Max-Age=" +
                                             std::to_string(ttl) + "; Secure; HttpOnly; SameSite=Strict");
    return r;
  }

  HttpResponse logout() {
    (void)ctx_.store.deleteSession(session_.idHash);
    auto r = reply(200, {{"ok", true}});
    r.headers.emplace_back("Set-Cookie", std::string(kSessionCookie) + "=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict");
    return r;
  }

  HttpResponse listClusters() {
    auto list = ctx_.store.listClusters();
    if (!list) return fromStatus(list.status());
    json out = json::array();
    for (const auto& c : *list) out.push_back(clusterJson(c, ctx_.registry.online(c.id)));
    return reply(200, {{"clusters", out}});
  }

  HttpResponse createCluster() {
    const json agentId = body_.value("agentId", json());
    if (!agentId.is_string() || !validAgentId(agentId.get<std::string>()))
      return error(400, "agentId: expected org:env (letters, digits, . _ -)");
    const json name = body_.value("name", agentId);
    if (!name.is_string() || name.get<std::string>().size() > 200) return error(400, "name: expected a short string");
    auto c = ctx_.store.createCluster(agentId, name, now_);
    if (!c) return fromStatus(c.status());
    audit("cluster-created", c->id, agentId);
    return createToken(*c, 201);
  }

  HttpResponse deleteCluster(const ClusterRecord& c) {
    if (Status s = ctx_.store.deleteCluster(c.id); !s) return fromStatus(s);
    ctx_.registry.close(c.id, protocol::CloseCode::Revoked, "cluster deleted");
    audit("cluster-deleted", c.id, c.agentId);
    return reply(200, {{"ok", true}});
  }

  HttpResponse listTokens(const ClusterRecord& c) {
    auto list = ctx_.store.listEnrollTokens(c.id);
    if (!list) return fromStatus(list.status());
    json out = json::array();
    for (const auto& t : *list) out.push_back(tokenJson(t, now_));
    return reply(200, {{"tokens", out}});
  }

  // A new EnrollToken for the cluster, with the install command that carries it.
  HttpResponse createToken(const ClusterRecord& c, int status) {
    int64_t ttl = ctx_.settings.enrollTokenTtlSeconds;
    if (body_.contains("ttlSeconds")) {
      if (!body_["ttlSeconds"].is_number_integer() || body_["ttlSeconds"].get<int64_t>() < 1 ||
          body_["ttlSeconds"].get<int64_t>() > 7 * 24 * 3600)
        return error(400, "ttlSeconds: 1 to 604800");
      ttl = body_["ttlSeconds"];
    }
    auto token = protocol::randomToken(32);
    if (!token) return error(500, "no randomness");
    auto rec = ctx_.store.addEnrollToken(c.id, protocol::hexEncode(protocol::sha256(*token)), now_ + ttl * 1000, now_);
    if (!rec) return fromStatus(rec.status());
    audit("token-created", c.id, "token " + std::to_string(rec->id));
    // The agent's configuration goes into a Secret (never a literal in a Deployment), read by
    // deploy/agent as CLOUD_ENDPOINT, AGENT_ID, ENROLL_TOKEN and PORTAL_PIN: the same names
    // `tensor-fusion agent` reads (src/cli/agent_command.cpp). Every value is [A-Za-z0-9:._/-].
    const std::string install = "kubectl -n tensor-fusion-sys create secret generic tensor-fusion-agent-config"
                                " --from-literal=CLOUD_ENDPOINT=" + ctx_.agentEndpoint +
                                " --from-literal=AGENT_ID=" + c.agentId + " --from-literal=ENROLL_TOKEN=" + *token +
                                " --from-literal=PORTAL_PIN=" + ctx_.pin + " && kubectl apply -k deploy/agent";
    return reply(status, {{"cluster", clusterJson(c, ctx_.registry.online(c.id))}, {"agentId", c.agentId},
                          {"enrollToken", *token}, {"token", tokenJson(*rec, now_)}, {"portalPin", ctx_.pin},
                          {"endpoint", ctx_.agentEndpoint}, {"installCommand", install}});
  }

  HttpResponse revokeToken(const ClusterRecord& c, const std::string& tokenId) {
    int64_t id = 0;
    if (!parseId(tokenId, id)) return error(404, "no such token");
    if (Status s = ctx_.store.revokeEnrollToken(c.id, id, now_); !s) return fromStatus(s);
    audit("token-revoked", c.id, "token " + tokenId);
    return reply(200, {{"ok", true}});
  }

  // Revoke: the key is cleared and the live connection closed (4403) at once. Rotate: the same,
  // plus a new EnrollToken to enroll a new key with.
  HttpResponse revokeAgent(const ClusterRecord& c, bool rotate) {
    if (Status s = ctx_.store.revokeAgentKey(c.id, now_); !s) return fromStatus(s);
    ctx_.registry.close(c.id, protocol::CloseCode::Revoked, "agent revoked");
    audit(rotate ? "agent-rotated" : "agent-revoked", c.id, c.agentId);
    if (rotate) return createToken(c, 200);
    return reply(200, {{"ok", true}});
  }

  HttpResponse objects(const ClusterRecord& c) {
    auto list = ctx_.store.listObjects(c.id, queryParam(req_.query, "kind"));
    if (!list) return fromStatus(list.status());
    json out = json::array();
    for (const auto& o : *list)
      out.push_back({{"kind", o.kind}, {"namespace", o.ns}, {"name", o.name}, {"resourceVersion", o.resourceVersion},
                     {"body", o.body}});
    return reply(200, {{"objects", out}});
  }

  HttpResponse metrics(const ClusterRecord& c) {
    int64_t since = 0;
    const std::string s = queryParam(req_.query, "since");
    if (!s.empty() && !parseId(s, since)) return error(400, "since: expected milliseconds since the epoch");
    auto list = ctx_.store.metrics(c.id, queryParam(req_.query, "series"), since);
    if (!list) return fromStatus(list.status());
    json out = json::object();
    for (const auto& p : *list) out[p.series].push_back({p.tsMs, p.value});
    return reply(200, {{"series", out}});
  }

  HttpResponse queueCommand(const ClusterRecord& c) {
    const json verb = body_.value("verb", json());
    if (!verb.is_string() || !protocol::isAllowedVerb(verb.get<std::string>()))
      return error(400, "verb: one of applyPoolSpec, scaleWorkload, cordonGpu");
    const json args = body_.value("args", json::object());
    if (!args.is_object()) return error(400, "args: expected an object");
    const json dl = body_.value("deadlineSeconds", json(300));
    if (!dl.is_number_integer() || dl.get<int64_t>() < 1 || dl.get<int64_t>() > 24 * 3600)
      return error(400, "deadlineSeconds: 1 to 86400");
    auto cmd = ctx_.store.addCommand(c.id, verb, args.dump(), now_ + dl.get<int64_t>() * 1000, now_);
    if (!cmd) return fromStatus(cmd.status());
    audit("command-queued", c.id, verb.get<std::string>() + " " + std::to_string(cmd->id));
    if (ctx_.registry.send(c.id, protocol::serialize(protocol::Command{std::to_string(cmd->id), cmd->verb, args,
                                                                       cmd->deadline}))) {
      (void)ctx_.store.setCommandState(c.id, cmd->id, "sent", "", "{}", now_);
      cmd->state = "sent";
    }
    return reply(201, commandJson(*cmd));
  }

  HttpResponse getCommand(const ClusterRecord& c, const std::string& commandId) {
    int64_t id = 0;
    if (!parseId(commandId, id)) return error(404, "no such command");
    auto cmd = ctx_.store.command(c.id, id);
    if (!cmd) return fromStatus(cmd.status());
    return reply(200, commandJson(*cmd));
  }

  void audit(const std::string& action, int64_t clusterId, const std::string& detail) {
    (void)ctx_.store.audit(now_, "user:" + user_.name, action, clusterId, req_.peer, detail);
  }

  PortalContext& ctx_;
  const HttpRequest& req_;
  const int64_t now_;
  SessionRecord session_;
  UserRecord user_;
  json body_;
};

}  // namespace

HttpResponse RestApi::handle(const HttpRequest& req) {
  try {
    return Handler(ctx_, req).run();
  } catch (const std::exception& e) {  // a JSON type error we did not foresee: the client's fault
    return error(400, e.what());
  }
}

Result<std::string> ensureAdmin(Store& store, const std::string& givenPassword, int64_t now) {
  auto n = store.countUsers();
  if (!n) return n.status();
  if (*n > 0) return std::string();
  std::string password = givenPassword;
  if (password.empty()) {
    auto generated = protocol::randomToken(18);
    if (!generated) return generated.status();
    password = *generated;
  }
  auto hash = hashPassword(password);
  if (!hash) return hash.status();
  auto user = store.createUser("admin", *hash, true, now);
  if (!user) return user.status();
  return givenPassword.empty() ? password : std::string();
}

}  // namespace tf::portal
