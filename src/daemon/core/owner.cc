#include "daemon/core/owner.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <future>
#include <limits>
#include <utility>

namespace storevisor::daemon::core {

namespace {

// The longest the loop sleeps with nothing due: a bound, not a tick (nothing is polled).
constexpr int64_t kMaxSleepMs = 60000;
// The time given to tasks that run after the loop stopped: they answer, and change nothing.
constexpr int64_t kStopped = std::numeric_limits<int64_t>::min();

UniqueFd PidfdOpen(int64_t pid) {
  return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0)));
}

}  // namespace

Owner::Owner(Store& store, const Logger& logger, EffectRunner& runner, OwnerOptions options)
    : logger_(logger),
      runner_(runner),
      options_(std::move(options)),
      core_(store, logger, options_.core),
      snapshot_(std::make_shared<Snapshot>()),
      workers_(options_.workers),
      probes_(options_.probes) {
  if (!options_.now_ms) options_.now_ms = [] { return NowMs(); };
}

Owner::~Owner() { Stop(); }

Status Owner::Start() {
  epoll_ = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  wake_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!epoll_.valid() || !wake_.valid()) return ErrnoError("the owner's epoll");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) != 0) {
    return ErrnoError("epoll_ctl");
  }
  SV_TRY(core_.Load(options_.now_ms()));
  Publish();
  loop_ = std::thread([this] { Loop(); });
  return Ok();
}

void Owner::Stop() {
  if (stopping_.exchange(true)) return;
  if (wake_.valid()) {
    const uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
  }
  if (loop_.joinable()) loop_.join();
  // Calls under way finish; their results have nowhere to go and are dropped.
  workers_.Stop();
  probes_.Stop();
  std::deque<Task> left;
  {
    std::lock_guard lock(mu_);
    drained_ = true;
    left.swap(inbox_);
  }
  for (auto& task : left) task(core_, kStopped);  // commands are answered, not run
  core_.Shutdown();                               // waiting commands: their answers go to answers_
  for (auto& answer : std::exchange(answers_, {})) answer();
  events_cv_.notify_all();
}

void Owner::Post(Task task) {
  {
    std::lock_guard lock(mu_);
    if (!drained_) {
      inbox_.push_back(std::move(task));
      task = nullptr;
    }
  }
  if (task) {
    task(core_, kStopped);  // answers its caller; the core is not touched
    return;
  }
  const uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
}

Result<api::ApplyResponse> Owner::Apply(ApplyCommand command) {
  if (stopping_) return Error(ErrorCode::kUnavailable, "storevisord is stopping");
  auto answer = std::make_shared<std::promise<Result<api::ApplyResponse>>>();
  auto future = answer->get_future();
  auto cmd = std::make_shared<ApplyCommand>(std::move(command));
  Post([this, cmd, answer](Core& core, int64_t now) {
    if (now == kStopped) {
      answer->set_value(Error(ErrorCode::kUnavailable, "storevisord is stopping"));
      return;
    }
    core.Apply(std::move(*cmd), now, [this, answer](Result<api::ApplyResponse> r) {
      auto shared = std::make_shared<Result<api::ApplyResponse>>(std::move(r));
      answers_.push_back([answer, shared] { answer->set_value(std::move(*shared)); });
    });
  });
  return future.get();
}

Status Owner::Operator(OperatorVerb verb, const std::string& name) {
  if (stopping_) return Error(ErrorCode::kUnavailable, "storevisord is stopping");
  auto answer = std::make_shared<std::promise<Status>>();
  auto future = answer->get_future();
  Post([this, verb, name, answer](Core& core, int64_t now) {
    if (now == kStopped) {
      answer->set_value(Error(ErrorCode::kUnavailable, "storevisord is stopping"));
      return;
    }
    core.Operator(verb, name, now, [this, answer](Status st) {
      auto shared = std::make_shared<Status>(std::move(st));
      answers_.push_back([answer, shared] { answer->set_value(std::move(*shared)); });
    });
  });
  return future.get();
}

std::shared_ptr<const Snapshot> Owner::snapshot() const {
  std::lock_guard lock(snapshot_mu_);
  return snapshot_;
}

uint64_t Owner::events_written() const {
  std::lock_guard lock(snapshot_mu_);
  return events_written_;
}

uint64_t Owner::WaitEvents(uint64_t seen, int timeout_ms) {
  std::unique_lock lock(snapshot_mu_);
  events_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                      [&] { return events_written_ > seen || stopping_.load(); });
  return events_written_;
}

