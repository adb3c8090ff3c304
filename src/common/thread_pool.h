// A fixed set of worker threads taking tasks from one queue. Owned by whoever made it; its
// destructor stops taking tasks, lets the running ones finish and joins every thread, so a
// task never outlives what it refers to (nothing is detached).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace storevisor {

class ThreadPool {
 public:
  explicit ThreadPool(size_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues a task; false (and the task dropped) once the pool is stopping.
  bool Post(std::function<void()> task);
  // Tasks queued and not started yet.
  size_t queued() const;
  // Stops taking tasks, drops the queued ones, waits for the running ones and joins.
  void Stop();

 private:
  void Work();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace storevisor
