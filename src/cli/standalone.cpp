#include "cli/standalone.h"

#include <csignal>
#include <fstream>
#include <limits.h>
#include <unistd.h>

#include <httplib.h>

#include "common/env.h"

namespace tf::cli {

std::string defaultStateDir() {
  if (auto home = env::get("TF_HOME")) return *home;
  return "/tmp/tensor-fusion-" + std::to_string(getuid());
}

std::string libraryDir() {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return "lib";
  std::string dir(exe, static_cast<size_t>(n));
  return dir.substr(0, dir.rfind('/')) + "/../lib";
}

Result<HypervisorInfo> findHypervisor(const std::string& stateDir) {
  HypervisorInfo info;
  if (auto addr = env::get("TF_HYPERVISOR")) {
    auto colon = addr->rfind(':');
    if (colon == std::string::npos) return invalidArgument("TF_HYPERVISOR must be host:port");
    info.host = addr->substr(0, colon);
    info.port = atoi(addr->c_str() + colon + 1);
  } else {
    std::ifstream in(stateDir + "/hypervisor.json");
    if (!in)
      return unavailable("no hypervisor is running (start one with `tensor-fusion up`; looked in " +
                         stateDir + ")");
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.contains("address"))
      return unavailable(stateDir + "/hypervisor.json is unreadable; run `tensor-fusion up` again");
    std::string address = j["address"].get<std::string>();
    info.host = address.substr(0, address.rfind(':'));
    info.port = atoi(address.c_str() + address.rfind(':') + 1);
    info.pid = j.value("pid", 0);
    info.softGpu = j.value("softGpu", false);
    if (info.pid > 0 && kill(info.pid, 0) != 0)
      return unavailable("the hypervisor (pid " + std::to_string(info.pid) +
                         ") is not running any more; start it with `tensor-fusion up`");
  }
  return info;
}

Result<HttpReply> http(const HypervisorInfo& h, const std::string& method, const std::string& path,
                       const nlohmann::json* body) {
  httplib::Client client(h.host, h.port);
  client.set_connection_timeout(5);
  client.set_read_timeout(30);
  std::string payload = body ? body->dump() : "";
  if (method != "GET" && method != "POST" && method != "DELETE")
    return invalidArgument("unsupported method " + method);
  httplib::Result r = method == "GET"    ? client.Get(path.c_str())
                      : method == "POST" ? client.Post(path.c_str(), payload, "application/json")
                                         : client.Delete(path.c_str());
  if (!r)
    return unavailable("cannot reach the hypervisor at " + h.host + ":" + std::to_string(h.port) +
                       " (" + httplib::to_string(r.error()) + ")");
  HttpReply reply;
  reply.status = r->status;
  if (!r->body.empty()) reply.body = nlohmann::json::parse(r->body, nullptr, false);
  return reply;
}

} // namespace tf::cli
