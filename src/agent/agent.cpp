#include "agent/agent.h"

#include <cstring>
#include <random>

#include "agent/synced_kinds.h"
#include "agent/usage_scrape.h"
#include "k8s/api/well_known.h"
#include "k8s/builtin.h"
#include "k8s/client.h"

#define TF_LOG_COMPONENT "agent"
#include "common/log.h"

namespace tf::agent {
namespace {

using nlohmann::json;

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A random, non-zero epoch: a new one per agent process (and per outbox overflow while away).
constexpr size_t kMetricsPerFrame = 500;

uint64_t drawEpoch() {
  auto bytes = protocol::randomBytes(8);
  uint64_t e = 0;
  if (bytes) std::memcpy(&e, bytes->data(), sizeof e);
  if (e == 0) e = std::random_device{}() | 1;
  return e & 0x7fffffffffffffffULL;  // 63 bits: the portal keeps it in a signed SQLite integer
}

}  // namespace

Agent::Agent(const AgentOptions& options, k8s::Client& client, std::unique_ptr<CredentialStore> credentials)
    : options_(options), client_(client), credentials_(std::move(credentials)),
      log_(options.limits, drawEpoch(), drawEpoch), metrics_(options.metricsBufferPoints),
      heartbeat_(options.heartbeatFallback),
      runner_([this](const PatchPlan& p) -> Result<json> {
        auto r = client_.patch(p.resource, p.ns, p.name, k8s::PatchType::Merge, p.patch);
        if (!r) return Status{r.error().toStatus().code(), r.error().toString()};
        const json& meta = (*r)["metadata"];
        return json{{"resourceVersion", meta.value("resourceVersion", "")}, {"generation", meta.value("generation", 0)}};
      }) {}

Status validateOptions(const AgentOptions& options) {
  if (options.agentId.empty()) return invalidArgument("agent id is required (--agent-id, AGENT_ID)");
  const bool hex = options.portalPin.size() == 7 + 64 &&
                   options.portalPin.find_first_not_of("0123456789abcdef", 7) == std::string::npos;
  if (options.portalPin.rfind("sha256:", 0) != 0 || !hex)
    return invalidArgument("portal pin must be sha256:<64 lower-case hex digits> (--portal-pin, PORTAL_PIN), as the "
                           "portal prints it");
  auto endpoint = parsePortalUrl(options.portalUrl);
  if (!endpoint) return endpoint.status();
  return Status::ok();
}

Result<std::unique_ptr<Agent>> Agent::start(const AgentOptions& options, k8s::Client& client,
                                            std::unique_ptr<CredentialStore> credentials) {
  if (Status s = validateOptions(options); !s) return s;
  auto endpoint = parsePortalUrl(options.portalUrl);
  if (!endpoint) return endpoint.status();
  if (!credentials) credentials = std::make_unique<SecretCredentialStore>(client, options.ns, options.secretName);
  std::unique_ptr<Agent> a(new Agent(options, client, std::move(credentials)));
  a->options_.link.endpoint = *endpoint;
  a->options_.link.pin = options.portalPin;
  if (Status s = a->prepareCredential(); !s) return s;
  auto instance = protocol::randomToken(12);
  a->instanceId_ = instance ? *instance : "agent";

  for (const SyncedKind& kind : syncedKinds()) {
    auto informer = std::make_unique<k8s::Informer>(
        k8s::makeListerWatcher(client, kind.resource, "", {.labelSelector = kind.labelSelector}));
    const k8s::ResourceRef ref = kind.resource;
    Agent* self = a.get();
    auto upsert = [self, ref](const k8s::ObjectPtr& o) {
      auto so = toSyncedObject(ref, *o);
      if (!so) {
        TF_LOG(Warn, "skipping an object: %s", so.status().toString().c_str());
        return;
      }
      std::lock_guard<std::mutex> lock(self->mu_);
      self->log_.upsert(std::move(*so));
    };
    informer->addHandlers({.onAdd = upsert,
                           .onUpdate = [upsert](const k8s::ObjectPtr&, const k8s::ObjectPtr& o) { upsert(o); },
                           .onDelete =
                               [self, ref](const k8s::ObjectPtr& o) {
                                 auto so = toSyncedObject(ref, *o);
                                 if (!so) return;
                                 std::lock_guard<std::mutex> lock(self->mu_);
                                 self->log_.remove({so->kind, so->ns, so->name});
                               }});
    informer->start();
    a->informers_.push_back(std::move(informer));
  }
  a->hypervisors_ = std::make_unique<k8s::Informer>(k8s::makeListerWatcher(
      client, k8s::builtin::kPods, "",
      {.labelSelector = std::string(k8s::api::kLabelComponent) + "=" + k8s::api::kComponentHypervisor}));
  a->hypervisors_->start();
  a->commandsThread_ = std::thread([p = a.get()] { p->commandLoop(); });
  a->connection_ = std::thread([p = a.get()] { p->connectionLoop(); });
  a->metricsThread_ = std::thread([p = a.get()] { p->metricsLoop(); });
  return a;
}

Agent::~Agent() { stop(); }

void Agent::stop() {
  stop_.stop();
  if (connection_.joinable()) connection_.join();
  commandsCv_.notify_all();
  if (commandsThread_.joinable()) commandsThread_.join();
  if (metricsThread_.joinable()) metricsThread_.join();
  for (auto& i : informers_) i->stop();
  if (hypervisors_) hypervisors_->stop();
}

Status Agent::prepareCredential() {
  auto stored = credentials_->load();
  if (stored) {
    if (stored->agentId != options_.agentId)
      return failedPrecondition("the credential Secret belongs to agent \"" + stored->agentId + "\", not \"" +
                                options_.agentId + "\"; delete it to enroll again");
    auto key = protocol::Ed25519Key::fromPem(stored->privateKeyPem);
    if (!key) return Status{key.status().code(), "the credential Secret's private key: " + key.status().message()};
    if (stored->portalPin != options_.portalPin)
      TF_LOG(Warn, "the portal pin changed (%s -> %s); trusting the configured one", stored->portalPin.c_str(),
             options_.portalPin.c_str());
    credential_ = *stored;
    key_.emplace(std::move(*key));
    if (!credential_.enrolled && options_.enrollToken.empty())
      return failedPrecondition("the agent is not enrolled yet and no enroll token is given (--enroll-token, ENROLL_TOKEN)");
    TF_LOG(Info, "loaded the credential of %s (%s)", credential_.agentId.c_str(),
           credential_.enrolled ? "enrolled" : "enrolling");
    return Status::ok();
  }
  if (stored.status().code() != Code::NotFound) return stored.status();
  if (options_.enrollToken.empty())
    return failedPrecondition("no credential Secret and no enroll token (--enroll-token, ENROLL_TOKEN) to enroll with");
  auto key = protocol::Ed25519Key::generate();
  if (!key) return key.status();
  credential_ = {options_.agentId, key->privateKeyPem(), options_.portalPin, false};
  key_.emplace(std::move(*key));
  // Saved before enrolling: a crash after the portal accepted the key must not lose it.
  if (Status s = credentials_->save(credential_); !s)
    return Status{s.code(), "saving the new credential: " + s.message()};
  TF_LOG(Info, "made a new key for %s; enrolling", credential_.agentId.c_str());
  return Status::ok();
}

bool Agent::waitForSync(std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (auto& i : informers_) {
    auto left = std::chrono::duration_cast<k8s::Duration>(end - std::chrono::steady_clock::now());
    if (left.count() < 0 || !i->waitForSync(left)) return false;
  }
  return true;
}

AgentStats Agent::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  AgentStats s = stats_;
  s.epoch = log_.epoch();
  s.lastSeq = log_.lastSeq();
  s.ackedSeq = log_.ackedSeq();
  s.outboxDepth = log_.outboxDepth();
  s.pendingChanges = log_.pendingChanges();
  s.objects = log_.mirrorSize();
  s.overflows = log_.overflows();
  s.metricsDropped = metrics_.dropped();
  s.commandsRun = runner_.executions();
  return s;
}

