// echo_load: a closed-loop echo load generator for the transport benchmarks.
//
// Each of --connections connections has exactly one request outstanding: send
// --payload bytes, wait for the whole echo, check every byte, record the
// latency, send the next one. --threads client threads each run their own
// epoll loop over their share of the (non-blocking) connections. After
// --warmup seconds, --duration seconds are measured; the program then stops by
// itself and prints QPS, latency percentiles, errors, its own CPU time and,
// with --server_pid, the server's CPU time and resident memory.
//
//   echo_load --server=127.0.0.1:41234 --connections=128 --payload=16
//             --duration=5 --warmup=1 --server_pid=1234 [--json]
//
// --idle_connections=N instead opens N connections, sends nothing, holds them
// for --duration seconds and reports the server's RSS before and after, to
// measure the server's memory per idle connection.
//
// Errors (counted, never fatal): failed connects, a connection closed or reset
// by the server, and echoed bytes that differ from the ones sent. A connection
// with an error is closed and not reopened, so errors also lower the load.
//
// Talks to loopback (127.0.0.0/8) only.
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/histogram.h"
#include "bench/proc_stats.h"
#include "bench/socket_util.h"
#include "netpoll/logging.h"
#include "netpoll/mutex.h"

ABSL_FLAG(std::string, server, "127.0.0.1:8000", "echo server, loopback host:port");
ABSL_FLAG(int, connections, 16, "connections, each with one request outstanding");
ABSL_FLAG(int, payload, 16, "request size in bytes");
ABSL_FLAG(double, duration, 5, "measured seconds (idle mode: seconds to hold the connections)");
ABSL_FLAG(double, warmup, 1, "seconds of load before measuring");
ABSL_FLAG(int, threads, 1, "client threads, each with its own epoll loop");
ABSL_FLAG(int, server_pid, 0, "server process to report CPU and RSS for (0: none)");
ABSL_FLAG(bool, json, false, "print one JSON line instead of the human-readable report");
ABSL_FLAG(int, idle_connections, 0, "idle mode: open this many connections and send nothing");
ABSL_FLAG(double, connect_timeout, 15, "seconds allowed for all connections to be established");

namespace {

constexpr int kMaxConnections = 100000;
constexpr int kMaxPayload = 16 << 20;
constexpr double kMaxSeconds = 3600;
constexpr size_t kReceiveBufferSize = 64 * 1024;
constexpr int kMaxEvents = 256;
// Workers look at the clock and the stop flag at least this often.
constexpr int kPollTimeoutMs = 50;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t SecondsToNs(double seconds) { return static_cast<int64_t>(seconds * 1e9); }

double CpuSecondsOfThisProcess() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// What every request carries: the first min(8, payload) bytes are a per-request
// header (connection id and sequence number mixed), the rest a fixed pattern,
// so an echo of a stale or foreign request is detected.
class Payload {
 public:
  explicit Payload(size_t size) : size_(size), body_(size) {
    for (size_t i = 0; i < size; ++i) body_[i] = static_cast<char>((i * 131 + 7) & 0xff);
  }
  size_t size() const { return size_; }
  size_t header_size() const { return std::min<size_t>(sizeof(uint64_t), size_); }
  const char* body() const { return body_.data(); }
  static uint64_t Header(uint32_t connection, uint64_t sequence) {
    return sequence * 0x9E3779B97F4A7C15ull + connection;
  }

