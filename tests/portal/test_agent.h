// A test agent and an HTTPS client that speak to a portal over a real socket (TLS, the pin
// checked against the certificate the portal presents). Beast stays in test_agent.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "control_protocol/crypto.h"
#include "control_protocol/messages.h"

namespace tf::portal::testing {

struct Frame {
  bool closed = false;     // the portal closed the connection
  uint16_t closeCode = 0;  // its close code (0: the TCP connection ended without one)
  bool timedOut = false;
  std::string text;
  nlohmann::json json() const { return nlohmann::json::parse(text, nullptr, false); }
  std::string type() const;
};

class TestAgent {
public:
  // `pin`: refuse a portal whose certificate does not have it ("" = do not check).
  TestAgent(int port, std::string pin);
  ~TestAgent();
  Status connect(const std::string& target = "/_ws");
  Status send(const std::string& text);
  Status send(const protocol::Message& m) { return send(protocol::serialize(m)); }
  Status sendBinary(const std::string& bytes);
  Frame read(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Reads until a close (skipping other frames); its code, or 0 if none came in time.
  uint16_t readClose(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  void drop();  // closes the TCP connection without a close frame

  // hello -> challenge -> auth. On success the welcome; otherwise the close code.
  struct AuthResult {
    bool ok = false;
    uint16_t closeCode = 0;
    protocol::Welcome welcome;
  };
  AuthResult authenticate(const std::string& agentId, const protocol::Ed25519Key& key,
                          const std::optional<std::string>& enrollToken, uint64_t epoch, uint64_t lastSeq,
                          const std::string& signAsAgentId = "");

  class Impl;

private:
  int port_;
  std::string pin_;
  std::unique_ptr<Impl> impl_;
};

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

// One HTTPS request per call (Connection: close). `headers` adds to Host/Content-Type.
HttpReply httpsRequest(int port, const std::string& method, const std::string& target, const std::string& body = "",
                       const std::map<std::string, std::string>& headers = {});

// A logged-in console user: keeps the session cookie and the CSRF token.
class ConsoleClient {
public:
  explicit ConsoleClient(int port) : port_(port) {}
  HttpReply login(const std::string& user, const std::string& password);
  HttpReply get(const std::string& target);
  HttpReply post(const std::string& target, const nlohmann::json& body = nlohmann::json::object());
  HttpReply del(const std::string& target);
  const std::string& cookie() const { return cookie_; }
  const std::string& csrf() const { return csrf_; }

private:
  HttpReply call(const std::string& method, const std::string& target, const std::string& body);
  int port_;
  std::string cookie_, csrf_;
};

}  // namespace tf::portal::testing
