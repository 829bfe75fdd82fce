// Soak: mixed load with random faults for N minutes; prints calls, outcomes
// and RSS every minute and checks at the end that every call issued
// completed exactly once. Not in CI; tools/soak.sh runs it.
//
//   soak_main --minutes=10 [--seed=1] [--threads=3] [--tls]
//
// --tls: the server and the scripted server also accept TLS 1.3 (a CA and
// certificates made at start, no key on disk beyond the run's temporary
// directory), every channel speaks TLS, and the raw attackers stay
// plaintext on the same port (the server sniffs each connection).
//
// The nprpc server runs in a child process (this binary with --role=server)
// so that its RSS is its own and a restart can be a real SIGKILL. Faults,
// one every --fault_every_s seconds, chosen at random:
//   kill   SIGKILL the server, start a new one on the same port
//   term   SIGTERM (graceful Shutdown), start a new one on the same port
//   reset  calls to the scripted server's Reset method (connection resets)
//   slow   a wave of slow handlers that outlive their callers' deadlines
//   pipeline  20 raw connections pipeline 64 KiB calls for 5 s and never read
//   bigframe  10 raw connections send 8 MiB frames at 4 MiB/s each
//   bomb      8 raw connections each send a 30 KB gzip payload that inflates
//             to 30 MiB
// The server runs with a 256 MiB memory budget; the per-minute line shows its
// RSS now and the highest seen so far.
// Load: --threads threads, each issuing sync and async calls (at most 64
// outstanding per thread) over single, pooled and short connections to the
// server, a hedged list:// channel over the server and a slow scripted
// server, with random compression, checksums, attachments, retries and
// deadlines. An OK answer must echo the message and the attachment.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "netpoll/link_buffer.h"
#include "netpoll/logging.h"
#include "netpoll/mutex.h"
#include "netpoll/socket.h"
#include "netpoll/socket_address.h"
#include "netpoll/testing/test_certs.h"
#include "netpoll/tls_context.h"
#include "proto/echo.pb.h"
#include "rpc/channel.h"
#include "rpc/server.h"
#include "rpc/service.h"
#include "tests/harness/attacker.h"
#include "tests/harness/echo_service.h"
#include "tests/harness/scripted_server.h"

namespace nprpc::soak {
namespace {

using example::EchoRequest;
using example::EchoResponse;

struct Flags {
  std::string role = "driver";
  int port = 0;
  double minutes = 10;
  uint32_t seed = 1;
  int threads = 3;
  int fault_every_s = 20;
  bool tls = false;
  // The server child's certificate and key (cert.pem, key.pem), with --tls.
  std::string tls_dir;
};

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      std::string prefix = absl::StrCat("--", name, "=");
      return a.rfind(prefix, 0) == 0 ? argv[i] + prefix.size() : nullptr;
    };
    if (const char* v = value("role")) {
      f.role = v;
    } else if (const char* v = value("port")) {
      f.port = std::atoi(v);
    } else if (const char* v = value("minutes")) {
      f.minutes = std::atof(v);
    } else if (const char* v = value("seed")) {
      f.seed = static_cast<uint32_t>(std::atoi(v));
    } else if (const char* v = value("threads")) {
      f.threads = std::atoi(v);
    } else if (const char* v = value("fault_every_s")) {
      f.fault_every_s = std::atoi(v);
    } else if (a == "--tls") {
      f.tls = true;
    } else if (const char* v = value("tls_dir")) {
      f.tls_dir = v;
    } else {
      std::fprintf(stderr, "unknown flag %s\n", argv[i]);
      std::exit(2);
    }
  }
  return f;
}