int64_t Agent::portalNowMs() const { return nowMs() + portalOffsetMs_.load(); }

void Agent::connectionLoop() {
  // The first snapshot should hold the whole cluster: give the informers time to list.
  if (!waitForSync(std::chrono::seconds(30)) && !stop_.stopped())
    TF_LOG(Warn, "not every kind has listed after 30 s (CRDs missing?); connecting anyway");
  std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  int attempt = 0;
  while (!stop_.stopped()) {
    SessionEnd end = runPortalSession(options_.link, *this, stop_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      log_.onDisconnected();
      stats_.online = false;
      stats_.lastCloseCode = end.closeCode;
      ++stats_.connectionsEnded;
      stats_.lastError = end.reason;
    }
    if (stop_.stopped()) break;
    if (end.welcomed && end.upTime >= options_.reconnect.stableAfter) attempt = 0;
    auto delay = reconnectDelay(options_.reconnect, attempt++, unit(rng));
    if (end.closeCode == uint16_t(protocol::CloseCode::Revoked)) {
      delay = options_.reconnect.max;  // no retry storm; an admin must act
      TF_LOG(Error, "the portal revoked this agent's key (4403); enroll it again with a new token");
    } else if (end.closeCode == uint16_t(protocol::CloseCode::BadAuth)) {
      TF_LOG(Error, "the portal refused this agent (4401: unknown agent, bad or used token, or a key it does not hold)");
    }
    TF_LOG(Info, "portal connection ended (%s, close %u); retrying in %lld ms", end.reason.c_str(),
           unsigned(end.closeCode), static_cast<long long>(delay.count()));
    stop_.waitFor(delay);
  }
}

