#include "control_protocol/messages.h"

#include <cctype>
#include <cmath>

namespace tf::protocol {
namespace {

using nlohmann::json;

// Reads typed fields of one JSON object; the first problem is kept and later reads are no-ops.
class Reader {
public:
  Reader(const json& obj, std::string path) : obj_(obj), path_(std::move(path)) {}
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  void fail(const std::string& field, const std::string& what) {
    if (ok()) error_ = path_ + "." + field + ": " + what;
  }

  std::string str(const char* key, size_t maxLen, bool required = true) {
    const json* v = find(key, required);
    if (!v) return {};
    if (!v->is_string()) return fail(key, "expected a string"), std::string();
    const auto& s = v->get_ref<const std::string&>();
    if (s.size() > maxLen) return fail(key, "longer than " + std::to_string(maxLen) + " bytes"), std::string();
    if (required && s.empty()) return fail(key, "empty"), std::string();
    return s;
  }
  uint64_t u64(const char* key, bool required = true) {
    const json* v = find(key, required);
    if (!v) return 0;
    if (!v->is_number_unsigned()) return fail(key, "expected an unsigned integer"), 0;
    return v->get<uint64_t>();
  }
  int64_t i64(const char* key, bool required = true) {
    const json* v = find(key, required);
    if (!v) return 0;
    if (!v->is_number_integer()) return fail(key, "expected an integer"), 0;
    if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX)) return fail(key, "out of range"), 0;
    return v->get<int64_t>();
  }
  double number(const char* key) {
    const json* v = find(key, true);
    if (!v) return 0;
    if (!v->is_number()) return fail(key, "expected a number"), 0;
    const double d = v->get<double>();
    if (!std::isfinite(d)) return fail(key, "not finite"), 0;
    return d;
  }
  bool boolean(const char* key, bool required = true) {
    const json* v = find(key, required);
    if (!v) return false;
    if (!v->is_boolean()) return fail(key, "expected true or false"), false;
    return v->get<bool>();
  }
  const json* object(const char* key, bool required = true) {
    const json* v = find(key, required);
    if (v && !v->is_object()) return fail(key, "expected an object"), nullptr;
    return v;
  }
  const json* array(const char* key, size_t maxItems, bool required = true) {
    const json* v = find(key, required);
    if (!v) return nullptr;
    if (!v->is_array()) return fail(key, "expected an array"), nullptr;
    if (v->size() > maxItems) return fail(key, "more than " + std::to_string(maxItems) + " items"), nullptr;
    return v;
  }
  std::string sub(const char* key, size_t i) const { return path_ + "." + key + "[" + std::to_string(i) + "]"; }
  void adopt(const Reader& inner) {
    if (ok() && !inner.ok()) error_ = inner.error();
  }

private:
  const json* find(const char* key, bool required) {
    if (!ok()) return nullptr;
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) {
      if (required) fail(key, "missing");
      return nullptr;
    }
    return &*it;
  }
  const json& obj_;
  std::string path_;
  std::string error_;
};

// Kinds and namespaces are Kubernetes identifiers; checked so a table key cannot carry junk.
bool isIdentifier(const std::string& s, bool allowEmpty) {
  if (s.empty()) return allowEmpty;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) return false;
  return true;
}

void readKey(Reader& r, std::string& kind, std::string& ns, std::string& name) {
  kind = r.str("kind", 63);
  ns = r.str("namespace", 63, false);
  name = r.str("name", kMaxNameBytes);
  if (r.ok() && !isIdentifier(kind, false)) r.fail("kind", "not an identifier");
  if (r.ok() && !isIdentifier(ns, true)) r.fail("namespace", "not an identifier");
  if (r.ok() && !isIdentifier(name, false)) r.fail("name", "not an identifier");
}

template <typename T, typename F>
void readList(Reader& r, const char* key, size_t maxItems, std::vector<T>& out, F readOne) {
  const json* arr = r.array(key, maxItems);
  if (!arr) return;
  out.reserve(arr->size());
  for (size_t i = 0; i < arr->size() && r.ok(); ++i) {
    if (!(*arr)[i].is_object()) return r.fail(std::string(key) + "[" + std::to_string(i) + "]", "expected an object");
    Reader item((*arr)[i], r.sub(key, i));
    out.push_back(readOne(item));
    r.adopt(item);
  }
}

SyncedObject readObject(Reader& r) {
  SyncedObject o;
  readKey(r, o.kind, o.ns, o.name);
  o.resourceVersion = r.str("resourceVersion", 64);
  if (const json* b = r.object("body")) o.body = *b;
  return o;
}
json writeObject(const SyncedObject& o) {
  return {{"kind", o.kind}, {"namespace", o.ns}, {"name", o.name}, {"resourceVersion", o.resourceVersion}, {"body", o.body}};
}

