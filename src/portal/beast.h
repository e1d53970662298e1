// The portal's names for Beast/Asio (common/net/beast.h; link tf_net). Include only from .cpp
// files.
#pragma once

#include "common/net/beast.h"

namespace tf::portal {
namespace net = tf::net::asio;
namespace beast = tf::net::beast;
namespace http = tf::net::http;
namespace websocket = tf::net::websocket;
namespace ssl = tf::net::ssl;
using tcp = tf::net::tcp;
}  // namespace tf::portal
