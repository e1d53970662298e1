#include "portal/server.h"

#include <deque>
#include <thread>

#include "portal/beast.h"

#define TF_LOG_COMPONENT "portal"
#include "common/log.h"
#include "portal/agent_session.h"
#include "portal/console.h"
#include "portal/delta_committer.h"
#include "portal/rest.h"

namespace tf::portal {
namespace {

using net::use_awaitable;

constexpr size_t kMaxRequestBody = 64 * 1024;

HttpRequest toRequest(const http::request<http::string_body>& req, const std::string& peer) {
  HttpRequest r;
  r.method = std::string(req.method_string());
  const std::string target(req.target());
  const auto q = target.find('?');
  r.path = target.substr(0, q);
  r.query = q == std::string::npos ? "" : target.substr(q + 1);
  r.body = req.body();
  r.cookie = std::string(req[http::field::cookie]);
  r.csrfToken = std::string(req["X-CSRF-Token"]);
  r.peer = peer;
  return r;
}

http::response<http::string_body> toResponse(const HttpResponse& r, unsigned version, bool keepAlive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "tensor-fusion-portal");
  res.set(http::field::content_type, r.contentType);
  res.set(http::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  res.set(http::field::strict_transport_security, "max-age=31536000");
  for (const auto& [k, v] : r.headers) res.insert(k, v);
  res.body() = r.body;
  res.keep_alive(keepAlive);
  res.prepare_payload();
  return res;
}

// One agent connection: a reader loop feeding the AgentSession, a writer draining the outbox
// (one write at a time, as WebSocket wants), and a close that others may ask for.
class WsConnection : public LiveAgent, public std::enable_shared_from_this<WsConnection> {
public:
  using AnyStream = std::variant<websocket::stream<beast::tcp_stream>,
                                 websocket::stream<beast::ssl_stream<beast::tcp_stream>>>;

  // `committer`: where deltas go for group commit (null: the session commits each itself).
  template <typename Stream>
  WsConnection(PortalContext& ctx, const ServerOptions& opts, DeltaCommitter* committer, Stream&& stream, std::string peer)
      : ctx_(ctx), opts_(opts), committer_(committer),
        ws_(std::in_place_type<websocket::stream<std::decay_t<Stream>>>, std::move(stream)), peer_(std::move(peer)),
        timer_(executor()) {}

  net::any_io_executor executor() {
    return std::visit([](auto& ws) -> net::any_io_executor { return ws.get_executor(); }, ws_);
  }

  net::awaitable<void> run(http::request<http::string_body> req) {
    session_.emplace(ctx_, peer_, weak_from_this(), committer_ != nullptr);
    try {
      co_await std::visit(
          [&](auto& ws) -> net::awaitable<void> {
            websocket::stream_base::timeout t;
            t.handshake_timeout = std::chrono::seconds(opts_.handshakeSeconds);
            t.idle_timeout = std::chrono::seconds(opts_.idleSeconds);
            t.keep_alive_pings = true;
            ws.set_option(t);
            ws.read_message_max(protocol::kMaxMessageBytes);
            co_await ws.async_accept(req, use_awaitable);
          },
          ws_);
      armAuthDeadline();
      co_await std::visit([&](auto& ws) { return readLoop(ws); }, ws_);
    } catch (const boost::system::system_error& e) {
      TF_LOG(Debug, "agent connection from %s: %s", peer_.c_str(), e.what());
    }
    timer_.cancel();
    session_->onClosed();
  }

  void send(std::string frame) override {
    net::post(executor(), [self = shared_from_this(), f = std::move(frame)]() mutable {
      self->outbox_.push_back(std::move(f));
      self->kick();
    });
  }

