// The multi-host test (issue #18): replicas of the echo service on their own
// network namespaces, a client on another that finds them through file://
// naming, and scripted events while calls flow at a steady rate: a replica
// joins, one leaves gracefully (out of the file first, then SIGTERM), one is
// killed (SIGKILL, still listed), one host is cut off (a blackhole). Every
// call must complete exactly once; graceful changes must fail no call; the
// others fail a bounded number; the client's view converges (measured and
// bounded generously). The etcd version finds the replicas through a real
// 3-member etcd cluster spread over the hosts: each replica registers itself
// with a lease (rpc_echo_server --register_at) and deregisters first when it
// stops; it adds an etcd member dying (quorum kept) and the whole cluster
// going away (the client keeps its last list and keeps calling).
//
// Hosts: 0 the client, 1..4 replicas (4 joins later); etcd members on 1..3.
// Skips without root or a working `ip netns`.
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/mutex.h"
#include "netpoll/testing/wait.h"
#include "proto/echo.pb.h"
#include "rpc/channel.h"
#include "rpc/etcd_naming_service.h"
#include "tests/harness/etcd_cluster.h"
#include "tests/harness/netns.h"

namespace nprpc::testing {
namespace {

using netpoll::testing::WaitFor;

constexpr int kPort = 8000;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string EchoServerPath() {
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) return "";
  return absl::StrCat(cwd, "/examples/rpc_echo_server");
}

// Issues echo calls at a steady pace from its own thread and keeps, per
// call, when it was issued, how often it completed, its status and who
// answered.
class Load {
 public:
  struct Call {
    absl::Time issued;
    int completions = 0;
    bool ok = false;
    std::string error;
    std::string remote;
  };

  Load(Channel* channel, absl::Duration pace) : channel_(channel), pace_(pace) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Load() { Stop(); }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  bool WaitAll(absl::Duration timeout) {
    return WaitFor(
        [&] {
          netpoll::MutexLock lock(&mu_);
          for (const auto& call : calls_) {
            if (call->completions == 0) return false;
          }
          return true;
        },
        timeout);
  }
  // Calls issued in [from, to): (completed calls, failed calls).
  std::pair<int, int> Outcomes(absl::Time from, absl::Time to) {
    netpoll::MutexLock lock(&mu_);
    int done = 0, failed = 0;
    for (const auto& call : calls_) {
      if (call->issued < from || call->issued >= to || call->completions == 0) continue;
      ++done;
      failed += !call->ok;
    }
    return {done, failed};
  }
  // The first error text of calls issued in [from, to) (for messages).
  std::string FirstError(absl::Time from, absl::Time to) {
    netpoll::MutexLock lock(&mu_);
    for (const auto& call : calls_) {
      if (call->issued >= from && call->issued < to && call->completions > 0 && !call->ok) {
        return call->error;
      }
    }
    return "";
  }
  // True when a call issued after `since` was answered by `remote`.
  bool AnsweredBy(const std::string& remote, absl::Time since) {
    netpoll::MutexLock lock(&mu_);
    for (auto it = calls_.rbegin(); it != calls_.rend() && (*it)->issued >= since; ++it) {
      if ((*it)->completions > 0 && (*it)->remote == remote) return true;
    }
    return false;
  }
  // The last call issued that `remote` answered (InfinitePast if none).
  absl::Time LastAnsweredBy(const std::string& remote) {
    netpoll::MutexLock lock(&mu_);
    for (auto it = calls_.rbegin(); it != calls_.rend(); ++it) {
      if ((*it)->completions > 0 && (*it)->remote == remote) return (*it)->issued;
    }
    return absl::InfinitePast();
  }
  // The issue time of the last failed call (InfinitePast if none).
  absl::Time LastFailure() {
    netpoll::MutexLock lock(&mu_);
    for (auto it = calls_.rbegin(); it != calls_.rend(); ++it) {
      if ((*it)->completions > 0 && !(*it)->ok) return (*it)->issued;
    }
    return absl::InfinitePast();
  }
  // Every call completed at most once (and, after WaitAll, exactly once).
  int MaxCompletions() {
    netpoll::MutexLock lock(&mu_);
    int most = 0;
    for (const auto& call : calls_) most = std::max(most, call->completions);
    return most;
  }
  size_t issued() {
    netpoll::MutexLock lock(&mu_);
    return calls_.size();
  }