void Agent::commandLoop() {
  for (;;) {
    protocol::Command c;
    {
      std::unique_lock<std::mutex> lock(mu_);
      commandsCv_.wait(lock, [&] { return stop_.stopped() || !commands_.empty(); });
      if (stop_.stopped()) return;
      c = std::move(commands_.front());
      commands_.pop_front();
    }
    protocol::CommandResult r = runner_.run(c, portalNowMs());
    TF_LOG(Info, "command %s %s: %s %s", c.id.c_str(), c.verb.c_str(), r.ok ? "ok" : "failed", r.detail.c_str());
    std::lock_guard<std::mutex> lock(mu_);
    results_.push_back(protocol::serialize(r));
  }
}

// Samples on its own clock, online or not: while offline the buffer keeps the newest points.
// Allocated shares come from the GPU objects; measured utilization from each hypervisor, asked
// outside the lock (network I/O), a failure logged when it starts or changes.
void Agent::metricsLoop() {
  std::map<std::string, std::string> lastError;  // per hypervisor pod
  while (!stop_.waitFor(options_.metricsInterval)) {
    std::map<std::string, std::string> pods;
    {
      std::lock_guard<std::mutex> lock(mu_);
      const auto objects = log_.objects();
      metrics_.add(sampleGpus(objects, portalNowMs()));
      pods = podsByVgpuName(objects);
    }
    std::vector<nlohmann::json> hypervisorPods;
    for (const auto& p : hypervisors_->store().list()) hypervisorPods.push_back(*p);
    const auto targets = hypervisorEndpoints(hypervisorPods);
    auto answers = scrapeHypervisors(targets, pods, portalNowMs(), options_.hypervisorTimeout, options_.hypervisorParallel);
    if (stop_.stopped()) return;
    for (size_t i = 0; i < targets.size(); ++i) {
      const auto& target = targets[i];
      auto& points = answers[i];
      std::string& last = lastError[target.pod];
      if (!points && points.status().message() != last)
        TF_LOG(Warn, "utilization: %s", points.status().message().c_str());
      last = points ? "" : points.status().message();
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.hypervisorScrapes;
      if (!points) {
        ++stats_.hypervisorScrapeFailures;
        continue;
      }
      metrics_.add(std::move(*points));
    }
  }
}

