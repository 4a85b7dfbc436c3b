#include "drivers/zigbee/device_queues.h"

#include <utility>

namespace edged::zigbee {

DeviceQueues::DeviceQueues(std::size_t max_threads) : max_threads_(max_threads == 0 ? 1 : max_threads) {}

DeviceQueues::~DeviceQueues() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    pending_.clear();
    ready_.clear();
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void DeviceQueues::Post(const std::string& device, std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    auto& queue = pending_[device];
    queue.push_back(std::move(job));
    // A device is on ready_ exactly when it has jobs and none is running; a running device is put
    // back by the thread that finishes its job.
    if (queue.size() == 1 && !running_.count(device)) ready_.push_back(device);
    // More ready devices than waiting threads: one more thread, so no device waits behind another.
    if (ready_.size() > idle_ && threads_.size() < max_threads_) threads_.emplace_back([this] { Work(); });
  }
  cv_.notify_one();
}

std::size_t DeviceQueues::threads() const {
  std::lock_guard lock(mu_);
  return threads_.size();
}

void DeviceQueues::Work() {
  std::unique_lock lock(mu_);
  while (true) {
    ++idle_;
    cv_.wait(lock, [&] { return stop_ || !ready_.empty(); });
    --idle_;
    if (stop_) return;
    const std::string device = std::move(ready_.front());
    ready_.pop_front();
    auto queue = pending_.find(device);
    auto job = std::move(queue->second.front());
    queue->second.pop_front();
    if (queue->second.empty()) pending_.erase(queue);
    running_.insert(device);
    lock.unlock();
    job();
    job = nullptr;  // its captures are released outside the lock
    lock.lock();
    running_.erase(device);
    if (stop_) return;
    if (pending_.count(device)) {
      ready_.push_back(device);  // behind devices that waited meanwhile
      cv_.notify_one();
    }
  }
}

}  // namespace edged::zigbee
