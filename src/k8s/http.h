// HTTP(S) to the apiserver over libcurl: TLS from the Config (CA, client certificate,
// verification on unless the kubeconfig turns it off), bearer token (re-read from tokenFile
// when the file changes), pooled connections, and streaming with clean cancellation.
// Internal to the client; callers use Client.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "k8s/api_error.h"
#include "k8s/config.h"

namespace tf::k8s {

class StopSignal;

struct HttpRequest {
  std::string method = "GET";
  std::string path;  // "/api/v1/pods?limit=10", appended to the server URL
  std::string body;
  std::string contentType = "application/json";
};

struct HttpResponse {
  int code = 0;
  std::string body;
};

class HttpClient {
public:
  static Result<std::unique_ptr<HttpClient>> create(const Config& config, long timeoutMs);
  ~HttpClient();

  // Any HTTP answer comes back as a response; only a failure to get one is an ApiError.
  ApiResult<HttpResponse> send(const HttpRequest& request);

  // Sends the request and feeds a 2xx body to `onData` as it arrives (no total timeout). A
  // non-2xx answer is returned whole in the response instead. Ends when the server closes,
  // `onData` returns false, or `stop` is set (stop wakes the transfer at once).
  ApiResult<HttpResponse> stream(const HttpRequest& request,
                                 const std::function<bool(std::string_view)>& onData,
                                 StopSignal* stop);

  const Config& config() const { return config_; }

private:
  explicit HttpClient(Config config, long timeoutMs);
  void* acquireHandle();
  void releaseHandle(void* handle);
  // Sets URL, TLS, auth and headers on `handle`; the header list is returned for freeing.
  Result<void*> prepare(void* handle, const HttpRequest& request, bool streaming);
  Result<std::string> bearerToken();

  Config config_;
  long timeoutMs_;
  std::mutex mu_;
  std::vector<void*> idle_;  // CURL* easy handles keeping their connections
  // tokenFile cache: content and the file identity it was read at.
  std::string fileToken_;
  long long fileStamp_ = -1;
};

}  // namespace tf::k8s
