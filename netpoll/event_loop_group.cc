#include "netpoll/event_loop_group.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "netpoll/logging.h"
#include "netpoll/mutex.h"

namespace netpoll {

absl::StatusOr<std::unique_ptr<EventLoopGroup>> EventLoopGroup::Create(
    const EventLoopGroupOptions& options) {
  int n = options.num_loops;
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  std::unique_ptr<EventLoopGroup> group(new EventLoopGroup());
  for (int i = 0; i < n; ++i) {
    EventLoopOptions loop_options;
    loop_options.name = absl::StrCat(options.name, "-", i);
    loop_options.busy_poll = options.busy_poll;
    auto loop = EventLoop::Create(loop_options);
    if (!loop.ok()) return loop.status();
    group->loops_.push_back(std::move(*loop));
  }
  for (auto& loop : group->loops_) {
    Notification started;
    EventLoop* raw = loop.get();
    raw->QueueInLoop([&started] { started.Notify(); });
    group->threads_.emplace_back([raw] { raw->Run(); });
    started.WaitForNotification();  // the loop is bound to its thread now
  }
  return group;
}

EventLoopGroup::~EventLoopGroup() { Stop(); }

void EventLoopGroup::Stop() {
  if (stopped_.exchange(true)) return;
  for (auto& loop : loops_) {
    NP_CHECK(!loop->IsInLoopThread()) << "EventLoopGroup stopped from its own loop";
    loop->Stop();
  }
  for (auto& thread : threads_) thread.join();
}

EventLoop* EventLoopGroup::Next() {
  return loops_[next_.fetch_add(1, std::memory_order_relaxed) % loops_.size()].get();
}

EventLoop* EventLoopGroup::LeastLoaded() {
  uint32_t start = next_.fetch_add(1, std::memory_order_relaxed);
  EventLoop* best = nullptr;
  int64_t best_load = 0;
  for (size_t k = 0; k < loops_.size(); ++k) {
    EventLoop* loop = loops_[(start + k) % loops_.size()].get();
    int64_t load = loop->stats().connections_active.load(std::memory_order_relaxed);
    if (best == nullptr || load < best_load) {
      best = loop;
      best_load = load;
    }
  }
  return best;
}

TransportStatsSnapshot EventLoopGroup::Stats() const {
  TransportStatsSnapshot total;
  for (const auto& loop : loops_) total += loop->stats().Snapshot();
  return total;
}

}  // namespace netpoll
