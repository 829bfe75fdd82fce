#include "bench/closed_loop.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>
#include <utility>

#include "absl/time/time.h"
#include "bench/proc_stats.h"

namespace bench {

namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t SecondsToNs(double seconds) { return static_cast<int64_t>(seconds * 1e9); }

void SleepUntil(int64_t deadline_ns) {
  const int64_t left = deadline_ns - NowNs();
  if (left > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(left));
}

double CpuSecondsOfThisProcess() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

std::optional<double> ServerCpuSeconds(int pid) {
  if (pid <= 0) return std::nullopt;
  absl::StatusOr<ProcessCpu> cpu = ReadProcessCpu(pid);
  if (!cpu.ok()) {
    std::fprintf(stderr, "server cpu: %s\n", cpu.status().ToString().c_str());
    return std::nullopt;
  }
  return cpu->seconds;
}

}  // namespace

// One outstanding call at a time. `histogram` and `issued_ns` are touched
// only by the slot's current call chain (Done() of call n happens before the
// issue of call n+1, which happens before its Done()); the counters are
// atomics because Run() reads them for progress lines.
struct alignas(64) ClosedLoop::Slot {
  std::atomic<int64_t> completed{0};  // OK calls, warm-up included
  std::atomic<int64_t> errors{0};
  // Set (release) when the slot stops issuing; Run() reads the histogram
  // only after seeing it (acquire).
  std::atomic<bool> stopped{false};
  int64_t issued_ns = 0;
  LatencyHistogram histogram;
};

ClosedLoop::ClosedLoop(const ClosedLoopOptions& options, IssueFn issue)
    : options_(options),
      issue_(std::move(issue)),
      slots_(new Slot[static_cast<size_t>(std::max(options.concurrency, 1))]) {}

ClosedLoop::~ClosedLoop() = default;

int64_t ClosedLoop::Outstanding() const { return outstanding_.load(std::memory_order_acquire); }

void ClosedLoop::Done(int slot, const absl::Status& status) {
  Slot& s = slots_[slot];
  const int64_t now = NowNs();
  if (status.ok()) {
    if (now >= measure_begin_ns_ && now < measure_end_ns_) s.histogram.Record(now - s.issued_ns);
    s.completed.fetch_add(1, std::memory_order_relaxed);
  } else {
    if (s.errors.fetch_add(1, std::memory_order_relaxed) == 0) {
      netpoll::MutexLock lock(&mu_);
      if (first_error_.empty()) first_error_ = status.ToString();
    }
  }
  if (stopping_.load(std::memory_order_acquire)) {
    StopSlot(s);
    return;
  }
  if (options_.think_time_s > 0) {
    netpoll::MutexLock lock(&pace_mu_);
    paced_.push_back({slot, NowNs() + SecondsToNs(options_.think_time_s)});
    pace_cv_.Signal();
    return;
  }
  s.issued_ns = NowNs();
  issue_(slot);
}

void ClosedLoop::StopSlot(Slot& s) {
  s.stopped.store(true, std::memory_order_release);
  // Under mu_, so that Run() cannot see the last decrement, return, and
  // have the ClosedLoop destroyed before this signal is done with it.
  netpoll::MutexLock lock(&mu_);
  if (outstanding_.fetch_sub(1, std::memory_order_acq_rel) == 1) drained_.SignalAll();
}

void ClosedLoop::Pace() {
  while (true) {
    Paced next;
    {
      netpoll::MutexLock lock(&pace_mu_);
      while (paced_.empty() && !pacer_exit_) pace_cv_.Wait(&pace_mu_);
      if (paced_.empty()) return;  // pacer_exit_
      next = paced_.front();
      paced_.pop_front();
    }
    SleepUntil(next.due_ns);
    Slot& s = slots_[next.slot];
    if (stopping_.load(std::memory_order_acquire)) {
      StopSlot(s);
      continue;
    }
    s.issued_ns = NowNs();
    issue_(next.slot);
  }
}

void ClosedLoop::Progress(int64_t until_ns, const char* phase) {
  auto totals = [this] {
    std::pair<int64_t, int64_t> t{0, 0};
    for (int i = 0; i < options_.concurrency; ++i) {
      t.first += slots_[i].completed.load(std::memory_order_relaxed);
      t.second += slots_[i].errors.load(std::memory_order_relaxed);
    }
    return t;
  };
  int64_t last_ns = NowNs();
  auto last = totals();
  while (last_ns < until_ns) {
    SleepUntil(std::min(until_ns, last_ns + 1000000000));
    const int64_t now = NowNs();
    const auto t = totals();
    const double interval = static_cast<double>(now - last_ns) / 1e9;
    if (options_.progress) {
      std::fputs(
          FormatProgress(static_cast<double>(now - start_ns_) / 1e9, phase,
                         interval > 0 ? static_cast<double>(t.first - last.first) / interval : 0.0,
                         t.second, Outstanding())
              .c_str(),
          stderr);
    }
    last_ns = now;
    last = t;
  }
}

