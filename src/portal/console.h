// Serving the web console: `/` is its page, `/console/<path>` its files (console_assets.h).
// Every answer carries a strict Content-Security-Policy (scripts, styles, fetches: this origin
// only; no inline script or style element, no framing) and the content type of its extension.
#pragma once

#include <optional>
#include <string>

#include "portal/rest.h"

namespace tf::portal {

inline constexpr const char* kConsoleCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

// The content type for a file name by its extension; "application/octet-stream" when unknown.
std::string contentTypeFor(std::string_view path);

// The console's answer to a GET of `path` (no query), or nothing when the path is not the
// console's (`/` and `/console/...`). A missing file under /console/ is a 404.
std::optional<HttpResponse> consoleResponse(const std::string& path);

}  // namespace tf::portal
