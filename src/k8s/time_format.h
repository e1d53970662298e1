// Kubernetes wire times: metav1.Time "2006-01-02T15:04:05Z" and metav1.MicroTime
// "2006-01-02T15:04:05.000000Z" (UTC).
#pragma once

#include <chrono>
#include <string>

namespace tf::k8s {

std::string formatTime(std::chrono::system_clock::time_point t);
std::string formatMicroTime(std::chrono::system_clock::time_point t);

}  // namespace tf::k8s
