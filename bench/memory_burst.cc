// memory_burst: how much memory an echo server holds after a burst of large
// calls, and how fast it gives it back (issue 12, "give memory back").
//
// Against example.EchoService/Echo at --server (loopback only), with
// --server_pid, it samples the server's VmRSS (/proc/<pid>/status) every
// --sample_ms and runs these phases:
//
//   connect   --burst_connections channels (one connection each, "single"),
//             one 16 B call on each, so the connections exist before the
//             baseline;
//   baseline  --baseline_seconds idle; baseline = the last sample;
//   burst     every connection keeps --burst_in_flight calls of
//             --burst_bytes in flight (closed loop: each answer, read and
//             checked as usual, issues the next call) for --burst_seconds;
//             then no new calls, and the burst ends when every answer is in;
//   after     --after_seconds idle (the connections stay open unless
//             --close_after_burst), sampling on.
//
// It prints one JSON line on stdout: the RSS before connecting, the baseline,
// the sampled peak and the server's VmHWM, the RSS when the burst's last
// answer came in and --after_points seconds after that, how long the RSS
// took to come within --near_idle_kib of the baseline (-1: not within
// --after_seconds), and the burst's completed and failed calls. Progress goes
// to stderr (--trace: every sample).
//
//   memory_burst --server=127.0.0.1:41234 --server_pid=1234
//       --burst_connections=64 --burst_in_flight=32 --burst_bytes=65536
//       --burst_seconds=3 --after_seconds=10
//
// --signal_after_burst=N sends signal N to the server when the burst's last
// answer is in (bench/malloc_trim_shim.cc trims once on SIGUSR1). Bounded:
// every phase has a fixed length, every call a deadline (--timeout_ms), and
// the tool gives up on a burst whose answers are not in by that deadline
// plus 5 s. See bench/run_memory_burst.sh for the allocator comparison.
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "bench/proc_stats.h"
#include "bench/socket_util.h"
#include "netpoll/mutex.h"
#include "proto/echo.pb.h"
#include "rpc/call_options.h"
#include "rpc/channel.h"

ABSL_FLAG(std::string, server, "127.0.0.1:8000", "echo server, loopback host:port");
ABSL_FLAG(int, server_pid, 0, "server process whose VmRSS is sampled (required)");
ABSL_FLAG(double, baseline_seconds, 2, "idle seconds after connecting, before the burst");
ABSL_FLAG(int, burst_connections, 64, "connections (one channel each) used by the burst");
ABSL_FLAG(int, burst_in_flight, 32, "calls in flight per connection during the burst");
ABSL_FLAG(int, burst_bytes, 65536, "request message bytes of a burst call (echoed back)");
ABSL_FLAG(double, burst_seconds, 3, "seconds during which the burst issues calls");
ABSL_FLAG(double, after_seconds, 10, "idle seconds sampled after the burst's last answer");
ABSL_FLAG(std::string, after_points, "1,2,5,10",
          "seconds after the burst whose RSS is reported (those <= --after_seconds)");
ABSL_FLAG(int, sample_ms, 100, "VmRSS sampling period in milliseconds");
ABSL_FLAG(int, timeout_ms, 10000, "per-call deadline in milliseconds");
ABSL_FLAG(bool, close_after_burst, false,
          "close the connections when the burst's answers are in (default: keep them open, idle)");
ABSL_FLAG(int, near_idle_kib, 4096,
          "RSS within this many KiB of the baseline counts as back near idle");
ABSL_FLAG(int, signal_after_burst, 0,
          "signal sent to --server_pid when the burst's last answer is in (0: none)");
ABSL_FLAG(std::string, label, "", "copied into the output line (e.g. the allocator variant)");
ABSL_FLAG(bool, trace, false, "print every sample on stderr");

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kMaxConnections = 1024;
constexpr int kMaxInFlight = 1024;
constexpr int kMaxCalls = 65536;                  // connections x in flight
constexpr int kMaxBytes = 16 << 20;               // per call
constexpr int64_t kMaxBytesInFlight = 4LL << 30;  // connections x in flight x bytes
constexpr double kMaxSeconds = 600;

struct Sample {
  int64_t t_ms = 0;  // since the tool started
  int64_t rss_kib = 0;
};

// Samples the server's VmRSS every period on its own thread.
class RssSampler {
 public:
  RssSampler(pid_t pid, int period_ms, bool trace, Clock::time_point start)
      : pid_(pid), period_(std::chrono::milliseconds(period_ms)), trace_(trace), start_(start) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~RssSampler() { Stop(); }
  RssSampler(const RssSampler&) = delete;
  RssSampler& operator=(const RssSampler&) = delete;

  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  std::vector<Sample> samples() {
    netpoll::MutexLock lock(&mu_);
    return samples_;
  }
  int read_errors() const { return read_errors_.load(); }

