// The client's HTTP side against a local HTTP server (cpp-httplib) that plays apiserver
// answers byte for byte: auth headers and token rotation, Status errors, pagination, patch
// content types, watch streams (chunked, in-band and HTTP 410), cancellation, rate limits.
// TLS and the real apiserver's behaviour are covered by the cluster tests.
#include <filesystem>
#include <fstream>
#include <thread>

#include <httplib.h>
#include <gtest/gtest.h>

#include "k8s/builtin.h"
#include "k8s/client.h"
#include "k8s/stop_signal.h"

namespace tf::k8s {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

const ResourceRef kGpus{"tensor-fusion.ai", "v1", "gpus", "GPU", false};

class FakeApiserver {
public:
  httplib::Server server;
  std::mutex mu;
  std::vector<std::string> seen;  // "METHOD path?query | content-type | authorization"
  std::atomic<bool> closing{false};

  void start() {
    port_ = server.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server.listen_after_bind(); });
    while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeApiserver() {
    closing = true;
    server.stop();
    if (thread_.joinable()) thread_.join();
  }
  Config config() const {
    Config c;
    c.server = "http://127.0.0.1:" + std::to_string(port_);
    return c;
  }
  void record(const httplib::Request& req) {
    std::string query;
    for (const auto& [k, v] : req.params) query += (query.empty() ? "?" : "&") + k + "=" + v;
    std::lock_guard<std::mutex> l(mu);
    seen.push_back(req.method + " " + req.path + query + " | " + req.get_header_value("Content-Type") + " | " +
                   req.get_header_value("Authorization"));
  }
  std::string last() {
    std::lock_guard<std::mutex> l(mu);
    return seen.empty() ? "" : seen.back();
  }

private:
  int port_ = 0;
  std::thread thread_;
};

std::string status(int code, const std::string& reason, const std::string& msg) {
  return json{{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"},
              {"reason", reason}, {"message", msg}, {"code", code}}.dump();
}

TEST(ClientHttpTest, TokenFileIsReReadWhenItRotates) {
  FakeApiserver api;
  api.server.Get(R"(/api/v1/nodes/(.*))", [&](const httplib::Request& req, httplib::Response& res) {
    api.record(req);
    res.set_content(R"({"kind":"Node","metadata":{"name":"n"}})", "application/json");
  });
  api.start();
  std::string dir = std::filesystem::temp_directory_path() / ("k8s-token-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/token") << "first\n";
  Config cfg = api.config();
  cfg.tokenFile = dir + "/token";
  auto client = Client::create(cfg);
  ASSERT_TRUE(client);
  ASSERT_TRUE((*client)->get(builtin::kNodes, "", "n"));
  EXPECT_NE(api.last().find("Bearer first"), std::string::npos) << api.last();
  // kubelet's way: a new file swapped in.
  std::ofstream(dir + "/token.new") << "second\n";
  std::filesystem::rename(dir + "/token.new", dir + "/token");
  ASSERT_TRUE((*client)->get(builtin::kNodes, "", "n"));
  EXPECT_NE(api.last().find("Bearer second"), std::string::npos) << api.last();
  std::filesystem::remove_all(dir);
  auto gone = (*client)->get(builtin::kNodes, "", "n");
  ASSERT_FALSE(gone);
  EXPECT_TRUE(gone.error().isTransport());
  EXPECT_NE(gone.error().message.find("token file"), std::string::npos);
}

TEST(ClientHttpTest, ErrorsCarryTheApiserverStatus) {
  FakeApiserver api;
  api.server.Get(R"(/apis/tensor-fusion.ai/v1/gpus/missing)", [](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content(status(404, "NotFound", "gpus.tensor-fusion.ai \"missing\" not found"), "application/json");
  });
  api.server.Put(R"(/apis/tensor-fusion.ai/v1/gpus/g)", [](const httplib::Request&, httplib::Response& res) {
    res.status = 409;
    res.set_content(status(409, "Conflict", "the object has been modified"), "application/json");
  });
  api.server.Post(R"(/apis/tensor-fusion.ai/v1/gpus)", [](const httplib::Request& req, httplib::Response& res) {
    res.status = 422;
    res.set_content(status(422, "Invalid", "GPU \"g\" is invalid: spec.x: Required value"), "application/json");
  });
  api.server.Get(R"(/api/v1/nodes/garbage)", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("not json", "text/plain");
  });
  api.start();
  auto client = *Client::create(api.config());
  auto nf = client->get(kGpus, "", "missing");
  ASSERT_FALSE(nf);
  EXPECT_TRUE(nf.error().isNotFound());
  EXPECT_EQ(nf.error().reason, "NotFound");
  EXPECT_NE(nf.error().message.find("\"missing\" not found"), std::string::npos);
  auto conflict = client->update(kGpus, {{"metadata", {{"name", "g"}, {"resourceVersion", "1"}}}});
  ASSERT_FALSE(conflict);
  EXPECT_TRUE(conflict.error().isConflict());
  auto invalid = client->create(kGpus, {{"metadata", {{"name", "g"}}}});
  ASSERT_FALSE(invalid);
  EXPECT_TRUE(invalid.error().isInvalid());
  auto garbage = client->get(builtin::kNodes, "", "garbage");
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().reason, "Decode");
  auto noName = client->update(kGpus, json::object());
  ASSERT_FALSE(noName);
  EXPECT_NE(noName.error().message.find("metadata.name"), std::string::npos);
  // Nobody listening: a transport error, not a crash or a hang.
  Config dead;
  dead.server = "http://127.0.0.1:1";
  auto refused = (*Client::create(dead))->get(kGpus, "", "x");
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().isTransport());
  EXPECT_FALSE(Client::create(Config{}));  // no server URL
}

