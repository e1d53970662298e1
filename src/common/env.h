// Reading configuration from the environment, with clear errors for bad values.
#pragma once

#include <optional>
#include <string>

#include "common/status.h"

namespace tf::env {

std::optional<std::string> get(const char* name);
std::string getOr(const char* name, const std::string& fallback);
// A boolean: 1/0, true/false, yes/no, on/off. Anything else is an error naming the variable.
Result<bool> getBool(const char* name, bool fallback);
Result<long long> getInt(const char* name, long long fallback);

} // namespace tf::env
