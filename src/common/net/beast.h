// Boost.Beast/Asio for the control layer's HTTPS and WebSocket ends (the portal's server, the
// agent's client, the tests' client), with short namespace names. Include only from .cpp
// files and link tf_net: the library compiles Asio/Beast's own code once (beast_impl.cpp).
//
//   #include "common/net/beast.h"
//   namespace net = tf::net::asio;  // or use tf::net::{asio, beast, http, websocket, ssl, tcp}
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#if !defined(BOOST_ASIO_SEPARATE_COMPILATION) || !defined(BOOST_BEAST_SEPARATE_COMPILATION)
#error "link tf_net: it defines the separate-compilation macros that beast_impl.cpp is built with"
#endif

namespace tf::net {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
}  // namespace tf::net