 private:
  struct Slot {
    std::shared_ptr<Call> call;
    example::EchoRequest request;
    example::EchoResponse response;
    CallInfo info;
  };

  void Run() {
    absl::Time next = absl::Now();
    for (int n = 0; !stop_; ++n) {
      auto slot = std::make_shared<Slot>();
      slot->call = std::make_shared<Call>();
      slot->call->issued = absl::Now();
      slot->request.set_message(absl::StrCat("call-", n));
      {
        netpoll::MutexLock lock(&mu_);
        calls_.push_back(slot->call);
      }
      CallOptions options;
      options.info = &slot->info;
      channel_->CallMethod("example.EchoService", "Echo", slot->request, &slot->response, options,
                           [this, slot](absl::Status status) {
                             netpoll::MutexLock lock(&mu_);
                             Call& call = *slot->call;
                             ++call.completions;
                             call.ok =
                                 status.ok() && slot->response.message() == slot->request.message();
                             if (!call.ok) call.error = status.ToString();
                             call.remote = slot->info.remote_address;
                           });
      next += pace_;
      absl::SleepFor(next - absl::Now());  // the load's pace, not a wait for an event
    }
  }

  Channel* const channel_;
  const absl::Duration pace_;
  std::atomic<bool> stop_{false};
  netpoll::Mutex mu_;
  std::vector<std::shared_ptr<Call>> calls_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

class MultiHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto net = NetnsNetwork::Create(5);
    if (!net.ok()) GTEST_SKIP() << "no network namespaces: " << net.status();
    net_ = std::move(*net);
    const char* base = getenv("TEST_TMPDIR");
    std::string templ = absl::StrCat(base ? base : "/tmp", "/multihost_XXXXXX");
    ASSERT_NE(mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    servers_file_ = dir_ + "/servers";
  }

  std::string Address(int host) { return absl::StrCat(net_->ip(host), ":", kPort); }

  // `extra`: more rpc_echo_server flags (--register_at=...).
  void StartReplica(int host, const std::vector<std::string>& extra = {}) {
    const std::string log = absl::StrCat(dir_, "/replica", host, ".log");
    std::vector<std::string> argv = {EchoServerPath(), absl::StrCat("--listen=", Address(host))};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto process = net_->Start(host, argv, log);
    ASSERT_TRUE(process.ok()) << process.status();
    replicas_[host] = *process;
    ASSERT_TRUE(WaitFor([&] { return absl::StrContains(ReadFile(log), "listening on"); }))
        << ReadFile(log);
  }

  // Publishes the server list the way config tools do: a new file renamed
  // over the old one.
  void Publish(const std::vector<int>& hosts) {
    const std::string tmp = servers_file_ + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << "# replicas of example.EchoService\n";
      for (int host : hosts) out << Address(host) << "\n";
    }
    ASSERT_EQ(std::rename(tmp.c_str(), servers_file_.c_str()), 0);
  }

  std::unique_ptr<NetnsNetwork> net_;
  std::string dir_;
  std::string servers_file_;
  std::shared_ptr<NetnsProcess> replicas_[5];
};

// The client's channel options of both tests: short deadlines, outlier
// detection and TCP keepalive, so a blackhole is found quickly.
ChannelOptions ClientOptions(netpoll::EventLoopGroup* loops) {
  ChannelOptions options;
  options.loops = loops;
  options.timeout = absl::Milliseconds(500);
  options.connect_timeout = absl::Milliseconds(200);
  options.health_check_interval = absl::Milliseconds(100);
  options.max_health_check_interval = absl::Milliseconds(500);
  options.outlier.enabled = true;
  options.outlier.interval = absl::Milliseconds(200);
  options.outlier.min_requests = 5;
  options.outlier.base_ejection_time = absl::Seconds(2);
  options.keepalive.enabled = true;
  options.keepalive.idle = absl::Seconds(1);
  options.keepalive.interval = absl::Seconds(1);
  options.keepalive.count = 2;
  return options;
}

