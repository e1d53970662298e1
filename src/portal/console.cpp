#include "portal/console.h"

#include <algorithm>

#include "portal/console_assets.h"

namespace tf::portal {
namespace {

constexpr std::string_view kPrefix = "/console/";

struct Extension {
  std::string_view ext, type;
};
constexpr Extension kTypes[] = {
    {".html", "text/html; charset=utf-8"},  {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},    {".svg", "image/svg+xml"},
    {".png", "image/png"},                  {".txt", "text/plain; charset=utf-8"},
    {".json", "application/json"},
};

const ConsoleAsset* find(std::string_view path) {
  const auto& all = consoleAssets();
  auto it = std::lower_bound(all.begin(), all.end(), path,
                             [](const ConsoleAsset& a, std::string_view p) { return a.path < p; });
  return it != all.end() && it->path == path ? &*it : nullptr;
}

HttpResponse withHeaders(HttpResponse r) {
  r.headers.emplace_back("Content-Security-Policy", kConsoleCsp);
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  return r;
}

}  // namespace

std::string contentTypeFor(std::string_view path) {
  for (const auto& [ext, type] : kTypes)
    if (path.size() >= ext.size() && path.substr(path.size() - ext.size()) == ext) return std::string(type);
  return "application/octet-stream";
}

std::optional<HttpResponse> consoleResponse(const std::string& path) {
  std::string_view file;
  if (path == "/") file = "index.html";
  else if (path.starts_with(kPrefix)) file = std::string_view(path).substr(kPrefix.size());
  else return std::nullopt;
  // Only the embedded names match: "..", "//" or an encoded name find nothing, so a 404.
  const ConsoleAsset* a = find(file);
  if (!a) return withHeaders({404, R"({"error":"not found"})"});
  return withHeaders({200, std::string(a->bytes), contentTypeFor(file)});
}

}  // namespace tf::portal
