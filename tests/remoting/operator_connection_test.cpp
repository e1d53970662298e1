// The stub's question to the operator (operator_connection.h), against a real HTTP server on
// loopback that answers as the controller's /api/connection does.
#include "remoting/operator_connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>

namespace tf::remoting {
namespace {

using namespace std::chrono_literals;

TEST(ConnectionUrl, NativeUrlsBecomeTcpAddresses) {
  EXPECT_EQ(*workerAddressFromConnectionUrl("native+10.1.2.3+8000+w-tf-vgpu-abc-1234"), "tcp://10.1.2.3:8000");
  EXPECT_EQ(*workerAddressFromConnectionUrl("native+fd00::5+8000+w-1"), "tcp://[fd00::5]:8000");
  for (const char* bad : {"", "native+", "native++8000+w", "native+10.0.0.1+port+w", "shmem+tf_shm+1024+1",
                          "native+10.0.0.1", "native+10.0.0.1++w", "native+10.0.0.1+123456+w"}) {
    auto r = workerAddressFromConnectionUrl(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.status().code(), Code::InvalidArgument) << bad;
    }
  }
}

// A server on a free loopback port, stopped with the test.
class Operator : public ::testing::Test {
protected:
  void SetUp() override {
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
  }
  void serve() { thread_ = std::thread([this] { server_.listen_after_bind(); }); }
  void TearDown() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::string url(const std::string& path = "/api/connection?name=c&namespace=ns") {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

TEST_F(Operator, WaitsThroughPendingAnswersAndSendsTheToken) {
  std::atomic<int> calls{0};
  std::string seenAuth, seenTimeout;
  server_.Get("/api/connection", [&](const httplib::Request& req, httplib::Response& res) {
    seenAuth = req.get_header_value("Authorization");
    seenTimeout = req.get_param_value("timeout");
    if (++calls < 3) {
      res.status = 504;
      res.set_content(R"({"error":"connection ns/c is Pending after 1s"})", "application/json");
      return;
    }
    res.set_content(R"({"connectionURL":"native+10.9.8.7+8000+c-42","workerName":"c","phase":"Running"})",
                    "application/json");
  });
  serve();
  auto w = resolveWorker(url(), "tok123", 10s);
  ASSERT_TRUE(w) << w.status().toString();
  EXPECT_EQ(*w, "tcp://10.9.8.7:8000");
  EXPECT_EQ(calls.load(), 3);
  EXPECT_EQ(seenAuth, "Bearer tok123");
  EXPECT_FALSE(seenTimeout.empty());  // the operator is told how long to hold the request
  EXPECT_LE(std::stol(seenTimeout), 10);
}

TEST_F(Operator, ARefusalEndsAtOnceWithTheOperatorsReason) {
  std::atomic<int> calls{0};
  server_.Get("/api/connection", [&](const httplib::Request&, httplib::Response& res) {
    ++calls;
    res.status = 403;
    res.set_content(R"({"error":"a service account of namespace a may not read connections of ns"})", "application/json");
  });
  serve();
  const auto t0 = std::chrono::steady_clock::now();
  auto w = resolveWorker(url(), "tok", 30s);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.status().code(), Code::PermissionDenied);
  EXPECT_NE(w.status().message().find("may not read connections of ns"), std::string::npos) << w.status().message();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);
}

TEST_F(Operator, AnAnswerWithoutAUrlIsDataLoss) {
  server_.Get("/api/connection", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"phase\":\"Running\"}", "application/json");
  });
  serve();
  auto w = resolveWorker(url(), "", 5s);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.status().code(), Code::DataLoss);
}

TEST_F(Operator, ChunkedAnswersAreRead) {
  server_.Get("/chunked", [](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("application/json", [](size_t offset, httplib::DataSink& sink) {
      if (offset == 0) {
        const std::string a = R"({"connectionURL":)", b = R"("native+1.2.3.4+9+w-1"})";
        sink.write(a.data(), a.size());
        sink.write(b.data(), b.size());
      }
      sink.done();
      return true;
    });
  });
  serve();
  auto a = httpGet(url("/chunked"), "", 5s);
  ASSERT_TRUE(a) << a.status().toString();
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->body, R"({"connectionURL":"native+1.2.3.4+9+w-1"})");
}

TEST(OperatorDown, NobodyListeningFailsWhenTheTimeIsUpNamingWhy) {
  // A port bound without listen(): every connection is refused, and asked again until the end.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/api/connection?name=c&namespace=ns";
  const auto t0 = std::chrono::steady_clock::now();
  auto w = resolveWorker(url, "", 2s);
  close(fd);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.status().code(), Code::Unavailable);
  EXPECT_NE(w.status().message().find("no worker within 2s"), std::string::npos) << w.status().message();
  EXPECT_NE(w.status().message().find("refused"), std::string::npos) << w.status().message();
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 2s);
}

TEST(OperatorUrl, MalformedUrlsAreRefused) {
  for (const char* bad : {"https://op:8080/api", "op:8080/api", "http://:80/x", "http://op:port/x"}) {
    auto a = httpGet(bad, "", 1s);
    ASSERT_FALSE(a) << bad;
    EXPECT_EQ(a.status().code(), Code::InvalidArgument) << bad;
  }
}

TEST(ServiceAccountToken, ReadFromTheFileTrimmed) {
  const std::string path = ::testing::TempDir() + "/sa-token";
  std::ofstream(path) << "eyJtoken\n";
  setenv("TF_SERVICE_ACCOUNT_TOKEN_FILE", path.c_str(), 1);
  EXPECT_EQ(serviceAccountToken(), "eyJtoken");
  setenv("TF_SERVICE_ACCOUNT_TOKEN_FILE", "/nonexistent/token", 1);
  EXPECT_EQ(serviceAccountToken(), "");
  unsetenv("TF_SERVICE_ACCOUNT_TOKEN_FILE");
}

}  // namespace
}  // namespace tf::remoting
