// A fixed-size pool whose tasks may hang (see storage_internal.h).
#include <algorithm>

#include "drivers/storage/storage_internal.h"

namespace edged::storage::detail {

struct WorkerPool::Shared {
  std::mutex mu;
  std::condition_variable cv;       // tasks queued, or stop
  std::condition_variable exit_cv;  // a thread left its loop
  std::deque<std::function<void()>> queue;
  bool stop = false;
  int busy = 0;
  int running_threads = 0;
};

namespace {

void WorkerLoop(std::shared_ptr<WorkerPool::Shared> shared) {
  std::unique_lock lock(shared->mu);
  while (true) {
    shared->cv.wait(lock, [&] { return shared->stop || !shared->queue.empty(); });
    if (shared->stop) break;
    std::function<void()> task = std::move(shared->queue.front());
    shared->queue.pop_front();
    ++shared->busy;
    lock.unlock();
    task();
    task = nullptr;  // release what the task captured before taking the lock again
    lock.lock();
    --shared->busy;
  }
  --shared->running_threads;
  shared->exit_cv.notify_all();
}

}  // namespace

WorkerPool::WorkerPool(int threads)
    : shared_(std::make_shared<Shared>()), threads_count_(std::max(1, threads)) {
  shared_->running_threads = threads_count_;
  for (int i = 0; i < threads_count_; ++i) threads_.emplace_back(WorkerLoop, shared_);
}

WorkerPool::~WorkerPool() { Shutdown(std::chrono::seconds(2)); }

bool WorkerPool::Submit(std::function<void()> task) {
  {
    std::lock_guard lock(shared_->mu);
    if (shared_->stop) return false;
    shared_->queue.push_back(std::move(task));
  }
  shared_->cv.notify_one();
  return true;
}

int WorkerPool::busy() const {
  std::lock_guard lock(shared_->mu);
  return shared_->busy;
}

void WorkerPool::Shutdown(std::chrono::milliseconds grace) {
  if (threads_.empty()) return;
  std::unique_lock lock(shared_->mu);
  shared_->stop = true;
  shared_->queue.clear();
  shared_->cv.notify_all();
  const bool all_left =
      shared_->exit_cv.wait_for(lock, grace, [&] { return shared_->running_threads == 0; });
  lock.unlock();
  for (std::thread& t : threads_) {
    // A thread stuck in a syscall (a dead NFS server) cannot be joined; it owns `shared_` and ends on
    // its own when the call returns.
    if (all_left) {
      t.join();
    } else {
      t.detach();
    }
  }
  threads_.clear();
}

}  // namespace edged::storage::detail
