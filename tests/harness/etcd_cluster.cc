#include "tests/harness/etcd_cluster.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace nprpc::testing {
namespace {

constexpr char kEtcd[] = "/usr/bin/etcd";
constexpr char kEtcdctl[] = "/usr/bin/etcdctl";

std::string Url(const std::string& ip, int port, bool tls = false) {
  return absl::StrCat(tls ? "https://" : "http://", ip, ":", port);
}

// The last lines of a member's log, for an error that should say why.
std::string Tail(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string all = text.str();
  constexpr size_t kMax = 1500;
  return all.size() <= kMax ? all : all.substr(all.size() - kMax);
}

}  // namespace

bool EtcdCluster::Available() { return IsExecutable(kEtcd) && IsExecutable(kEtcdctl); }

absl::StatusOr<std::unique_ptr<EtcdCluster>> EtcdCluster::StartLocal(const std::string& dir,
                                                                     const EtcdTlsFiles& tls) {
  EtcdMember member;
  member.name = "e1";
  member.ip = "127.0.0.1";
  return Start({member}, dir, absl::Seconds(30), tls);
}

absl::StatusOr<std::unique_ptr<EtcdCluster>> EtcdCluster::Start(
    const std::vector<EtcdMember>& members, const std::string& dir, absl::Duration timeout,
    const EtcdTlsFiles& tls) {
  if (!Available()) return absl::FailedPreconditionError("etcd is not installed (etcd-server)");
  if (members.empty()) return absl::InvalidArgumentError("no etcd members");
  bool picks_ports = false;
  for (const EtcdMember& m : members) {
    picks_ports = picks_ports || m.client_port == 0 || m.peer_port == 0;
  }
  // PickFreePort() may give the same port twice in a row, and a port found
  // taken by someone else is likely to be given again: each is tried once.
  absl::flat_hash_set<int> taken;
  for (const EtcdMember& m : members) taken.insert({m.client_port, m.peer_port});
  for (int attempt = 1;; ++attempt) {
    std::vector<EtcdMember> picked = members;
    auto pick = [&taken] {
      int port = PickFreePort();
      for (int i = 0; i < 100 && (port <= 0 || taken.contains(port)); ++i) port = PickFreePort();
      taken.insert(port);
      return port;
    };
    for (EtcdMember& m : picked) {
      if (m.client_port == 0) m.client_port = pick();
      if (m.peer_port == 0) m.peer_port = pick();
    }
    std::vector<std::string> initial;
    for (const EtcdMember& m : picked) {
      initial.push_back(absl::StrCat(m.name, "=", Url(m.ip, m.peer_port)));
    }
    std::unique_ptr<EtcdCluster> cluster(new EtcdCluster(std::move(picked), dir, tls));
    cluster->initial_cluster_ = absl::StrJoin(initial, ",");
    cluster->token_ = absl::StrCat("nprpc-test-", getpid());
    for (const EtcdMember& m : cluster->members_) {
      cluster->processes_.push_back(cluster->Launch(m));
      if (!cluster->processes_.back()->started()) {
        return absl::InternalError(absl::StrCat("could not start etcd member ", m.name));
      }
    }
    absl::Status healthy = cluster->WaitHealthy(timeout);
    if (healthy.ok()) return cluster;
    // A port PickFreePort() found free was taken by someone else before etcd
    // bound it: stop, forget this attempt's data and pick other ports.
    if (attempt < 5 && picks_ports &&
        absl::StrContains(healthy.message(), "address already in use")) {
      const std::vector<EtcdMember> tried = cluster->members_;
      cluster.reset();  // stops the members still running
      for (const EtcdMember& m : tried) {
        std::error_code ignored;
        std::filesystem::remove_all(absl::StrCat(dir, "/", m.name, ".etcd"), ignored);
      }
      continue;
    }
    return healthy;
  }
}

