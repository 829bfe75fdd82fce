#include "tests/harness/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

namespace nprpc::testing {
namespace {

constexpr char kPrefix[] = "nprpct";

// `ip` is in sbin, which a test's PATH may lack.
std::string IpPath() {
  for (const char* path : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (IsExecutable(path)) return path;
  }
  return "";
}

absl::StatusOr<std::string> RunIp(const std::vector<std::string>& args) {
  std::string ip = IpPath();
  if (ip.empty()) return absl::FailedPreconditionError("no `ip` binary (iproute2)");
  std::vector<std::string> argv = {ip};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<CommandResult> result = RunCommand(argv, absl::Seconds(20));
  if (!result.ok()) return result.status();
  if (result->exit_code != 0) {
    return absl::InternalError(absl::StrCat("ip ", absl::StrJoin(args, " "), ": exit ",
                                            result->exit_code, ": ",
                                            absl::StripAsciiWhitespace(result->output)));
  }
  return result->output;
}

std::vector<std::string> ListNamespaces() {
  std::vector<std::string> names;
  absl::StatusOr<std::string> out = RunIp({"netns", "list"});
  if (!out.ok()) return names;
  for (absl::string_view line : absl::StrSplit(*out, '\n', absl::SkipWhitespace())) {
    // "name" or "name (id: 3)"
    names.emplace_back(line.substr(0, line.find(' ')));
  }
  return names;
}

}  // namespace

absl::Status NetnsAvailable() {
  if (geteuid() != 0) return absl::FailedPreconditionError("network namespaces need root");
  if (IpPath().empty()) return absl::FailedPreconditionError("no `ip` binary (iproute2)");
  const std::string probe = absl::StrCat(kPrefix, getpid(), "-probe");
  if (absl::StatusOr<std::string> added = RunIp({"netns", "add", probe}); !added.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("`ip netns add` does not work here: ", added.status().message()));
  }
  (void)RunIp({"netns", "del", probe});
  return absl::OkStatus();
}

// ------------------------------------------------------------ NetnsProcess

NetnsProcess::~NetnsProcess() {
  if (exited_) return;
  ::kill(-pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
}

void NetnsProcess::Signal(int signal) {
  if (!exited_) ::kill(-pid_, signal);
}

bool NetnsProcess::running() {
  if (exited_) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) exited_ = true;
  return !exited_;
}

