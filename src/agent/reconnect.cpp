#include "agent/reconnect.h"

#include <algorithm>
#include <cmath>

namespace tf::agent {

std::chrono::milliseconds reconnectDelay(const ReconnectPolicy& p, int attempt, double u) {
  const double cap = double(p.max.count());
  double ms = double(p.initial.count()) * std::pow(p.multiplier, std::max(attempt, 0));
  if (!(ms < cap)) ms = cap;  // also catches overflow to inf
  u = std::clamp(u, 0.0, 1.0);
  ms *= 1.0 + p.jitter * (2.0 * u - 1.0);
  ms = std::clamp(ms, 0.0, cap);
  return std::chrono::milliseconds(int64_t(ms));
}

Result<PortalEndpoint> parsePortalUrl(const std::string& url) {
  PortalEndpoint e;
  if (url.rfind("wss://", 0) != 0) {
    if (url.rfind("ws://", 0) == 0) return invalidArgument("portal URL " + url + ": ws:// is not encrypted; use wss://");
    return invalidArgument("portal URL " + url + ": expected wss://HOST[:PORT][/PATH]");
  }
  const std::string rest = url.substr(6);
  const auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) e.target = rest.substr(slash);
  std::string portText;
  if (!authority.empty() && authority[0] == '[') {
    const auto close = authority.find(']');
    if (close == std::string::npos) return invalidArgument("portal URL " + url + ": unterminated [IPv6 address]");
    e.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return invalidArgument("portal URL " + url + ": junk after ]");
      portText = authority.substr(close + 2);
    }
  } else {
    const auto colon = authority.rfind(':');
    e.host = authority.substr(0, colon);
    if (colon != std::string::npos) portText = authority.substr(colon + 1);
  }
  if (e.host.empty()) return invalidArgument("portal URL " + url + ": no host");
  if (!portText.empty() || authority.back() == ':') {
    int port = 0;
    for (char c : portText) {
      if (c < '0' || c > '9' || port > 65535) return invalidArgument("portal URL " + url + ": bad port");
      port = port * 10 + (c - '0');
    }
    if (port < 1 || port > 65535) return invalidArgument("portal URL " + url + ": bad port");
    e.port = port;
  }
  return e;
}

}  // namespace tf::agent