void Owner::NotifyEvents() {
  {
    std::lock_guard lock(snapshot_mu_);
    ++events_written_;
  }
  events_cv_.notify_all();
}

void Owner::Publish() {
  auto snap = std::make_shared<Snapshot>();
  snap->workloads = core_.observed().workloads;
  snap->generation = core_.desired().generation;
  snap->profile_name = core_.desired().profile.name;
  {
    // The profile is copied once per generation, not once per step.
    std::lock_guard lock(snapshot_mu_);
    snap->profile = snapshot_ && snapshot_->generation == snap->generation && snapshot_->profile
                        ? snapshot_->profile
                        : std::make_shared<const Profile>(core_.desired().profile);
  }
  snap->store_failing = core_.store_failing();
  snap->store_write_failures = core_.store_write_failures();
  bool more_events = false;
  {
    std::lock_guard lock(snapshot_mu_);
    snapshot_ = std::move(snap);
    more_events = core_.events_written() != core_events_;
    events_written_ += core_.events_written() - core_events_;
    core_events_ = core_.events_written();
  }
  if (more_events) events_cv_.notify_all();
}

void Owner::Loop() {
  std::vector<epoll_event> events(64);
  bool first = true;
  while (!stopping_) {
    int64_t now = options_.now_ms();
    const int64_t wait = first ? 0 : std::clamp<int64_t>(core_.WakeAtMs() - now, 0, kMaxSleepMs);
    first = false;
    const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()),
                               static_cast<int>(wait));
    if (stopping_) break;
    now = options_.now_ms();
    for (int i = 0; i < n; ++i) {
      const int fd = events[static_cast<size_t>(i)].data.fd;
      if (fd == wake_.get()) {
        uint64_t count = 0;
        (void)!::read(wake_.get(), &count, sizeof count);
      } else {
        OnPidfd(fd);
      }
    }
    std::deque<Task> tasks;
    {
      std::lock_guard lock(mu_);
      tasks.swap(inbox_);
    }
    for (auto& task : tasks) task(core_, now);
    for (auto& effect : core_.Step(now)) Dispatch(std::move(effect));
    Publish();
    for (auto& answer : std::exchange(answers_, {})) answer();
    if (options_.housekeeping && now >= next_housekeeping_ms_) {
      next_housekeeping_ms_ = now + options_.housekeeping_ms;
      if (!housekeeping_busy_.exchange(true)) {
        auto snap = snapshot();
        workers_.Post([this, snap] {
          options_.housekeeping(*snap);
          housekeeping_busy_ = false;
        });
      }
    }
  }
}

void Owner::OnPidfd(int fd) {
  auto it = watches_.find(fd);
  if (it == watches_.end()) return;
  Observation o;
  o.type = Observation::Type::kProcessEnded;
  o.name = it->second.second.name;
  o.instance = it->second.second.instance;
  o.detail = it->second.second.what;
  (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  watches_.erase(it);  // closes the pidfd
  core_.Observe(o, options_.now_ms());
}

void Owner::Watch(const Effect& effect) {
  for (const auto& p : runner_.WatchPids(effect)) {
    UniqueFd fd = PidfdOpen(p.pid);
    // Gone already, or the pid now names another process: the instance ended.
    const bool same =
        fd.valid() && (p.start_ticks == 0 || ProcessStartTicks(p.pid) == p.start_ticks);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd.get();
    if (!same || ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) {
      Observation o;
      o.type = Observation::Type::kProcessEnded;
      o.name = effect.name;
      o.instance = effect.instance;
      o.detail = p.what;
      core_.Observe(o, options_.now_ms());
      continue;
    }
    const int key = fd.get();
    watches_.emplace(key,
                     std::make_pair(std::move(fd), Watched{effect.name, effect.instance, p.what}));
  }
}

void Owner::Dispatch(Effect effect) {
  if (effect.type == Effect::Type::kWatch) return Watch(effect);
  ThreadPool& pool = effect.type == Effect::Type::kCheck ? probes_ : workers_;
  auto shared = std::make_shared<Effect>(std::move(effect));
  if (shared->type == Effect::Type::kPrune) {
    pool.Post([this, shared] { (void)runner_.Run(*shared); });  // nothing to tell the core
    return;
  }
  pool.Post([this, shared] {
    Observation o = runner_.Run(*shared);
    Post([o = std::move(o)](Core& core, int64_t now) mutable {
      if (now != kStopped) core.Observe(std::move(o), now);
    });
  });
}

}  // namespace storevisor::daemon::core
