// raw_echo_server: a byte echo server on the bare netpoll transport (no RPC
// framing). Used by bench/run_echo_bench.sh as the "netpoll" server.
//
//   bazel run //examples:raw_echo_server -- --listen=127.0.0.1:0 --loops=2
//   listening on 127.0.0.1:41234
//
// Runs until SIGINT or SIGTERM, then shuts the server down gracefully
// (Server::Shutdown with --grace_ms) and prints the transport counters.
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "netpoll/connection.h"
#include "netpoll/link_buffer.h"
#include "netpoll/server.h"
#include "netpoll/socket.h"
#include "netpoll/socket_address.h"
#include "netpoll/stats.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "address to listen on (port 0 = any)");
ABSL_FLAG(int, loops, 1, "event loops (threads); 0 = one per core");
ABSL_FLAG(int, busy_poll_us, -1,
          "loops' busy poll in microseconds (-1 or 0: off, netpoll's default)");
ABSL_FLAG(bool, reuse_port, false, "one SO_REUSEPORT listener per loop");
ABSL_FLAG(int, idle_timeout_ms, 0, "close connections idle this long; 0 = never");
ABSL_FLAG(int, grace_ms, 2000, "graceful shutdown period after SIGINT/SIGTERM");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Debian's Abseil is built without NDEBUG, so every absl::Mutex operation
  // also feeds the deadlock-cycle detector (a global graph behind its own
  // lock): about a third of this server's user-space instructions per echo.
  // A production server turns that debugging aid off.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // Block the shutdown signals before any thread starts, so that every loop
  // thread inherits the mask and only sigwait() below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);  // writes use MSG_NOSIGNAL; this covers anything else

  absl::StatusOr<netpoll::SocketAddress> address =
      netpoll::SocketAddress::Parse(absl::GetFlag(FLAGS_listen));
  if (!address.ok()) {
    fprintf(stderr, "--listen: %s\n", address.status().ToString().c_str());
    return 2;
  }
  (void)netpoll::RaiseFdLimit();  // many idle connections in the RSS benchmark

  netpoll::ServerOptions options;
  options.num_loops = absl::GetFlag(FLAGS_loops);
  options.reuse_port = absl::GetFlag(FLAGS_reuse_port);
  if (int us = absl::GetFlag(FLAGS_busy_poll_us); us >= 0) {
    options.busy_poll = absl::Microseconds(us);
  }
  if (int ms = absl::GetFlag(FLAGS_idle_timeout_ms); ms > 0) {
    options.connection.idle_timeout = absl::Milliseconds(ms);
  }
  // Pure echo: hand the input blocks to the output (no copy).
  options.callbacks->on_request = [](const netpoll::ConnectionPtr& conn,
                                     netpoll::LinkBuffer& input) {
    (void)conn->Write(std::move(*input.Slice(input.Len())));
  };
  auto server = netpoll::Server::Create(options);
  if (!server.ok()) {
    fprintf(stderr, "server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  if (absl::Status s = (*server)->Start(*address); !s.ok()) {
    fprintf(stderr, "start: %s\n", s.ToString().c_str());
    return 1;
  }
  printf("listening on %s\n", (*server)->listen_address().ToString().c_str());
  fflush(stdout);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  fprintf(stderr, "%s: shutting down (grace %d ms)\n", strsignal(signal_number),
          absl::GetFlag(FLAGS_grace_ms));
  (*server)->Shutdown(absl::Milliseconds(absl::GetFlag(FLAGS_grace_ms)));

  netpoll::TransportStatsSnapshot stats = (*server)->Stats();
  fprintf(stderr,
          "transport: accepted=%lld closed=%lld active=%lld bytes_in=%lld bytes_out=%lld "
          "write_calls=%lld timeouts=%lld accept_errors=%lld\n",
          static_cast<long long>(stats.connections_accepted),
          static_cast<long long>(stats.connections_closed),
          static_cast<long long>(stats.connections_active), static_cast<long long>(stats.bytes_in),
          static_cast<long long>(stats.bytes_out), static_cast<long long>(stats.write_calls),
          static_cast<long long>(stats.timeouts), static_cast<long long>(stats.accept_errors));
  return 0;
}
