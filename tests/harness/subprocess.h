// Subprocesses for tests that drive real programs (curl, promtool, a
// Prometheus server, headless Chromium).
//
//   auto r = nprpc::testing::RunCommand({"curl", "-sS", url}, absl::Seconds(20));
//   // r->exit_code, r->output (stdout and stderr)
//   nprpc::testing::BackgroundProcess prometheus({"/usr/bin/prometheus", ...}, log_path);
//   ... // killed (its whole process group) when `prometheus` goes away
//
// Thread safety: RunCommand is safe from any thread; a BackgroundProcess
// belongs to the thread that made it.
#ifndef TESTS_HARNESS_SUBPROCESS_H_
#define TESTS_HARNESS_SUBPROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace nprpc::testing {

struct CommandResult {
  int exit_code = -1;  // -1: killed at the timeout, or by a signal
  std::string output;  // stdout and stderr, interleaved
};

// Runs argv[0] (a path, or a name looked up in PATH) with `argv`, waits at
// most `timeout` (then kills it). Fails only when it cannot be started.
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::Duration timeout);

// True when `path` exists and is executable.
bool IsExecutable(const std::string& path);

// A program running in its own process group until this object is
// destroyed (SIGTERM, then SIGKILL after 5 s). Output goes to `log_path`.
class BackgroundProcess {
 public:
  BackgroundProcess(const std::vector<std::string>& argv, const std::string& log_path);
  ~BackgroundProcess();
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;

  bool started() const { return pid_ > 0; }
  // False once it has exited.
  bool running();

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
};

// A TCP port on 127.0.0.1 free just now (for a program that takes a port
// number rather than reporting the one it bound).
int PickFreePort();

}  // namespace nprpc::testing

#endif  // TESTS_HARNESS_SUBPROCESS_H_
