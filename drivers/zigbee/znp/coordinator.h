// The ZNP request engine over a CoordinatorLink: a link thread that (re)opens the link with backoff,
// parses frames, completes the one SREQ in flight with its SRSP (or a timeout), matches AREQs to
// waiters and hands the rest to a subscriber. Internal to drivers/zigbee; the network logic sits on top.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "base/status.h"
#include "drivers/serial/link.h"
#include "drivers/zigbee/znp/commands.h"
#include "drivers/zigbee/znp/unpi.h"

namespace edged::zigbee::znp {

struct CoordinatorStats {
  std::uint64_t frames_in = 0, frames_out = 0, bad_frames = 0, reconnects = 0;
};

class ZnpCoordinator {
 public:
  using AreqHandler = std::function<void(const Message&)>;        // link thread; must not block
  using LinkHandler = std::function<void(bool up, const Status& why)>;  // link thread; must not block
  using LatencyObserver = std::function<void(std::chrono::duration<double>)>;

  ZnpCoordinator(std::unique_ptr<serial::CoordinatorLink> link, std::chrono::milliseconds sreq_timeout,
                 std::chrono::milliseconds reconnect_min, std::chrono::milliseconds reconnect_max);
  ~ZnpCoordinator();

  void SetHandlers(AreqHandler areq, LinkHandler link, LatencyObserver latency);
  void Start();
  void Stop();
  bool link_up() const;
  std::string Describe() const;
  CoordinatorStats stats() const;

  // Sends an SREQ and returns the SRSP's fields. Only one SREQ is in flight; callers queue on a mutex.
  // A `status` field other than one of `ok_statuses` is a Protocol error naming the command.
  StatusOr<Fields> Request(Subsystem subsystem, std::string_view name, const Fields& fields,
                           std::optional<std::chrono::milliseconds> timeout = std::nullopt,
                           std::initializer_list<std::uint8_t> ok_statuses = {0});
  // Sends an AREQ (e.g. SYS_RESET_REQ) without waiting.
  Status Post(Subsystem subsystem, std::string_view name, const Fields& fields);
  // Raw bytes (the bootloader-skip byte 0xEF).
  Status WriteRaw(std::span<const std::byte> bytes);

  // Registers interest in an AREQ before the request that triggers it is sent, so a fast answer is
  // never missed; Wait() returns its fields or DeadlineExceeded.
  class Waiter;
  using Match = std::function<bool(const Fields&)>;
  std::shared_ptr<Waiter> Expect(Subsystem subsystem, std::string_view name, Match match);
  StatusOr<Fields> Wait(const std::shared_ptr<Waiter>& waiter, std::chrono::milliseconds timeout);
  void Cancel(const std::shared_ptr<Waiter>& waiter);

  // Closes the link now (tests, or a start-up that failed): the link thread reopens it with backoff.
  void Reconnect();

 private:
  void Run();
  void OnFrame(Frame&& frame);
  void LinkLost(const Status& why);

  std::unique_ptr<serial::CoordinatorLink> link_;
  const std::chrono::milliseconds sreq_timeout_;
  serial::Backoff backoff_;
  AreqHandler on_areq_;
  LinkHandler on_link_;
  LatencyObserver on_latency_;

  mutable std::mutex link_mu_;  // guards link_ open/close/read/write
  std::mutex sreq_mu_;          // one SREQ in flight
  mutable std::mutex mu_;       // guards the fields below
  std::condition_variable cv_;
  bool up_ = false;
  bool stopping_ = false;
  bool reconnect_ = false;
  struct Pending {
    Subsystem subsystem;
    std::uint8_t command;
    std::optional<Fields> result;
    Status error;
  };
  Pending* pending_ = nullptr;
  std::list<std::shared_ptr<Waiter>> waiters_;
  CoordinatorStats stats_;
  UnpiParser parser_;
  int wake_fd_ = -1;
  std::thread thread_;
};

}  // namespace edged::zigbee::znp
