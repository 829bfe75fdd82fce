// Netns: a private network of Linux network namespaces for multi-host tests.
//
//   auto net = nprpc::testing::NetnsNetwork::Create(3);  // 3 "hosts"
//   if (!net.ok()) GTEST_SKIP() << net.status();          // not root, no `ip netns`
//   auto server = (*net)->Start(1, {server_path, "--listen=" + (*net)->ip(1) + ":8000"},
//                               log_path);
//   {
//     auto inside = (*net)->Enter(0);  // this thread (and threads it starts) on host 0
//     ... make loops and a channel to 10.77.0.2:8000 ...
//   }
//   (*net)->CutOff(1);     // host 1's link goes down: a blackhole, no RST
//   (*net)->Reconnect(1);
//
// Layout: host i is namespace "<run>-h<i>" with eth0 = 10.77.0.<i+1>/24 (and
// lo up); its veth peer "v<i>" sits on bridge br0 in a switch namespace
// "<run>-sw", so no traffic touches the namespace the test started in.
// <run> is "nprpct<pid>" (unique per test process). CutOff() downs v<i> on
// the switch side: the host still thinks its link is up and nobody gets a
// reset, exactly a blackhole.
//
// Cleanup: the destructor kills the processes it started and deletes every
// namespace (their veths go with them), also when the test failed. Create()
// first deletes namespaces left by runs whose process is gone ("nprpct<pid>"
// with a dead pid), e.g. after a crash.
//
// Needs root and a working `ip netns`; NetnsAvailable() says why not.
//
// Thread safety: a NetnsNetwork belongs to the thread that made it (its
// methods are not synchronized); NetnsProcess likewise. Enter() changes only
// the calling thread's namespace.
#ifndef TESTS_HARNESS_NETNS_H_
#define TESTS_HARNESS_NETNS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/harness/subprocess.h"

namespace nprpc::testing {

// OK when this process can make namespaces (root, `ip` found, `ip netns`
// works); otherwise the reason, for GTEST_SKIP.
absl::Status NetnsAvailable();

// A program running inside one namespace, in its own process group.
class NetnsProcess {
 public:
  ~NetnsProcess();  // SIGKILL (if still running) and reap
  NetnsProcess(const NetnsProcess&) = delete;
  NetnsProcess& operator=(const NetnsProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Sends `signal` to its process group.
  void Signal(int signal);
  // False once it has exited (reaps it).
  bool running();
  // Waits for it to exit; false on timeout.
  bool WaitExit(absl::Duration timeout);

 private:
  friend class NetnsNetwork;
  explicit NetnsProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  bool exited_ = false;
};

// Restores the calling thread's previous namespace when destroyed.
class ScopedNetns {
 public:
  ~ScopedNetns();
  ScopedNetns(const ScopedNetns&) = delete;
  ScopedNetns& operator=(const ScopedNetns&) = delete;

 private:
  friend class NetnsNetwork;
  explicit ScopedNetns(int saved_fd) : saved_fd_(saved_fd) {}
  const int saved_fd_;  // owned: the thread's namespace before Enter()
};

class NetnsNetwork {
 public:
  // `hosts` namespaces (1..200) on one bridge.
  static absl::StatusOr<std::unique_ptr<NetnsNetwork>> Create(int hosts);
  ~NetnsNetwork();
  NetnsNetwork(const NetnsNetwork&) = delete;
  NetnsNetwork& operator=(const NetnsNetwork&) = delete;

  int size() const { return hosts_; }
  // "nprpct<pid>-h<host>"
  std::string ns(int host) const;
  // "10.77.0.<host+1>"
  std::string ip(int host) const;

  // Runs `argv` inside `host` and waits (at most `timeout`).
  absl::StatusOr<CommandResult> Run(int host, const std::vector<std::string>& argv,
                                    absl::Duration timeout = absl::Seconds(20));
  // Starts `argv` (argv[0] an absolute path) inside `host`; stdout and stderr
  // go to `log_path`. It is killed at the latest by ~NetnsNetwork.
  absl::StatusOr<std::shared_ptr<NetnsProcess>> Start(int host,
                                                      const std::vector<std::string>& argv,
                                                      const std::string& log_path);
  // Downs (CutOff) or ups (Reconnect) `host`'s port on the bridge.
  absl::Status CutOff(int host);
  absl::Status Reconnect(int host);
  // Moves the calling thread into `host`'s namespace; sockets it makes, and
  // threads it starts, live there. Undone when the result is destroyed.
  absl::StatusOr<std::unique_ptr<ScopedNetns>> Enter(int host);

  // Deletes "nprpct<pid>-*" namespaces whose pid is not running.
  static void RemoveStale();

 private:
  explicit NetnsNetwork(int hosts);
  absl::Status Setup();
  absl::Status Ip(const std::vector<std::string>& args);
  std::string SwitchNs() const;

  const int hosts_;
  const std::string run_;             // "nprpct<pid>"
  std::vector<std::string> created_;  // namespaces to delete
  std::vector<std::weak_ptr<NetnsProcess>> processes_;
};

}  // namespace nprpc::testing

#endif  // TESTS_HARNESS_NETNS_H_