TEST_F(MultiHostTest, ClientFollowsJoinStopKillAndBlackholeWithEveryCallCompletedOnce) {
  for (int host : {1, 2, 3}) StartReplica(host);
  Publish({1, 2, 3});

  std::unique_ptr<netpoll::EventLoopGroup> loops;
  {
    auto inside = net_->Enter(0);
    ASSERT_TRUE(inside.ok()) << inside.status();
    netpoll::EventLoopGroupOptions loop_options;
    loop_options.num_loops = 2;
    auto group = netpoll::EventLoopGroup::Create(loop_options);
    ASSERT_TRUE(group.ok()) << group.status();
    loops = std::move(*group);
  }
  auto channel = Channel::Create("file://" + servers_file_, ClientOptions(loops.get()));
  ASSERT_TRUE(channel.ok()) << channel.status();

  Load load(channel->get(), absl::Milliseconds(5));  // ~200 calls/s
  const absl::Time start = absl::Now();
  for (int host : {1, 2, 3}) {
    ASSERT_TRUE(WaitFor([&] { return load.AnsweredBy(Address(host), start); })) << host;
  }

  // Join: replica 4 starts, then is listed. No call may fail.
  StartReplica(4);
  const absl::Time join = absl::Now();
  Publish({1, 2, 3, 4});
  ASSERT_TRUE(WaitFor([&] { return load.AnsweredBy(Address(4), join); }));
  const absl::Duration join_converge = absl::Now() - join;

  // Graceful stop: replica 1 is unlisted first, stops once the client no
  // longer sends to it. No call may fail.
  const absl::Time unlist = absl::Now();
  Publish({2, 3, 4});
  ASSERT_TRUE(WaitFor([&] {
    // Calls keep flowing and none issued in the last 200 ms went to replica 1.
    return !load.AnsweredBy(Address(1), absl::Now() - absl::Milliseconds(200)) &&
           absl::Now() - unlist > absl::Milliseconds(200);
  }));
  const absl::Duration stop_converge = load.LastAnsweredBy(Address(1)) - unlist;
  replicas_[1]->Signal(SIGTERM);
  ASSERT_TRUE(replicas_[1]->WaitExit(absl::Seconds(10)));
  const absl::Time join_to_stop_end = absl::Now();
  const auto graceful = load.Outcomes(join, join_to_stop_end);

  // Kill: replica 2 dies while still listed (its host answers with RSTs).
  const absl::Time kill = absl::Now();
  replicas_[2]->Signal(SIGKILL);
  ASSERT_TRUE(replicas_[2]->WaitExit(absl::Seconds(10)));
  ASSERT_TRUE(WaitFor([&] {
    return absl::Now() - kill > absl::Seconds(1) &&
           load.LastFailure() < absl::Now() - absl::Milliseconds(500);
  }));
  const absl::Duration kill_converge = std::max(absl::ZeroDuration(), load.LastFailure() - kill);
  Publish({3, 4});
  const absl::Time kill_end = absl::Now();
  const auto killed = load.Outcomes(kill, kill_end);

  // Blackhole: host 3 is cut off (no RST, no answer). Calls sent there fail
  // at their deadline until outlier detection ejects it.
  const absl::Time cut = absl::Now();
  ASSERT_TRUE(net_->CutOff(3).ok());
  ASSERT_TRUE(WaitFor([&] {
    return absl::Now() - cut > absl::Seconds(2) &&
           load.LastFailure() < absl::Now() - absl::Seconds(1);
  }));
  const absl::Duration blackhole_converge =
      std::max(absl::ZeroDuration(), load.LastFailure() - cut);
  const absl::Time cut_end = absl::Now();
  const auto blackholed = load.Outcomes(cut, cut_end);
  const OutlierStats outlier = (*channel)->outlier_stats();
  ASSERT_TRUE(net_->Reconnect(3).ok());

  load.Stop();
  ASSERT_TRUE(load.WaitAll(absl::Seconds(10)));
  EXPECT_EQ(load.MaxCompletions(), 1) << "a call completed more than once";

  std::printf(
      "calls issued: %zu\n"
      "join: converged in %s\n"
      "graceful stop: last call to it %s after unlisting\n"
      "join + graceful stop: %d calls, %d failed\n"
      "kill: %d calls, %d failed, last failure %s after the kill\n"
      "blackhole: %d calls, %d failed, last failure %s after the cut; ejections %lld\n",
      load.issued(), absl::FormatDuration(join_converge).c_str(),
      absl::FormatDuration(stop_converge).c_str(), graceful.first, graceful.second, killed.first,
      killed.second, absl::FormatDuration(kill_converge).c_str(), blackholed.first,
      blackholed.second, absl::FormatDuration(blackhole_converge).c_str(),
      static_cast<long long>(outlier.ejections));

  EXPECT_EQ(graceful.second, 0) << load.FirstError(join, join_to_stop_end);
  EXPECT_LT(join_converge, absl::Seconds(2));
  // A killed replica's connections are reset: retries hide it.
  EXPECT_LE(killed.second, killed.first / 20) << load.FirstError(kill, kill_end);
  // A blackhole fails the calls sent there until ejection (an interval or
  // two after the first timeouts), a bounded share.
  EXPECT_GT(blackholed.second, 0);
  EXPECT_LE(blackholed.second, blackholed.first / 2) << load.FirstError(cut, cut_end);
  EXPECT_LT(blackhole_converge, absl::Seconds(5));
  EXPECT_GE(outlier.ejections, 1);

  channel->reset();
  loops.reset();
}