 private:
  void Loop() {
    Clock::time_point next = Clock::now();
    while (!stop_.load()) {
      absl::StatusOr<bench::ProcessMemory> mem = bench::ReadProcessMemory(pid_);
      const int64_t t_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start_).count();
      if (mem.ok()) {
        if (trace_) {
          std::fprintf(stderr, "sample t=%lld ms rss=%lld KiB\n", static_cast<long long>(t_ms),
                       static_cast<long long>(mem->rss_kib));
        }
        netpoll::MutexLock lock(&mu_);
        samples_.push_back({t_ms, mem->rss_kib});
      } else {
        read_errors_.fetch_add(1);
      }
      next += period_;
      std::this_thread::sleep_until(next);
    }
  }

  const pid_t pid_;
  const Clock::duration period_;
  const bool trace_;
  const Clock::time_point start_;
  std::atomic<bool> stop_{false};
  std::atomic<int> read_errors_{0};
  netpoll::Mutex mu_;
  std::vector<Sample> samples_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// The burst: connections x in_flight closed-loop slots.
class Burst {
 public:
  Burst(std::vector<std::unique_ptr<nprpc::Channel>>* channels, int in_flight,
        const example::EchoRequest* request)
      : channels_(channels),
        in_flight_(in_flight),
        request_(request),
        responses_(channels->size() * static_cast<size_t>(in_flight)) {}

  void Start() {
    for (size_t slot = 0; slot < responses_.size(); ++slot) {
      outstanding_.fetch_add(1);
      Issue(slot);
    }
  }
  // No new calls from now on; the outstanding ones complete as usual.
  void StopIssuing() { stopping_.store(true); }
  int64_t outstanding() const { return outstanding_.load(); }
  int64_t ok() const { return ok_.load(); }
  int64_t failed() const { return failed_.load(); }
  std::string first_error() {
    netpoll::MutexLock lock(&mu_);
    return first_error_;
  }

 private:
  void Issue(size_t slot) {
    example::EchoResponse* response = &responses_[slot];
    response->Clear();
    (*channels_)[slot / static_cast<size_t>(in_flight_)]->CallMethod(
        "example.EchoService", "Echo", *request_, response, nprpc::CallOptions(),
        [this, slot, response](absl::Status status) {
          if (status.ok() && response->message() != request_->message()) {
            status = absl::DataLossError("echoed message differs from the request");
          }
          if (status.ok()) {
            ok_.fetch_add(1);
          } else {
            failed_.fetch_add(1);
            netpoll::MutexLock lock(&mu_);
            if (first_error_.empty()) first_error_ = status.ToString();
          }
          if (stopping_.load()) {
            outstanding_.fetch_sub(1);
          } else {
            Issue(slot);  // the slot's next call
          }
        });
  }

  std::vector<std::unique_ptr<nprpc::Channel>>* const channels_;
  const int in_flight_;
  const example::EchoRequest* const request_;
  std::vector<example::EchoResponse> responses_;  // one per slot
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> outstanding_{0};
  std::atomic<int64_t> ok_{0};
  std::atomic<int64_t> failed_{0};
  netpoll::Mutex mu_;
  std::string first_error_ ABSL_GUARDED_BY(mu_);
};

std::string PayloadOf(int size) {
  std::string s(static_cast<size_t>(size), '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>('a' + (i * 7) % 26);
  return s;
}

bool ValidSeconds(double s, bool zero_ok) { return (zero_ok ? s >= 0 : s > 0) && s <= kMaxSeconds; }

int64_t MsSince(Clock::time_point start, Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t - start).count();
}

// The first sample at or after t_ms; null if none.
const Sample* FirstAtOrAfter(const std::vector<Sample>& samples, int64_t t_ms) {
  for (const Sample& s : samples) {
    if (s.t_ms >= t_ms) return &s;
  }
  return nullptr;
}

// The last sample at or before t_ms; null if none.
const Sample* LastAtOrBefore(const std::vector<Sample>& samples, int64_t t_ms) {
  const Sample* found = nullptr;
  for (const Sample& s : samples) {
    if (s.t_ms > t_ms) break;
    found = &s;
  }
  return found;
}

