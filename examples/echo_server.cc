// rpc_echo_server: serves example.EchoService (tests/harness/echo_service.h) over
// baidu_std, answering like the brpc server of tests/data/baidu_std/.
//
//   bazel run //examples:rpc_echo_server -- --listen=127.0.0.1:8000 --threads=4
//
// Prints "listening on <address>" once it accepts (port 0 picks one), then
// serves until SIGINT/SIGTERM, and shuts down gracefully.
#include <signal.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "rpc/server.h"
#include "tests/harness/echo_service.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:8000", "address to serve on (ip:port or unix:/path)");
ABSL_FLAG(int, threads, 0, "handler (worker) threads (0: one per core, at least 4)");
ABSL_FLAG(int, io_loops, 0, "I/O loops (0: one per two cores, at least 1)");
ABSL_FLAG(int, busy_poll_us, -1,
          "I/O loops' and workers' busy poll in microseconds (0: off; -1: nprpc's default)");
ABSL_FLAG(bool, inline_handlers, false,
          "run handlers on the I/O loops instead of the worker pool (they never block)");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Wait for the stop signals synchronously on this thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // inherited by every thread
  signal(SIGPIPE, SIG_IGN);

  nprpc::ServerOptions options;
  options.num_worker_threads = absl::GetFlag(FLAGS_threads);
  options.num_io_loops = absl::GetFlag(FLAGS_io_loops);
  options.run_handlers_inline = absl::GetFlag(FLAGS_inline_handlers);
  if (int us = absl::GetFlag(FLAGS_busy_poll_us); us >= 0) {
    options.io_busy_poll = absl::Microseconds(us);
    options.worker_busy_poll = absl::Microseconds(us);
  }
  nprpc::Server server(options);
  if (absl::Status s = server.AddService(nprpc::testing::NewEchoService()); !s.ok()) {
    std::cerr << "AddService: " << s << "\n";
    return 1;
  }
  if (absl::Status s = server.Start(absl::GetFlag(FLAGS_listen)); !s.ok()) {
    std::cerr << "Start: " << s << "\n";
    return 1;
  }
  std::cout << "listening on " << server.listen_address().ToString() << std::endl;

  int sig = 0;
  sigwait(&signals, &sig);
  std::cout << "signal " << sig << ": shutting down" << std::endl;
  server.Shutdown(absl::Seconds(5));
  return 0;
}