TEST(ClientHttpTest, ListFollowsContinueTokensAndEscapesSelectors) {
  FakeApiserver api;
  api.server.Get(R"(/api/v1/namespaces/ns/pods)", [&](const httplib::Request& req, httplib::Response& res) {
    api.record(req);
    std::string cont = req.get_param_value("continue");
    int page = cont.empty() ? 0 : std::stoi(cont);
    json body = {{"kind", "PodList"}, {"metadata", {{"resourceVersion", std::to_string(500 + page)}}}};
    body["items"] = json::array();
    for (int i = 0; i < 2; ++i) body["items"].push_back({{"metadata", {{"name", "p" + std::to_string(page * 2 + i)}}}});
    if (page < 2) body["metadata"]["continue"] = std::to_string(page + 1);
    res.set_content(body.dump(), "application/json");
  });
  api.start();
  auto client = *Client::create(api.config());
  ListOptions o;
  o.limit = 2;
  o.labelSelector = "app=x,tier!=db";
  auto all = client->listAll(builtin::kPods, "ns", o);
  ASSERT_TRUE(all) << all.error().toString();
  ASSERT_EQ(all->items.size(), 6u);
  EXPECT_EQ(all->items[5]["metadata"]["name"], "p5");
  EXPECT_EQ(all->items[0]["kind"], "Pod");  // items stand alone
  EXPECT_EQ(all->resourceVersion, "500");   // the first page's snapshot
  std::lock_guard<std::mutex> l(api.mu);
  ASSERT_EQ(api.seen.size(), 3u);
  EXPECT_NE(api.seen[0].find("labelSelector=app=x,tier!=db"), std::string::npos) << api.seen[0];
  EXPECT_NE(api.seen[2].find("continue=2"), std::string::npos);
}

TEST(ClientHttpTest, PatchTypesAndDeleteOptions) {
  FakeApiserver api;
  json lastBody;
  auto echo = [&](const httplib::Request& req, httplib::Response& res) {
    api.record(req);
    lastBody = json::parse(req.body);
    res.set_content(R"({"kind":"Pod"})", "application/json");
  };
  api.server.Patch(R"(/api/v1/namespaces/ns/pods/p(/status)?)", echo);
  api.server.Delete(R"(/api/v1/namespaces/ns/pods/p)", echo);
  api.server.Post(R"(/api/v1/namespaces/ns/pods/p/binding)", echo);
  api.start();
  auto client = *Client::create(api.config());
  ASSERT_TRUE(client->patch(builtin::kPods, "ns", "p", PatchType::Merge, {{"metadata", {{"labels", {{"a", "b"}}}}}}));
  EXPECT_NE(api.last().find("application/merge-patch+json"), std::string::npos);
  ASSERT_TRUE(client->patch(builtin::kPods, "ns", "p", PatchType::Json,
                            json::array({{{"op", "add"}, {"path", "/metadata/labels/x"}, {"value", "y"}}})));
  EXPECT_NE(api.last().find("application/json-patch+json"), std::string::npos);
  EXPECT_FALSE(client->patch(builtin::kPods, "ns", "p", PatchType::Json, json::object()));  // not an array
  ASSERT_TRUE(client->patch(builtin::kPods, "ns", "p", PatchType::StrategicMerge, {{"spec", json::object()}}));
  EXPECT_NE(api.last().find("application/strategic-merge-patch+json"), std::string::npos);
  ASSERT_TRUE(client->apply(builtin::kPods, {{"metadata", {{"name", "p"}, {"namespace", "ns"}}}}, "tf", true, "status"));
  EXPECT_NE(api.last().find("PATCH /api/v1/namespaces/ns/pods/p/status?fieldManager=tf&force=true | application/apply-patch+yaml"),
            std::string::npos) << api.last();
  EXPECT_EQ(lastBody["kind"], "Pod");
  EXPECT_EQ(lastBody["apiVersion"], "v1");
  EXPECT_FALSE(client->apply(builtin::kPods, {{"metadata", {{"name", "p"}}}}, ""));  // no field manager
  DeleteOptions d;
  d.propagationPolicy = "Foreground";
  d.preconditionUid = "u-1";
  d.preconditionResourceVersion = "7";
  ASSERT_TRUE(client->remove(builtin::kPods, "ns", "p", d));
  EXPECT_EQ(lastBody["propagationPolicy"], "Foreground");
  EXPECT_EQ(lastBody["preconditions"]["uid"], "u-1");
  EXPECT_EQ(lastBody["preconditions"]["resourceVersion"], "7");
  ASSERT_TRUE(client->createSubresource(builtin::kPods, "ns", "p", "binding",
                                        {{"kind", "Binding"}, {"target", {{"kind", "Node"}, {"name", "n1"}}}}));
  EXPECT_EQ(lastBody["target"]["name"], "n1");
}

