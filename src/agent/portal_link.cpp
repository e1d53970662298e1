#include "agent/portal_link.h"

#include "common/net/beast.h"
#include "control_protocol/crypto.h"

#define TF_LOG_COMPONENT "agent"
#include "common/log.h"

namespace tf::agent {
namespace {

namespace asio = tf::net::asio;
namespace beast = tf::net::beast;
namespace websocket = tf::net::websocket;
namespace ssl = tf::net::ssl;
using tf::net::tcp;
using asio::use_awaitable;
using Ws = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

std::string peerPin(SSL* ssl) {
  auto pin = protocol::peerCertificatePin(ssl);
  return pin ? *pin : std::string();
}

class Session {
public:
  Session(const LinkConfig& cfg, SessionHandler& handler, asio::io_context& ioc, ssl::context& ctx)
      : cfg_(cfg), handler_(handler), ioc_(ioc), ws_(ioc, ctx), timer_(ioc), deadline_(ioc) {}

  SessionEnd end;

  // Called from another thread: finish with a normal close.
  void requestStop() {
    asio::post(ioc_, [this] {
      stopping_ = true;
      timer_.cancel();
      if (!end.welcomed) {  // still connecting: nothing to close cleanly
        if (end.reason.empty()) end.reason = "agent stopping";
        boost::system::error_code ec;
        beast::get_lowest_layer(ws_).socket().close(ec);
      }
    });
  }

  asio::awaitable<void> run() {
    try {
      // Every way out goes through the clean-up below: a pending timer (the handshake
      // deadline, Beast's own) would otherwise hold ioc.run() until it fired.
      co_await connect();
      if (end.connected && co_await handshake()) {
        readerRunning_ = true;
        asio::co_spawn(ioc_, readLoop(), asio::detached);
        co_await writeLoop();
      }
    } catch (const boost::system::system_error& e) {
      if (end.reason.empty()) end.reason = e.code().message();
    }
    if (end.welcomed) end.upTime = std::chrono::steady_clock::now() - welcomedAt_;
    boost::system::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
    deadline_.cancel();
    // The closed socket ends the reader (it cancels timer_ when done); wait for it, then stop
    // the context: after a failed read Beast (1.74) leaves its keep-alive timer armed, which
    // would hold ioc.run(), and so the reconnect, for up to idleTimeout / 2.
    while (readerRunning_ && !readerDone_) {
      timer_.expires_at(asio::steady_timer::time_point::max());
      co_await timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    }
    ioc_.stop();
  }

