// `tensor-fusion vgpu create|show|delete`: grants a vGPU by creating its quota region (the
// hypervisor will do this itself later) and shows its live usage.
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "common/env.h"
#include "common/units.h"
#include "limiter/quota_region.h"
#include "softgpu/device_model.h"

namespace tf::cli {
namespace {

std::string regionPath(const std::string& dir, const std::string& name) {
  return dir + "/tf-vgpu-" + name;
}

struct CreateOptions {
  std::string name, vram, compute = "100%", tflops, hostAllowance = "0", dir, model;
  int devices = 1;
  unsigned windowMs = 50;
};

int runCreate(const CreateOptions& o) {
  auto vram = units::parseBytes(o.vram);
  if (!vram) {
    fprintf(stderr, "tensor-fusion vgpu create: --vram: %s\n", vram.status().message().c_str());
    return 2;
  }
  auto host = units::parseBytes(o.hostAllowance);
  if (!host) {
    fprintf(stderr, "tensor-fusion vgpu create: --host-allowance: %s\n", host.status().message().c_str());
    return 2;
  }
  const softgpu::DeviceModel* model = softgpu::findModel(o.model);
  double rating = model ? model->fp16Tflops : 0;
  auto bp = o.tflops.empty() ? limiter::parseComputeLimit(o.compute, rating)
                             : limiter::parseComputeLimit(o.tflops + "tflops", rating);
  if (!bp) {
    fprintf(stderr, "tensor-fusion vgpu create: %s\n", bp.status().message().c_str());
    return 2;
  }
  limiter::VgpuSpec spec;
  spec.name = o.name;
  spec.windowNs = uint64_t(o.windowMs) * 1'000'000;
  for (int i = 0; i < o.devices; ++i) {
    limiter::DeviceLimits d;
    d.vramLimit = *vram;
    d.hostAllowance = *host;
    d.computeBasisPoints = *bp;
    d.fp16Tflops = rating;
    spec.devices.push_back(d);
  }
  const std::string path = regionPath(o.dir, o.name);
  auto region = limiter::QuotaRegion::create(path, spec);
  if (!region) {
    fprintf(stderr, "tensor-fusion vgpu create: %s\n", region.status().message().c_str());
    return 1;
  }
  printf("%s\n", path.c_str());
  return 0;
}

int runShow(const std::string& dir, const std::string& name) {
  auto region = limiter::QuotaRegion::open(regionPath(dir, name));
  if (!region) {
    fprintf(stderr, "tensor-fusion vgpu show: %s\n", region.status().message().c_str());
    return 1;
  }
  auto& r = **region;
  auto procs = r.processes();
  printf("vGPU %s (%s), %zu process(es), compute window %llu ms\n", r.name().c_str(), r.path().c_str(),
         procs.size(), static_cast<unsigned long long>(r.windowNs() / 1'000'000));
  for (int d = 0; d < r.deviceCount(); ++d) {
    auto lim = r.limits(d);
    auto u = r.usage(d);
    printf("  device %d: VRAM %s / %s, host spill %s / %s, compute limit %.1f%%, GPU time %.3f s, "
           "throttled %.3f s, launches %llu\n",
           d, units::formatBytes(u.vramUsed).c_str(), units::formatBytes(lim.vramLimit).c_str(),
           units::formatBytes(u.hostUsed).c_str(), units::formatBytes(lim.hostAllowance).c_str(),
           lim.computeBasisPoints / 100.0, u.busyNs / 1e9, u.throttledNs / 1e9,
           static_cast<unsigned long long>(u.launches));
  }
  for (const auto& p : procs) printf("  pid %d: VRAM %s\n", p.pid, units::formatBytes(p.vram[0]).c_str());
  return 0;
}

} // namespace

void addVgpuCommand(CLI::App& app, int& exitCode) {
  auto* vgpu = app.add_subcommand("vgpu", "Grant, inspect and remove vGPUs (quota regions)");
  vgpu->require_subcommand(1);
  // `vgpu create NAME --dir D`: options of `vgpu` may also follow its subcommand.
  vgpu->fallthrough();
  static std::string dir = env::getOr("TF_VGPU_DIR", "/dev/shm");
  vgpu->add_option("--dir", dir, "Where quota regions live (TF_VGPU_DIR)");

  static CreateOptions create;
  auto* c = vgpu->add_subcommand("create", "Create a vGPU; prints the region path for TF_VGPU_REGION");
  c->add_option("name", create.name, "vGPU name")->required();
  c->add_option("--vram", create.vram, "VRAM limit per device (e.g. 4GiB)")->required();
  c->add_option("--compute", create.compute, "Compute limit as a percent of the device (e.g. 30%)");
  c->add_option("--tflops", create.tflops, "Compute limit in FP16 TFLOPS (needs --model)");
  c->add_option("--model", create.model, "Device model for TFLOPS conversion (H100, A100-40GB, L4, T4)");
  c->add_option("--host-allowance", create.hostAllowance, "Host memory allocations may spill to (oversubscription)");
  c->add_option("--devices", create.devices, "Number of devices")->check(CLI::Range(1, limiter::kMaxDevices));
  c->add_option("--window-ms", create.windowMs, "Compute accounting window")->check(CLI::Range(10u, 10000u));
  c->callback([&exitCode] {
    create.dir = dir;
    exitCode = runCreate(create);
  });

  static std::string showName;
  auto* s = vgpu->add_subcommand("show", "Limits and live usage of a vGPU");
  s->add_option("name", showName, "vGPU name")->required();
  s->callback([&exitCode] { exitCode = runShow(dir, showName); });

  static std::string deleteName;
  auto* del = vgpu->add_subcommand("delete", "Remove a vGPU's region");
  del->add_option("name", deleteName, "vGPU name")->required();
  del->callback([&exitCode] {
    Status st = limiter::QuotaRegion::remove(regionPath(dir, deleteName));
    if (!st) fprintf(stderr, "tensor-fusion vgpu delete: %s\n", st.message().c_str());
    exitCode = st ? 0 : 1;
  });
}

} // namespace tf::cli