int Fail(const std::string& message, int code = 2) {
  std::fprintf(stderr, "memory_burst: %s\n", message.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  signal(SIGPIPE, SIG_IGN);

  const std::string server = absl::GetFlag(FLAGS_server);
  const int pid = absl::GetFlag(FLAGS_server_pid);
  const double baseline_s = absl::GetFlag(FLAGS_baseline_seconds);
  const int connections = absl::GetFlag(FLAGS_burst_connections);
  const int in_flight = absl::GetFlag(FLAGS_burst_in_flight);
  const int bytes = absl::GetFlag(FLAGS_burst_bytes);
  const double burst_s = absl::GetFlag(FLAGS_burst_seconds);
  const double after_s = absl::GetFlag(FLAGS_after_seconds);
  const int sample_ms = absl::GetFlag(FLAGS_sample_ms);
  const int timeout_ms = absl::GetFlag(FLAGS_timeout_ms);
  const int near_idle_kib = absl::GetFlag(FLAGS_near_idle_kib);
  const int sig = absl::GetFlag(FLAGS_signal_after_burst);

  if (absl::StatusOr<sockaddr_in> addr = bench::ParseLoopbackAddress(server); !addr.ok()) {
    return Fail(addr.status().ToString());
  }
  if (pid <= 0) return Fail("--server_pid is required");
  if (connections < 1 || connections > kMaxConnections) {
    return Fail(absl::StrCat("--burst_connections must be in [1, ", kMaxConnections, "]"));
  }
  if (in_flight < 1 || in_flight > kMaxInFlight) {
    return Fail(absl::StrCat("--burst_in_flight must be in [1, ", kMaxInFlight, "]"));
  }
  if (connections * in_flight > kMaxCalls) {
    return Fail(absl::StrCat("--burst_connections x --burst_in_flight must be <= ", kMaxCalls));
  }
  if (bytes < 0 || bytes > kMaxBytes) {
    return Fail(absl::StrCat("--burst_bytes must be in [0, ", kMaxBytes, "]"));
  }
  if (int64_t{connections} * in_flight * bytes > kMaxBytesInFlight) {
    return Fail("more than 4 GiB in flight: lower --burst_in_flight or --burst_bytes");
  }
  if (!ValidSeconds(baseline_s, true) || !ValidSeconds(burst_s, false) ||
      !ValidSeconds(after_s, false)) {
    return Fail(absl::StrCat("--baseline_seconds must be in [0, ", kMaxSeconds,
                             "], --burst_seconds and --after_seconds in (0, ", kMaxSeconds, "]"));
  }
  if (sample_ms < 10 || sample_ms > 10000) return Fail("--sample_ms must be in [10, 10000]");
  if (timeout_ms < 1 || timeout_ms > 600000) return Fail("--timeout_ms must be in [1, 600000]");
  if (near_idle_kib < 0) return Fail("--near_idle_kib must be >= 0");
  if (sig < 0 || sig >= NSIG) return Fail("--signal_after_burst must be a signal number");
  std::vector<int> after_points;
  for (absl::string_view part :
       absl::StrSplit(absl::GetFlag(FLAGS_after_points), ',', absl::SkipWhitespace())) {
    int p = 0;
    if (!absl::SimpleAtoi(part, &p) || p < 0) {
      return Fail("--after_points must be a comma-separated list of whole seconds");
    }
    if (p <= after_s) after_points.push_back(p);
  }

  absl::StatusOr<bench::ProcessMemory> start_mem = bench::ReadProcessMemory(pid);
  if (!start_mem.ok()) return Fail(start_mem.status().ToString());

  const Clock::time_point start = Clock::now();
  RssSampler sampler(pid, sample_ms, absl::GetFlag(FLAGS_trace), start);

  // Connect: one channel (one connection) per burst connection, one small
  // call on each.
  nprpc::ChannelOptions options;
  options.timeout = absl::Milliseconds(timeout_ms);
  std::vector<std::unique_ptr<nprpc::Channel>> channels;
  example::EchoRequest hello;
  hello.set_message(PayloadOf(16));
  for (int i = 0; i < connections; ++i) {
    absl::StatusOr<std::unique_ptr<nprpc::Channel>> channel =
        nprpc::Channel::Create(server, options);
    if (!channel.ok()) return Fail(channel.status().ToString());
    example::EchoResponse response;
    absl::Status s = (*channel)->CallMethod("example.EchoService", "Echo", hello, &response);
    if (!s.ok()) return Fail(absl::StrCat("connect call ", i, ": ", s.ToString()), 1);
    channels.push_back(*std::move(channel));
  }
  const Clock::time_point connected = Clock::now();
  std::fprintf(stderr, "memory_burst: %d connections up in %lld ms; %.1f s idle baseline\n",
               connections, static_cast<long long>(MsSince(start, connected)), baseline_s);

  std::this_thread::sleep_for(std::chrono::duration<double>(baseline_s));

  // Burst.
  example::EchoRequest request;
  request.set_message(PayloadOf(bytes));
  Burst burst(&channels, in_flight, &request);
  const Clock::time_point burst_start = Clock::now();
  std::fprintf(stderr, "memory_burst: burst: %d connections x %d calls of %d B for %.1f s\n",
               connections, in_flight, bytes, burst_s);
  burst.Start();
  std::this_thread::sleep_until(burst_start + std::chrono::duration_cast<Clock::duration>(
                                                  std::chrono::duration<double>(burst_s)));
  burst.StopIssuing();
  const Clock::time_point stop_issuing = Clock::now();
  const Clock::time_point drain_deadline =
      stop_issuing + std::chrono::milliseconds(timeout_ms) + std::chrono::seconds(5);
  while (burst.outstanding() > 0 && Clock::now() < drain_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const Clock::time_point drained = Clock::now();
  if (burst.outstanding() > 0) {
    sampler.Stop();
    std::fprintf(stderr, "memory_burst: %lld calls still outstanding %lld ms after the burst\n",
                 static_cast<long long>(burst.outstanding()),
                 static_cast<long long>(MsSince(stop_issuing, drained)));
    std::fflush(nullptr);
    _exit(1);  // calls still refer to the burst and the channels
  }
  std::fprintf(stderr, "memory_burst: burst done: %lld ok, %lld failed, drained in %lld ms\n",
               static_cast<long long>(burst.ok()), static_cast<long long>(burst.failed()),
               static_cast<long long>(MsSince(stop_issuing, drained)));
  if (burst.failed() > 0) {
    std::fprintf(stderr, "memory_burst: first failure: %s\n", burst.first_error().c_str());
  }
  if (absl::GetFlag(FLAGS_close_after_burst)) channels.clear();
  if (sig > 0 && kill(pid, sig) != 0) {
    std::perror("memory_burst: kill --server_pid");
  }

  // After: idle, sampled, until one period past the last point.
  std::this_thread::sleep_until(
      drained +
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(after_s)) +
      std::chrono::milliseconds(sample_ms));
  sampler.Stop();
  absl::StatusOr<bench::ProcessMemory> end_mem = bench::ReadProcessMemory(pid);
  if (!end_mem.ok()) return Fail(end_mem.status().ToString(), 1);

  const std::vector<Sample> samples = sampler.samples();
  const int64_t burst_start_ms = MsSince(start, burst_start);
  const int64_t drained_ms = MsSince(start, drained);
  const Sample* baseline = LastAtOrBefore(samples, burst_start_ms);
  const Sample* at_drain = FirstAtOrAfter(samples, drained_ms);
  if (baseline == nullptr || at_drain == nullptr) return Fail("too few samples", 1);
  int64_t peak = 0;
  for (const Sample& s : samples) peak = std::max(peak, s.rss_kib);
  int64_t near_idle_ms = -1;
  for (const Sample& s : samples) {
    if (s.t_ms >= drained_ms && s.rss_kib <= baseline->rss_kib + near_idle_kib) {
      near_idle_ms = s.t_ms - drained_ms;
      break;
    }
  }

  std::string line = absl::StrFormat(
      "{\"tool\":\"memory_burst\",\"label\":\"%s\",\"server\":\"%s\",\"server_pid\":%d,"
      "\"burst_connections\":%d,\"burst_in_flight\":%d,\"burst_bytes\":%d,"
      "\"burst_seconds\":%g,\"after_seconds\":%g,\"close_after_burst\":%s,"
      "\"signal_after_burst\":%d,\"sample_ms\":%d,"
      "\"start_rss_kib\":%d,\"baseline_rss_kib\":%d,\"peak_rss_kib\":%d,\"hwm_kib\":%d,"
      "\"drained_rss_kib\":%d",
      absl::GetFlag(FLAGS_label), server, pid, connections, in_flight, bytes, burst_s, after_s,
      absl::GetFlag(FLAGS_close_after_burst) ? "true" : "false", sig, sample_ms, start_mem->rss_kib,
      baseline->rss_kib, peak, end_mem->peak_rss_kib, at_drain->rss_kib);
  for (int p : after_points) {
    const Sample* s = FirstAtOrAfter(samples, drained_ms + int64_t{p} * 1000);
    absl::StrAppend(&line, ",\"rss_after_", p, "s_kib\":", s ? absl::StrCat(s->rss_kib) : "null");
  }
  const double burst_wall_s = std::chrono::duration<double>(drained - burst_start).count();
  absl::StrAppendFormat(
      &line,
      ",\"near_idle_kib\":%d,\"near_idle_after_ms\":%d,\"burst_ok\":%d,\"burst_failed\":%d,"
      "\"burst_qps\":%.0f,\"drain_ms\":%d,\"samples\":%d,\"sample_errors\":%d}",
      near_idle_kib, near_idle_ms, burst.ok(), burst.failed(),
      burst_wall_s > 0 ? static_cast<double>(burst.ok()) / burst_wall_s : 0.0,
      MsSince(stop_issuing, drained), samples.size(), sampler.read_errors());
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  return burst.ok() > 0 && burst.failed() == 0 ? 0 : 1;
}