  bool readerDone() const { return readerDone_; }

private:
  asio::awaitable<void> connect() {
    const auto& ep = cfg_.endpoint;
    tcp::resolver resolver(ioc_);
    auto results = co_await resolver.async_resolve(ep.host, std::to_string(ep.port), use_awaitable);
    auto& tcpLayer = beast::get_lowest_layer(ws_);
    tcpLayer.expires_after(cfg_.handshakeTimeout);
    co_await tcpLayer.async_connect(results, use_awaitable);
    boost::system::error_code ec;
    asio::ip::make_address(ep.host, ec);
    if (ec) SSL_set_tlsext_host_name(ws_.next_layer().native_handle(), ep.host.c_str());  // SNI for names only
    co_await ws_.next_layer().async_handshake(ssl::stream_base::client, use_awaitable);
    const std::string pin = peerPin(ws_.next_layer().native_handle());
    if (pin != cfg_.pin) {
      // Nothing has been sent: no token, no signature reaches a portal we do not trust.
      end.reason = "the portal's certificate pin is " + (pin.empty() ? std::string("unreadable") : pin) +
                   ", expected " + cfg_.pin;
      co_return;
    }
    end.connected = true;
    tcpLayer.expires_never();
    websocket::stream_base::timeout t;
    t.handshake_timeout = cfg_.handshakeTimeout;
    t.idle_timeout = cfg_.idleTimeout;
    t.keep_alive_pings = true;
    ws_.set_option(t);
    ws_.read_message_max(protocol::kMaxMessageBytes);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::request_type& req) { req.set(beast::http::field::user_agent, "tensor-fusion-agent"); }));
    const std::string hostHeader = ep.host + (ep.port == 443 ? "" : ":" + std::to_string(ep.port));
    co_await ws_.async_handshake(hostHeader, ep.target, use_awaitable);
  }

  // hello -> challenge -> auth -> welcome, all within the handshake timeout.
  asio::awaitable<bool> handshake() {
    deadline_.expires_after(cfg_.handshakeTimeout);
    deadline_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      if (end.reason.empty()) end.reason = "no welcome from the portal in time";
      boost::system::error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
    });
    co_await write(protocol::serialize(handler_.hello()));
    auto challenge = co_await readMessage();
    if (!challenge) co_return false;
    auto* ch = std::get_if<protocol::Challenge>(&*challenge);
    if (!ch) {
      end.reason = "expected challenge, got " + std::string(protocol::typeName(*challenge));
      co_return false;
    }
    auto auth = handler_.answer(*ch);
    if (!auth) {
      end.reason = auth.status().toString();
      co_return false;
    }
    co_await write(protocol::serialize(*auth));
    auto welcome = co_await readMessage();
    if (!welcome) co_return false;
    auto* w = std::get_if<protocol::Welcome>(&*welcome);
    if (!w) {
      end.reason = "expected welcome, got " + std::string(protocol::typeName(*welcome));
      co_return false;
    }
    deadline_.cancel();
    end.welcomed = true;
    welcomedAt_ = std::chrono::steady_clock::now();
    for (auto& f : handler_.welcomed(*w)) co_await write(f);
    co_return true;
  }

  asio::awaitable<void> write(const std::string& frame) {
    ws_.text(true);
    co_await ws_.async_write(asio::buffer(frame), use_awaitable);
  }

  // One message; nullopt when the connection ended (end.closeCode/reason say why) or the
  // portal sent something unreadable.
  asio::awaitable<std::optional<protocol::Message>> readMessage() {
    beast::flat_buffer buf;
    boost::system::error_code ec;
    co_await ws_.async_read(buf, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == websocket::error::closed) {
        end.closeCode = ws_.reason().code;
        if (end.reason.empty()) end.reason = "portal closed: " + std::string(ws_.reason().reason.c_str());
      } else if (end.reason.empty()) {
        end.reason = ec.message();
      }
      co_return std::nullopt;
    }
    auto m = protocol::parseMessage(beast::buffers_to_string(buf.data()));
    if (!m) {
      end.reason = "unreadable message from the portal: " + m.error().reason;
      co_return std::nullopt;
    }
    co_return std::move(*m);
  }

  asio::awaitable<void> readLoop() {
    for (;;) {
      auto m = co_await readMessage();
      if (!m) break;
      handler_.received(*m);
    }
    readerDone_ = true;
    timer_.cancel();
  }

  asio::awaitable<void> writeLoop() {
    while (!readerDone_) {
      if (stopping_) {
        boost::system::error_code ec;
        co_await ws_.async_close(websocket::close_code::normal, asio::redirect_error(use_awaitable, ec));
        if (end.reason.empty()) end.reason = "agent stopping";
        co_return;
      }
      for (auto& f : handler_.poll()) co_await write(f);
      timer_.expires_after(cfg_.pollInterval);
      boost::system::error_code ec;
      co_await timer_.async_wait(asio::redirect_error(use_awaitable, ec));
    }
  }

  const LinkConfig& cfg_;
  SessionHandler& handler_;
  asio::io_context& ioc_;
  Ws ws_;
  asio::steady_timer timer_, deadline_;
  bool stopping_ = false, readerRunning_ = false, readerDone_ = false;
  std::chrono::steady_clock::time_point welcomedAt_;
};

}  // namespace

SessionEnd runPortalSession(const LinkConfig& cfg, SessionHandler& handler, k8s::StopSignal& stop) {
  asio::io_context ioc(1);
  ssl::context ctx(ssl::context::tls_client);
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  ctx.set_verify_mode(ssl::verify_none);  // the trust is the pin, checked right after the handshake
  Session session(cfg, handler, ioc, ctx);
  const int waker = stop.addWaker([&session] { session.requestStop(); });
  if (stop.stopped()) session.requestStop();
  asio::co_spawn(ioc, session.run(), asio::detached);
  ioc.run();
  stop.removeWaker(waker);
  return session.end;
}

}  // namespace tf::agent