 private:
  const size_t size_;
  std::vector<char> body_;  // bytes [header_size(), size) are sent from here
};

// Set by the main thread, read by the workers.
struct Control {
  netpoll::Notification start;               // connecting is over; begin sending
  std::atomic<bool> stop{false};             // close everything and return
  std::atomic<int64_t> measure_begin_ns{0};  // written before `start`
  std::atomic<int64_t> measure_end_ns{0};
};

// Written by one worker, read by the main thread for progress lines.
struct alignas(64) WorkerCounters {
  std::atomic<int64_t> completed{0};  // echoes received, warm-up included
  std::atomic<int64_t> connected{0};
  std::atomic<int64_t> connect_errors{0};
  std::atomic<int64_t> io_errors{0};   // closed or reset by the server
  std::atomic<int64_t> mismatches{0};  // echoed bytes differ from the request
  std::atomic<bool> connecting_done{false};
};

// One client thread: connects its share of the connections, then drives them
// in a closed loop (or holds them idle) until told to stop.
class Worker {
 public:
  Worker(const sockaddr_in& server, const std::vector<uint32_t>& ids, const Payload* payload,
         bool idle, int64_t connect_deadline_ns, Control* control)
      : server_(server),
        payload_(payload),
        idle_(idle),
        connect_deadline_ns_(connect_deadline_ns),
        control_(control),
        receive_buffer_(new char[kReceiveBufferSize]) {
    connections_.reserve(ids.size());
    for (uint32_t id : ids) connections_.push_back(Connection{.id = id});
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void Run() {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    NP_CHECK(epoll_fd_ >= 0) << bench::ErrnoStatus("epoll_create1");
    ConnectAll();
    counters_.connecting_done.store(true, std::memory_order_release);
    control_->start.WaitForNotification();
    measure_begin_ns_ = control_->measure_begin_ns.load(std::memory_order_relaxed);
    measure_end_ns_ = control_->measure_end_ns.load(std::memory_order_relaxed);
    if (!idle_) {
      const int64_t now = NowNs();
      for (size_t i = 0; i < connections_.size(); ++i) {
        if (connections_[i].fd >= 0) SendRequest(i, now);
      }
    }
    Loop();
    for (Connection& c : connections_) {
      if (c.fd >= 0) close(c.fd);
    }
    close(epoll_fd_);
  }

  WorkerCounters& counters() { return counters_; }
  // Only after Run() has returned.
  const bench::LatencyHistogram& histogram() const { return histogram_; }

 private:
  struct Connection {
    uint32_t id = 0;
    int fd = -1;
    uint64_t sequence = 0;
    size_t sent = 0;      // bytes of the current request written
    size_t received = 0;  // bytes of the current echo checked
    int64_t sent_at_ns = 0;
    uint32_t interest = 0;  // current epoll events
    char header[sizeof(uint64_t)] = {};
  };

  void SetInterest(size_t index, uint32_t events) {
    Connection& c = connections_[index];
    if (c.interest == events) return;
    epoll_event event{};
    event.events = events;
    event.data.u64 = index;
    NP_CHECK(epoll_ctl(epoll_fd_, c.interest == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c.fd, &event) ==
             0)
        << bench::ErrnoStatus("epoll_ctl");
    c.interest = events;
  }

  void Fail(size_t index, std::atomic<int64_t>* counter) {
    Connection& c = connections_[index];
    counter->fetch_add(1, std::memory_order_relaxed);
    close(c.fd);  // also leaves the epoll set
    c.fd = -1;
    c.interest = 0;
  }

  // One line per worker is enough: the rest are counted.
  void LogFirstConnectError(const absl::Status& status) {
    if (logged_connect_error_) return;
    logged_connect_error_ = true;
    NP_LOG(ERROR) << status << " (further connect errors are only counted)";
  }

  // Starts every connect, then waits until each has succeeded or failed, or
  // the deadline passed.
  void ConnectAll() {
    size_t pending = 0;
    for (size_t i = 0; i < connections_.size(); ++i) {
      Connection& c = connections_[i];
      c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (c.fd < 0) {
        LogFirstConnectError(bench::ErrnoStatus("socket"));
        counters_.connect_errors.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      (void)bench::SetNoDelay(c.fd);
      if (connect(c.fd, reinterpret_cast<const sockaddr*>(&server_), sizeof(server_)) == 0) {
        counters_.connected.fetch_add(1, std::memory_order_relaxed);
        SetInterest(i, EPOLLIN);
      } else if (errno == EINPROGRESS) {
        SetInterest(i, EPOLLOUT);
        ++pending;
      } else {
        LogFirstConnectError(bench::ErrnoStatus("connect"));
        Fail(i, &counters_.connect_errors);
      }
    }
    epoll_event events[kMaxEvents];
    while (pending > 0) {
      const int64_t left_ms = (connect_deadline_ns_ - NowNs()) / 1000000;
      if (left_ms <= 0) break;
      const int n = epoll_wait(epoll_fd_, events, kMaxEvents, static_cast<int>(left_ms));
      for (int k = 0; k < n; ++k) {
        const size_t i = events[k].data.u64;
        if (connections_[i].interest != EPOLLOUT) continue;  // already established
        --pending;
        int error = 0;
        socklen_t len = sizeof(error);
        getsockopt(connections_[i].fd, SOL_SOCKET, SO_ERROR, &error, &len);
        if (error != 0) {
          errno = error;
          LogFirstConnectError(bench::ErrnoStatus("connect"));
          Fail(i, &counters_.connect_errors);
          continue;
        }
        counters_.connected.fetch_add(1, std::memory_order_relaxed);
        SetInterest(i, EPOLLIN);
      }
    }
    for (size_t i = 0; i < connections_.size(); ++i) {
      if (connections_[i].fd >= 0 && connections_[i].interest == EPOLLOUT) {
        Fail(i, &counters_.connect_errors);  // timed out
      }
    }
  }

  void SendRequest(size_t index, int64_t now_ns) {
    Connection& c = connections_[index];
    const uint64_t header = Payload::Header(c.id, ++c.sequence);
    std::memcpy(c.header, &header, sizeof(header));
    c.sent = 0;
    c.received = 0;
    c.sent_at_ns = now_ns;
    Write(index);
  }

  // Writes what is left of the current request; waits for EPOLLOUT if the
  // socket is full (still reading, so a server that echoes early never stalls).
  void Write(size_t index) {
    Connection& c = connections_[index];
    const size_t header_size = payload_->header_size();
    while (c.sent < payload_->size()) {
      iovec iov[2];
      int count = 0;
      if (c.sent < header_size) {
        iov[count++] = {c.header + c.sent, header_size - c.sent};
      }
      const size_t body_from = std::max(c.sent, header_size);
      if (body_from < payload_->size()) {
        iov[count++] = {const_cast<char*>(payload_->body()) + body_from,
                        payload_->size() - body_from};
      }
      const ssize_t n = writev(c.fd, iov, count);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) break;
        Fail(index, &counters_.io_errors);
        return;
      }
      c.sent += static_cast<size_t>(n);
    }
    SetInterest(index, c.sent < payload_->size() ? (EPOLLIN | EPOLLOUT) : EPOLLIN);
  }

