// ClosedLoop: the load model of rpc_bench and grpc_bench. `concurrency` slots
// each keep exactly one asynchronous call outstanding: when a slot's call
// completes, its latency is recorded and the slot issues the next call at
// once, from the completing thread (with a think time, after that pause, from
// ClosedLoop's pacer thread: a paced, lighter load). ClosedLoop owns the timing (warm-up, then
// the measured window), per-slot latency histograms, a progress line per
// second on stderr, the CPU and memory readings, and the LoadResult; the
// caller owns the RPC library and says how one call is issued.
//
//   bench::ClosedLoop* loop = nullptr;
//   bench::ClosedLoop driver(options, [&](int slot) {
//     stub->Echo(..., [&, slot](Status s) { loop->Done(slot, ToAbsl(s)); });
//   });
//   loop = &driver;
//   bench::LoadResult result = driver.Run();
//
// Ownership and lifetime: if Run() returns with result.undrained > 0, calls
// are still outstanding and may call Done() later, so the ClosedLoop must not
// be destroyed (print and exit instead).
//
// Thread safety: Done() is safe from any thread, concurrently for different
// slots. A slot's calls follow one another (the next is issued by the
// previous one's Done()), so a slot's state needs no lock. Run() is called
// once, by one thread.
#ifndef BENCH_CLOSED_LOOP_H_
#define BENCH_CLOSED_LOOP_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "bench/histogram.h"
#include "bench/load_report.h"
#include "netpoll/mutex.h"

namespace bench {

struct ClosedLoopOptions {
  int concurrency = 1;
  double warmup_s = 1;
  double duration_s = 5;
  // Server process to read CPU and RSS from (0: none).
  int server_pid = 0;
  // How long Run() waits after the window for outstanding calls to finish.
  // Calls carry their own deadline, so this only matters if one is lost.
  double drain_timeout_s = 10;
  // Progress lines on stderr.
  bool progress = true;
  // Pause between a slot's completion and its next call; 0: none. Paced
  // calls are issued from a pacer thread; latency excludes the pause.
  double think_time_s = 0;
};

class ClosedLoop {
 public:
  // Starts one call for `slot` (in [0, concurrency)) without blocking. Its
  // completion must call Done(slot, status) exactly once, on any thread but
  // not from inside this function (Done() issues the next call, so an inline
  // completion would recurse without bound).
  using IssueFn = std::function<void(int slot)>;

  ClosedLoop(const ClosedLoopOptions& options, IssueFn issue);
  ~ClosedLoop();
  ClosedLoop(const ClosedLoop&) = delete;
  ClosedLoop& operator=(const ClosedLoop&) = delete;

  // Issues every slot's first call, runs warm-up and the measured window,
  // stops issuing, waits (bounded) for outstanding calls, and returns what
  // was measured. Fills concurrency, warmup_s, duration_s and every
  // measurement; the caller fills tool, server, connection_type, channels
  // and payload.
  LoadResult Run();

  // The completion of `slot`'s current call: records it (latency if OK and
  // inside the window; an error otherwise) and issues the slot's next call
  // unless the run is over.
  void Done(int slot, const absl::Status& status);

 private:
  struct Slot;

  int64_t Outstanding() const;
  void Progress(int64_t until_ns, const char* phase);
  // The slot issues no more calls: counts it out of outstanding_.
  void StopSlot(Slot& s);
  // The pacer thread (think_time_s > 0): issues each queued slot's next call
  // when its pause is over.
  void Pace();

  // Constant after construction.
  const ClosedLoopOptions options_;
  const IssueFn issue_;
  const std::unique_ptr<Slot[]> slots_;
  // Written by Run() before the first call is issued.
  int64_t start_ns_ = 0;
  int64_t measure_begin_ns_ = 0;
  int64_t measure_end_ns_ = 0;

  std::atomic<bool> stopping_{false};
  // Slots whose call is in flight (re-issuing keeps the count).
  std::atomic<int64_t> outstanding_{0};

  netpoll::Mutex mu_;
  netpoll::CondVar drained_;  // signalled when outstanding_ reaches 0
  std::string first_error_ ABSL_GUARDED_BY(mu_);

  // Slots waiting out their think time, in due order (one pause for all).
  struct Paced {
    int slot;
    int64_t due_ns;
  };
  netpoll::Mutex pace_mu_;
  netpoll::CondVar pace_cv_;
  std::deque<Paced> paced_ ABSL_GUARDED_BY(pace_mu_);
  bool pacer_exit_ ABSL_GUARDED_BY(pace_mu_) = false;
};

}  // namespace bench

#endif  // BENCH_CLOSED_LOOP_H_