bool NetnsProcess::WaitExit(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (running()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

// ------------------------------------------------------------- ScopedNetns

ScopedNetns::~ScopedNetns() {
  if (::setns(saved_fd_, CLONE_NEWNET) != 0) {
    // Nothing sane to do: a thread stuck in a namespace about to vanish.
    std::abort();
  }
  ::close(saved_fd_);
}

// ------------------------------------------------------------ NetnsNetwork

NetnsNetwork::NetnsNetwork(int hosts) : hosts_(hosts), run_(absl::StrCat(kPrefix, getpid())) {}

std::string NetnsNetwork::ns(int host) const { return absl::StrCat(run_, "-h", host); }

std::string NetnsNetwork::ip(int host) const { return absl::StrCat("10.77.0.", host + 1); }

std::string NetnsNetwork::SwitchNs() const { return absl::StrCat(run_, "-sw"); }

absl::Status NetnsNetwork::Ip(const std::vector<std::string>& args) { return RunIp(args).status(); }

void NetnsNetwork::RemoveStale() {
  for (const std::string& name : ListNamespaces()) {
    absl::string_view rest = name;
    if (!absl::ConsumePrefix(&rest, kPrefix)) continue;
    int pid = 0;
    if (!absl::SimpleAtoi(rest.substr(0, rest.find('-')), &pid) || pid <= 0) continue;
    if (pid != getpid() && ::kill(pid, 0) != 0 && errno == ESRCH) {
      (void)RunIp({"netns", "del", name});
    }
  }
}

absl::StatusOr<std::unique_ptr<NetnsNetwork>> NetnsNetwork::Create(int hosts) {
  if (hosts < 1 || hosts > 200) return absl::InvalidArgumentError("hosts: 1..200");
  if (absl::Status available = NetnsAvailable(); !available.ok()) return available;
  RemoveStale();
  auto net = std::unique_ptr<NetnsNetwork>(new NetnsNetwork(hosts));
  if (absl::Status s = net->Setup(); !s.ok()) return s;  // ~NetnsNetwork cleans up
  return net;
}

absl::Status NetnsNetwork::Setup() {
  // Leftovers of an earlier test in this same process.
  for (const std::string& name : ListNamespaces()) {
    if (absl::StartsWith(name, run_ + "-")) (void)RunIp({"netns", "del", name});
  }
  const std::string sw = SwitchNs();
  if (absl::Status s = Ip({"netns", "add", sw}); !s.ok()) return s;
  created_.push_back(sw);
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"-n", sw, "link", "add", "br0", "type", "bridge"},
                                             {"-n", sw, "link", "set", "br0", "up"},
                                             {"-n", sw, "link", "set", "lo", "up"}}) {
    if (absl::Status s = Ip(args); !s.ok()) return s;
  }
  for (int i = 0; i < hosts_; ++i) {
    const std::string host = ns(i);
    const std::string port = absl::StrCat("v", i);
    if (absl::Status s = Ip({"netns", "add", host}); !s.ok()) return s;
    created_.push_back(host);
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"-n", sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", host},
             {"-n", sw, "link", "set", port, "master", "br0"},
             {"-n", sw, "link", "set", port, "up"},
             {"-n", host, "addr", "add", ip(i) + "/24", "dev", "eth0"},
             {"-n", host, "link", "set", "eth0", "up"},
             {"-n", host, "link", "set", "lo", "up"}}) {
      if (absl::Status s = Ip(args); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

NetnsNetwork::~NetnsNetwork() {
  for (auto& weak : processes_) {
    if (auto process = weak.lock()) {
      process->Signal(SIGKILL);
      process->WaitExit(absl::Seconds(5));
    }
  }
  for (const std::string& name : created_) (void)RunIp({"netns", "del", name});
}

absl::StatusOr<CommandResult> NetnsNetwork::Run(int host, const std::vector<std::string>& argv,
                                                absl::Duration timeout) {
  std::string ip_path = IpPath();
  std::vector<std::string> full = {ip_path, "netns", "exec", ns(host)};
  full.insert(full.end(), argv.begin(), argv.end());
  return RunCommand(full, timeout);
}

absl::StatusOr<std::shared_ptr<NetnsProcess>> NetnsNetwork::Start(
    int host, const std::vector<std::string>& argv, const std::string& log_path) {
  if (argv.empty()) return absl::InvalidArgumentError("empty command");
  const std::string ns_path = absl::StrCat("/run/netns/", ns(host));
  const int ns_fd = ::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns_fd < 0) return absl::InternalError(absl::StrCat(ns_path, ": ", std::strerror(errno)));
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log < 0) {
    ::close(ns_fd);
    return absl::InternalError(absl::StrCat(log_path, ": ", std::strerror(errno)));
  }
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(ns_fd);
    ::close(log);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    if (::setns(ns_fd, CLONE_NEWNET) != 0) _exit(126);
    ::dup2(log, 1);
    ::dup2(log, 2);
    ::execv(args[0], args.data());
    _exit(127);
  }
  ::close(ns_fd);
  ::close(log);
  auto process = std::shared_ptr<NetnsProcess>(new NetnsProcess(pid));
  processes_.push_back(process);
  return process;
}

absl::Status NetnsNetwork::CutOff(int host) {
  return Ip({"-n", SwitchNs(), "link", "set", absl::StrCat("v", host), "down"});
}

absl::Status NetnsNetwork::Reconnect(int host) {
  return Ip({"-n", SwitchNs(), "link", "set", absl::StrCat("v", host), "up"});
}

absl::StatusOr<std::unique_ptr<ScopedNetns>> NetnsNetwork::Enter(int host) {
  const int saved = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (saved < 0) return absl::InternalError(absl::StrCat("own netns: ", std::strerror(errno)));
  const std::string ns_path = absl::StrCat("/run/netns/", ns(host));
  const int target = ::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    ::close(saved);
    return absl::InternalError(absl::StrCat(ns_path, ": ", std::strerror(errno)));
  }
  const int rc = ::setns(target, CLONE_NEWNET);
  const int error = errno;
  ::close(target);
  if (rc != 0) {
    ::close(saved);
    return absl::InternalError(absl::StrCat("setns ", ns_path, ": ", std::strerror(error)));
  }
  return std::unique_ptr<ScopedNetns>(new ScopedNetns(saved));
}

}  // namespace nprpc::testing
