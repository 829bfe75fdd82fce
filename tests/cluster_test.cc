// The client over several endpoints: connection types, load balancing,
// retries, backup requests, health, membership changes. Every test runs over
// plaintext, TLS and mutual TLS (tests/harness/transport_security.h; the
// servers then refuse plaintext), checks that each call completes exactly
// once, and that no fd is left open.
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "netpoll/mutex.h"
#include "netpoll/testing/blocking_client.h"
#include "netpoll/testing/wait.h"
#include "proto/echo.pb.h"
#include "rpc/channel.h"
#include "rpc/errors.h"
#include "tests/harness/call_ledger.h"
#include "tests/harness/scripted_server.h"
#include "tests/harness/transport_security.h"

namespace nprpc {
namespace {

using example::EchoRequest;
using example::EchoResponse;
using testing::ScriptedServer;
using testing::Transport;
using Ledger = testing::CallLedger;
using netpoll::testing::CountOpenFds;
using netpoll::testing::WaitFor;

// N scripted servers (over `transport`) and helpers to build list:// targets
// over them.
class Cluster {
 public:
  explicit Cluster(int n, Transport transport) {
    for (int i = 0; i < n; ++i) {
      servers_.push_back(std::make_unique<ScriptedServer>(testing::ServerTls(transport)));
      EXPECT_TRUE(servers_.back()->Start().ok());
    }
  }
  ScriptedServer& server(int i) { return *servers_[i]; }
  std::string Target() {
    std::vector<std::string> addresses;
    for (auto& s : servers_) addresses.push_back(s->address());
    return "list://" + absl::StrJoin(addresses, ",");
  }
  std::vector<ServerNode> Nodes(int skip = -1) {
    std::vector<ServerNode> nodes;
    for (int i = 0; i < static_cast<int>(servers_.size()); ++i) {
      if (i != skip) nodes.push_back({servers_[i]->address(), 1});
    }
    return nodes;
  }

 private:
  std::vector<std::unique_ptr<ScriptedServer>> servers_;
};

std::string Whoami(Channel& channel, const CallOptions& options = {}) {
  EchoRequest request;
  request.set_message("?");
  EchoResponse response;
  absl::Status status =
      channel.CallMethod("example.EchoService", "Whoami", request, &response, options);
  return status.ok() ? response.message() : absl::StrCat("error: ", status.ToString());
}

// Calls until every one of `servers` answered: the connections (over TLS,
// with their handshakes) are made before a case that measures calls.
void ConnectToEvery(Channel& channel, size_t servers) {
  std::set<std::string> seen;
  EXPECT_TRUE(WaitFor([&] {
    seen.insert(Whoami(channel));
    return seen.size() >= servers;
  }));
}

ChannelOptions FastOptions(ConnectionType type, Transport transport) {
  ChannelOptions options;
  options.connection_type = type;
  options.tls = testing::ClientTls(transport);
  // The connect timeout covers the TLS handshake: hundreds of them at once
  // on a loaded machine (or under a sanitizer) take longer than 1 s.
  options.connect_timeout = absl::Seconds(10);
  options.timeout = absl::Seconds(3);
  options.reconnect_backoff = absl::Milliseconds(5);
  options.max_reconnect_backoff = absl::Milliseconds(20);
  options.health_check_interval = absl::Milliseconds(20);
  options.max_health_check_interval = absl::Milliseconds(50);
  options.retry.initial_backoff = absl::Milliseconds(1);
  return options;
}

// Every test leaves as many fds open as it found (connections close on the
// client and server loops: waited for).
class NoFdLeaks {
 protected:
  NoFdLeaks() {
    DefaultClientLoops();  // made once per process: not a leak
    fds_before_ = CountOpenFds();
  }
  ~NoFdLeaks() {
    EXPECT_TRUE(WaitFor([&] { return CountOpenFds() <= fds_before_; }))
        << CountOpenFds() << " fds open, " << fds_before_ << " before";
  }