  // Reads no more than the rest of the current echo, checks it, and on the last
  // byte records the latency and sends the next request.
  void Read(size_t index) {
    Connection& c = connections_[index];
    const size_t want = std::min(kReceiveBufferSize, payload_->size() - c.received);
    const ssize_t n = read(c.fd, receive_buffer_.get(), want);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
      Fail(index, &counters_.io_errors);
      return;
    }
    if (!Matches(c, receive_buffer_.get(), static_cast<size_t>(n))) {
      Fail(index, &counters_.mismatches);
      return;
    }
    c.received += static_cast<size_t>(n);
    if (c.received < payload_->size()) return;
    if (c.sent < payload_->size()) {  // an echo of bytes we never sent
      Fail(index, &counters_.mismatches);
      return;
    }
    const int64_t now = NowNs();
    if (now >= measure_begin_ns_ && now < measure_end_ns_) histogram_.Record(now - c.sent_at_ns);
    counters_.completed.fetch_add(1, std::memory_order_relaxed);
    SendRequest(index, now);
  }

  bool Matches(const Connection& c, const char* data, size_t size) const {
    const size_t header_size = payload_->header_size();
    size_t offset = c.received;
    size_t i = 0;
    for (; i < size && offset < header_size; ++i, ++offset) {
      if (data[i] != c.header[offset]) return false;
    }
    return i == size || std::memcmp(data + i, payload_->body() + offset, size - i) == 0;
  }

  void Loop() {
    epoll_event events[kMaxEvents];
    while (!control_->stop.load(std::memory_order_relaxed) && NowNs() < measure_end_ns_) {
      const int n = epoll_wait(epoll_fd_, events, kMaxEvents, kPollTimeoutMs);
      for (int k = 0; k < n; ++k) {
        const size_t i = events[k].data.u64;
        if (connections_[i].fd < 0) continue;  // failed earlier in this batch
        if (idle_) {
          // An idle connection must stay silent: data, EOF or reset are errors.
          Fail(i, &counters_.io_errors);
          continue;
        }
        if (events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) Read(i);
        if (connections_[i].fd >= 0 && (events[k].events & EPOLLOUT)) Write(i);
      }
    }
  }

