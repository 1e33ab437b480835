// web_assets: the admin page's files (proxy/web/), embedded in the binary at build time by
// proxy/web/embed.cmake, so the page works offline and needs no build step of its own.
#pragma once

#include <span>
#include <string_view>

namespace linesman::proxy {

// web_asset: one file, served at `path` ("/index.html") with `content_type`. Static storage.
struct web_asset {
  std::string_view path;
  std::string_view content_type;
  std::string_view body;
};

// web_assets: every embedded file (index.html, app.js, app.css).
std::span<const web_asset> web_assets();

}  // namespace linesman::proxy
