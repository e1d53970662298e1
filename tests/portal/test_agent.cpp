#include "test_agent.h"

#include <boost/asio/connect.hpp>

#include "portal/beast.h"

namespace tf::portal::testing {
namespace {

std::string peerPin(SSL* ssl) {
  auto pin = protocol::peerCertificatePin(ssl);
  return pin ? *pin : std::string();
}

}  // namespace

std::string Frame::type() const {
  auto j = json();
  return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : "";
}

class TestAgent::Impl {
public:
  net::io_context ioc;
  ssl::context ctx{ssl::context::tls_client};
  std::optional<websocket::stream<beast::ssl_stream<beast::tcp_stream>>> ws;

  Status write(const std::string& data, bool binary) {
    try {
      ws->binary(binary);
      ws->write(net::buffer(data));
      return Status::ok();
    } catch (const std::exception& e) {
      return unavailable(e.what());
    }
  }

  // Runs the loop until `done` or the timeout; on timeout, cancels and drains.
  bool runUntil(bool& done, std::chrono::milliseconds timeout) {
    ioc.restart();
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!done && std::chrono::steady_clock::now() < end) ioc.run_one_for(end - std::chrono::steady_clock::now());
    if (done) return true;
    beast::get_lowest_layer(*ws).cancel();
    ioc.restart();
    while (!done) ioc.run_one_for(std::chrono::seconds(5));
    return false;
  }
};

TestAgent::TestAgent(int port, std::string pin) : port_(port), pin_(std::move(pin)), impl_(std::make_unique<Impl>()) {
  impl_->ctx.set_verify_mode(ssl::verify_none);  // trust comes from the pin, checked after the handshake
}
TestAgent::~TestAgent() = default;

Status TestAgent::connect(const std::string& target) {
  try {
    impl_->ws.emplace(impl_->ioc, impl_->ctx);
    auto& ws = *impl_->ws;
    beast::get_lowest_layer(ws).expires_after(std::chrono::seconds(20));
    beast::get_lowest_layer(ws).connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), uint16_t(port_)));
    SSL_set_tlsext_host_name(ws.next_layer().native_handle(), "localhost");
    ws.next_layer().handshake(ssl::stream_base::client);
    if (!pin_.empty() && peerPin(ws.next_layer().native_handle()) != pin_)
      return {Code::PermissionDenied, "portal certificate does not match the pin"};
    beast::get_lowest_layer(ws).expires_never();
    ws.handshake("localhost", target);
    return Status::ok();
  } catch (const std::exception& e) {
    return unavailable(e.what());
  }
}

Status TestAgent::send(const std::string& text) { return impl_->write(text, false); }
Status TestAgent::sendBinary(const std::string& bytes) { return impl_->write(bytes, true); }

Frame TestAgent::read(std::chrono::milliseconds timeout) {
  Frame f;
  beast::flat_buffer buf;
  bool done = false;
  boost::system::error_code err;
  impl_->ws->async_read(buf, [&](boost::system::error_code ec, size_t) {
    err = ec;
    done = true;
  });
  if (!impl_->runUntil(done, timeout)) {
    f.timedOut = true;
    return f;
  }
  if (err) {
    f.closed = true;
    f.closeCode = err == websocket::error::closed ? impl_->ws->reason().code : 0;
    return f;
  }
  f.text = beast::buffers_to_string(buf.data());
  return f;
}

uint16_t TestAgent::readClose(std::chrono::milliseconds timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    Frame f = read(std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now()));
    if (f.closed) return f.closeCode;
    if (f.timedOut) return 0;
  }
  return 0;
}

void TestAgent::drop() {
  boost::system::error_code ec;
  beast::get_lowest_layer(*impl_->ws).socket().shutdown(tcp::socket::shutdown_both, ec);
  beast::get_lowest_layer(*impl_->ws).socket().close(ec);
}

TestAgent::AuthResult TestAgent::authenticate(const std::string& agentId, const protocol::Ed25519Key& key,
                                              const std::optional<std::string>& enrollToken, uint64_t epoch,
                                              uint64_t lastSeq, const std::string& signAsAgentId) {
  AuthResult r;
  protocol::Hello hello{agentId, "test-0.1", "instance-1", std::nullopt};
  if (enrollToken) hello.enroll = protocol::EnrollRequest{*enrollToken, key.publicKeyBase64()};
  if (!send(hello)) return r;
  Frame f = read();
  if (f.closed || f.timedOut) {
    r.closeCode = f.closeCode;
    return r;
  }
  auto challenge = protocol::parseMessage(f.text);
  if (!challenge || !std::holds_alternative<protocol::Challenge>(*challenge)) return r;
  auto nonce = protocol::base64UrlDecode(std::get<protocol::Challenge>(*challenge).nonce);
  auto sig = key.sign(protocol::authPayload(*nonce, signAsAgentId.empty() ? agentId : signAsAgentId, pin_));
  if (!send(protocol::Auth{*sig, epoch, lastSeq})) return r;
  f = read();
  if (f.closed || f.timedOut) {
    r.closeCode = f.closeCode;
    return r;
  }
  auto welcome = protocol::parseMessage(f.text);
  if (!welcome || !std::holds_alternative<protocol::Welcome>(*welcome)) return r;
  r.ok = true;
  r.welcome = std::get<protocol::Welcome>(*welcome);
  return r;
}

HttpReply httpsRequest(int port, const std::string& method, const std::string& target, const std::string& body,
                       const std::map<std::string, std::string>& headers) {
  HttpReply reply;
  try {
    net::io_context ioc;
    ssl::context ctx{ssl::context::tls_client};
    ctx.set_verify_mode(ssl::verify_none);
    beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
    beast::get_lowest_layer(stream).connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), uint16_t(port)));
    stream.handshake(ssl::stream_base::client);
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "localhost");
    req.set(http::field::content_type, "application/json");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.keep_alive(false);
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(stream, buf, res);
    reply.status = res.result_int();
    for (const auto& h : res) {
      std::string name(h.name_string());
      for (auto& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
      reply.headers[name] = std::string(h.value());
    }
    reply.body = res.body();
    boost::system::error_code ec;
    stream.shutdown(ec);
  } catch (const std::exception& e) {
    reply.status = -1;
    reply.body = e.what();
  }
  return reply;
}

HttpReply ConsoleClient::login(const std::string& user, const std::string& password) {
  HttpReply r = httpsRequest(port_, "POST", "/api/v1/login", nlohmann::json{{"username", user}, {"password", password}}.dump());
  if (r.status == 200) {
    const std::string& sc = r.headers["set-cookie"];
    cookie_ = sc.substr(0, sc.find(';'));
    csrf_ = r.json().value("csrfToken", "");
  }
  return r;
}

HttpReply ConsoleClient::call(const std::string& method, const std::string& target, const std::string& body) {
  std::map<std::string, std::string> h;
  if (!cookie_.empty()) h["Cookie"] = cookie_;
  if (!csrf_.empty() && method != "GET") h["X-CSRF-Token"] = csrf_;
  return httpsRequest(port_, method, target, body, h);
}
HttpReply ConsoleClient::get(const std::string& target) { return call("GET", target, ""); }
HttpReply ConsoleClient::post(const std::string& target, const nlohmann::json& body) {
  return call("POST", target, body.dump());
}
HttpReply ConsoleClient::del(const std::string& target) { return call("DELETE", target, "{}"); }

}  // namespace tf::portal::testing
