// One job queue per Zigbee device on a small, shared set of threads.
//
// A device's jobs (interview, commands, enroll responses) run one at a time and in order, and they
// block: a request waits for the device's answer or its timeout. Different devices must not wait on
// each other, so a sleepy or dead device holds only its own queue. A thread per device would cost 200
// threads (~7 MiB of stacks and glibc arenas) for queues that are empty nearly all the time, so a
// thread is started only when a device has work and every running thread is busy, up to
// `max_threads`; beyond that, ready devices wait their turn in arrival order.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace edged::zigbee {

class DeviceQueues {
 public:
  explicit DeviceQueues(std::size_t max_threads);
  // Jobs not yet started are dropped; running ones finish first (the caller makes them fail fast,
  // e.g. by stopping the coordinator link), then the threads are joined.
  ~DeviceQueues();
  DeviceQueues(const DeviceQueues&) = delete;
  DeviceQueues& operator=(const DeviceQueues&) = delete;

  // Queues `job` behind the device's earlier jobs. Thread-safe; never blocks on a running job.
  void Post(const std::string& device, std::function<void()> job);

  std::size_t threads() const;  // started so far (they stay until destruction)

 private:
  void Work();

  const std::size_t max_threads_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::deque<std::function<void()>>> pending_;  // devices with queued jobs
  std::deque<std::string> ready_;  // devices with jobs and none running, oldest first
  std::set<std::string> running_;  // devices whose job is running now
  std::size_t idle_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace edged::zigbee
