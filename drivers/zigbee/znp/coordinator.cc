#include "drivers/zigbee/znp/coordinator.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <spdlog/fmt/fmt.h>

#include "base/logging.h"

namespace edged::zigbee::znp {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class ZnpCoordinator::Waiter {
 public:
  Subsystem subsystem;
  std::uint8_t command;
  Match match;
  std::optional<Fields> result;
  Status error;
};

ZnpCoordinator::ZnpCoordinator(std::unique_ptr<serial::CoordinatorLink> link, std::chrono::milliseconds sreq_timeout,
                               std::chrono::milliseconds reconnect_min, std::chrono::milliseconds reconnect_max)
    : link_(std::move(link)), sreq_timeout_(sreq_timeout), backoff_(reconnect_min, reconnect_max) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

ZnpCoordinator::~ZnpCoordinator() {
  Stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void ZnpCoordinator::SetHandlers(AreqHandler areq, LinkHandler link, LatencyObserver latency) {
  on_areq_ = std::move(areq);
  on_link_ = std::move(link);
  on_latency_ = std::move(latency);
}

void ZnpCoordinator::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { Run(); });
}

void ZnpCoordinator::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard link_lock(link_mu_);
  link_->Close();
}

bool ZnpCoordinator::link_up() const {
  std::lock_guard lock(mu_);
  return up_;
}

std::string ZnpCoordinator::Describe() const {
  std::lock_guard lock(link_mu_);
  return link_->Describe();
}

CoordinatorStats ZnpCoordinator::stats() const {
  std::lock_guard lock(mu_);
  CoordinatorStats s = stats_;
  return s;
}

void ZnpCoordinator::Reconnect() {
  std::lock_guard lock(mu_);
  reconnect_ = true;
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

Status ZnpCoordinator::WriteRaw(std::span<const std::byte> bytes) {
  std::lock_guard lock(link_mu_);
  if (!link_->is_open()) return UnavailableError(fmt::format("{}: coordinator link is down", link_->Describe()));
  return link_->Write(bytes, 1000ms);
}

Status ZnpCoordinator::Post(Subsystem subsystem, std::string_view name, const Fields& fields) {
  ASSIGN_OR_RETURN(Frame frame, Encode(subsystem, name, Direction::kRequest, fields));
  ASSIGN_OR_RETURN(auto bytes, EncodeFrame(frame));
  RETURN_IF_ERROR(WriteRaw(bytes));
  std::lock_guard lock(mu_);
  ++stats_.frames_out;
  return OkStatus();
}

StatusOr<Fields> ZnpCoordinator::Request(Subsystem subsystem, std::string_view name, const Fields& fields,
                                         std::optional<std::chrono::milliseconds> timeout,
                                         std::initializer_list<std::uint8_t> ok_statuses) {
  ASSIGN_OR_RETURN(Frame frame, Encode(subsystem, name, Direction::kRequest, fields));
  ASSIGN_OR_RETURN(auto bytes, EncodeFrame(frame));
  std::lock_guard one_in_flight(sreq_mu_);
  Pending pending{subsystem, frame.command, std::nullopt, OkStatus()};
  {
    std::lock_guard lock(mu_);
    if (!up_) return UnavailableError(fmt::format("ZNP {}.{}: the coordinator link is down", SubsystemName(subsystem), name));
    pending_ = &pending;
  }
  const auto start = Clock::now();
  Status written = WriteRaw(bytes);
  std::unique_lock lock(mu_);
  if (!written.ok()) {
    pending_ = nullptr;
    return written;
  }
  ++stats_.frames_out;
  const auto deadline = start + timeout.value_or(sreq_timeout_);
  cv_.wait_until(lock, deadline, [&] { return pending.result.has_value() || !pending.error.ok() || stopping_; });
  pending_ = nullptr;
  if (!pending.error.ok()) return pending.error;
  if (!pending.result) {
    return DeadlineExceededError(fmt::format("ZNP {}.{}: no SRSP within {} ms from {}; is the coordinator running Z-Stack?",
                                             SubsystemName(subsystem), name,
                                             timeout.value_or(sreq_timeout_).count(), link_->Describe()));
  }
  lock.unlock();
  if (on_latency_) on_latency_(Clock::now() - start);
  if (pending.result->Has("status")) {
    const auto st = static_cast<std::uint8_t>(pending.result->U("status"));
    if (std::find(ok_statuses.begin(), ok_statuses.end(), st) == ok_statuses.end()) {
      return ProtocolError(fmt::format("ZNP {}.{} failed with status 0x{:02x}", SubsystemName(subsystem), name, st));
    }
  }
  return std::move(*pending.result);
}

std::shared_ptr<ZnpCoordinator::Waiter> ZnpCoordinator::Expect(Subsystem subsystem, std::string_view name, Match match) {
  auto w = std::make_shared<Waiter>();
  const CommandDef* def = FindCommand(subsystem, name);
  w->subsystem = subsystem;
  w->command = def != nullptr ? def->id : 0xFF;
  w->match = std::move(match);
  std::lock_guard lock(mu_);
  waiters_.push_back(w);
  return w;
}

StatusOr<Fields> ZnpCoordinator::Wait(const std::shared_ptr<Waiter>& w, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return w->result.has_value() || !w->error.ok() || stopping_; });
  waiters_.remove(w);
  if (w->result) return std::move(*w->result);
  if (!w->error.ok()) return w->error;
  const CommandDef* def = FindCommand(w->subsystem, w->command);
  return DeadlineExceededError(fmt::format("ZNP {}.{}: no answer within {} ms", SubsystemName(w->subsystem),
                                           def != nullptr ? def->name : "?", timeout.count()));
}