  const sockaddr_in server_;
  const Payload* const payload_;  // not owned; shared by all workers
  const bool idle_;
  const int64_t connect_deadline_ns_;
  Control* const control_;  // not owned
  std::unique_ptr<char[]> receive_buffer_;
  int epoll_fd_ = -1;
  bool logged_connect_error_ = false;
  int64_t measure_begin_ns_ = 0;
  int64_t measure_end_ns_ = 0;
  std::vector<Connection> connections_;
  bench::LatencyHistogram histogram_;
  WorkerCounters counters_;
};

struct Totals {
  int64_t completed = 0;
  int64_t connected = 0;
  int64_t connect_errors = 0;
  int64_t io_errors = 0;
  int64_t mismatches = 0;
  int64_t errors() const { return connect_errors + io_errors + mismatches; }
};

Totals Sum(const std::vector<std::unique_ptr<Worker>>& workers) {
  Totals t;
  for (const auto& w : workers) {
    WorkerCounters& c = w->counters();
    t.completed += c.completed.load(std::memory_order_relaxed);
    t.connected += c.connected.load(std::memory_order_relaxed);
    t.connect_errors += c.connect_errors.load(std::memory_order_relaxed);
    t.io_errors += c.io_errors.load(std::memory_order_relaxed);
    t.mismatches += c.mismatches.load(std::memory_order_relaxed);
  }
  return t;
}

void SleepUntil(int64_t deadline_ns) {
  const int64_t left = deadline_ns - NowNs();
  if (left > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(left));
}

std::optional<double> ServerCpuSeconds(int pid) {
  if (pid <= 0) return std::nullopt;
  absl::StatusOr<bench::ProcessCpu> cpu = bench::ReadProcessCpu(pid);
  if (!cpu.ok()) {
    NP_LOG(WARNING) << "server cpu: " << cpu.status();
    return std::nullopt;
  }
  return cpu->seconds;
}

std::optional<bench::ProcessMemory> ServerMemory(int pid) {
  if (pid <= 0) return std::nullopt;
  absl::StatusOr<bench::ProcessMemory> mem = bench::ReadProcessMemory(pid);
  if (!mem.ok()) {
    NP_LOG(WARNING) << "server memory: " << mem.status();
    return std::nullopt;
  }
  return *mem;
}

// "null" when absent, so the JSON stays one flat object.
std::string JsonNumber(std::optional<double> value) {
  return value.has_value() ? absl::StrFormat("%.1f", *value) : "null";
}

// One progress line per second on stderr until `end_ns`.
void ProgressUntil(int64_t end_ns, int64_t start_ns, const char* phase,
                   const std::vector<std::unique_ptr<Worker>>& workers) {
  if (NowNs() >= end_ns) return;
  int64_t last_ns = NowNs();
  int64_t last_completed = Sum(workers).completed;
  while (true) {
    const int64_t next = std::min(end_ns, last_ns + 1000000000);
    SleepUntil(next);
    const int64_t now = NowNs();
    const Totals t = Sum(workers);
    const double interval = static_cast<double>(now - last_ns) / 1e9;
    std::fprintf(stderr, "[%6.1fs] %-7s qps=%-10.0f conns=%lld errors=%lld\n",
                 static_cast<double>(now - start_ns) / 1e9, phase,
                 interval > 0 ? static_cast<double>(t.completed - last_completed) / interval : 0.0,
                 static_cast<long long>(t.connected - t.io_errors - t.mismatches),
                 static_cast<long long>(t.errors()));
    last_ns = now;
    last_completed = t.completed;
    if (now >= end_ns) return;
  }
}

struct Config {
  sockaddr_in server{};
  bool idle = false;
  int connections = 0;
  int payload = 0;
  double duration = 0;
  double warmup = 0;
  double connect_timeout = 0;
  int threads = 0;
  int server_pid = 0;
  bool json = false;
};

