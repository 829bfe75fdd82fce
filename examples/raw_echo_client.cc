// raw_echo_client: dials an echo server with netpoll::Dialer, sends a message
// --count times (one at a time), checks every echo byte and prints the
// round-trip times.
//
//   bazel run //examples:raw_echo_client -- --server=127.0.0.1:41234 --count=5
//
// Exits non-zero when the dial fails, an echo differs or times out.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "netpoll/connection.h"
#include "netpoll/dialer.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/mutex.h"

ABSL_FLAG(std::string, server, "127.0.0.1:8000", "echo server address (host:port)");
ABSL_FLAG(std::string, message, "hello, netpoll", "bytes to send each time");
ABSL_FLAG(int, count, 10, "round trips");
ABSL_FLAG(int, timeout_ms, 2000, "dial and per-echo timeout");

namespace {

// The bytes echoed so far; filled on the loop thread, read by main().
class Inbox {
 public:
  void Append(const std::string& bytes) {
    netpoll::MutexLock lock(&mu_);
    received_ += bytes;
    cv_.SignalAll();
  }
  // Waits until `n` bytes arrived; returns them (empty on timeout) and
  // clears the inbox.
  std::string Take(size_t n, absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    netpoll::MutexLock lock(&mu_);
    while (received_.size() < n) {
      if (cv_.WaitWithDeadline(&mu_, deadline)) break;
    }
    std::string out;
    out.swap(received_);
    return out;
  }

 private:
  netpoll::Mutex mu_;
  netpoll::CondVar cv_;
  std::string received_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string message = absl::GetFlag(FLAGS_message);
  const absl::Duration timeout = absl::Milliseconds(absl::GetFlag(FLAGS_timeout_ms));
  if (message.empty()) {
    fprintf(stderr, "--message must not be empty\n");
    return 2;
  }

  netpoll::EventLoopGroupOptions group_options;
  group_options.num_loops = 1;
  group_options.name = "client";
  auto group = netpoll::EventLoopGroup::Create(group_options);
  if (!group.ok()) {
    fprintf(stderr, "%s\n", group.status().ToString().c_str());
    return 1;
  }

  auto inbox = std::make_shared<Inbox>();
  auto callbacks = std::make_shared<netpoll::ConnectionCallbacks>();
  callbacks->on_request = [inbox](const netpoll::ConnectionPtr&, netpoll::LinkBuffer& input) {
    inbox->Append(*input.ReadString(input.Len()));
  };
  netpoll::DialOptions options;
  options.timeout = timeout;
  options.callbacks = callbacks;
  auto conn = netpoll::Dialer::DialSync((*group)->loop(0), absl::GetFlag(FLAGS_server), options);
  if (!conn.ok()) {
    fprintf(stderr, "dial %s: %s\n", absl::GetFlag(FLAGS_server).c_str(),
            conn.status().ToString().c_str());
    return 1;
  }
  printf("connected %s -> %s\n", (*conn)->local_address().ToString().c_str(),
         (*conn)->peer_address().ToString().c_str());

  int failures = 0;
  std::vector<double> rtts_us;
  for (int i = 0; i < absl::GetFlag(FLAGS_count); ++i) {
    absl::Time start = absl::Now();
    if (absl::Status s = (*conn)->Write(message); !s.ok()) {
      fprintf(stderr, "write: %s\n", s.ToString().c_str());
      ++failures;
      break;
    }
    std::string echo = inbox->Take(message.size(), timeout);
    double us = absl::ToDoubleMicroseconds(absl::Now() - start);
    if (echo != message) {
      fprintf(stderr, "#%d: echo mismatch or timeout (%zu of %zu bytes)\n", i, echo.size(),
              message.size());
      ++failures;
      break;
    }
    rtts_us.push_back(us);
    printf("#%d: %zu bytes, rtt %.1f us\n", i, echo.size(), us);
  }
  if (!rtts_us.empty()) {
    std::sort(rtts_us.begin(), rtts_us.end());
    double sum = 0;
    for (double us : rtts_us) sum += us;
    printf("%zu round trips: min %.1f us, median %.1f us, max %.1f us, mean %.1f us\n",
           rtts_us.size(), rtts_us.front(), rtts_us[rtts_us.size() / 2], rtts_us.back(),
           sum / rtts_us.size());
  }
  // Close before the loop stops (a registered connection would outlive it).
  (*conn)->Close();
  (*group)->Stop();
  return failures == 0 ? 0 : 1;
}