// --- one read/write pair per message type --------------------------------------------------

void read(Reader& r, Hello& m) {
  m.agentId = r.str("agentId", kMaxNameBytes);
  m.agentVersion = r.str("agentVersion", 64, false);
  m.instanceId = r.str("instanceId", 64, false);
  if (const json* e = r.object("enroll", false)) {
    Reader er(*e, "body.enroll");
    EnrollRequest req{er.str("token", kMaxTokenBytes), er.str("publicKey", kMaxTokenBytes)};
    r.adopt(er);
    m.enroll = req;
  }
}
json write(const Hello& m) {
  json j{{"agentId", m.agentId}, {"agentVersion", m.agentVersion}, {"instanceId", m.instanceId}};
  if (m.enroll) j["enroll"] = {{"token", m.enroll->token}, {"publicKey", m.enroll->publicKey}};
  return j;
}
void read(Reader& r, Challenge& m) {
  m.nonce = r.str("nonce", kMaxTokenBytes);
  m.portalTimeMs = r.i64("portalTime");
  m.protoVersions.clear();
  if (const json* a = r.array("protoVersions", 16))
    for (const auto& v : *a) {
      if (!v.is_number_integer()) return r.fail("protoVersions", "expected integers");
      m.protoVersions.push_back(v.get<int>());
    }
}
json write(const Challenge& m) {
  return {{"nonce", m.nonce}, {"portalTime", m.portalTimeMs}, {"protoVersions", m.protoVersions}};
}
void read(Reader& r, Auth& m) {
  m.signature = r.str("signature", kMaxTokenBytes);
  m.epoch = r.u64("epoch");
  m.lastSeq = r.u64("lastSeq");
}
json write(const Auth& m) { return {{"signature", m.signature}, {"epoch", m.epoch}, {"lastSeq", m.lastSeq}}; }
void read(Reader& r, Welcome& m) {
  m.sessionId = r.str("sessionId", 64);
  m.needSnapshot = r.boolean("needSnapshot");
  m.resumeFromSeq = r.u64("resumeFromSeq");
  if (const json* l = r.object("limits")) {
    Reader lr(*l, "body.limits");
    m.maxMessageBytes = lr.u64("maxMessageBytes");
    m.messagesPerSecond = lr.u64("messagesPerSecond");
    r.adopt(lr);
  }
  m.heartbeatSeconds = r.u64("heartbeatSeconds");
}
json write(const Welcome& m) {
  return {{"sessionId", m.sessionId}, {"needSnapshot", m.needSnapshot}, {"resumeFromSeq", m.resumeFromSeq},
          {"limits", {{"maxMessageBytes", m.maxMessageBytes}, {"messagesPerSecond", m.messagesPerSecond}}},
          {"heartbeatSeconds", m.heartbeatSeconds}};
}
void read(Reader& r, Snapshot& m) {
  m.epoch = r.u64("epoch");
  m.seq = r.u64("seq");
  readList(r, "objects", kMaxObjectsPerMessage, m.objects, readObject);
  // One-frame snapshots may leave both out.
  m.part = r.u64("part", false);
  m.more = r.boolean("more", false);
}
json write(const Snapshot& m) {
  json objs = json::array();
  for (const auto& o : m.objects) objs.push_back(writeObject(o));
  json out = {{"epoch", m.epoch}, {"seq", m.seq}, {"objects", std::move(objs)}};
  if (m.part > 0 || m.more) {
    out["part"] = m.part;
    out["more"] = m.more;
  }
  return out;
}
void read(Reader& r, Delta& m) {
  m.epoch = r.u64("epoch");
  m.seq = r.u64("seq");
  readList(r, "upserts", kMaxObjectsPerMessage, m.upserts, readObject);
  readList(r, "deletes", kMaxObjectsPerMessage, m.deletes, [](Reader& item) {
    ObjectKey k;
    readKey(item, k.kind, k.ns, k.name);
    return k;
  });
  if (r.ok() && m.seq == 0) r.fail("seq", "must be at least 1");
}
json write(const Delta& m) {
  json ups = json::array(), dels = json::array();
  for (const auto& o : m.upserts) ups.push_back(writeObject(o));
  for (const auto& k : m.deletes) dels.push_back({{"kind", k.kind}, {"namespace", k.ns}, {"name", k.name}});
  return {{"epoch", m.epoch}, {"seq", m.seq}, {"upserts", std::move(ups)}, {"deletes", std::move(dels)}};
}
void read(Reader& r, Ack& m) { m.seq = r.u64("seq"); }
json write(const Ack& m) { return {{"seq", m.seq}}; }
void read(Reader& r, Resync& m) { m.reason = r.str("reason", kMaxTextBytes, false); }
json write(const Resync& m) { return {{"reason", m.reason}}; }
void read(Reader& r, Metrics& m) {
  readList(r, "points", kMaxPointsPerMessage, m.points, [](Reader& item) {
    MetricPoint p;
    p.series = item.str("series", kMaxNameBytes);
    p.tsMs = item.i64("ts");
    p.value = item.number("value");
    return p;
  });
}
json write(const Metrics& m) {
  json pts = json::array();
  for (const auto& p : m.points) pts.push_back({{"series", p.series}, {"ts", p.tsMs}, {"value", p.value}});
  return {{"points", std::move(pts)}};
}
void read(Reader& r, Heartbeat& m) {
  m.ackedSeq = r.u64("ackedSeq", false);
  m.outboxDepth = r.u64("outboxDepth", false);
  m.droppedMetrics = r.u64("droppedMetrics", false);
}
json write(const Heartbeat& m) {
  return {{"ackedSeq", m.ackedSeq}, {"outboxDepth", m.outboxDepth}, {"droppedMetrics", m.droppedMetrics}};
}
void read(Reader& r, Command& m) {
  m.id = r.str("id", 64);
  m.verb = r.str("verb", 64);
  if (const json* a = r.object("args")) m.args = *a;
  m.deadlineMs = r.i64("deadline");
  if (r.ok() && !isAllowedVerb(m.verb)) r.fail("verb", "not an allowed command");
}
json write(const Command& m) { return {{"id", m.id}, {"verb", m.verb}, {"args", m.args}, {"deadline", m.deadlineMs}}; }
void read(Reader& r, CommandResult& m) {
  m.id = r.str("id", 64);
  m.ok = r.boolean("ok");
  m.detail = r.str("detail", kMaxTextBytes, false);
  if (const json* res = r.object("result", false)) m.result = *res;
}
json write(const CommandResult& m) {
  return {{"id", m.id}, {"ok", m.ok}, {"detail", m.detail}, {"result", m.result}};
}
void read(Reader& r, Error& m) { m.message = r.str("message", kMaxTextBytes); }
json write(const Error& m) { return {{"message", m.message}}; }

