#include "rpc/internal/memory_releaser.h"

#include <malloc.h>

#include <mutex>
#include <utility>

#include "netpoll/link_buffer.h"
#include "netpoll/mutex.h"

namespace nprpc {
namespace {

// Returns free heap pages to the system (glibc; other allocators manage
// their own).
void TrimHeap() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

}  // namespace

MemoryReleaser::MemoryReleaser(netpoll::EventLoopGroup* group,
                               std::shared_ptr<netpoll::MemoryBudget> budget,
                               MemoryReleaserOptions options)
    : group_(group), budget_(std::move(budget)), options_(std::move(options)) {}

MemoryReleaser::~MemoryReleaser() { Stop(); }

void MemoryReleaser::TuneAllocator() {
  static std::once_flag once;
  std::call_once(once, [] {
#ifdef __GLIBC__
    constexpr int kThreshold = 1 << 20;
    mallopt(M_MMAP_THRESHOLD, kThreshold);
    mallopt(M_TRIM_THRESHOLD, kThreshold);
#endif
  });
}

void MemoryReleaser::Start() {
  if (running_) return;
  running_ = true;
  TuneAllocator();
  netpoll::EventLoop* loop = group_->loop(0);
  netpoll::Notification armed;
  loop->RunInLoop([this, loop, &armed] {
    timer_ = loop->RunEvery(options_.interval, [this] { Check(); });
    armed.Notify();
  });
  armed.WaitForNotification();
}

void MemoryReleaser::Stop() {
  if (!running_) return;
  running_ = false;
  netpoll::EventLoop* loop = group_->loop(0);
  netpoll::Notification stopped;
  loop->RunInLoop([this, loop, &stopped] {
    if (timer_ != netpoll::kInvalidTimerId) loop->Cancel(timer_);
    timer_ = netpoll::kInvalidTimerId;
    stopped.Notify();
  });
  stopped.WaitForNotification();
}

void MemoryReleaser::ReleaseNow() {
  netpoll::LinkBuffer::TrimThreadCache();
  TrimHeap();
}

void MemoryReleaser::Check() {
  const int64_t peak = budget_->TakeRecentPeak();
  const int64_t used = budget_->used();
  // A burst ended: the peak since the last check was large, and most of it
  // is gone.
  const bool burst_ended = peak >= options_.burst_bytes && used <= peak / 4;
  if (!burst_ended) {
    if (trims_left_ > 0) {
      --trims_left_;
      TrimHeap();  // what the workers' idle trims freed since
    }
    return;
  }
  releases_.fetch_add(1, std::memory_order_relaxed);
  if (options_.on_release) options_.on_release();
  trims_left_ = 2;
  for (int i = 1; i < group_->size(); ++i) {
    group_->loop(i)->QueueInLoop([] { netpoll::LinkBuffer::TrimThreadCache(); });
  }
  ReleaseNow();
}

}  // namespace nprpc