protocol::Hello Agent::hello() {
  protocol::Hello h{credential_.agentId, options_.agentVersion, instanceId_, std::nullopt};
  enrolling_ = !credential_.enrolled;
  if (enrolling_) h.enroll = protocol::EnrollRequest{options_.enrollToken, key_->publicKeyBase64()};
  return h;
}

Result<protocol::Auth> Agent::answer(const protocol::Challenge& ch) {
  portalOffsetMs_ = ch.portalTimeMs - nowMs();
  auto nonce = protocol::base64UrlDecode(ch.nonce);
  if (!nonce) return invalidArgument("challenge nonce: " + nonce.status().message());
  auto sig = key_->sign(protocol::authPayload(*nonce, credential_.agentId, options_.portalPin));
  if (!sig) return sig.status();
  std::lock_guard<std::mutex> lock(mu_);
  return protocol::Auth{*sig, log_.epoch(), log_.lastSeq()};
}

std::vector<std::string> Agent::welcomed(const protocol::Welcome& w) {
  if (enrolling_) {
    credential_.enrolled = true;
    if (Status s = credentials_->save(credential_); !s)
      TF_LOG(Error, "enrolled, but saving that failed (%s); the next start enrolls again with the same key",
             s.toString().c_str());
    else
      TF_LOG(Info, "enrolled as %s", credential_.agentId.c_str());
    enrolling_ = false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.online = true;
  ++stats_.sessions;
  if (w.heartbeatSeconds > 0) heartbeat_ = std::chrono::seconds(w.heartbeatSeconds);
  nextHeartbeat_ = std::chrono::steady_clock::now() + heartbeat_;
  std::vector<std::string> frames = log_.onWelcome(w);
  TF_LOG(Info, "session up: %s (epoch %llu, resending %zu)", w.needSnapshot ? "snapshot asked" : "resuming",
         static_cast<unsigned long long>(log_.epoch()), frames.size());
  for (auto& f : log_.takeFrames()) frames.push_back(std::move(f));
  for (auto& f : results_) frames.push_back(std::move(f));
  results_.clear();
  return frames;
}

void Agent::received(const protocol::Message& m) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto* ack = std::get_if<protocol::Ack>(&m)) {
    log_.onAck(ack->seq);
  } else if (auto* rs = std::get_if<protocol::Resync>(&m)) {
    TF_LOG(Info, "portal asks for a snapshot: %s", rs->reason.c_str());
    log_.onResync();
  } else if (auto* c = std::get_if<protocol::Command>(&m)) {
    commands_.push_back(*c);
    commandsCv_.notify_all();
  } else if (auto* e = std::get_if<protocol::Error>(&m)) {
    TF_LOG(Warn, "portal: %s", e->message.c_str());
  }
}

std::vector<std::string> Agent::poll() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> frames = log_.takeFrames();
  for (auto& f : results_) frames.push_back(std::move(f));
  results_.clear();
  const auto now = std::chrono::steady_clock::now();
  // Utilization only while the sync has room: under a slow link the lossy stream waits (and
  // drops its oldest points) rather than delaying the objects.
  if (log_.outboxDepth() < options_.limits.window) {
    const size_t before = metrics_.size();
    for (auto& f : metrics_.takeFrames(kMetricsPerFrame)) frames.push_back(std::move(f));
    stats_.metricsSent += before;
  }
  if (now >= nextHeartbeat_) {
    nextHeartbeat_ = now + heartbeat_;
    frames.push_back(
        protocol::serialize(protocol::Heartbeat{log_.ackedSeq(), log_.outboxDepth(), metrics_.dropped()}));
  }
  return frames;
}

}  // namespace tf::agent