struct TypeInfo {
  std::string_view name;
  Sender sender;
  Message (*parse)(Reader&);
};

#define TF_MESSAGE(S, wire, who) \
  {wire, Sender::who, [](Reader& r) -> Message { S m; read(r, m); return m; }},
constexpr TypeInfo kTypes[] = {
#include "control_protocol/message_types.inc"
};
#undef TF_MESSAGE

}  // namespace

bool isAllowedVerb(std::string_view verb) {
#define TF_VERB(v) if (verb == #v) return true;
  TF_COMMAND_VERBS(TF_VERB)
#undef TF_VERB
  return false;
}

// The variant's last alternative (monostate) has no entry: it is never parsed nor sent.
std::string_view typeName(const Message& m) {
  return m.index() < std::size(kTypes) ? kTypes[m.index()].name : std::string_view();
}
Sender senderOf(const Message& m) {
  return m.index() < std::size(kTypes) ? kTypes[m.index()].sender : Sender::Both;
}

ParseResult parseMessage(std::string_view text) {
  if (text.size() > kMaxMessageBytes) return ProtocolError{CloseCode::TooBig, "message too big"};
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return ProtocolError{CloseCode::InvalidPayload, "not JSON"};
  if (!j.is_object()) return ProtocolError{CloseCode::InvalidPayload, "not a JSON object"};
  auto v = j.find("v");
  if (v == j.end() || !v->is_number_integer()) return ProtocolError{CloseCode::InvalidPayload, "v: missing"};
  if (v->get<int64_t>() != kVersion) return ProtocolError{CloseCode::BadVersion, "unsupported protocol version"};
  auto t = j.find("type");
  if (t == j.end() || !t->is_string()) return ProtocolError{CloseCode::InvalidPayload, "type: missing"};
  auto b = j.find("body");
  if (b == j.end() || !b->is_object()) return ProtocolError{CloseCode::InvalidPayload, "body: expected an object"};
  const auto& type = t->get_ref<const std::string&>();
  for (const auto& info : kTypes) {
    if (info.name != type) continue;
    Reader r(*b, "body");
    Message m = info.parse(r);
    if (!r.ok()) return ProtocolError{CloseCode::InvalidPayload, r.error().substr(0, 120)};
    return m;
  }
  return ProtocolError{CloseCode::Policy, "unknown message type"};
}

std::string serialize(const Message& m) {
  json body = std::visit(
      [](const auto& x) -> json {
        if constexpr (std::is_same_v<std::decay_t<decltype(x)>, std::monostate>) return json::object();
        else return write(x);
      },
      m);
  return json{{"v", kVersion}, {"type", typeName(m)}, {"body", std::move(body)}}.dump(
      -1, ' ', false, json::error_handler_t::replace);
}

}  // namespace tf::protocol
