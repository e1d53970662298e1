// Where a remote vGPU's worker is, asked of the operator (reference §3.5): the webhook gives
// the client pod TENSOR_FUSION_OPERATOR_GET_CONNECTION_URL; the stub long-polls it with the
// pod's service-account token until its TensorFusionConnection is Running, and connects to the
// worker the answer names. Plain HTTP over a socket, written here because the stub must load
// into any application image: it may depend on nothing beyond libc.
//
//   auto w = resolveWorker(url, token, std::chrono::seconds(300));   // "tcp://10.1.2.3:8000"
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tf::remoting {

// TensorFusion's "native+<ip>+<port>+<worker>-<rv>" as our address "tcp://<ip>:<port>".
Result<std::string> workerAddressFromConnectionUrl(std::string_view connectionUrl);

struct HttpAnswer {
  int status = 0;
  std::string body;
};
// One GET of an http:// URL (no TLS, no redirects), with a bearer token when not empty.
Result<HttpAnswer> httpGet(const std::string& url, const std::string& token, std::chrono::milliseconds timeout);

// Asks until the connection is Running or `timeout` passes. A refusal (400, 401, 403, 404) ends
// at once with the operator's reason; an operator not answering yet (refused, 5xx, 504 from its
// own long-poll) is asked again.
Result<std::string> resolveWorker(const std::string& url, const std::string& token, std::chrono::milliseconds timeout);

// The pod's service-account token (TF_SERVICE_ACCOUNT_TOKEN_FILE, default the standard
// mount); empty when there is none.
std::string serviceAccountToken();

}  // namespace tf::remoting
