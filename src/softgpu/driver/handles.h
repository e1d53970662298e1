// Live-handle registries: a handle the driver gave out is looked up before use, so a stale,
// foreign or garbage handle is an error code, never a dereference of freed memory.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_set>

namespace tf::softgpu {

template <typename T> class Registry {
public:
  void add(T* object) {
    std::lock_guard<std::mutex> lock(mu_);
    live_.insert(object);
    generation_.fetch_add(1, std::memory_order_release);
  }
  void remove(T* object) {
    std::lock_guard<std::mutex> lock(mu_);
    live_.erase(object);
    generation_.fetch_add(1, std::memory_order_release);
  }
  // Changes whenever an object is added or removed: a lookup made at an unchanged generation
  // still holds, so hot paths can cache it.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  // The object behind a raw handle, or nullptr if the driver does not know it (any more).
  T* find(const void* handle) const {
    if (!handle) return nullptr;
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(static_cast<T*>(const_cast<void*>(handle)));
    return it == live_.end() ? nullptr : *it;
  }
  template <typename F> void forEach(F&& f) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (T* t : live_) f(t);
  }

private:
  mutable std::mutex mu_;
  std::unordered_set<T*> live_;
  std::atomic<uint64_t> generation_{0};
};

// Registries live for the whole process (never destroyed: worker threads may still use them
// while static destructors run).
template <typename T> Registry<T>& registryOf() {
  static auto* r = new Registry<T>();
  return *r;
}

} // namespace tf::softgpu