TEST(ClientHttpTest, WatchStreamsChunksAndEndsOnInBandGone) {
  FakeApiserver api;
  std::string stream =
      R"({"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"5"}}})" "\n"
      R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}})" "\n"
      R"({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old"}})" "\n";
  api.server.Get(R"(/apis/tensor-fusion.ai/v1/gpus)", [&](const httplib::Request& req, httplib::Response& res) {
    api.record(req);
    if (req.get_param_value("resourceVersion") == "1") {  // long gone: HTTP 410
      res.status = 410;
      res.set_content(status(410, "Gone", "too old resource version: 1"), "application/json");
      return;
    }
    auto pos = std::make_shared<size_t>(0);
    res.set_chunked_content_provider("application/json", [stream, pos](size_t, httplib::DataSink& sink) {
      if (*pos >= stream.size()) {
        sink.done();
        return true;
      }
      size_t n = std::min<size_t>(13, stream.size() - *pos);  // events split across chunks
      sink.write(stream.data() + *pos, n);
      *pos += n;
      return true;
    });
  });
  api.start();
  auto client = *Client::create(api.config());
  std::vector<std::string> got;
  WatchOptions o;
  o.resourceVersion = "4";
  o.timeoutSeconds = 60;
  auto st = client->watch(kGpus, "", o, [&](const WatchEvent& ev) {
    got.push_back(std::string(watchEventTypeName(ev.type)) + " " + ev.resourceVersion());
    return true;
  });
  ASSERT_FALSE(st);
  EXPECT_TRUE(st.error().isGone()) << st.error().toString();
  EXPECT_EQ(got, (std::vector<std::string>{"ADDED 5", "BOOKMARK 9"}));
  EXPECT_NE(api.last().find("allowWatchBookmarks=true"), std::string::npos) << api.last();
  EXPECT_NE(api.last().find("timeoutSeconds=60"), std::string::npos);
  EXPECT_NE(api.last().find("watch=1"), std::string::npos);
  o.resourceVersion = "1";
  auto http410 = client->watch(kGpus, "", o, [&](const WatchEvent&) { return true; });
  ASSERT_FALSE(http410);
  EXPECT_TRUE(http410.error().isGone());
  EXPECT_EQ(http410.error().reason, "Gone");
}

TEST(ClientHttpTest, StopEndsAQuietWatchAtOnce) {
  FakeApiserver api;
  api.server.Get(R"(/api/v1/pods)", [&](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/json", [&](size_t, httplib::DataSink& sink) {
      std::this_thread::sleep_for(milliseconds(20));  // a watch with nothing to say
      return !api.closing.load() && sink.is_writable();
    });
  });
  api.start();
  auto client = *Client::create(api.config());
  StopSignal stop;
  std::atomic<bool> returned{false};
  std::chrono::steady_clock::time_point stoppedAt;
  std::thread watcher([&] {
    auto st = client->watch(builtin::kPods, "", {}, [](const WatchEvent&) { return true; }, &stop);
    EXPECT_TRUE(st) << st.error().toString();
    returned = true;
  });
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_FALSE(returned.load());
  stoppedAt = std::chrono::steady_clock::now();
  stop.stop();
  watcher.join();
  // curl's poll is woken, not left to its 1 s tick or the 300 s watch timeout; generous bound
  // for a busy machine.
  EXPECT_LT(std::chrono::steady_clock::now() - stoppedAt, milliseconds(900));
}

TEST(ClientHttpTest, RateLimitIsSharedByTheClient) {
  FakeApiserver api;
  api.server.Get(R"(/api/v1/nodes/n)", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"kind":"Node"})", "application/json");
  });
  api.start();
  ClientOptions o;
  o.qps = 20;
  o.burst = 2;
  auto client = *Client::create(api.config(), o);
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 4; ++i) ASSERT_TRUE(client->get(builtin::kNodes, "", "n"));
    });
  for (auto& t : threads) t.join();
  // 8 requests, 2 free, 6 more at 20/s: at least 300 ms whatever the machine's load.
  EXPECT_GE(std::chrono::steady_clock::now() - t0, milliseconds(290));
}

}  // namespace
}  // namespace tf::k8s