// Checks the flags and raises the descriptor limit for the connections.
absl::StatusOr<Config> ConfigFromFlags() {
  Config c;
  const int idle_connections = absl::GetFlag(FLAGS_idle_connections);
  c.idle = idle_connections > 0;
  c.connections = c.idle ? idle_connections : absl::GetFlag(FLAGS_connections);
  c.payload = absl::GetFlag(FLAGS_payload);
  c.duration = absl::GetFlag(FLAGS_duration);
  c.warmup = c.idle ? 0 : absl::GetFlag(FLAGS_warmup);
  c.connect_timeout = absl::GetFlag(FLAGS_connect_timeout);
  c.threads = std::min(absl::GetFlag(FLAGS_threads), c.connections);
  c.server_pid = absl::GetFlag(FLAGS_server_pid);
  c.json = absl::GetFlag(FLAGS_json);
  if (c.connections < 1 || c.connections > kMaxConnections) {
    return absl::InvalidArgumentError(
        absl::StrCat("--connections/--idle_connections must be in [1, ", kMaxConnections, "]"));
  }
  if (c.payload < 1 || c.payload > kMaxPayload) {
    return absl::InvalidArgumentError(absl::StrCat("--payload must be in [1, ", kMaxPayload, "]"));
  }
  if (!(c.duration > 0 && c.duration <= kMaxSeconds)) {
    return absl::InvalidArgumentError("--duration must be in (0, 3600]");
  }
  if (!(c.warmup >= 0 && c.warmup <= kMaxSeconds)) {
    return absl::InvalidArgumentError("--warmup must be in [0, 3600]");
  }
  if (!(c.connect_timeout > 0 && c.connect_timeout <= kMaxSeconds)) {
    return absl::InvalidArgumentError("--connect_timeout must be in (0, 3600]");
  }
  if (c.threads < 1 || c.threads > 64) {
    return absl::InvalidArgumentError("--threads must be in [1, 64]");
  }
  absl::StatusOr<sockaddr_in> server = bench::ParseLoopbackAddress(absl::GetFlag(FLAGS_server));
  if (!server.ok()) return server.status();
  c.server = *server;
  absl::StatusOr<uint64_t> fd_limit = bench::RaiseFdLimitToHard();
  if (!fd_limit.ok()) return fd_limit.status();
  if (*fd_limit < static_cast<uint64_t>(c.connections) + 64) {
    return absl::ResourceExhaustedError(
        absl::StrCat("RLIMIT_NOFILE hard limit ", *fd_limit, " is too low for ", c.connections,
                     " connections (raise it with ulimit -Hn as root)"));
  }
  return c;
}

