// The hypervisor's HTTP API (documented in docs/hypervisor-api.md):
//   GET  /healthz, /readyz
//   GET  /api/v1/devices
//   GET  /api/v1/vgpus            POST /api/v1/vgpus
//   GET  /api/v1/vgpus/{id}       DELETE /api/v1/vgpus/{id}
//   POST /api/v1/vgpus/{id}/snapshot[?to=disk]   POST /api/v1/vgpus/{id}/resume
//   POST /api/v1/vgpus/{id}/migrate {"device": UUID or index}
//   (/api/v1/workers is the same collection, under TensorFusion's name)
//   GET  /metrics                 Prometheus text format
// Errors are JSON {"error": "..."} with 400 (bad request), 404 (unknown), 409 (does not fit,
// or a vGPU without tiers snapshotted).
#include <httplib.h>

#include "hypervisor/hypervisor.h"

namespace tf::hypervisor {
namespace {

void json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(2) + "\n", "application/json");
}

void error(httplib::Response& res, int status, const std::string& message) {
  json(res, status, {{"error", message}});
}

int httpStatus(const Status& s) {
  switch (s.code()) {
  case Code::InvalidArgument:
  case Code::OutOfRange: return 400;
  case Code::NotFound: return 404;
  case Code::ResourceExhausted:
  case Code::AlreadyExists:
  case Code::FailedPrecondition: return 409;
  case Code::Unavailable: return 503;
  default: return 500;
  }
}

nlohmann::json vgpuWithUsage(Hypervisor& h, const Vgpu& v) {
  nlohmann::json j = toJson(v);
  VgpuUsage u = h.usage(v.id);
  j["usage"] = {{"vramUsed", u.vramUsed},
                {"hostUsed", u.hostUsed},
                {"computeShare", u.computeShare},
                {"computeAllowedPercent", u.allowedBp / 100.0},
                {"gpuSeconds", u.busyNs / 1e9},
                {"throttledSeconds", u.throttledNs / 1e9},
                {"launches", u.launches},
                {"pids", u.pids}};
  if (u.devices.size() > 1) {
    nlohmann::json per = nlohmann::json::array();
    for (const auto& d : u.devices)
      per.push_back({{"uuid", d.deviceUuid}, {"vramUsed", d.vramUsed}, {"computeShare", d.computeShare},
                     {"computeAllowedPercent", d.allowedBp / 100.0}, {"gpuSeconds", d.busyNs / 1e9},
                     {"launches", d.launches}});
    j["usage"]["devices"] = std::move(per);
  }
  if (u.tiers) j["usage"]["tiers"] = toJson(*u.tiers);
  return j;
}

} // namespace

void installRoutes(httplib::Server& server, Hypervisor& h) {
  server.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  server.Get("/readyz", [&h](const httplib::Request&, httplib::Response& res) {
    if (h.ready()) res.set_content("ready\n", "text/plain");
    else error(res, 503, "starting");
  });
  server.Get("/api/v1/devices", [&h](const httplib::Request&, httplib::Response& res) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& d : h.devices()) out.push_back(toJson(d));
    json(res, 200, {{"softGpu", h.softGpu()}, {"devices", out}});
  });
  for (const char* collection : {"/api/v1/vgpus", "/api/v1/workers"}) {
    std::string base = collection;
    server.Get(base, [&h](const httplib::Request&, httplib::Response& res) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& v : h.vgpus()) out.push_back(vgpuWithUsage(h, v));
      json(res, 200, {{"vgpus", out}});
    });
    server.Post(base, [&h](const httplib::Request& req, httplib::Response& res) {
      nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
      if (body.is_discarded()) return error(res, 400, "request body is not JSON");
      auto request = parseVgpuRequest(body);
      if (!request) return error(res, 400, request.status().message());
      auto v = h.createVgpu(*request);
      if (!v) return error(res, httpStatus(v.status()), v.status().message());
      json(res, 201, vgpuWithUsage(h, *v));
    });
    server.Get(base + R"(/([A-Za-z0-9_-]+))", [&h](const httplib::Request& req, httplib::Response& res) {
      auto v = h.vgpu(req.matches[1]);
      if (!v) return error(res, 404, "no vGPU " + std::string(req.matches[1]));
      json(res, 200, vgpuWithUsage(h, *v));
    });
    // TensorFusion's snapshot and resume: every client's memory off the device (?to=disk: to
    // disk), or back onto it ahead of its next call.
    server.Post(base + R"(/([A-Za-z0-9_-]+)/(snapshot|resume))", [&h](const httplib::Request& req, httplib::Response& res) {
      const bool snapshot = req.matches[2] == "snapshot";
      const std::string to = req.has_param("to") ? req.get_param_value("to") : "memory";
      if (snapshot && to != "memory" && to != "disk") return error(res, 400, "to: memory or disk, not " + to);
      auto moved = h.moveTiers(req.matches[1], !snapshot      ? remoting::TierAction::Thaw
                                              : to == "disk" ? remoting::TierAction::FreezeCold
                                                             : remoting::TierAction::Freeze);
      if (!moved) return error(res, httpStatus(moved.status()), moved.status().message());
      auto v = h.vgpu(req.matches[1]);
      if (!v) return error(res, 404, "no vGPU " + std::string(req.matches[1]));
      nlohmann::json out = vgpuWithUsage(h, *v);
      out["moved"] = *moved;
      json(res, 200, out);
    });
    // Migration: the vGPU and its running clients to another device of this node.
    server.Post(base + R"(/([A-Za-z0-9_-]+)/migrate)", [&h](const httplib::Request& req, httplib::Response& res) {
      nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
      if (body.is_discarded() || !body.is_object()) return error(res, 400, "request body is not a JSON object");
      if (!body.contains("device") || !body["device"].is_string() || body["device"].get<std::string>().empty())
        return error(res, 400, "device: the UUID or index of the device to move to");
      auto m = h.migrateVgpu(req.matches[1], body["device"].get<std::string>());
      if (!m) return error(res, httpStatus(m.status()), m.status().message());
      json(res, 200, {{"vgpu", m->vgpu}, {"from", m->from}, {"to", m->to}, {"clients", m->clients},
                      {"moved", m->moved}, {"bytes", m->bytes}, {"maxPauseMs", m->maxPauseNs / 1e6},
                      {"failures", m->failures}});
    });
    server.Delete(base + R"(/([A-Za-z0-9_-]+))", [&h](const httplib::Request& req, httplib::Response& res) {
      Status s = h.deleteVgpu(req.matches[1]);
      if (!s) return error(res, httpStatus(s), s.message());
      res.status = 204;
    });
  }
  server.Get("/metrics", [&h](const httplib::Request&, httplib::Response& res) {
    res.set_content(h.prometheusMetrics(), "text/plain; version=0.0.4");
  });
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty())
      error(res, res.status,
            res.status == 404   ? "no such endpoint"
            : res.status == 400 ? "bad request (a POST needs a Content-Length header, 0 with no body)"
                                : "request failed");
  });
}

} // namespace tf::hypervisor
