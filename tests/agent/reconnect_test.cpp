// The reconnect schedule and the portal URL.
#include <gtest/gtest.h>

#include "agent/agent.h"
#include "agent/reconnect.h"

namespace tf::agent {
namespace {

using std::chrono::milliseconds;

TEST(ReconnectTest, GrowsByTheMultiplierWithSymmetricJitterAndACap) {
  ReconnectPolicy p;  // 1 s, x1.6, +-20 %, 120 s
  // u = 0.5 is no jitter: the plain schedule.
  EXPECT_EQ(reconnectDelay(p, 0, 0.5), milliseconds(1000));
  EXPECT_EQ(reconnectDelay(p, 1, 0.5), milliseconds(1600));
  EXPECT_EQ(reconnectDelay(p, 2, 0.5), milliseconds(2560));
  EXPECT_EQ(reconnectDelay(p, 5, 0.5), milliseconds(10485));
  // The jitter's ends: 80 % and (almost) 120 %.
  EXPECT_EQ(reconnectDelay(p, 0, 0.0), milliseconds(800));
  EXPECT_EQ(reconnectDelay(p, 0, 0.999999), milliseconds(1199));
  EXPECT_EQ(reconnectDelay(p, 2, 0.0), milliseconds(2048));
  // Capped, jitter included, and no overflow far out.
  EXPECT_EQ(reconnectDelay(p, 11, 0.5), milliseconds(120000));  // 1.6^11 s = 176 s
  EXPECT_EQ(reconnectDelay(p, 11, 0.999), milliseconds(120000));
  EXPECT_EQ(reconnectDelay(p, 11, 0.0), milliseconds(96000));
  EXPECT_EQ(reconnectDelay(p, 100000, 0.7), milliseconds(120000));
  // A negative attempt or a draw outside [0, 1) is clamped.
  EXPECT_EQ(reconnectDelay(p, -3, 0.5), milliseconds(1000));
  EXPECT_EQ(reconnectDelay(p, 0, 7.0), milliseconds(1200));
}

TEST(ReconnectTest, ParsesThePortalUrl) {
  auto e = parsePortalUrl("wss://portal.example.com/_ws");
  ASSERT_TRUE(e) << e.status().toString();
  EXPECT_EQ(e->host, "portal.example.com");
  EXPECT_EQ(e->port, 443);
  EXPECT_EQ(e->target, "/_ws");
  e = parsePortalUrl("wss://127.0.0.1:8443/agents/_ws");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, 8443);
  EXPECT_EQ(e->target, "/agents/_ws");
  e = parsePortalUrl("wss://[::1]:9000");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->port, 9000);
  EXPECT_EQ(e->target, "/_ws");
}

TEST(ReconnectTest, RefusesBadPortalUrls) {
  struct Case {
    const char* url;
    const char* message;
  } cases[] = {
      {"ws://portal/_ws", "ws:// is not encrypted"},
      {"https://portal/_ws", "expected wss://"},
      {"wss:///_ws", "no host"},
      {"wss://portal:0/_ws", "bad port"},
      {"wss://portal:65536/_ws", "bad port"},
      {"wss://portal:8x/_ws", "bad port"},
      {"wss://portal:/_ws", "bad port"},
      {"wss://[::1/_ws", "unterminated"},
  };
  for (const auto& c : cases) {
    auto e = parsePortalUrl(c.url);
    ASSERT_FALSE(e) << c.url;
    EXPECT_EQ(e.status().code(), Code::InvalidArgument) << c.url;
    EXPECT_NE(e.status().message().find(c.message), std::string::npos) << c.url << ": " << e.status().message();
  }
}

TEST(ReconnectTest, AgentOptionsAreCheckedBeforeAnyClusterIsNeeded) {
  AgentOptions o;
  o.portalUrl = "wss://portal:8443/_ws";
  o.agentId = "acme:prod";
  o.portalPin = "sha256:" + std::string(64, 'a');
  EXPECT_TRUE(validateOptions(o).isOk());
  auto bad = [&](const std::function<void(AgentOptions&)>& edit) {
    AgentOptions b = o;
    edit(b);
    Status s = validateOptions(b);
    EXPECT_EQ(s.code(), Code::InvalidArgument);
    return s.message();
  };
  EXPECT_NE(bad([](AgentOptions& b) { b.agentId.clear(); }).find("agent id is required"), std::string::npos);
  EXPECT_NE(bad([](AgentOptions& b) { b.portalPin = "abc"; }).find("portal pin must be sha256:"), std::string::npos);
  EXPECT_NE(bad([](AgentOptions& b) { b.portalPin = "sha256:" + std::string(64, 'G'); }).find("portal pin"), std::string::npos);
  EXPECT_NE(bad([](AgentOptions& b) { b.portalPin = "sha256:" + std::string(63, 'a'); }).find("portal pin"), std::string::npos);
  EXPECT_NE(bad([](AgentOptions& b) { b.portalUrl = "ws://portal/_ws"; }).find("not encrypted"), std::string::npos);
}

}  // namespace
}  // namespace tf::agent