// When the list a naming service publishes last changed so that `present`
// says what it should: records every list with its time.
class ViewLog {
 public:
  NamingService::Watcher watcher() {
    return [this](const std::vector<ServerNode>& nodes) {
      netpoll::MutexLock lock(&mu_);
      std::vector<std::string> addresses;
      for (const ServerNode& n : nodes) addresses.push_back(n.address);
      views_.emplace_back(absl::Now(), std::move(addresses));
    };
  }
  // The time of the first list after `since` that `holds`, if any.
  std::optional<absl::Time> FirstSince(
      absl::Time since, const std::function<bool(const std::vector<std::string>&)>& holds) {
    netpoll::MutexLock lock(&mu_);
    for (const auto& [at, addresses] : views_) {
      if (at >= since && holds(addresses)) return at;
    }
    return std::nullopt;
  }

 private:
  netpoll::Mutex mu_;
  std::vector<std::pair<absl::Time, std::vector<std::string>>> views_ ABSL_GUARDED_BY(mu_);
};

bool Lists(const std::vector<std::string>& addresses, const std::string& address) {
  return std::find(addresses.begin(), addresses.end(), address) != addresses.end();
}

TEST_F(MultiHostTest, EtcdDiscoveryFollowsReplicasAndSurvivesEtcdFailures) {
  if (!EtcdCluster::Available()) GTEST_SKIP() << "etcd-server is not installed";
  std::vector<EtcdMember> members;
  for (int host : {1, 2, 3}) {
    EtcdMember m;
    m.name = absl::StrCat("e", host);
    m.ip = net_->ip(host);
    m.client_port = 2379;
    m.peer_port = 2380;
    m.exec_prefix = {"ip", "netns", "exec", net_->ns(host)};
    members.push_back(m);
  }
  auto etcd = EtcdCluster::Start(members, dir_);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  const std::string target = absl::StrCat("etcd://", (*etcd)->client_endpoints(), "/services/echo");
  // A crashed replica's key lives this long.
  constexpr int kTtlSeconds = 2;
  const std::vector<std::string> register_flags = {"--register_at=" + target,
                                                   absl::StrCat("--register_ttl_s=", kTtlSeconds)};
  for (int host : {1, 2, 3}) StartReplica(host, register_flags);

  std::unique_ptr<netpoll::EventLoopGroup> loops;
  std::shared_ptr<EtcdNamingService> view;
  ViewLog views;
  {
    auto inside = net_->Enter(0);
    ASSERT_TRUE(inside.ok()) << inside.status();
    netpoll::EventLoopGroupOptions loop_options;
    loop_options.num_loops = 2;
    auto group = netpoll::EventLoopGroup::Create(loop_options);
    ASSERT_TRUE(group.ok()) << group.status();
    loops = std::move(*group);
    // What the client's naming sees, timed (its own connection to etcd, from
    // the client's host).
    auto naming = EtcdNamingService::Create(target);
    ASSERT_TRUE(naming.ok()) << naming.status();
    view = *std::move(naming);
    view->Watch(views.watcher());
  }
  std::unique_ptr<Channel> channel;
  {
    auto inside = net_->Enter(0);  // the etcd naming service dials from here
    ASSERT_TRUE(inside.ok()) << inside.status();
    auto created = Channel::Create(target, ClientOptions(loops.get()));
    ASSERT_TRUE(created.ok()) << created.status();
    channel = *std::move(created);
  }

  Load load(channel.get(), absl::Milliseconds(5));  // ~200 calls/s
  const absl::Time start = absl::Now();
  for (int host : {1, 2, 3}) {
    ASSERT_TRUE(WaitFor([&] { return load.AnsweredBy(Address(host), start); })) << host;
  }

  // Join: replica 4 registers itself. No call may fail.
  const absl::Time join = absl::Now();
  StartReplica(4, register_flags);
  ASSERT_TRUE(WaitFor([&] { return load.AnsweredBy(Address(4), join); }));
  const absl::Time registered =
      views.FirstSince(join, [&](const auto& a) { return Lists(a, Address(4)); })
          .value_or(absl::InfiniteFuture());

  // Graceful stop: SIGTERM; the replica deletes its key first, then drains.
  const absl::Time stop = absl::Now();
  replicas_[1]->Signal(SIGTERM);
  ASSERT_TRUE(replicas_[1]->WaitExit(absl::Seconds(10)));
  const absl::Time stop_end = absl::Now();
  const auto graceful = load.Outcomes(join, stop_end);
  const absl::Duration stop_converge =
      views.FirstSince(stop, [&](const auto& a) { return !Lists(a, Address(1)); })
          .value_or(absl::InfiniteFuture()) -
      stop;

  // Kill: replica 2 dies without a word; its lease expires after the TTL.
  const absl::Time kill = absl::Now();
  replicas_[2]->Signal(SIGKILL);
  ASSERT_TRUE(replicas_[2]->WaitExit(absl::Seconds(10)));
  ASSERT_TRUE(WaitFor(
      [&] {
        return views.FirstSince(kill, [&](const auto& a) { return !Lists(a, Address(2)); })
            .has_value();
      },
      absl::Seconds(kTtlSeconds + 10)));
  const absl::Duration kill_converge =
      *views.FirstSince(kill, [&](const auto& a) { return !Lists(a, Address(2)); }) - kill;
  const absl::Time kill_end = absl::Now();
  const auto killed = load.Outcomes(kill, kill_end);

  // An etcd member dies (host 1's): the other two keep quorum, and a replica
  // that joins now (host 2 again) is still found.
  (*etcd)->Stop(0);
  const absl::Time rejoin = absl::Now();
  StartReplica(2, register_flags);
  ASSERT_TRUE(WaitFor([&] { return load.AnsweredBy(Address(2), rejoin); }, absl::Seconds(15)));
  const absl::Duration rejoin_converge = absl::Now() - rejoin;

  // The whole etcd cluster goes away: the client keeps its list and calls.
  (*etcd)->Stop(1);
  (*etcd)->Stop(2);
  const absl::Time no_etcd = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return absl::Now() - no_etcd > absl::Seconds(2); }));
  const absl::Time no_etcd_end = absl::Now();
  const auto without_etcd = load.Outcomes(no_etcd, no_etcd_end);

  load.Stop();
  ASSERT_TRUE(load.WaitAll(absl::Seconds(10)));
  EXPECT_EQ(load.MaxCompletions(), 1) << "a call completed more than once";

  std::printf(
      "etcd: calls issued: %zu\n"
      "join: registered and seen in %s\n"
      "join + graceful stop: %d calls, %d failed; the stopped replica left the view in %s\n"
      "kill: %d calls, %d failed; the key expired from the view in %s (TTL %d s)\n"
      "etcd member down: a new replica was called after %s\n"
      "etcd cluster down: %d calls, %d failed\n",
      load.issued(), absl::FormatDuration(registered - join).c_str(), graceful.first,
      graceful.second, absl::FormatDuration(stop_converge).c_str(), killed.first, killed.second,
      absl::FormatDuration(kill_converge).c_str(), kTtlSeconds,
      absl::FormatDuration(rejoin_converge).c_str(), without_etcd.first, without_etcd.second);

  EXPECT_EQ(graceful.second, 0) << load.FirstError(join, stop_end);
  EXPECT_LT(stop_converge, absl::Seconds(1)) << "a watch event reaches the client within 1 s";
  EXPECT_LT(kill_converge, absl::Seconds(kTtlSeconds + 1)) << "TTL + 1 s";
  EXPECT_LE(killed.second, killed.first / 20) << load.FirstError(kill, kill_end);
  EXPECT_GT(without_etcd.first, 0);
  EXPECT_EQ(without_etcd.second, 0) << load.FirstError(no_etcd, no_etcd_end);

  channel.reset();
  view.reset();
  loops.reset();
}

}  // namespace
}  // namespace nprpc::testing