LoadResult ClosedLoop::Run() {
  const int concurrency = options_.concurrency;
  start_ns_ = NowNs();
  measure_begin_ns_ = start_ns_ + SecondsToNs(options_.warmup_s);
  measure_end_ns_ = measure_begin_ns_ + SecondsToNs(options_.duration_s);
  outstanding_.store(concurrency, std::memory_order_release);
  std::thread pacer;
  if (options_.think_time_s > 0) pacer = std::thread([this] { Pace(); });
  for (int i = 0; i < concurrency; ++i) {
    slots_[i].issued_ns = NowNs();
    issue_(i);
  }

  Progress(measure_begin_ns_, "warmup");
  const double client_cpu_begin = CpuSecondsOfThisProcess();
  const std::optional<double> server_cpu_begin = ServerCpuSeconds(options_.server_pid);
  const absl::StatusOr<SystemCpu> machine_begin = ReadSystemCpu();
  const int64_t window_begin_ns = NowNs();
  Progress(measure_end_ns_, "measure");
  const double client_cpu_end = CpuSecondsOfThisProcess();
  const std::optional<double> server_cpu_end = ServerCpuSeconds(options_.server_pid);
  const absl::StatusOr<SystemCpu> machine_end = ReadSystemCpu();
  const double window = static_cast<double>(NowNs() - window_begin_ns) / 1e9;
  std::optional<ProcessMemory> memory;
  if (options_.server_pid > 0) {
    absl::StatusOr<ProcessMemory> m = ReadProcessMemory(options_.server_pid);
    if (m.ok()) {
      memory = *m;
    } else {
      std::fprintf(stderr, "server memory: %s\n", m.status().ToString().c_str());
    }
  }

  stopping_.store(true, std::memory_order_release);
  {
    const absl::Time deadline = absl::Now() + absl::Seconds(options_.drain_timeout_s);
    netpoll::MutexLock lock(&mu_);
    while (Outstanding() > 0) {
      if (drained_.WaitWithDeadline(&mu_, deadline)) break;
    }
  }
  if (pacer.joinable()) {
    {
      netpoll::MutexLock lock(&pace_mu_);
      pacer_exit_ = true;
      pace_cv_.Signal();
    }
    pacer.join();
  }

  LoadResult r;
  r.concurrency = concurrency;
  r.warmup_s = options_.warmup_s;
  r.duration_s = options_.duration_s;
  r.undrained = Outstanding();
  LatencyHistogram histogram;
  for (int i = 0; i < concurrency; ++i) {
    Slot& s = slots_[i];
    r.errors += s.errors.load(std::memory_order_relaxed);
    // A slot still in flight may be writing its histogram: skip it.
    if (s.stopped.load(std::memory_order_acquire)) histogram.Merge(s.histogram);
  }
  {
    netpoll::MutexLock lock(&mu_);
    r.first_error = first_error_;
  }
  r.requests = histogram.Count();
  auto us = [&histogram](double percent) {
    return static_cast<double>(histogram.Percentile(percent)) / 1e3;
  };
  r.p50_us = us(50);
  r.p99_us = us(99);
  r.p999_us = us(99.9);
  r.max_us = us(100);
  r.mean_us = histogram.Mean() / 1e3;
  r.window_s = window;
  r.client_cpu_pct = window > 0 ? (client_cpu_end - client_cpu_begin) / window * 100 : 0;
  if (server_cpu_begin && server_cpu_end && window > 0) {
    r.server_cpu_pct = (*server_cpu_end - *server_cpu_begin) / window * 100;
    if (machine_begin.ok() && machine_end.ok()) {
      const double busy_pct =
          (machine_end->busy_seconds - machine_begin->busy_seconds) / window * 100;
      r.others_cpu_pct = std::max(0.0, busy_pct - r.client_cpu_pct - *r.server_cpu_pct);
    }
  }
  if (memory) {
    r.server_peak_rss_kib = memory->peak_rss_kib;
    r.server_rss_kib = memory->rss_kib;
  }
  return r;
}

}  // namespace bench
