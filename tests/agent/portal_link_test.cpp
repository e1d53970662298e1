// One agent connection (runPortalSession) against the real portal in-process, through the
// fault-injecting proxy: when the link breaks or the portal goes away the session must end at
// once, so the agent reconnects on its schedule rather than after a stale keep-alive timer.
#include <filesystem>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "agent/portal_link.h"
#include "fault_proxy.h"
#include "portal/portal.h"
#include "temp_dir.h"
#include "test_agent.h"

namespace tf::agent {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kAdminPassword = "portal link test password";
constexpr const char* kAgentId = "acme:link";

bool eventually(const std::function<bool()>& f, std::chrono::milliseconds limit) {
  const auto end = Clock::now() + limit;
  while (Clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return f();
}

// Enrolls with a fresh key and a token, then sends nothing: the session only idles.
class EnrollingHandler : public SessionHandler {
public:
  EnrollingHandler(std::string token, std::string pin)
      : token_(std::move(token)), pin_(std::move(pin)), key_(*protocol::Ed25519Key::generate()) {}
  protocol::Hello hello() override {
    return {kAgentId, "test", "link-test", protocol::EnrollRequest{token_, key_.publicKeyBase64()}};
  }
  Result<protocol::Auth> answer(const protocol::Challenge& ch) override {
    auto nonce = protocol::base64UrlDecode(ch.nonce);
    if (!nonce) return nonce.status();
    auto sig = key_.sign(protocol::authPayload(*nonce, kAgentId, pin_));
    if (!sig) return sig.status();
    return protocol::Auth{*sig, 1, 0};
  }
  std::vector<std::string> welcomed(const protocol::Welcome&) override {
    welcomed_ = true;
    return {};
  }
  void received(const protocol::Message&) override {}
  std::vector<std::string> poll() override { return {}; }
  bool isWelcomed() const { return welcomed_; }

private:
  std::string token_, pin_;
  protocol::Ed25519Key key_;
  std::atomic<bool> welcomed_{false};
};

class PortalLinkTest : public ::testing::Test {
protected:
  void SetUp() override {
    dir_ = portal::testing::freshTestDir("tf-portal-link-");
    portal::PortalOptions o;
    o.dataDir = dir_.string();
    o.adminPassword = kAdminPassword;
    auto p = portal::Portal::start(o);
    ASSERT_TRUE(p) << p.status().toString();
    portal_ = std::move(*p);
    portal::testing::ConsoleClient console(portal_->port());
    ASSERT_EQ(console.login("admin", kAdminPassword).status, 200);
    auto r = console.post("/api/v1/clusters", {{"agentId", kAgentId}});
    ASSERT_EQ(r.status, 201) << r.body;
    const nlohmann::json reply = r.json();
    handler_ = std::make_unique<EnrollingHandler>(reply.at("enrollToken").get<std::string>(), portal_->pin());
    proxy_ = std::make_unique<testing::FaultProxy>(portal_->port());
    auto endpoint = parsePortalUrl("wss://127.0.0.1:" + std::to_string(proxy_->port()) + "/_ws");
    ASSERT_TRUE(endpoint) << endpoint.status().toString();
    config_.endpoint = *endpoint;
    config_.pin = portal_->pin();
  }
  void TearDown() override {
    stop_.stop();
    if (session_.valid()) session_.wait();
    proxy_.reset();
    portal_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Starts the session and waits for the welcome.
  void startSession() {
    session_ = std::async(std::launch::async, [this] { return runPortalSession(config_, *handler_, stop_); });
    ASSERT_TRUE(eventually([&] { return handler_->isWelcomed(); }, 10s)) << "no welcome";
  }
  // The session's end, if it came within `limit` of now.
  std::optional<SessionEnd> endWithin(std::chrono::milliseconds limit) {
    const auto t0 = Clock::now();
    if (session_.wait_for(limit) != std::future_status::ready) return std::nullopt;
    std::printf("session ended %lld ms after the event\n",
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count()));
    return session_.get();
  }

  std::filesystem::path dir_;
  std::unique_ptr<portal::Portal> portal_;
  std::unique_ptr<EnrollingHandler> handler_;
  std::unique_ptr<testing::FaultProxy> proxy_;
  LinkConfig config_;
  k8s::StopSignal stop_;
  std::future<SessionEnd> session_;
};

// The keep-alive pings come every idleTimeout / 2 (30 s by default); a cut must not wait for them.
TEST_F(PortalLinkTest, ACutLinkEndsTheSessionAtOnce) {
  ASSERT_EQ(config_.idleTimeout, 60s) << "the default this test is about";
  startSession();
  proxy_->cut();
  auto end = endWithin(10s);
  ASSERT_TRUE(end) << "the session outlived the link by 10 s";
  EXPECT_TRUE(end->welcomed);
  EXPECT_EQ(end->closeCode, 0) << "no close frame crossed a cut link";
  EXPECT_FALSE(end->reason.empty());
}

TEST_F(PortalLinkTest, APortalShutdownEndsTheSessionAtOnce) {
  startSession();
  portal_.reset();
  auto end = endWithin(10s);
  ASSERT_TRUE(end) << "the session outlived the portal by 10 s";
  EXPECT_TRUE(end->welcomed);
  EXPECT_FALSE(end->reason.empty());
}

// A refusal during the handshake (a bad token: 4401) ends the session when the portal closes,
// not when the handshake timeout fires.
TEST_F(PortalLinkTest, ARefusalDuringTheHandshakeEndsTheSessionAtOnce) {
  config_.handshakeTimeout = 60s;
  handler_ = std::make_unique<EnrollingHandler>("not-the-token", portal_->pin());
  session_ = std::async(std::launch::async, [this] { return runPortalSession(config_, *handler_, stop_); });
  auto end = endWithin(10s);
  ASSERT_TRUE(end) << "the session outlived the portal's refusal by 10 s";
  EXPECT_FALSE(end->welcomed);
  EXPECT_EQ(end->closeCode, uint16_t(protocol::CloseCode::BadAuth)) << end->reason;
}

TEST_F(PortalLinkTest, StoppingTheAgentClosesNormally) {
  startSession();
  stop_.stop();
  auto end = endWithin(10s);
  ASSERT_TRUE(end) << "the session did not stop within 10 s";
  EXPECT_TRUE(end->welcomed);
  EXPECT_EQ(end->reason, "agent stopping");
}

}  // namespace
}  // namespace tf::agent