int64_t RssKiB(pid_t pid) {
  std::ifstream status(pid == 0 ? std::string("/proc/self/status")
                                : absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

// ------------------------------------------------------------------ server

// example.EchoService plus soak.SoakService/Slow (sleeps request.code() ms on
// its worker, then echoes the message and the attachment).
int RunServer(const Flags& flags) {
  netpoll::SetMinLogSeverity(netpoll::LogSeverity::kError);
  ServerOptions options;
  options.num_worker_threads = 8;
  options.idle_timeout = absl::Seconds(30);
  options.read_timeout = absl::Seconds(10);
  options.write_timeout = absl::Seconds(5);  // non-reading attackers go after 5 s
  options.memory_budget_bytes = size_t{256} << 20;
  if (!flags.tls_dir.empty()) {
    netpoll::TlsServerOptions tls;
    tls.key_pair.cert_chain_file = flags.tls_dir + "/cert.pem";
    tls.key_pair.private_key_file = flags.tls_dir + "/key.pem";
    auto context = netpoll::TlsContext::NewServer(tls);
    NP_CHECK(context.ok()) << context.status();
    options.tls = *context;  // beside plaintext: the raw attackers stay plaintext
  }
  Server server(options);
  NP_CHECK(server.AddService(testing::NewEchoService()).ok());
  auto slow = std::make_unique<Service>("soak.SoakService");
  NP_CHECK(slow->AddMethod("Slow",
                           MakeUnaryMethodHandler(
                               &EchoRequest::default_instance(), &EchoResponse::default_instance(),
                               [](ServerContext& ctx, const google::protobuf::Message& m,
                                  google::protobuf::Message* r) {
                                 const auto& in = static_cast<const EchoRequest&>(m);
                                 absl::SleepFor(absl::Milliseconds(in.code()));
                                 static_cast<EchoResponse*>(r)->set_message(in.message());
                                 ctx.response_attachment() = std::move(ctx.request_attachment());
                                 return absl::OkStatus();
                               }))
               .ok());
  NP_CHECK(server.AddService(std::move(slow)).ok());
  absl::Status s = server.Start(absl::StrCat("127.0.0.1:", flags.port));
  if (!s.ok()) {
    std::fprintf(stderr, "server: %s\n", s.ToString().c_str());
    return 1;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);  // SIGTERM: graceful; SIGKILL needs no handling
  server.Shutdown(absl::Seconds(2));
  return 0;
}

// ------------------------------------------------------------------ driver

// Starts and restarts the server child on one port.
class ServerProcess {
 public:
  ServerProcess(int port, std::string tls_dir) : port_(port), tls_dir_(std::move(tls_dir)) {}
  ~ServerProcess() { Stop(SIGKILL); }

  void Start() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pid_t pid = ::fork();
    NP_CHECK(pid >= 0) << std::strerror(errno);
    if (pid == 0) {
      sigprocmask(SIG_BLOCK, &set, nullptr);  // for sigwait in the child
      std::string port = absl::StrCat("--port=", port_);
      std::string tls_dir = absl::StrCat("--tls_dir=", tls_dir_);
      ::execl("/proc/self/exe", "soak_main", "--role=server", port.c_str(), tls_dir.c_str(),
              nullptr);
      std::_Exit(127);
    }
    pid_ = pid;
    started_ = absl::Now();
  }
  void Stop(int signal) {
    if (pid_ <= 0) return;
    ::kill(pid_, signal);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  pid_t pid() const { return pid_; }
  absl::Duration uptime() const { return absl::Now() - started_; }

 private:
  const int port_;
  const std::string tls_dir_;  // empty: plaintext only
  pid_t pid_ = -1;
  absl::Time started_;
};

int FreePort() {
  auto sock = netpoll::Listen(*netpoll::SocketAddress::Parse("127.0.0.1:0"), {.backlog = 16});
  NP_CHECK(sock.ok()) << sock.status();
  return netpoll::SocketAddress::LocalOf(sock->get())->port();
}

// Calls issued and completions by outcome; a call completing twice counts
// as "DOUBLE".
class Accounts {
 public:
  void Issued() { issued_.fetch_add(1, std::memory_order_relaxed); }
  void Completed(const std::string& outcome) {
    netpoll::MutexLock lock(&mu_);
    ++outcomes_[outcome];
    ++completed_;
  }
  int64_t issued() const { return issued_.load(); }
  int64_t completed() {
    netpoll::MutexLock lock(&mu_);
    return completed_;
  }
  std::map<std::string, int64_t> outcomes() {
    netpoll::MutexLock lock(&mu_);
    return outcomes_;
  }
  std::string Summary() {
    std::vector<std::string> parts;
    for (const auto& [k, v] : outcomes()) parts.push_back(absl::StrCat(k, "=", v));
    return absl::StrJoin(parts, " ");
  }

 private:
  std::atomic<int64_t> issued_{0};
  netpoll::Mutex mu_;
  int64_t completed_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, int64_t> outcomes_ ABSL_GUARDED_BY(mu_);
};

// One call's completion, shared by its callback: the first completion
// counts, a second is recorded as DOUBLE.
struct CallState {
  EchoRequest request;
  EchoResponse response;
  CallInfo info;
  std::string attachment;
  std::atomic<int> completions{0};
};

std::string Outcome(const absl::Status& s, CallState& call) {
  if (!s.ok()) return std::string(absl::StatusCodeToString(s.code()));
  const std::string attachment = call.info.response_attachment.ToString();
  if (call.response.message() != call.request.message() || attachment != call.attachment) {
    static std::atomic<int> logged{0};
    if (logged.fetch_add(1) < 5) {
      std::fprintf(stderr, "mismatch from %s: message %zu vs %zu bytes, attachment %zu vs %zu\n",
                   call.info.remote_address.c_str(), call.response.message().size(),
                   call.request.message().size(), attachment.size(), call.attachment.size());
    }
    return "MISMATCH";
  }
  return "OK";
}

// Bounds a thread's outstanding async calls.
class Window {
 public:
  explicit Window(int size) : free_(size) {}
  void Acquire() {
    netpoll::MutexLock lock(&mu_);
    while (free_ == 0) cv_.Wait(&mu_);
    --free_;
  }
  void Release() {
    netpoll::MutexLock lock(&mu_);
    ++free_;
    cv_.Signal();
  }

 private:
  netpoll::Mutex mu_;
  netpoll::CondVar cv_;
  int free_ ABSL_GUARDED_BY(mu_);
};

struct Target {
  std::string name;
  Channel* channel;
  bool scripted;  // the scripted server: Reset works, Slow takes code ms
};

// With --tls: a CA, and a certificate for 127.0.0.1 that the server child
// reads from `dir`; returns the channels' TLS context, and the scripted
// server's in `scripted`.
std::shared_ptr<const netpoll::TlsContext> MakeTls(
    const std::string& dir, std::shared_ptr<const netpoll::TlsContext>& scripted) {
  auto ca = netpoll::testing::TestCa::Create("soak CA");
  NP_CHECK(ca.ok()) << ca.status();
  netpoll::testing::TestCertOptions leaf;
  leaf.common_name = "soak server";
  leaf.ip_addresses = {"127.0.0.1"};
  const netpoll::testing::TestCert cert = (*ca)->Issue(leaf);
  std::ofstream(dir + "/cert.pem") << cert.cert_pem;
  std::ofstream(dir + "/key.pem") << cert.key_pem;
  netpoll::TlsServerOptions server;
  server.key_pair = cert.key_pair();
  auto server_context = netpoll::TlsContext::NewServer(server);
  NP_CHECK(server_context.ok()) << server_context.status();
  scripted = *server_context;
  netpoll::TlsClientOptions client;
  client.ca_pem = (*ca)->cert_pem();
  auto client_context = netpoll::TlsContext::NewClient(client);
  NP_CHECK(client_context.ok()) << client_context.status();
  return *client_context;
}

int RunDriver(const Flags& flags) {
  netpoll::SetMinLogSeverity(netpoll::LogSeverity::kError);
  const int port = FreePort();
  std::string tls_dir;
  std::shared_ptr<const netpoll::TlsContext> client_tls;
  std::shared_ptr<const netpoll::TlsContext> scripted_tls;
  if (flags.tls) {
    char dir_template[] = "/tmp/soak_tls_XXXXXX";
    NP_CHECK(::mkdtemp(dir_template) != nullptr) << std::strerror(errno);
    tls_dir = dir_template;
    client_tls = MakeTls(tls_dir, scripted_tls);
  }
  ServerProcess server(port, tls_dir);
  server.Start();
  testing::ScriptedServer scripted(scripted_tls);
  NP_CHECK(scripted.Start().ok());
  scripted.SetEchoDelay(absl::Milliseconds(30));  // slow: hedged calls go elsewhere
  const std::string address = absl::StrCat("127.0.0.1:", port);

  auto make = [&client_tls](const std::string& target, ChannelOptions o) {
    o.tls = client_tls;
    o.timeout = absl::Seconds(2);
    o.reconnect_backoff = absl::Milliseconds(10);
    o.max_reconnect_backoff = absl::Milliseconds(200);
    auto c = Channel::Create(target, o);
    NP_CHECK(c.ok()) << c.status();
    return std::move(*c);
  };
  ChannelOptions single, pooled, short_conn, hedged, to_scripted;
  pooled.connection_type = ConnectionType::kPooled;
  pooled.retry.max_retries = 2;
  short_conn.connection_type = ConnectionType::kShort;
  hedged.backup_request_delay = absl::Milliseconds(10);
  hedged.retry.max_retries = 1;
  to_scripted.retry.max_retries = 0;
  std::vector<std::unique_ptr<Channel>> channels;
  channels.push_back(make(address, single));
  channels.push_back(make(address, pooled));
  channels.push_back(make(address, short_conn));
  channels.push_back(make(absl::StrCat("list://", address, ",", scripted.address()), hedged));
  channels.push_back(make(scripted.address(), to_scripted));
  const std::vector<Target> targets = {{"single", channels[0].get(), false},
                                       {"pooled", channels[1].get(), false},
                                       {"short", channels[2].get(), false},
                                       {"hedged", channels[3].get(), false},
                                       {"scripted", channels[4].get(), true}};

  Accounts accounts;
  std::atomic<bool> stop{false};
  std::atomic<bool> slow_wave{false};
  std::atomic<bool> reset_wave{false};

  auto load = [&](int thread_index) {
    std::mt19937 rng(flags.seed * 7919 + thread_index);
    Window window(64);
    const CompressType compressions[] = {CompressType::kNone, CompressType::kSnappy,
                                         CompressType::kGzip, CompressType::kZlib};
    while (!stop.load()) {
      const Target& t = targets[rng() % targets.size()];
      auto call = std::make_shared<CallState>();
      call->request.set_message(std::string(rng() % 2048, static_cast<char>('a' + rng() % 26)));
      std::string method = "Echo";
      std::string service = "example.EchoService";
      CallOptions options;
      options.timeout = absl::Milliseconds(50 + rng() % 1000);
      options.compress_type = compressions[rng() % 4];
      options.checksum = rng() % 4 == 0;
      options.info = &call->info;
      netpoll::LinkBuffer attachment;
      if (rng() % 4 == 0 && !t.scripted) {
        call->attachment = std::string(rng() % 65536, 'x');
        attachment.WriteString(call->attachment);
        options.request_attachment = &attachment;
      }
      if (t.scripted || t.name == "hedged") {
        // The scripted server (also behind the hedged channel) neither
        // decompresses nor checks checksums.
        options.compress_type = CompressType::kNone;
        options.checksum = false;
      }
      if (t.scripted) {
        // The scripted server echoes its attachment and answers Reset by
        // resetting the connection.
        if (reset_wave.load() && rng() % 4 == 0) method = "Reset";
      } else if (t.name != "hedged" && (slow_wave.load() || rng() % 50 == 0)) {
        service = "soak.SoakService";
        method = "Slow";
        call->request.set_code(static_cast<int32_t>(rng() % (slow_wave.load() ? 1500 : 20)));
      }
      accounts.Issued();
      if (rng() % 3 == 0) {
        absl::Status s =
            t.channel->CallMethod(service, method, call->request, &call->response, options);
        call->completions.fetch_add(1);
        accounts.Completed(Outcome(s, *call));
      } else {
        window.Acquire();
        t.channel->CallMethod(service, method, call->request, &call->response, options,
                              [call, &accounts, &window](const absl::Status& s) {
                                if (call->completions.fetch_add(1) > 0) {
                                  accounts.Completed("DOUBLE");
                                } else {
                                  accounts.Completed(Outcome(s, *call));
                                }
                                window.Release();
                              });
      }
    }
    // Wait for this thread's async calls (the window refills).
    for (int i = 0; i < 64; ++i) window.Acquire();
  };

  std::vector<std::thread> threads;
  for (int i = 0; i < flags.threads; ++i) threads.emplace_back(load, i);

  // Attacks run on their own thread, one at a time, bounded in time.
  const std::string pipeline_frame =
      testing::EncodeRawCall(1, std::string(64 << 10, 'p'), "example.EchoService", "Echo");
  const std::string big_frame =
      testing::EncodeRawCall(1, std::string(8 << 20, 'b'), "example.EchoService", "Echo");
  const std::string bomb_frame = testing::EncodeRawCall(
      1, std::string(30 << 20, 'z'), "example.EchoService", "Echo", CompressType::kGzip);
  std::thread attacker;
  auto attack = [&](testing::AttackOptions options) {
    if (attacker.joinable()) attacker.join();
    options.port = port;
    attacker = std::thread([options = std::move(options)] { (void)testing::Attack(options); });
  };
  int64_t server_peak_kib = 0;

  std::mt19937 rng(flags.seed);
  std::map<std::string, int> faults;
  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Seconds(flags.minutes * 60);
  absl::Time next_fault = start + absl::Seconds(flags.fault_every_s);
  absl::Time next_report = start + absl::Minutes(1);
  int minute = 0;
  std::printf("soak: %g minutes, %d load threads, seed %u, server port %d, fault every %d s%s\n",
              flags.minutes, flags.threads, flags.seed, port, flags.fault_every_s,
              flags.tls ? ", channels over TLS" : "");
  std::fflush(stdout);
  while (absl::Now() < end) {
    absl::SleepFor(absl::Milliseconds(100));
    const absl::Time now = absl::Now();
    if (now >= next_fault) {
      next_fault = now + absl::Seconds(flags.fault_every_s);
      slow_wave = false;
      reset_wave = false;
      const int pick = static_cast<int>(rng() % 11);
      if (pick == 0) {
        ++faults["kill"];
        server.Stop(SIGKILL);
        server.Start();
      } else if (pick == 1) {
        ++faults["term"];
        server.Stop(SIGTERM);
        server.Start();
      } else if (pick < 5) {
        ++faults["reset"];
        reset_wave = true;
      } else if (pick < 8) {
        ++faults["slow"];
        slow_wave = true;
      } else if (pick == 8) {
        ++faults["pipeline"];
        attack({.connections = 20,
                .stream = pipeline_frame,
                .repeat = true,
                .duration = absl::Seconds(5),
                .done = nullptr});
      } else if (pick == 9) {
        ++faults["bigframe"];
        attack({.connections = 10,
                .stream = big_frame,
                .bytes_per_second = 4 << 20,
                .read_answers = true,
                .duration = absl::Seconds(4),
                .done = nullptr});
      } else {
        ++faults["bomb"];
        attack({.connections = 8,
                .stream = bomb_frame,
                .read_answers = true,
                .duration = absl::Seconds(3),
                .done = nullptr});
      }
    }
    server_peak_kib = std::max(server_peak_kib, RssKiB(server.pid()));
    if (now >= next_report || now >= end) {
      next_report += absl::Minutes(1);
      ++minute;
      std::vector<std::string> f;
      for (const auto& [k, v] : faults) f.push_back(absl::StrCat(k, "=", v));
      const int64_t issued = accounts.issued();
      const int64_t completed = accounts.completed();
      std::printf(
          "soak minute %d: issued %lld completed %lld in flight %lld | %s | server pid %d up %ds "
          "RSS %.1f MiB (peak %.1f) | driver RSS %.1f MiB | faults %s\n",
          minute, static_cast<long long>(issued), static_cast<long long>(completed),
          static_cast<long long>(issued - completed), accounts.Summary().c_str(), server.pid(),
          static_cast<int>(absl::ToInt64Seconds(server.uptime())), RssKiB(server.pid()) / 1024.0,
          server_peak_kib / 1024.0, RssKiB(0) / 1024.0, absl::StrJoin(f, " ").c_str());
      std::fflush(stdout);
    }
  }
  stop = true;
  slow_wave = false;
  for (std::thread& t : threads) t.join();
  if (attacker.joinable()) attacker.join();
  const int64_t issued = accounts.issued();
  const int64_t completed = accounts.completed();
  std::map<std::string, int64_t> outcomes = accounts.outcomes();
  const bool ok = issued == completed && outcomes["DOUBLE"] == 0 && outcomes["MISMATCH"] == 0;
  std::printf("soak done: issued %lld completed %lld | %s | %s\n", static_cast<long long>(issued),
              static_cast<long long>(completed), accounts.Summary().c_str(),
              ok ? "every call completed exactly once" : "FAILED");
  std::fflush(stdout);
  channels.clear();
  if (!tls_dir.empty()) {
    ::unlink((tls_dir + "/cert.pem").c_str());
    ::unlink((tls_dir + "/key.pem").c_str());
    ::rmdir(tls_dir.c_str());
  }
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace nprpc::soak

int main(int argc, char** argv) {
  nprpc::soak::Flags flags = nprpc::soak::ParseFlags(argc, argv);
  if (flags.role == "server") return nprpc::soak::RunServer(flags);
  return nprpc::soak::RunDriver(flags);
}
