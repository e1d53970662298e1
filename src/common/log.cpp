#include "common/log.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

namespace tf::log {
namespace {

int levelFromEnv() {
  const char* v = std::getenv("TF_LOG_LEVEL");
  if (!v) return static_cast<int>(Level::Warn);
  if (!strcasecmp(v, "error")) return 0;
  if (!strcasecmp(v, "warn") || !strcasecmp(v, "warning")) return 1;
  if (!strcasecmp(v, "info")) return 2;
  if (!strcasecmp(v, "debug") || !strcasecmp(v, "trace")) return 3;
  return static_cast<int>(Level::Warn);
}

const char* levelName(Level l) {
  switch (l) {
  case Level::Error: return "error";
  case Level::Warn: return "warn";
  case Level::Info: return "info";
  case Level::Debug: return "debug";
  }
  return "?";
}

} // namespace

bool enabled(Level level) {
  static const int threshold = levelFromEnv();
  return static_cast<int>(level) <= threshold;
}

void write(Level level, const char* component, const char* fmt, ...) {
  char buf[2048];
  int n = snprintf(buf, sizeof buf, "[%s %s %d] ", component, levelName(level), (int)getpid());
  va_list ap;
  va_start(ap, fmt);
  if (n > 0 && n < (int)sizeof buf) n += vsnprintf(buf + n, sizeof buf - n, fmt, ap);
  va_end(ap);
  if (n >= (int)sizeof buf - 1) n = sizeof buf - 2;
  if (n < 0) return;
  buf[n++] = '\n';
  ssize_t ignored = ::write(2, buf, n);
  (void)ignored;
}

} // namespace tf::log
