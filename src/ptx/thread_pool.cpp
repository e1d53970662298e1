#include "ptx/thread_pool.h"

#include <cstdlib>

#include "common/env.h"

namespace tf::ptx {

ThreadPool::ThreadPool(uint32_t threads) : size_(threads < 1 ? 1 : threads) {
  for (uint32_t i = 1; i < size_; ++i) threads_.emplace_back([this, i] { loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

uint32_t ThreadPool::defaultSize() {
  auto v = env::getInt("TF_SOFTGPU_THREADS", 0);
  if (v && *v > 0 && *v <= 4096) return static_cast<uint32_t>(*v);
  uint32_t hc = std::thread::hardware_concurrency();
  return hc ? hc : 1;
}

ThreadPool& ThreadPool::shared() {
  // never destroyed: CUDA programs launch kernels from static destructors too
  static ThreadPool* pool = new ThreadPool(defaultSize());
  return *pool;
}

void ThreadPool::run(uint32_t workers, const std::function<void(uint32_t)>& fn) {
  if (workers > size_) workers = size_;
  if (workers <= 1) {
    fn(0);
    return;
  }
  std::lock_guard<std::mutex> runLock(runMu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &fn;
    jobWorkers_ = workers;
    pending_ = workers - 1;
    ++generation_;
  }
  cv_.notify_all();
  fn(0);
  std::unique_lock<std::mutex> lock(mu_);
  doneCv_.wait(lock, [this] { return pending_ == 0; });
  job_ = nullptr;
}

void ThreadPool::loop(uint32_t index) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(uint32_t)>* job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (index >= jobWorkers_) continue;
      job = job_;
    }
    (*job)(index);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (--pending_ == 0) doneCv_.notify_all();
    }
  }
}

} // namespace tf::ptx
