// The console's files as the portal serves them: content types, the security headers, 404s for
// anything not embedded, and every reference between the files resolving to an embedded file
// (a broken import would leave a blank page).
#include <regex>
#include <set>

#include <gtest/gtest.h>

#include "portal/console.h"
#include "portal/console_assets.h"

namespace tf::portal {
namespace {

std::string header(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}

TEST(Console, RootIsThePageWithAStrictPolicy) {
  auto r = consoleResponse("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->contentType, "text/html; charset=utf-8");
  EXPECT_NE(r->body.find("<script type=\"module\" src=\"/console/app.js\"></script>"), std::string::npos);
  const std::string csp = header(*r, "Content-Security-Policy");
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
  EXPECT_EQ(csp.find("unsafe"), std::string::npos) << csp;
  EXPECT_EQ(header(*r, "X-Frame-Options"), "DENY");
}

TEST(Console, FilesCarryTheirContentType) {
  EXPECT_EQ(consoleResponse("/console/app.js")->contentType, "text/javascript; charset=utf-8");
  EXPECT_EQ(consoleResponse("/console/app.css")->contentType, "text/css; charset=utf-8");
  EXPECT_EQ(consoleResponse("/console/vendor/uPlot.esm.js")->contentType, "text/javascript; charset=utf-8");
  EXPECT_EQ(consoleResponse("/console/icon.svg")->contentType, "image/svg+xml");
  for (const auto& a : consoleAssets())
    EXPECT_NE(contentTypeFor(a.path), "application/octet-stream") << a.path << ": no content type for it";
  EXPECT_EQ(contentTypeFor("x.exe"), "application/octet-stream");
}

TEST(Console, ServesOnlyEmbeddedFiles) {
  for (const char* path : {"/console/", "/console/nope.js", "/console/../portal.db", "/console//app.js",
                           "/console/%61pp.js", "/console/vendor/../app.js"}) {
    auto r = consoleResponse(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 404) << path;
  }
  EXPECT_FALSE(consoleResponse("/index.html"));
  EXPECT_FALSE(consoleResponse("/api/v1/me"));
}

TEST(Console, EveryReferenceResolvesToAnEmbeddedFile) {
  std::set<std::string> names;
  for (const auto& a : consoleAssets()) names.insert(std::string(a.path));
  ASSERT_TRUE(names.count("index.html"));
  int checked = 0;
  // index.html: absolute /console/ URLs; no inline script (the policy would block it).
  const std::string page(consoleResponse("/")->body);
  static const std::regex ref(R"re((?:src|href)="/console/([^"]+)")re");
  for (std::sregex_iterator it(page.begin(), page.end(), ref), end; it != end; ++it, ++checked)
    EXPECT_TRUE(names.count((*it)[1])) << "index.html refers to " << (*it)[1];
  static const std::regex script(R"(<script(?![^>]*\ssrc=)[^>]*>)");
  EXPECT_FALSE(std::regex_search(page, script)) << "inline script in index.html";
  // Modules: relative imports only (no bare specifiers: there is no import map), all embedded.
  static const std::regex import(R"re(\b(?:from|import)\s*["']([^"'\s]+)["'])re");
  for (const auto& a : consoleAssets()) {
    if (!a.path.ends_with(".js")) continue;
    const std::string text(a.bytes), dir(a.path.substr(0, a.path.rfind('/') + 1));
    for (std::sregex_iterator it(text.begin(), text.end(), import), end; it != end; ++it, ++checked) {
      const std::string spec = (*it)[1];
      ASSERT_EQ(spec.rfind("./", 0), 0u) << a.path << " imports " << spec;
      EXPECT_TRUE(names.count(dir + spec.substr(2))) << a.path << " imports " << spec << ", not embedded";
    }
  }
  EXPECT_GT(checked, 10);
}

}  // namespace
}  // namespace tf::portal
