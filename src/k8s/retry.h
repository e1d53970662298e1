// RetryOnConflict, as client-go's: run `fn` (re-read, re-apply the change, write) until it
// does not end in 409 Conflict, sleeping a growing, jittered delay between tries.
//
//   auto r = retryOnConflict([&]() -> ApiResult<json> {
//     auto obj = client.get(ref, ns, name);
//     if (!obj) return obj.error();
//     (*obj)["spec"]["replicas"] = 3;
//     return client.update(ref, *obj);
//   });
#pragma once

#include <thread>

#include "k8s/api_error.h"
#include "k8s/backoff.h"

namespace tf::k8s {

struct RetryPolicy {
  int attempts = 10;
  ExponentialBackoff backoff{std::chrono::milliseconds(10), std::chrono::seconds(1), 2.0, 1.0};
};

template <typename Fn> auto retryOnConflict(Fn&& fn, const RetryPolicy& policy = {}) -> decltype(fn()) {
  for (int attempt = 0;; ++attempt) {
    auto result = fn();
    if (result || !result.error().isConflict() || attempt + 1 >= policy.attempts) return result;
    std::this_thread::sleep_for(policy.backoff.delay(attempt));
  }
}

}  // namespace tf::k8s