  void close(protocol::CloseCode code, std::string reason) override {
    net::post(executor(), [self = shared_from_this(), code, r = std::move(reason)]() mutable {
      self->requestClose(code, std::move(r));
    });
  }

private:
  void armAuthDeadline() {
    timer_.expires_after(std::chrono::seconds(opts_.authSeconds));
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && !self->session_->authenticated()) self->requestClose(protocol::CloseCode::Policy, "authentication timeout");
    });
  }

  template <typename Ws> net::awaitable<void> readLoop(Ws& ws) {
    for (;;) {
      beast::flat_buffer buf;
      boost::system::error_code ec;
      co_await ws.async_read(buf, net::redirect_error(use_awaitable, ec));
      if (ec) {
        // Beast has already sent 1009 (too big) or 1007 (bad UTF-8) where that was the cause.
        if (ec != websocket::error::closed)
          TF_LOG(Debug, "agent connection from %s: read: %s", peer_.c_str(), ec.message().c_str());
        co_return;
      }
      if (closeRequested_) continue;  // draining until the peer answers our close
      if (!ws.got_text()) {
        requestClose(protocol::CloseCode::UnsupportedData, "binary frames are not accepted");
        continue;
      }
      SessionOutput out = session_->onText(std::string_view(static_cast<const char*>(buf.data().data()), buf.size()));
      if (out.deltaToCommit) {
        // The next frame waits for this commit: acks stay in order, and the agent's window
        // (not this loop) bounds what is in flight.
        const uint64_t seq = out.deltaToCommit->seq;
        auto outcome = co_await commit(std::move(*out.deltaToCommit));
        if (closeRequested_) continue;
        out = session_->deltaCommitted(seq, outcome);
      }
      for (auto& f : out.frames) outbox_.push_back(std::move(f));
      if (out.close) requestClose(out.close->code, out.close->reason);
      else kick();
    }
  }

  // Hands the delta to the committer; resumes on this connection's strand with the outcome.
  net::awaitable<Result<DeltaOutcome>> commit(protocol::Delta delta) {
    auto signal = std::make_shared<net::steady_timer>(executor(), net::steady_timer::time_point::max());
    auto outcome = std::make_shared<std::optional<Result<DeltaOutcome>>>();
    committer_->submit(session_->clusterId(), std::move(delta), [signal, outcome](Result<DeltaOutcome> r) {
      net::post(signal->get_executor(), [signal, outcome, r = std::move(r)]() mutable {
        outcome->emplace(std::move(r));
        signal->cancel();
      });
    });
    while (!*outcome) {
      boost::system::error_code ec;
      co_await signal->async_wait(net::redirect_error(use_awaitable, ec));
    }
    co_return std::move(**outcome);
  }

  void requestClose(protocol::CloseCode code, std::string reason) {
    if (closeRequested_) return;
    closeRequested_ = true;
    closeCode_ = code;
    closeReason_ = std::move(reason);
    if (closeReason_.size() > 120) closeReason_.resize(120);
    session_->onClosed();
    kick();
  }

  void kick() {
    if (writing_) return;
    writing_ = true;
    net::co_spawn(executor(), [self = shared_from_this()] { return self->writeLoop(); }, net::detached);
  }

  net::awaitable<void> writeLoop() {
    auto self = shared_from_this();
    try {
      co_await std::visit(
          [&](auto& ws) -> net::awaitable<void> {
            while (!outbox_.empty() && !closeSent_) {
              std::string frame = std::move(outbox_.front());
              outbox_.pop_front();
              ws.text(true);
              co_await ws.async_write(net::buffer(frame), use_awaitable);
            }
            if (closeRequested_ && !closeSent_) {
              closeSent_ = true;
              outbox_.clear();
              websocket::close_reason cr;
              cr.code = static_cast<uint16_t>(closeCode_);
              cr.reason = closeReason_;
              co_await ws.async_close(cr, use_awaitable);
            }
          },
          ws_);
    } catch (const boost::system::system_error& e) {
      TF_LOG(Debug, "agent connection from %s: write: %s", peer_.c_str(), e.what());
      outbox_.clear();
    }
    writing_ = false;
    if (!outbox_.empty() || (closeRequested_ && !closeSent_)) kick();
  }

  PortalContext& ctx_;
  const ServerOptions opts_;
  DeltaCommitter* committer_;
  AnyStream ws_;
  std::string peer_;
  net::steady_timer timer_;
  std::optional<AgentSession> session_;
  std::deque<std::string> outbox_;
  bool writing_ = false, closeRequested_ = false, closeSent_ = false;
  protocol::CloseCode closeCode_ = protocol::CloseCode::Normal;
  std::string closeReason_;
};

}  // namespace

class Server::Impl {
public:
  Impl(PortalContext& ctx, const ServerOptions& opts)
      : ctx_(ctx), opts_(opts), rest_(ctx), sslCtx_(ssl::context::tls_server), acceptor_(ioc_),
        committer_(opts.groupCommit ? std::make_unique<DeltaCommitter>(ctx.store) : nullptr) {}

