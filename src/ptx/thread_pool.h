// A fixed pool of host threads that run CTAs. run(n, fn) calls fn(worker) on n workers
// (the caller is worker 0) and returns when all are done.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tf::ptx {

class ThreadPool {
public:
  explicit ThreadPool(uint32_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  uint32_t size() const { return size_; }
  // Runs fn(0..workers-1) concurrently, worker 0 on the calling thread. Calls from several
  // threads are serialised.
  void run(uint32_t workers, const std::function<void(uint32_t)>& fn);

  // Size from TF_SOFTGPU_THREADS, else the hardware concurrency.
  static uint32_t defaultSize();
  static ThreadPool& shared();

private:
  void loop(uint32_t index);

  uint32_t size_;
  std::vector<std::thread> threads_;
  std::mutex runMu_; // one run() at a time
  std::mutex mu_;
  std::condition_variable cv_, doneCv_;
  const std::function<void(uint32_t)>* job_ = nullptr;
  uint32_t jobWorkers_ = 0;
  uint64_t generation_ = 0;
  uint32_t pending_ = 0;
  bool stop_ = false;
};

} // namespace tf::ptx
