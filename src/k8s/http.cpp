#include "k8s/http.h"

#include <sys/stat.h>

#include <fstream>
#include <mutex>
#include <sstream>

#include <curl/curl.h>

#include "k8s/stop_signal.h"

namespace tf::k8s {
namespace {

void globalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t appendBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

struct HeaderList {
  curl_slist* list = nullptr;
  ~HeaderList() { curl_slist_free_all(list); }
  void add(const std::string& h) { list = curl_slist_append(list, h.c_str()); }
};

std::string trim(std::string s) {
  while (!s.empty() && isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

}  // namespace

Result<std::unique_ptr<HttpClient>> HttpClient::create(const Config& config, long timeoutMs) {
  if (config.server.rfind("https://", 0) != 0 && config.server.rfind("http://", 0) != 0)
    return invalidArgument("server \"" + config.server + "\" is not an http(s) URL");
  globalInit();
  return std::unique_ptr<HttpClient>(new HttpClient(config, timeoutMs));
}

HttpClient::HttpClient(Config config, long timeoutMs) : config_(std::move(config)), timeoutMs_(timeoutMs) {}

HttpClient::~HttpClient() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void* HttpClient::acquireHandle() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void HttpClient::releaseHandle(void* handle) {
  curl_easy_reset(static_cast<CURL*>(handle));  // keeps the live connection and TLS session
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < 16) {
    idle_.push_back(handle);
    return;
  }
  curl_easy_cleanup(static_cast<CURL*>(handle));
}

Result<std::string> HttpClient::bearerToken() {
  if (config_.tokenFile.empty()) return config_.token;
  // Service-account tokens rotate (kubelet swaps a symlink); stat follows it, so a new
  // file shows as a new inode, size or mtime, and we read it again.
  struct stat st{};
  if (stat(config_.tokenFile.c_str(), &st) != 0) return unavailable("token file " + config_.tokenFile + " is gone");
  long long stamp = static_cast<long long>(st.st_ino) * 1000003LL ^ st.st_size ^
                    (static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec);
  std::lock_guard<std::mutex> lock(mu_);
  if (stamp != fileStamp_) {
    std::ifstream in(config_.tokenFile);
    if (!in) return unavailable("cannot read token file " + config_.tokenFile);
    std::ostringstream ss;
    ss << in.rdbuf();
    fileToken_ = trim(ss.str());
    fileStamp_ = stamp;
  }
  return fileToken_;
}

Result<void*> HttpClient::prepare(void* handle, const HttpRequest& req, bool streaming) {
  CURL* h = static_cast<CURL*>(handle);
  std::string url = config_.server + req.path;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());  // curl copies strings it is given
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  if (!streaming) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeoutMs_);
  if (req.method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    if (!req.body.empty() || req.method != "DELETE") {
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
      curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, req.body.c_str());
    }
  }
  // TLS: verified unless the kubeconfig says otherwise; the CA and client pair from memory.
  if (config_.insecureSkipTlsVerify) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!config_.caPem.empty()) {
    curl_blob ca{const_cast<char*>(config_.caPem.data()), config_.caPem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca);
  }
  if (!config_.clientCertPem.empty()) {
    curl_blob cert{const_cast<char*>(config_.clientCertPem.data()), config_.clientCertPem.size(), CURL_BLOB_COPY};
    curl_blob key{const_cast<char*>(config_.clientKeyPem.data()), config_.clientKeyPem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &key);
  }
  if (!config_.username.empty()) {
    curl_easy_setopt(h, CURLOPT_USERNAME, config_.username.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, config_.password.c_str());
  }
  auto* headers = new HeaderList;
  headers->add("Accept: application/json");
  headers->add("User-Agent: tensor-fusion-k8s/0.1");
  if (!req.body.empty()) headers->add("Content-Type: " + req.contentType);
  auto token = bearerToken();
  if (!token) {
    delete headers;
    return token.status();
  }
  if (!token->empty()) headers->add("Authorization: Bearer " + *token);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers->list);
  return static_cast<void*>(headers);
}

ApiResult<HttpResponse> HttpClient::send(const HttpRequest& req) {
  CURL* h = static_cast<CURL*>(acquireHandle());
  if (!h) return ApiError::transport("curl_easy_init failed");
  auto headers = prepare(h, req, false);
  if (!headers) {
    releaseHandle(h);
    return ApiError::transport(headers.status().message());
  }
  std::unique_ptr<HeaderList> owned(static_cast<HeaderList*>(*headers));
  HttpResponse resp;
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, appendBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp.body);
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(h);
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  releaseHandle(h);
  if (rc != CURLE_OK)
    return ApiError::transport(req.method + " " + config_.server + req.path + ": " +
                               (errbuf[0] ? errbuf : curl_easy_strerror(rc)));
  resp.code = static_cast<int>(code);
  return resp;
}

namespace {
struct StreamState {
  CURL* handle = nullptr;
  const std::function<bool(std::string_view)>* onData = nullptr;
  HttpResponse* resp = nullptr;
  bool consumerStopped = false;
};

size_t streamWrite(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<StreamState*>(user);
  long code = 0;
  curl_easy_getinfo(s->handle, CURLINFO_RESPONSE_CODE, &code);
  if (code >= 300 || code < 200) {  // an error answer: keep it whole for ApiError
    s->resp->body.append(data, size * n);
    return size * n;
  }
  if (!(*s->onData)(std::string_view(data, size * n))) {
    s->consumerStopped = true;
    return 0;  // aborts the transfer
  }
  return size * n;
}
}  // namespace

ApiResult<HttpResponse> HttpClient::stream(const HttpRequest& req,
                                           const std::function<bool(std::string_view)>& onData,
                                           StopSignal* stop) {
  // Its own easy handle and multi handle: curl_multi_poll can be woken from stop().
  CURL* h = curl_easy_init();
  CURLM* multi = curl_multi_init();
  if (!h || !multi) {
    if (h) curl_easy_cleanup(h);
    if (multi) curl_multi_cleanup(multi);
    return ApiError::transport("curl init failed");
  }
  auto headers = prepare(h, req, true);
  if (!headers) {
    curl_easy_cleanup(h);
    curl_multi_cleanup(multi);
    return ApiError::transport(headers.status().message());
  }
  std::unique_ptr<HeaderList> owned(static_cast<HeaderList*>(*headers));
  HttpResponse resp;
  StreamState state{h, &onData, &resp};
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, streamWrite);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &state);
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_multi_add_handle(multi, h);
  int waker = stop ? stop->addWaker([multi] { curl_multi_wakeup(multi); }) : 0;

  CURLcode result = CURLE_OK;
  int running = 1;
  while (running && !(stop && stop->stopped())) {
    CURLMcode mc = curl_multi_perform(multi, &running);
    if (mc != CURLM_OK) {
      result = CURLE_RECV_ERROR;
      break;
    }
    if (running) curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
  }
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi, &left))
    if (msg->msg == CURLMSG_DONE) result = msg->data.result;
  bool stopped = stop && stop->stopped();
  if (stop) stop->removeWaker(waker);
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  curl_multi_remove_handle(multi, h);
  curl_easy_cleanup(h);
  curl_multi_cleanup(multi);
  resp.code = static_cast<int>(code);
  if (stopped || state.consumerStopped) return resp;
  if (result != CURLE_OK)
    return ApiError::transport(req.method + " " + config_.server + req.path + ": " +
                               (errbuf[0] ? errbuf : curl_easy_strerror(result)));
  return resp;
}

}  // namespace tf::k8s
