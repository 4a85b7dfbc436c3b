// DeviceQueues: per-device order, no device waits behind a blocked one, and threads only as needed.
#include "drivers/zigbee/device_queues.h"

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace edged::zigbee {
namespace {

using namespace std::chrono_literals;

TEST(DeviceQueues, OneDevicesJobsRunInOrderOneAtATime) {
  std::mutex mu;
  std::vector<int> order;
  std::atomic<int> running{0}, overlap{0};
  std::promise<void> done;
  {
    DeviceQueues queues(8);
    for (int i = 0; i < 100; ++i) {
      queues.Post("0x01", [&, i] {
        if (running.fetch_add(1) != 0) overlap.fetch_add(1);
        std::this_thread::sleep_for(100us);
        {
          std::lock_guard lock(mu);
          order.push_back(i);
        }
        running.fetch_sub(1);
        if (i == 99) done.set_value();
      });
    }
    ASSERT_EQ(done.get_future().wait_for(10s), std::future_status::ready);
  }
  EXPECT_EQ(overlap.load(), 0);
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

TEST(DeviceQueues, ABlockedDeviceDoesNotHoldUpAnother) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> other_ran;
  DeviceQueues queues(4);
  queues.Post("dead", [released] { released.wait(); });  // a device that never answers
  queues.Post("dead", [] {});
  queues.Post("alive", [&] { other_ran.set_value(); });
  EXPECT_EQ(other_ran.get_future().wait_for(5s), std::future_status::ready);
  release.set_value();
}

TEST(DeviceQueues, ThreadsAreStartedOnlyWhenDevicesWaitAndStayBounded) {
  DeviceQueues queues(4);
  // One device at a time: one thread serves 200 devices.
  for (int i = 0; i < 200; ++i) {
    std::promise<void> ran;
    queues.Post("dev" + std::to_string(i), [&] { ran.set_value(); });
    ASSERT_EQ(ran.get_future().wait_for(5s), std::future_status::ready);
    std::this_thread::sleep_for(2ms);  // the thread is back waiting (a finishing thread is not idle yet)
  }
  EXPECT_EQ(queues.threads(), 1u);

  // 20 devices blocked at once: never more than 4 threads; the rest run when threads free up.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> finished{0};
  for (int i = 0; i < 20; ++i) {
    queues.Post("busy" + std::to_string(i), [&, released] {
      released.wait();
      finished.fetch_add(1);
    });
  }
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(queues.threads(), 4u);
  release.set_value();
  for (int i = 0; i < 500 && finished.load() < 20; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(finished.load(), 20);
}

TEST(DeviceQueues, DestructionDropsQueuedJobsAndWaitsForRunningOnes) {
  std::atomic<bool> running_finished{false};
  std::atomic<int> queued_ran{0};
  std::promise<void> started;
  {
    DeviceQueues queues(2);
    queues.Post("a", [&] {
      started.set_value();
      std::this_thread::sleep_for(100ms);
      running_finished = true;
    });
    for (int i = 0; i < 10; ++i) queues.Post("a", [&] { queued_ran.fetch_add(1); });
    ASSERT_EQ(started.get_future().wait_for(5s), std::future_status::ready);
  }
  EXPECT_TRUE(running_finished.load());
  EXPECT_EQ(queued_ran.load(), 0);
  DeviceQueues stopped(1);
}

}  // namespace
}  // namespace edged::zigbee