void ZnpCoordinator::Cancel(const std::shared_ptr<Waiter>& w) {
  std::lock_guard lock(mu_);
  waiters_.remove(w);
}

void ZnpCoordinator::OnFrame(Frame&& frame) {
  std::unique_lock lock(mu_);
  ++stats_.frames_in;
  if (frame.type == FrameType::kSrsp) {
    if (pending_ != nullptr && pending_->subsystem == frame.subsystem && pending_->command == frame.command) {
      auto msg = Decode(frame);
      if (msg.ok()) {
        pending_->result = std::move(msg->fields);
      } else {
        pending_->error = msg.status();
      }
      cv_.notify_all();
    } else if (pending_ != nullptr && frame.subsystem == Subsystem::kRPC_ERROR) {
      pending_->error = ProtocolError(fmt::format("the coordinator rejected the command (RPC error {})",
                                                  frame.payload.empty() ? 0 : frame.payload[0]));
      cv_.notify_all();
    }
    return;  // an SRSP nobody waits for (late, after a timeout) is dropped
  }
  if (frame.type != FrameType::kAreq) return;
  auto msg = Decode(frame);
  if (!msg.ok()) {
    ++stats_.bad_frames;
    return;
  }
  for (auto& w : waiters_) {
    if (!w->result && w->subsystem == frame.subsystem && w->command == frame.command && (!w->match || w->match(msg->fields))) {
      w->result = msg->fields;
      cv_.notify_all();
      break;
    }
  }
  lock.unlock();
  if (on_areq_) on_areq_(*msg);
}

void ZnpCoordinator::LinkLost(const Status& why) {
  {
    std::lock_guard lock(mu_);
    const bool was_up = up_;
    up_ = false;
    ++stats_.reconnects;
    if (pending_ != nullptr) pending_->error = UnavailableError(std::string(why.message()));
    for (auto& w : waiters_) w->error = UnavailableError(std::string(why.message()));
    cv_.notify_all();
    if (!was_up) return;
  }
  if (on_link_) on_link_(false, why);
}

void ZnpCoordinator::Run() {
  auto log = Logger("zigbee");
  std::vector<std::byte> buf(1024);
  bool logged_down = false;
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
    }
    bool open;
    {
      std::lock_guard lock(link_mu_);
      open = link_->is_open();
    }
    if (!open) {
      // A failed write closes the link on the writer's thread; the loss is reported here, once.
      bool was_up;
      {
        std::lock_guard lock(mu_);
        was_up = up_;
      }
      if (was_up) LinkLost(UnavailableError(fmt::format("{}: the link closed after a failed write", Describe())));
      Status st;
      {
        std::lock_guard lock(link_mu_);
        st = link_->Open();
      }
      if (!st.ok()) {
        if (!logged_down) log->warn("coordinator link: {}; retrying with backoff", st.message());
        logged_down = true;
        const auto delay = backoff_.Next();
        pollfd p{wake_fd_, POLLIN, 0};
        ::poll(&p, 1, static_cast<int>(delay.count()));
        std::uint64_t v;
        [[maybe_unused]] auto n = ::read(wake_fd_, &v, sizeof v);
        continue;
      }
      logged_down = false;
      backoff_.Reset();
      parser_.Reset();
      {
        std::lock_guard lock(mu_);
        up_ = true;
        reconnect_ = false;
      }
      log->info("coordinator link open: {}", Describe());
      if (on_link_) on_link_(true, OkStatus());
    }
    int fd;
    {
      std::lock_guard lock(link_mu_);
      fd = link_->fd();
    }
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    // A partial frame waits at most 50 ms for the rest (250 bytes take 22 ms at 115200 baud).
    const bool partial = parser_.buffered() > 0;
    if (::poll(fds, 2, partial ? 50 : 200) == 0 && partial) {
      parser_.SkipStalled([this](Frame&& f) { OnFrame(std::move(f)); });
      std::lock_guard lock(mu_);
      ++stats_.bad_frames;
      continue;
    }
    if (fds[1].revents & POLLIN) {
      std::uint64_t v;
      [[maybe_unused]] auto n = ::read(wake_fd_, &v, sizeof v);
      bool reconnect;
      {
        std::lock_guard lock(mu_);
        reconnect = reconnect_;
      }
      if (reconnect) {
        {
          std::lock_guard lock(link_mu_);
          link_->Close();
        }
        LinkLost(UnavailableError("coordinator link reset after a failed start-up"));
        continue;
      }
    }
    if (fds[0].revents == 0) continue;
    // Readable or hung up: read either way; a hang-up shows as EIO or EOF right here.
    StatusOr<std::size_t> n = std::size_t{0};
    {
      std::lock_guard lock(link_mu_);
      n = link_->Read(buf);
    }
    if (!n.ok()) {
      log->warn("coordinator link lost: {}", n.status().message());
      LinkLost(n.status());
      continue;
    }
    const std::uint64_t bad_before = parser_.bad_fcs() + parser_.bad_length();
    parser_.Feed(std::span<const std::byte>(buf.data(), *n), [this](Frame&& f) { OnFrame(std::move(f)); });
    const std::uint64_t bad_after = parser_.bad_fcs() + parser_.bad_length();
    if (bad_after != bad_before) {
      std::lock_guard lock(mu_);
      stats_.bad_frames += bad_after - bad_before;
    }
  }
}

}  // namespace edged::zigbee::znp
