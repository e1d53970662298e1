// Sizes and rates as people write them: "80GiB", "512Mi", "1.5G", "40960" (bytes).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tf::units {

constexpr uint64_t KiB = 1024, MiB = KiB * 1024, GiB = MiB * 1024;

// Parses a byte size. Binary suffixes (Ki, Mi, Gi, Ti, with or without B) are powers of 1024;
// decimal ones (K, M, G, T, KB, MB, GB, TB) powers of 1000. Negative, empty or overflowing
// values are errors.
Result<uint64_t> parseBytes(std::string_view text);
// "1.5 GiB", "512 MiB", "0 B".
std::string formatBytes(uint64_t bytes);
// Parses a duration as Go writes them (Kubernetes objects carry them so): "90s", "5m",
// "1h30m", "250ms", "1.5h"; units ns, us, ms, s, m, h, required except for "0". Returns
// milliseconds (rounded); negative, empty, unit-less or overflowing values are errors.
Result<uint64_t> parseDurationMs(std::string_view text);

} // namespace tf::units