// "n/a" when absent.
std::string Text(std::optional<double> value) {
  return value.has_value() ? absl::StrFormat("%.1f", *value) : "n/a";
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // A peer that closes while we write must be an error return, not a kill.
  signal(SIGPIPE, SIG_IGN);
  absl::StatusOr<Config> config = ConfigFromFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "echo_load: %s\n", config.status().ToString().c_str());
    return 2;
  }
  const bool idle = config->idle;
  const int connections = config->connections;
  const int payload_size = config->payload;
  const double duration = config->duration;
  const double warmup = config->warmup;
  const int threads = config->threads;
  const int server_pid = config->server_pid;
  const bool json = config->json;

  const std::optional<bench::ProcessMemory> memory_before = ServerMemory(server_pid);

  // Connect.
  Payload payload(static_cast<size_t>(payload_size));
  Control control;
  const int64_t start_ns = NowNs();
  const int64_t connect_deadline_ns = start_ns + SecondsToNs(config->connect_timeout);
  std::vector<std::unique_ptr<Worker>> workers;
  for (int t = 0; t < threads; ++t) {
    std::vector<uint32_t> ids;
    for (int id = t; id < connections; id += threads) ids.push_back(static_cast<uint32_t>(id));
    workers.push_back(std::make_unique<Worker>(config->server, std::move(ids), &payload, idle,
                                               connect_deadline_ns, &control));
  }
  std::vector<std::thread> running;
  for (auto& w : workers) running.emplace_back([worker = w.get()] { worker->Run(); });
  for (auto& w : workers) {
    while (!w->counters().connecting_done.load(std::memory_order_acquire)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  const Totals connected = Sum(workers);
  std::fprintf(stderr, "connected %lld/%d in %.2fs (%lld failed)\n",
               static_cast<long long>(connected.connected), connections,
               static_cast<double>(NowNs() - start_ns) / 1e9,
               static_cast<long long>(connected.connect_errors));
  if (connected.connected == 0) {
    control.stop.store(true, std::memory_order_relaxed);
    control.start.Notify();
    for (std::thread& t : running) t.join();
    std::fprintf(stderr, "echo_load: no connection to %s\n",
                 bench::FormatAddress(config->server).c_str());
    return 1;
  }

  // Run: warm-up, then the measured window; the workers stop by themselves at
  // measure_end too, `stop` only makes sure of it.
  const int64_t measure_begin_ns = NowNs() + SecondsToNs(warmup);
  const int64_t measure_end_ns = measure_begin_ns + SecondsToNs(duration);
  control.measure_begin_ns.store(measure_begin_ns, std::memory_order_relaxed);
  control.measure_end_ns.store(measure_end_ns, std::memory_order_relaxed);
  control.start.Notify();

  ProgressUntil(measure_begin_ns, start_ns, "warmup", workers);
  const double client_cpu_begin = CpuSecondsOfThisProcess();
  const std::optional<double> server_cpu_begin = ServerCpuSeconds(server_pid);
  const absl::StatusOr<bench::SystemCpu> machine_begin = bench::ReadSystemCpu();
  const int64_t window_begin_ns = NowNs();
  ProgressUntil(measure_end_ns, start_ns, idle ? "idle" : "measure", workers);
  const double client_cpu_end = CpuSecondsOfThisProcess();
  const std::optional<double> server_cpu_end = ServerCpuSeconds(server_pid);
  const absl::StatusOr<bench::SystemCpu> machine_end = bench::ReadSystemCpu();
  const double window = static_cast<double>(NowNs() - window_begin_ns) / 1e9;
  // Read while the connections are still open (idle mode measures them).
  const std::optional<bench::ProcessMemory> memory_after = ServerMemory(server_pid);

  control.stop.store(true, std::memory_order_relaxed);
  for (std::thread& t : running) t.join();
  const Totals totals = Sum(workers);
  bench::LatencyHistogram histogram;
  for (const auto& w : workers) histogram.Merge(w->histogram());

  const std::string server_text = bench::FormatAddress(config->server);
  const double client_cpu_pct = (client_cpu_end - client_cpu_begin) / window * 100;
  std::optional<double> server_cpu_pct;
  if (server_cpu_begin && server_cpu_end) {
    server_cpu_pct = (*server_cpu_end - *server_cpu_begin) / window * 100;
  }
  // CPU the rest of the machine used during the window (other builds, ...):
  // when it is not near 0 the figures are disturbed. Needs --server_pid.
  std::optional<double> others_cpu_pct;
  if (server_cpu_pct && machine_begin.ok() && machine_end.ok()) {
    const double busy_pct =
        (machine_end->busy_seconds - machine_begin->busy_seconds) / window * 100;
    others_cpu_pct = std::max(0.0, busy_pct - client_cpu_pct - *server_cpu_pct);
  }
  std::optional<double> peak_rss, rss_now, rss_before;
  if (memory_after) {
    peak_rss = static_cast<double>(memory_after->peak_rss_kib);
    rss_now = static_cast<double>(memory_after->rss_kib);
  }
  if (memory_before) rss_before = static_cast<double>(memory_before->rss_kib);

  if (idle) {
    std::optional<double> per_connection_bytes;
    if (rss_before && rss_now && totals.connected > 0) {
      per_connection_bytes =
          (*rss_now - *rss_before) * 1024 / static_cast<double>(totals.connected);
    }
    if (json) {
      std::printf(
          "{\"mode\":\"idle\",\"server\":\"%s\",\"connections\":%d,\"connected\":%lld,"
          "\"held_s\":%.1f,\"errors\":%lld,\"server_rss_before_kib\":%s,"
          "\"server_rss_after_kib\":%s,\"server_peak_rss_kib\":%s,"
          "\"rss_per_conn_bytes\":%s}\n",
          server_text.c_str(), connections, static_cast<long long>(totals.connected), window,
          static_cast<long long>(totals.errors()), JsonNumber(rss_before).c_str(),
          JsonNumber(rss_now).c_str(), JsonNumber(peak_rss).c_str(),
          JsonNumber(per_connection_bytes).c_str());
    } else {
      std::printf("echo_load idle: server=%s connections=%d held=%.1fs\n", server_text.c_str(),
                  connections, window);
      std::printf("  connected    %lld\n", static_cast<long long>(totals.connected));
      std::printf("  errors       %lld (connect %lld, closed/reset %lld)\n",
                  static_cast<long long>(totals.errors()),
                  static_cast<long long>(totals.connect_errors),
                  static_cast<long long>(totals.io_errors));
      std::printf("  server rss   before %s KiB, after %s KiB, peak %s KiB\n",
                  Text(rss_before).c_str(), Text(rss_now).c_str(), Text(peak_rss).c_str());
      std::printf("  per idle connection  %s bytes of server RSS\n",
                  Text(per_connection_bytes).c_str());
    }
    return totals.connected > 0 ? 0 : 1;
  }

  // Samples are those completed in [measure_begin, measure_end): exactly `duration`.
  const double qps = static_cast<double>(histogram.Count()) / duration;
  auto us = [&histogram](double percent) {
    return static_cast<double>(histogram.Percentile(percent)) / 1e3;
  };
  if (json) {
    std::printf(
        "{\"mode\":\"load\",\"server\":\"%s\",\"connections\":%d,\"connected\":%lld,"
        "\"payload\":%d,\"threads\":%d,\"warmup_s\":%.1f,\"duration_s\":%.2f,"
        "\"requests\":%lld,\"qps\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
        "\"max_us\":%.1f,\"mean_us\":%.1f,\"errors\":%lld,\"mismatches\":%lld,"
        "\"client_cpu_pct\":%.1f,\"server_cpu_pct\":%s,\"others_cpu_pct\":%s,"
        "\"server_peak_rss_kib\":%s,\"server_rss_kib\":%s}\n",
        server_text.c_str(), connections, static_cast<long long>(totals.connected), payload_size,
        threads, warmup, window, static_cast<long long>(histogram.Count()), qps, us(50), us(99),
        us(99.9), us(100), histogram.Mean() / 1e3, static_cast<long long>(totals.errors()),
        static_cast<long long>(totals.mismatches), client_cpu_pct,
        JsonNumber(server_cpu_pct).c_str(), JsonNumber(others_cpu_pct).c_str(),
        JsonNumber(peak_rss).c_str(), JsonNumber(rss_now).c_str());
  } else {
    std::printf("echo_load: server=%s connections=%d payload=%dB threads=%d window=%.2fs\n",
                server_text.c_str(), connections, payload_size, threads, window);
    std::printf("  requests     %lld (%.0f qps)\n", static_cast<long long>(histogram.Count()), qps);
    std::printf("  latency us   p50 %.1f  p99 %.1f  p999 %.1f  max %.1f  mean %.1f\n", us(50),
                us(99), us(99.9), us(100), histogram.Mean() / 1e3);
    std::printf(
        "  errors       %lld (connect %lld, closed/reset %lld, mismatched echo %lld)\n",
        static_cast<long long>(totals.errors()), static_cast<long long>(totals.connect_errors),
        static_cast<long long>(totals.io_errors), static_cast<long long>(totals.mismatches));
    std::printf("  client cpu   %.1f%% of one core\n", client_cpu_pct);
    std::printf("  server cpu   %s%% of one core\n", Text(server_cpu_pct).c_str());
    std::printf("  others' cpu  %s%% (rest of the machine during the window)\n",
                Text(others_cpu_pct).c_str());
    std::printf("  server rss   peak %s KiB, now %s KiB\n", Text(peak_rss).c_str(),
                Text(rss_now).c_str());
  }
  return totals.connected > 0 ? 0 : 1;
}
