// Base64 as Kubernetes writes it (Secret data, kubeconfig *-data, caBundle, admission patches).
//
//   std::string b = base64Encode("text");
//   auto t = base64Decode(b, "secret data");   // error names `what`; whitespace is ignored
#pragma once

#include <string>

#include "common/status.h"

namespace tf::k8s {

std::string base64Encode(const std::string& bytes);
Result<std::string> base64Decode(const std::string& text, const std::string& what);

}  // namespace tf::k8s