std::unique_ptr<BackgroundProcess> EtcdCluster::Launch(const EtcdMember& m) const {
  std::vector<std::string> argv = m.exec_prefix;
  std::vector<std::string> args = {
      kEtcd,
      "--name=" + m.name,
      absl::StrCat("--data-dir=", dir_, "/", m.name, ".etcd"),
      "--listen-client-urls=" + Url(m.ip, m.client_port, tls()),
      "--advertise-client-urls=" + Url(m.ip, m.client_port, tls()),
      "--listen-peer-urls=" + Url(m.ip, m.peer_port),
      "--initial-advertise-peer-urls=" + Url(m.ip, m.peer_port),
      // Ignored by a member that restarts on its data.
      "--initial-cluster=" + initial_cluster_,
      "--initial-cluster-state=new",
      "--initial-cluster-token=" + token_,
      // Fast raft: elections within a second on loopback or veth.
      "--heartbeat-interval=50",
      "--election-timeout=500",
      "--logger=zap",
      "--log-level=warn",
  };
  if (tls()) {
    args.push_back("--cert-file=" + tls_.cert_file);
    args.push_back("--key-file=" + tls_.key_file);
    if (!tls_.ca_file.empty()) args.push_back("--trusted-ca-file=" + tls_.ca_file);
    if (tls_.client_cert_auth) args.emplace_back("--client-cert-auth");
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<BackgroundProcess>(argv, absl::StrCat(dir_, "/", m.name, ".log"));
}

absl::Status EtcdCluster::Restart(int i, absl::Duration timeout) {
  if (processes_[i] != nullptr) return absl::FailedPreconditionError("member is running");
  processes_[i] = Launch(members_[i]);
  if (!processes_[i]->started()) {
    processes_[i].reset();
    return absl::InternalError(absl::StrCat("could not restart etcd member ", members_[i].name));
  }
  return WaitHealthy(timeout);
}

EtcdCluster::~EtcdCluster() = default;  // each BackgroundProcess stops its member

std::string EtcdCluster::client_endpoints() const { return Endpoints(""); }

std::string EtcdCluster::Endpoints(absl::string_view scheme) const {
  std::vector<std::string> endpoints;
  for (size_t i = 0; i < members_.size(); ++i) {
    if (processes_[i] == nullptr) continue;
    endpoints.push_back(absl::StrCat(scheme, members_[i].ip, ":", members_[i].client_port));
  }
  return absl::StrJoin(endpoints, ",");
}

void EtcdCluster::Stop(int i) { processes_[i].reset(); }

absl::StatusOr<std::string> EtcdCluster::Etcdctl(const std::vector<std::string>& args,
                                                 int via) const {
  std::vector<std::string> argv = members_[via].exec_prefix;
  argv.emplace_back(kEtcdctl);
  argv.push_back("--endpoints=" + Endpoints(tls() ? "https://" : "http://"));
  argv.emplace_back("--command-timeout=5s");
  if (tls()) {
    if (!tls_.ca_file.empty()) argv.push_back("--cacert=" + tls_.ca_file);
    if (!tls_.client_cert_file.empty()) argv.push_back("--cert=" + tls_.client_cert_file);
    if (!tls_.client_key_file.empty()) argv.push_back("--key=" + tls_.client_key_file);
  }
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<CommandResult> result = RunCommand(argv, absl::Seconds(15));
  if (!result.ok()) return result.status();
  if (result->exit_code != 0) {
    return absl::InternalError(absl::StrCat("etcdctl ", absl::StrJoin(args, " "), " exited ",
                                            result->exit_code, ": ", result->output));
  }
  return result->output;
}

absl::Status EtcdCluster::WaitHealthy(absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last;
  while (absl::Now() < deadline) {
    for (size_t i = 0; i < processes_.size(); ++i) {
      if (processes_[i] != nullptr && !processes_[i]->running()) {
        const std::string log = absl::StrCat(dir_, "/", members_[i].name, ".log");
        return absl::InternalError(
            absl::StrCat("etcd member ", members_[i].name, " exited; ", log, " ends: ", Tail(log)));
      }
    }
    // A short timeout: a member that exits meanwhile is noticed soon.
    absl::StatusOr<std::string> out =
        Etcdctl({"endpoint", "health", "--cluster=false", "--command-timeout=2s"});
    if (out.ok()) return absl::OkStatus();
    last = out.status().ToString();
    absl::SleepFor(absl::Milliseconds(100));  // polling a child process: no event to wait on
  }
  return absl::DeadlineExceededError(
      absl::StrCat("etcd not healthy in ", absl::FormatDuration(timeout), ": ", last));
}

}  // namespace nprpc::testing