  Status listen(const TlsIdentity& tls) {
    if (!opts_.insecureHttp) {
      sslCtx_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                          ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
      boost::system::error_code ec;
      sslCtx_.use_certificate_chain(net::buffer(tls.certPem), ec);
      if (!ec) sslCtx_.use_private_key(net::buffer(tls.keyPem), ssl::context::pem, ec);
      if (ec) return invalidArgument("TLS certificate or key: " + ec.message());
    }
    boost::system::error_code ec;
    const auto addr = net::ip::make_address(opts_.host, ec);
    if (ec) return invalidArgument("listen address " + opts_.host + ": " + ec.message());
    tcp::endpoint ep(addr, static_cast<unsigned short>(opts_.port));
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return unavailable("listening on " + opts_.host + ":" + std::to_string(opts_.port) + ": " + ec.message());
    port_ = acceptor_.local_endpoint().port();
    net::co_spawn(acceptor_.get_executor(), acceptLoop(), net::detached);
    for (int i = 0; i < std::max(1, opts_.threads); ++i) threads_.emplace_back([this] { ioc_.run(); });
    return Status::ok();
  }

  ~Impl() {
    ioc_.stop();
    for (auto& t : threads_) t.join();
  }

  int port() const { return port_; }

private:
  net::awaitable<void> acceptLoop() {
    for (;;) {
      tcp::socket socket(net::make_strand(ioc_));
      boost::system::error_code ec;
      co_await acceptor_.async_accept(socket, net::redirect_error(use_awaitable, ec));
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) co_return;
      if (ec) continue;  // e.g. out of descriptors: keep serving the others
      auto exec = socket.get_executor();
      if (opts_.insecureHttp)
        net::co_spawn(exec, serve(beast::tcp_stream(std::move(socket))), net::detached);
      else
        net::co_spawn(exec, serve(beast::ssl_stream<beast::tcp_stream>(std::move(socket), sslCtx_)), net::detached);
    }
  }

  static std::string peerOf(const tcp::socket& s) {
    boost::system::error_code ec;
    auto ep = s.remote_endpoint(ec);
    return ec ? "unknown" : ep.address().to_string();
  }

  template <typename Stream> net::awaitable<void> serve(Stream stream) {
    const std::string peer = peerOf(beast::get_lowest_layer(stream).socket());
    try {
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(opts_.handshakeSeconds));
      if constexpr (!std::is_same_v<Stream, beast::tcp_stream>)
        co_await stream.async_handshake(ssl::stream_base::server, use_awaitable);
      beast::flat_buffer buffer;
      for (;;) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(kMaxRequestBody);
        parser.header_limit(16 * 1024);
        beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(opts_.idleSeconds));
        co_await http::async_read(stream, buffer, parser, use_awaitable);
        auto req = parser.release();
        if (websocket::is_upgrade(req)) {
          if (req.target() != "/_ws") {
            co_await http::async_write(stream, toResponse({404, R"({"error":"not found"})"}, req.version(), false),
                                       use_awaitable);
            break;
          }
          beast::get_lowest_layer(stream).expires_never();
          auto conn = std::make_shared<WsConnection>(ctx_, opts_, committer_.get(), std::move(stream), peer);
          co_await conn->run(std::move(req));
          co_return;
        }
        HttpResponse r{404, R"({"error":"not found"})"};
        const std::string target(req.target());
        if (target.starts_with("/api/")) r = rest_.handle(toRequest(req, peer));
        else if (auto page = req.method() == http::verb::get ? consoleResponse(target.substr(0, target.find('?')))
                                                             : std::nullopt) {
          r = std::move(*page);
        }
        const bool keepAlive = req.keep_alive();
        co_await http::async_write(stream, toResponse(r, req.version(), keepAlive), use_awaitable);
        if (!keepAlive) break;
      }
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
      if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
        boost::system::error_code ec;
        co_await stream.async_shutdown(net::redirect_error(use_awaitable, ec));
      }
    } catch (const boost::system::system_error& e) {
      // body too large, a timeout, a reset: this connection ends; nobody else notices
      TF_LOG(Debug, "connection from %s: %s", peer.c_str(), e.what());
    } catch (const std::exception& e) {
      TF_LOG(Warn, "connection from %s: %s", peer.c_str(), e.what());
    }
  }

  PortalContext& ctx_;
  ServerOptions opts_;
  RestApi rest_;
  net::io_context ioc_;
  ssl::context sslCtx_;
  tcp::acceptor acceptor_;
  // After ioc_: destroyed first, once the server threads are joined (answers still owed are
  // posted to the stopped io_context and dropped with it).
  std::unique_ptr<DeltaCommitter> committer_;
  std::vector<std::thread> threads_;
  int port_ = 0;
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;
int Server::port() const { return impl_->port(); }

Result<std::unique_ptr<Server>> Server::start(PortalContext& ctx, const TlsIdentity& tls, const ServerOptions& opts) {
  auto impl = std::make_unique<Impl>(ctx, opts);
  TF_RETURN_IF_ERROR(impl->listen(tls));
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

}  // namespace tf::portal
