// A small in-memory apiserver for the webhook's unit tests (cpp-httplib, plain HTTP): objects
// by URL path; GET of an object or a collection (labelSelector k=v), POST (409
// AlreadyExists), PUT with resourceVersion (409 Conflict when stale), PATCH stores the body
// (server-side apply). The real apiserver's behaviour is covered by tests/cluster/e2e_webhook.py.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "k8s/config.h"

namespace tf::webhook::testing {

class FakeApiserver {
public:
  using json = nlohmann::json;

  FakeApiserver() {
    server_.Get(".*", [this](const httplib::Request& req, httplib::Response& res) { get(req, res); });
    server_.Post(".*", [this](const httplib::Request& req, httplib::Response& res) { write(req, res, "POST"); });
    server_.Put(".*", [this](const httplib::Request& req, httplib::Response& res) { write(req, res, "PUT"); });
    server_.Patch(".*", [this](const httplib::Request& req, httplib::Response& res) { write(req, res, "PATCH"); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeApiserver() {
    server_.stop();
    thread_.join();
  }
  k8s::Config config() const {
    k8s::Config c;
    c.server = "http://127.0.0.1:" + std::to_string(port_);
    return c;
  }
  void put(const std::string& path, json object) {
    std::lock_guard lock(mu_);
    object["metadata"]["resourceVersion"] = std::to_string(++rv_);
    objects_[path] = std::move(object);
  }
  json object(const std::string& path) {
    std::lock_guard lock(mu_);
    auto it = objects_.find(path);
    return it == objects_.end() ? json(nullptr) : it->second;
  }
  int writes(const std::string& method) {
    std::lock_guard lock(mu_);
    return writes_[method];
  }
  // The next PUT answers 409 Conflict (another writer was first).
  std::atomic<bool> conflictNextPut{false};
  // GETs of this path answer 500 (an apiserver in trouble).
  void failGets(const std::string& path) {
    std::lock_guard lock(mu_);
    failing_ = path;
  }

private:
  static json status(int code, const std::string& reason, const std::string& message) {
    return {{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"}, {"code", code}, {"reason", reason}, {"message", message}};
  }
  static bool matches(const json& o, const std::string& selector) {
    if (selector.empty()) return true;
    auto eq = selector.find('=');
    return o.value("/metadata/labels"_json_pointer, json::object()).value(selector.substr(0, eq), "") == selector.substr(eq + 1);
  }
  void get(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu_);
    if (req.path == failing_) {
      res.status = 500;
      res.set_content(status(500, "InternalError", "etcd is having a bad day").dump(), "application/json");
      return;
    }
    if (auto it = objects_.find(req.path); it != objects_.end()) {
      res.set_content(it->second.dump(), "application/json");
      return;
    }
    if (isObjectPath(req.path)) {
      res.status = 404;
      res.set_content(status(404, "NotFound", req.path + " not found").dump(), "application/json");
      return;
    }
    json items = json::array();
    const std::string selector = req.has_param("labelSelector") ? req.get_param_value("labelSelector") : "";
    for (const auto& [path, o] : objects_)
      if (path.rfind(req.path + "/", 0) == 0 && path.find('/', req.path.size() + 1) == std::string::npos &&
          matches(o, selector))
        items.push_back(o);
    res.set_content(json({{"kind", "List"}, {"apiVersion", "v1"}, {"metadata", {{"resourceVersion", std::to_string(rv_)}}}, {"items", items}}).dump(),
                    "application/json");
  }
  // /api/v1/namespaces/ns/secrets/name has an even number of segments past the version.
  static bool isObjectPath(const std::string& path) {
    size_t segments = 0;
    for (char c : path) segments += c == '/';
    const bool core = path.rfind("/api/", 0) == 0;
    const size_t base = core ? 2 : 3;  // /api/v1 or /apis/group/v1
    const size_t rest = segments - base;
    return path.find("/namespaces/") != std::string::npos ? rest == 4 : rest == 2;
  }
  void write(const httplib::Request& req, httplib::Response& res, const std::string& method) {
    json body = json::parse(req.body, nullptr, false);
    std::lock_guard lock(mu_);
    ++writes_[method];
    std::string path = req.path;
    if (method == "POST") path += "/" + body["metadata"]["name"].get<std::string>();
    auto it = objects_.find(path);
    if (method == "POST" && it != objects_.end()) {
      res.status = 409;
      res.set_content(status(409, "AlreadyExists", path + " already exists").dump(), "application/json");
      return;
    }
    if (method == "PUT") {
      if (it == objects_.end()) {
        res.status = 404;
        res.set_content(status(404, "NotFound", path).dump(), "application/json");
        return;
      }
      if (conflictNextPut.exchange(false) ||
          body.value("/metadata/resourceVersion"_json_pointer, std::string()) != it->second["metadata"]["resourceVersion"]) {
        res.status = 409;
        res.set_content(status(409, "Conflict", "the object has been modified").dump(), "application/json");
        return;
      }
    }
    body["metadata"]["resourceVersion"] = std::to_string(++rv_);
    objects_[path] = body;
    res.status = method == "POST" ? 201 : 200;
    res.set_content(body.dump(), "application/json");
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::map<std::string, json> objects_;
  std::map<std::string, int> writes_;
  long rv_ = 0;
  std::string failing_;
};

}  // namespace tf::webhook::testing