 private:
  int fds_before_ = 0;
};

class EveryConnectionType : public ::testing::TestWithParam<std::tuple<ConnectionType, Transport>>,
                            public NoFdLeaks {
 protected:
  static ConnectionType type() { return std::get<0>(GetParam()); }
  static Transport transport() { return std::get<1>(GetParam()); }
  static ChannelOptions Options() { return FastOptions(type(), transport()); }
};

std::string ConnectionTypeName(ConnectionType type) {
  switch (type) {
    case ConnectionType::kSingle:
      return "single";
    case ConnectionType::kPooled:
      return "pooled";
    case ConnectionType::kShort:
      return "short";
  }
  return "unknown";
}

INSTANTIATE_TEST_SUITE_P(
    Cluster, EveryConnectionType,
    ::testing::Combine(::testing::Values(ConnectionType::kSingle, ConnectionType::kPooled,
                                         ConnectionType::kShort),
                       ::testing::ValuesIn(testing::kEveryTransport)),
    [](const ::testing::TestParamInfo<std::tuple<ConnectionType, Transport>>& info) {
      return absl::StrCat(ConnectionTypeName(std::get<0>(info.param)), "_",
                          testing::TransportName(std::get<1>(info.param)));
    });

// The single-connection cases, over every transport.
class OverEveryTransport : public ::testing::TestWithParam<Transport>, public NoFdLeaks {
 protected:
  static Transport transport() { return GetParam(); }
  static ChannelOptions Options() { return FastOptions(ConnectionType::kSingle, transport()); }
};
class Hedging : public OverEveryTransport {};
class Retries : public OverEveryTransport {};
class ConsistentHashing : public OverEveryTransport {};
class Membership : public OverEveryTransport {};
class Health : public OverEveryTransport {};
class ShortConnections : public OverEveryTransport {};

INSTANTIATE_TEST_SUITE_P(Transports, Hedging, ::testing::ValuesIn(testing::kEveryTransport),
                         testing::TransportParamName);
INSTANTIATE_TEST_SUITE_P(Transports, Retries, ::testing::ValuesIn(testing::kEveryTransport),
                         testing::TransportParamName);
INSTANTIATE_TEST_SUITE_P(Transports, ConsistentHashing,
                         ::testing::ValuesIn(testing::kEveryTransport),
                         testing::TransportParamName);
INSTANTIATE_TEST_SUITE_P(Transports, Membership, ::testing::ValuesIn(testing::kEveryTransport),
                         testing::TransportParamName);
INSTANTIATE_TEST_SUITE_P(Transports, Health, ::testing::ValuesIn(testing::kEveryTransport),
                         testing::TransportParamName);
INSTANTIATE_TEST_SUITE_P(Transports, ShortConnections,
                         ::testing::ValuesIn(testing::kEveryTransport),
                         testing::TransportParamName);

TEST_P(EveryConnectionType, CallsSpreadOverEveryEndpointWithMetadataAndErrors) {
  Cluster cluster(3, transport());
  auto channel = Channel::Create(cluster.Target(), Options());
  ASSERT_TRUE(channel.ok()) << channel.status();
  std::map<std::string, int> seen;
  for (int i = 0; i < 30; ++i) seen[Whoami(**channel)]++;
  ASSERT_EQ(seen.size(), 3u) << seen.begin()->first;
  for (const auto& [who, count] : seen) EXPECT_EQ(count, 10) << who;

  // What the servers saw of the client: its certificate, verified, on mTLS.
  EchoRequest peer_request;
  peer_request.set_message("?");
  EchoResponse peer;
  absl::Status peer_status =
      (*channel)->CallMethod("example.EchoService", "Peer", peer_request, &peer);
  ASSERT_TRUE(peer_status.ok()) << peer_status;
  switch (transport()) {
    case Transport::kPlaintext:
      EXPECT_EQ(peer.message(), "<plaintext>");
      break;
    case Transport::kTls:
      EXPECT_EQ(peer.message(), "anonymous|");
      break;
    case Transport::kMutualTls:
      EXPECT_EQ(peer.message(), absl::StrCat("verified|", testing::kClientSubject));
      break;
  }

  CallInfo info;
  netpoll::LinkBuffer attachment;
  attachment.WriteBinary("att");
  CallOptions options;
  options.metadata = {{"k", "v"}};
  options.request_attachment = &attachment;
  options.info = &info;
  EchoRequest request;
  request.set_message("hello");
  EchoResponse response;
  ASSERT_TRUE(
      (*channel)->CallMethod("example.EchoService", "Echo", request, &response, options).ok());
  EXPECT_EQ(response.message(), "hello");
  EXPECT_EQ(info.response_attachment.ToString(), "att");
  ASSERT_EQ(info.response_metadata.size(), 1u);

  request.set_code(4242);
  absl::Status failed = (*channel)->CallMethod("example.EchoService", "Fail", request, &response);
  EXPECT_EQ(ErrorCodeOf(failed), 4242);

  CallOptions short_deadline;
  short_deadline.timeout = absl::Milliseconds(30);
  request.set_code(500);
  absl::Status slow =
      (*channel)->CallMethod("example.EchoService", "Slow", request, &response, short_deadline);
  EXPECT_EQ(ErrorCodeOf(slow), ERPCTIMEDOUT) << slow;
  // The channel is still usable after an abandoned attempt.
  EXPECT_EQ(Whoami(**channel).rfind("127.0.0.1:", 0), 0u);
}

// single and pooled reuse one connection for calls made one after another;
// short opens one per call.
TEST_P(EveryConnectionType, OpensConnectionsAsItsTypeSays) {
  Cluster cluster(1, transport());
  auto channel = Channel::Create(cluster.Target(), Options());
  ASSERT_TRUE(channel.ok()) << channel.status();
  constexpr int kCalls = 10;
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_EQ(Whoami(**channel).rfind("127.0.0.1:", 0), 0u);
  }
  const int64_t expected = type() == ConnectionType::kShort ? kCalls : 1;
  EXPECT_EQ(cluster.server(0).connections_accepted(), expected);
  if (type() == ConnectionType::kShort) {
    // Each short connection is closed after its call.
    EXPECT_TRUE(WaitFor([&] { return cluster.server(0).connections() == 0; }));
  } else {
    EXPECT_EQ(cluster.server(0).connections(), 1u);
  }
}

// Concurrent short calls: a connection released while other calls wait for
// their dials is closed, never handed to one of them (one call per
// connection, as the type promises).
TEST_P(ShortConnections, EveryConcurrentCallHasAConnectionOfItsOwn) {
  Cluster cluster(1, transport());
  auto channel =
      Channel::Create(cluster.Target(), FastOptions(ConnectionType::kShort, transport()));
  ASSERT_TRUE(channel.ok()) << channel.status();
  constexpr int kSlots = 16;
  constexpr int kCalls = 400;
  EchoRequest request;
  request.set_message("short");
  std::vector<EchoResponse> responses(kSlots);
  std::atomic<int> issued{0};
  std::atomic<int> succeeded{0};
  std::atomic<int> finished{0};
  netpoll::Notification all_done;
  // Each slot issues its next call from the previous one's completion.
  std::function<void(int)> issue = [&](int slot) {
    (*channel)->CallMethod("example.EchoService", "Echo", request, &responses[slot], {},
                           [&, slot](const absl::Status& status) {
                             if (status.ok()) succeeded.fetch_add(1);
                             if (issued.fetch_add(1) < kCalls - kSlots) {
                               issue(slot);
                             } else if (finished.fetch_add(1) + 1 == kSlots) {
                               all_done.Notify();
                             }
                           });
  };
  for (int slot = 0; slot < kSlots; ++slot) issue(slot);
  ASSERT_TRUE(all_done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  EXPECT_EQ(succeeded.load(), kCalls);
  EXPECT_EQ(cluster.server(0).requests(), kCalls);
  EXPECT_EQ(cluster.server(0).connections_accepted(), kCalls);
  EXPECT_TRUE(WaitFor([&] { return cluster.server(0).connections() == 0; }));
}

TEST_P(EveryConnectionType, ServerDyingWithCallsInFlightIsRetriedOnTheOthers) {
  Cluster cluster(3, transport());
  for (int i = 0; i < 3; ++i) cluster.server(i).SetEchoDelay(absl::Milliseconds(150));
  ChannelOptions options = Options();
  options.retry.budget_max_tokens = 200;
  auto channel = Channel::Create(cluster.Target(), options);
  ASSERT_TRUE(channel.ok());
  Ledger ledger(channel->get());
  for (int i = 0; i < 90; ++i) ledger.Issue("Echo");
  // Every call is at a server (answers take 150 ms) when server 0 dies.
  ASSERT_TRUE(WaitFor([&] {
    return cluster.server(0).requests() + cluster.server(1).requests() +
               cluster.server(2).requests() ==
           90;
  }));
  cluster.server(0).Kill();
  ASSERT_TRUE(ledger.WaitAll(absl::Seconds(10)));
  ledger.ExpectExactlyOnce();
  EXPECT_EQ(ledger.Count("OK"), 90);
}

TEST_P(EveryConnectionType, ConcurrentLoadCompletesEveryCallOnce) {
  Cluster cluster(2, transport());
  ChannelOptions options = Options();
  // Exactly once is the point, not latency: over TLS, short and pooled
  // connections start up to 400 full handshakes at once, which a loaded
  // machine (or a sanitizer) takes seconds to finish.
  options.timeout = absl::Seconds(20);
  auto channel = Channel::Create(cluster.Target(), options);
  ASSERT_TRUE(channel.ok());
  Ledger ledger(channel->get());
  for (int i = 0; i < 400; ++i) ledger.Issue("Echo");
  ASSERT_TRUE(ledger.WaitAll(absl::Seconds(30))) << ledger.Outcomes();
  ledger.ExpectExactlyOnce();
  EXPECT_EQ(ledger.Count("OK"), 400) << ledger.Outcomes();
}

TEST_P(Hedging, BackupRequestAnswersWhenTheFirstServerIsSlow) {
  Cluster cluster(2, transport());
  ChannelOptions options = Options();
  options.backup_request_delay = absl::Milliseconds(30);
  auto channel = Channel::Create(cluster.Target(), options);
  ASSERT_TRUE(channel.ok());
  ConnectToEvery(**channel, 2);
  const int64_t attempts_before = (*channel)->attempts();
  cluster.server(0).SetEchoDelay(absl::Milliseconds(400));
  for (int i = 0; i < 6; ++i) {
    // Whichever server rr picked first, the fast one answers: half of these
    // calls went to the slow server first, and only a backup request to the
    // other one can answer with its address.
    EXPECT_EQ(Whoami(**channel), cluster.server(1).address());
  }
  EXPECT_GT((*channel)->attempts() - attempts_before, 6);  // backups were sent
}

TEST_P(Hedging, FirstAttemptWinsWhenItIsFastAndNoBackupIsSent) {
  Cluster cluster(2, transport());
  ChannelOptions options = Options();
  options.backup_request_delay = absl::Milliseconds(200);
  auto channel = Channel::Create(cluster.Target(), options);
  ASSERT_TRUE(channel.ok());
  ConnectToEvery(**channel, 2);
  const int64_t attempts_before = (*channel)->attempts();
  Ledger ledger(channel->get());
  for (int i = 0; i < 50; ++i) ledger.Issue("Echo");
  ASSERT_TRUE(ledger.WaitAll(absl::Seconds(5)));
  ledger.ExpectExactlyOnce();
  EXPECT_EQ(ledger.Count("OK"), 50);
  EXPECT_EQ((*channel)->attempts() - attempts_before, 50);
}

TEST_P(Hedging, EitherAttemptWinningCompletesTheCallOnce) {
  Cluster cluster(2, transport());
  cluster.server(0).SetEchoDelay(absl::Milliseconds(40));
  cluster.server(1).SetEchoDelay(absl::Milliseconds(40));
  ChannelOptions options = Options();
  options.backup_request_delay = absl::Milliseconds(20);
  options.retry.budget_max_tokens = 1000;
  auto channel = Channel::Create(cluster.Target(), options);
  ASSERT_TRUE(channel.ok());
  Ledger ledger(channel->get());
  // Both attempts answer within ~20 ms of each other: the race goes both ways.
  for (int i = 0; i < 200; ++i) ledger.Issue("Echo");
  ASSERT_TRUE(ledger.WaitAll(absl::Seconds(10)));
  ledger.ExpectExactlyOnce();
  EXPECT_EQ(ledger.Count("OK"), 200);
  EXPECT_GT((*channel)->attempts(), 200);
}

TEST_P(Retries, StopAtTheDeadline) {
  Cluster cluster(2, transport());
  std::string target = cluster.Target();
  cluster.server(0).Kill();
  cluster.server(1).Kill();
  ChannelOptions options = Options();
  options.retry.max_retries = 1000;
  options.retry.budget_max_tokens = 1000;
  options.retry.initial_backoff = absl::Milliseconds(10);
  options.retry.max_backoff = absl::Milliseconds(10);
  options.reconnect_backoff = absl::Milliseconds(1);
  options.max_reconnect_backoff = absl::Milliseconds(1);
  auto channel = Channel::Create(target, options);
  ASSERT_TRUE(channel.ok());
  CallOptions call;
  call.timeout = absl::Milliseconds(200);
  absl::Time start = absl::Now();
  std::string who = Whoami(**channel, call);
  absl::Duration took = absl::Now() - start;
  EXPECT_EQ(who.rfind("error: ", 0), 0u);
  // It gave up at the deadline: 1,000 retries 10 ms apart would take 10 s.
  EXPECT_LT(took, absl::Seconds(5));
  EXPECT_GE(took, absl::Milliseconds(150));  // it kept retrying until then
  EXPECT_LT((*channel)->attempts(), 40);     // one attempt per ~10 ms backoff
}

TEST_P(Retries, BudgetBoundsExtraAttemptsDuringATotalOutage) {
  Cluster cluster(3, transport());
  std::string target = cluster.Target();
  for (int i = 0; i < 3; ++i) cluster.server(i).Kill();
  ChannelOptions options = Options();
  options.retry.max_retries = 3;
  options.retry.budget_ratio = 0.1;
  options.retry.budget_max_tokens = 10;
  auto channel = Channel::Create(target, options);
  ASSERT_TRUE(channel.ok());
  Ledger ledger(channel->get());
  constexpr int kCalls = 500;
  for (int i = 0; i < kCalls; ++i) ledger.Issue("Echo");
  ASSERT_TRUE(ledger.WaitAll(absl::Seconds(20)));
  ledger.ExpectExactlyOnce();
  EXPECT_EQ(ledger.Count("OK"), 0);
  // Without a budget 3 retries per call would make 2000 attempts.
  EXPECT_LE((*channel)->attempts(), kCalls + 10 + kCalls / 10 + 1);
}

TEST_P(ConsistentHashing, KeysKeepTheirServerAcrossMembershipChanges) {
  Cluster cluster(4, transport());
  auto naming = std::make_shared<StaticNamingService>(cluster.Nodes());
  ChannelOptions options = Options();
  options.load_balancer = "c_hash";
  auto channel = Channel::Create(naming, options);
  ASSERT_TRUE(channel.ok());
  auto map_keys = [&] {
    std::vector<std::string> owners;
    for (int k = 0; k < 200; ++k) {
      CallOptions call;
      call.hash_key = absl::StrCat("user-", k);
      owners.push_back(Whoami(**channel, call));
    }
    return owners;
  };
  std::vector<std::string> before = map_keys();
  EXPECT_EQ(map_keys(), before);  // stable
  naming->Update(cluster.Nodes(/*skip=*/2));
  std::vector<std::string> during = map_keys();
  int moved = 0;
  for (size_t k = 0; k < before.size(); ++k) {
    if (before[k] == during[k]) continue;
    ++moved;
    EXPECT_EQ(before[k], cluster.server(2).address()) << "key " << k << " moved without need";
  }
  // Only the removed server's share (about 1/4) moves.
  EXPECT_GT(moved, 20);
  EXPECT_LT(moved, 90);
  naming->Update(cluster.Nodes());
  EXPECT_EQ(map_keys(), before);  // and comes back
}

TEST_P(Membership, RemovingAnEndpointDrainsItsInFlightCalls) {
  Cluster cluster(2, transport());
  cluster.server(0).SetEchoDelay(absl::Milliseconds(300));
  auto naming = std::make_shared<StaticNamingService>(cluster.Nodes());
  auto channel = Channel::Create(naming, Options());
  ASSERT_TRUE(channel.ok());
  Ledger ledger(channel->get());
  for (int i = 0; i < 20; ++i) ledger.Issue("Echo");
  // Every call is at a server; server 0's take 300 ms.
  ASSERT_TRUE(
      WaitFor([&] { return cluster.server(0).requests() + cluster.server(1).requests() == 20; }));
  ASSERT_GT(cluster.server(0).requests(), 0);
  naming->Update(cluster.Nodes(/*skip=*/0));
  ASSERT_TRUE(ledger.WaitAll(absl::Seconds(5)));
  ledger.ExpectExactlyOnce();
  EXPECT_EQ(ledger.Count("OK"), 20);
  // New calls only reach the remaining server.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Whoami(**channel), cluster.server(1).address());
}

// Calls issued on one thread while another keeps changing the membership
// (each server removed and added back in turn): a call that picked an
// endpoint just as an update removed it still gets an answer, from a
// transport that stays up until its attempts end.
TEST_P(Membership, CallsRacingMembershipChangesAllSucceed) {
  Cluster cluster(2, transport());
  auto naming = std::make_shared<StaticNamingService>(cluster.Nodes());
  ChannelOptions options = Options();
  options.timeout = absl::Seconds(20);  // re-added servers are dialed again (over TLS: handshakes)
  auto channel = Channel::Create(naming, options);
  ASSERT_TRUE(channel.ok());
  ConnectToEvery(**channel, 2);
  Ledger ledger(channel->get());
  constexpr int kCalls = 600;
  std::atomic<bool> issued_all{false};
  std::thread caller([&] {
    for (int i = 0; i < kCalls; ++i) ledger.Issue("Echo");
    issued_all.store(true);
  });
  int updates = 0;
  for (; !issued_all.load() && updates < 400; ++updates) {
    naming->Update(cluster.Nodes(/*skip=*/updates % 4 == 0 ? 0 : updates % 4 == 2 ? 1 : -1));
  }
  caller.join();
  naming->Update(cluster.Nodes());
  ASSERT_TRUE(ledger.WaitAll(absl::Seconds(30))) << ledger.Outcomes();
  ledger.ExpectExactlyOnce();
  EXPECT_EQ(ledger.Count("OK"), kCalls) << ledger.Outcomes() << " after " << updates << " updates";
}

TEST_P(Health, ConnectionFailureCodeAnsweredByAServerNeitherRetriesNorMarksItUnhealthy) {
  // A gateway relays its downstream's EFAILEDSOCKET: the gateway itself is fine.
  Cluster cluster(2, transport());
  auto channel = Channel::Create(cluster.Target(), Options());
  ASSERT_TRUE(channel.ok());
  EchoRequest request;
  request.set_message("relay");
  request.set_code(EFAILEDSOCKET);
  EchoResponse response;
  for (int i = 0; i < 4; ++i) {
    absl::Status status = (*channel)->CallMethod("example.EchoService", "Fail", request, &response);
    EXPECT_EQ(ErrorCodeOf(status), EFAILEDSOCKET);
  }
  EXPECT_EQ((*channel)->attempts(), 4);  // no retries
  std::map<std::string, int> seen;
  for (int i = 0; i < 10; ++i) seen[Whoami(**channel)]++;
  EXPECT_EQ(seen.size(), 2u);  // both servers still in rotation
}

TEST_P(Health, FailedEndpointIsTakenOutAndProbedBackIn) {
  Cluster cluster(2, transport());
  auto channel = Channel::Create(cluster.Target(), Options());
  ASSERT_TRUE(channel.ok());
  EXPECT_EQ(Whoami(**channel).rfind("127.0.0.1:", 0), 0u);
  cluster.server(0).Kill();
  // Calls keep succeeding (retried on the other server), and after the first
  // failure they all go to server 1.
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Whoami(**channel), cluster.server(1).address());
  ASSERT_TRUE(cluster.server(0).Restart().ok());
  // The probe brings server 0 back within a few probe intervals.
  EXPECT_TRUE(WaitFor([&] { return Whoami(**channel) == cluster.server(0).address(); }));
}

}  // namespace
}  // namespace nprpc
