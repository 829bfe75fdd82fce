// The call controller and channel core in virtual time: a FakeClock for
// deadlines, backoff, backup delays and probes, a FakeNetwork for the
// attempts. No sockets, no threads, no sleeps.
#include "rpc/internal/call_controller.h"

#include <algorithm>
#include <array>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/duration.pb.h"
#include "gtest/gtest.h"
#include "proto/echo.pb.h"
#include "rpc/errors.h"
#include "rpc/internal/channel_core.h"
#include "rpc/internal/load_balancer.h"
#include "rpc/internal/testing/fake_clock.h"
#include "rpc/internal/testing/fake_transport.h"
#include "rpc/naming_service.h"

namespace nprpc {
namespace {

using example::EchoResponse;
using testing::FakeAttempt;
using testing::FakeClientProtocol;
using testing::FakeClock;
using testing::FakeNetwork;

const std::vector<std::string> kAddresses = {"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"};

// How a call ended, as its `done` saw it.
struct Outcome {
  int completions = 0;
  absl::Status status;
};

EchoResponse Reply(absl::string_view message) {
  EchoResponse response;
  response.set_message(std::string(message));
  return response;
}

// Deterministic retries: no jitter, a roomy budget.
ChannelCoreOptions DefaultOptions() {
  ChannelCoreOptions options;
  options.retry.jitter = 0;
  options.retry.initial_backoff = absl::Milliseconds(10);
  options.retry.multiplier = 2;
  options.retry.max_backoff = absl::Seconds(1);
  options.retry.budget_max_tokens = 100;
  return options;
}

class CallControllerTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (core_) core_->Shutdown();
  }

  void MakeCore(const ChannelCoreOptions& options = DefaultOptions(),
                absl::string_view policy = "rr",
                const std::vector<std::string>& addresses = kAddresses) {
    if (core_) core_->Shutdown();
    core_.reset();
    auto clock = std::make_unique<FakeClock>();
    clock_ = clock.get();
    network_ = std::make_unique<FakeNetwork>(clock_);
    auto lb = LoadBalancer::Create(policy);
    ASSERT_TRUE(lb.ok()) << lb.status();
    core_ =
        ChannelCore::Create(options, std::move(*lb),
                            std::make_unique<FakeClientProtocol>(network_.get()), std::move(clock));
    SetEndpoints(addresses);
  }

  void SetEndpoints(const std::vector<std::string>& addresses) {
    std::vector<ServerNode> nodes;
    for (const auto& address : addresses) nodes.push_back(ServerNode{address});
    core_->OnNodes(nodes);
  }

  // Starts a call with a 100 ms timeout unless `options` says otherwise.
  std::shared_ptr<Outcome> Start(CallOptions options, google::protobuf::Message* response) {
    if (options.timeout == absl::InfiniteDuration()) options.timeout = absl::Milliseconds(100);
    ClientRequest request;
    request.service = "example.EchoService";
    request.method = "Echo";
    request.payload.WriteBinary("request-bytes");
    auto outcome = std::make_shared<Outcome>();
    start_ = clock_->Now();
    auto call = std::make_shared<CallController>(core_, std::move(request), response, options,
                                                 CallDeadline(options, absl::Seconds(5), start_),
                                                 [outcome](absl::Status status) {
                                                   outcome->completions++;
                                                   outcome->status = std::move(status);
                                                 });
    call->Start();
    return outcome;
  }

  // Fails every attempt still held with a local (client-side) error.
  void FailHeldLocally(int32_t code) {
    for (size_t i = 0; i < network_->attempts(); ++i) {
      network_->Fail(i, MakeRpcError(code, "scripted local failure"));
    }
  }

  // The send times of all attempts, relative to the call's start.
  std::vector<absl::Duration> SendTimes() {
    std::vector<absl::Duration> times;
    for (size_t i = 0; i < network_->attempts(); ++i) {
      times.push_back(network_->attempt(i).sent_at - start_);
    }
    return times;
  }

  // Declared first: outlives the core, whose transports point at it.
  std::unique_ptr<FakeNetwork> network_;
  std::shared_ptr<ChannelCore> core_;
  FakeClock* clock_ = nullptr;  // owned by core_
  absl::Time start_;
};

// ------------------------------------------------------------ Interleavings

enum class Event { kFirstAnswer, kBackupAnswer, kDeadline, kCancel };

std::string Name(Event event) {
  switch (event) {
    case Event::kFirstAnswer:
      return "first-answer";
    case Event::kBackupAnswer:
      return "backup-answer";
    case Event::kDeadline:
      return "deadline";
    case Event::kCancel:
      return "cancel";
  }
  return "?";
}

TEST_F(CallControllerTest, EveryInterleavingOfAnswersDeadlineAndCancelCompletesOnceWithTheFirst) {
  constexpr absl::Duration kBackupDelay = absl::Milliseconds(10);
  constexpr absl::Duration kTimeout = absl::Milliseconds(100);
  int cases = 0;
  for (bool answers_are_errors : {false, true}) {
    std::array<Event, 4> events = {Event::kFirstAnswer, Event::kBackupAnswer, Event::kDeadline,
                                   Event::kCancel};
    do {
      std::string trace;
      for (Event e : events) absl::StrAppend(&trace, Name(e), " ");
      absl::StrAppend(&trace, answers_are_errors ? "(answers are errors)" : "(answers are OK)");
      SCOPED_TRACE(trace);
      ++cases;

      MakeCore();
      CancellationToken cancel;
      CallOptions options;
      options.timeout = kTimeout;
      options.backup_request_delay = kBackupDelay;
      options.cancel = cancel;
      EchoResponse response;
      auto outcome = Start(options, &response);
      ASSERT_EQ(network_->attempts(), 1u);
      clock_->Advance(kBackupDelay);
      ASSERT_EQ(network_->attempts(), 2u) << "the backup request was not sent";
      EXPECT_NE(network_->attempt(0).address, network_->attempt(1).address);

      for (Event event : events) {
        switch (event) {
          case Event::kFirstAnswer:
          case Event::kBackupAnswer: {
            size_t i = event == Event::kFirstAnswer ? 0 : 1;
            if (answers_are_errors) {
              network_->AnswerError(i, EINTERNAL, "server failed");
            } else {
              network_->Answer(i, Reply(i == 0 ? "first" : "backup"));
            }
            break;
          }
          case Event::kDeadline:
            clock_->AdvanceTo(start_ + kTimeout);
            break;
          case Event::kCancel:
            cancel.Cancel();
            break;
        }
        ASSERT_EQ(outcome->completions, 1) << "after " << Name(event);
      }
      clock_->Advance(absl::Seconds(10));  // any timer left must be harmless

      EXPECT_EQ(outcome->completions, 1);
      EXPECT_EQ(network_->attempts(), 2u) << "no attempt after the call completed";
      EXPECT_EQ(network_->held(), 0u) << "every loser is abandoned";
      EXPECT_EQ(core_->in_flight(), 0u);
      switch (events[0]) {
        case Event::kFirstAnswer:
        case Event::kBackupAnswer: {
          const size_t winner = events[0] == Event::kFirstAnswer ? 0 : 1;
          const size_t loser = 1 - winner;
          if (answers_are_errors) {
            EXPECT_EQ(ErrorCodeOf(outcome->status), EINTERNAL) << outcome->status;
            EXPECT_FALSE(response.has_message());
          } else {
            EXPECT_TRUE(outcome->status.ok()) << outcome->status;
            EXPECT_EQ(response.message(), winner == 0 ? "first" : "backup");
          }
          EXPECT_FALSE(network_->attempt(winner).abandoned);
          EXPECT_TRUE(network_->attempt(loser).abandoned);
          break;
        }
        case Event::kDeadline:
          EXPECT_EQ(ErrorCodeOf(outcome->status), ERPCTIMEDOUT) << outcome->status;
          EXPECT_TRUE(absl::IsDeadlineExceeded(outcome->status));
          EXPECT_FALSE(response.has_message());
          EXPECT_TRUE(network_->attempt(0).abandoned && network_->attempt(1).abandoned);
          break;
        case Event::kCancel:
          EXPECT_TRUE(absl::IsCancelled(outcome->status)) << outcome->status;
          EXPECT_FALSE(response.has_message());
          EXPECT_TRUE(network_->attempt(0).abandoned && network_->attempt(1).abandoned);
          break;
      }
    } while (std::next_permutation(events.begin(), events.end(), [](Event a, Event b) {
      return static_cast<int>(a) < static_cast<int>(b);
    }));
  }
  EXPECT_EQ(cases, 48);
}

// ------------------------------------------------------------------ Retries

TEST_F(CallControllerTest, RetriesBackOffExponentiallyAndNeverPastTheDeadline) {
  MakeCore();
  CallOptions options;
  options.timeout = absl::Milliseconds(100);
  options.max_retries = 10;
  EchoResponse response;
  auto outcome = Start(options, &response);
  for (int ms = 0; ms < 200 && outcome->completions == 0; ++ms) {
    FailHeldLocally(EOVERCROWDED);
    clock_->Advance(absl::Milliseconds(1));
  }
  // Backoffs 10, 20, 40 ms; the next (80 ms, at 70 ms) would pass the
  // deadline, so the call ends with the last failure at once.
  EXPECT_EQ(SendTimes(),
            (std::vector<absl::Duration>{absl::ZeroDuration(), absl::Milliseconds(10),
                                         absl::Milliseconds(30), absl::Milliseconds(70)}));
  EXPECT_EQ(outcome->completions, 1);
  EXPECT_EQ(ErrorCodeOf(outcome->status), EOVERCROWDED) << outcome->status;
  // Each attempt tells the server the time left, not the original timeout.
  for (size_t i = 0; i < network_->attempts(); ++i) {
    FakeAttempt attempt = network_->attempt(i);
    EXPECT_EQ(attempt.deadline, start_ + absl::Milliseconds(100));
    EXPECT_EQ(attempt.timeout, attempt.deadline - attempt.sent_at);
    EXPECT_EQ(attempt.payload, "request-bytes") << "every attempt sends the same request";
  }
}

TEST_F(CallControllerTest, DeadlineDuringARetryBackoffEndsTheCallWithoutAnotherAttempt) {
  ChannelCoreOptions core_options = DefaultOptions();
  core_options.retry.initial_backoff = absl::Milliseconds(50);
  MakeCore(core_options);
  CallOptions options;
  options.timeout = absl::Milliseconds(60);
  EchoResponse response;
  auto outcome = Start(options, &response);
  network_->Fail(0, MakeRpcError(EFAILEDSOCKET, "connection refused"));
  clock_->Advance(absl::Milliseconds(50));
  ASSERT_EQ(network_->attempts(), 2u);  // the retry, at 50 ms, is held
  clock_->Advance(absl::Milliseconds(10));
  EXPECT_EQ(outcome->completions, 1);
  EXPECT_EQ(ErrorCodeOf(outcome->status), ERPCTIMEDOUT) << outcome->status;
  EXPECT_TRUE(network_->attempt(1).abandoned);
  clock_->Advance(absl::Seconds(1));
  EXPECT_EQ(network_->attempts(), 2u);
}

TEST_F(CallControllerTest, RetriesGoToAnEndpointNotYetTried) {
  // c_hash sends every attempt of key "k" to the same server unless the
  // controller excludes the ones it tried.
  MakeCore(DefaultOptions(), "c_hash");
  CallOptions options;
  options.hash_key = "k";
  options.max_retries = 2;
  EchoResponse response;
  auto outcome = Start(options, &response);
  for (int ms = 0; ms < 100 && outcome->completions == 0; ++ms) {
    FailHeldLocally(EOVERCROWDED);
    clock_->Advance(absl::Milliseconds(1));
  }
  ASSERT_EQ(network_->attempts(), 3u);
  std::set<std::string> addresses;
  for (size_t i = 0; i < 3; ++i) addresses.insert(network_->attempt(i).address);
  EXPECT_EQ(addresses.size(), 3u);
}

TEST_F(CallControllerTest, RetryWithEveryEndpointTriedGoesToATriedOne) {
  MakeCore(DefaultOptions(), "rr", {"10.0.0.1:80"});
  CallOptions options;
  options.max_retries = 2;
  EchoResponse response;
  auto outcome = Start(options, &response);
  network_->Fail(0, MakeRpcError(EOVERCROWDED, "busy"));
  clock_->Advance(absl::Milliseconds(10));
  ASSERT_EQ(network_->attempts(), 2u);
  network_->Answer(1, Reply("ok"));
  EXPECT_TRUE(outcome->status.ok()) << outcome->status;
  EXPECT_EQ(response.message(), "ok");
}

TEST_F(CallControllerTest, ExhaustedBudgetStopsRetriesAndBackups) {
  ChannelCoreOptions core_options = DefaultOptions();
  core_options.retry.budget_max_tokens = 2;
  core_options.retry.budget_ratio = 0;  // calls add nothing back
  MakeCore(core_options);

  CallOptions options;
  options.max_retries = 5;
  EchoResponse response;
  auto failing = Start(options, &response);
  for (int ms = 0; ms < 100 && failing->completions == 0; ++ms) {
    FailHeldLocally(EOVERCROWDED);
    clock_->Advance(absl::Milliseconds(1));
  }
  EXPECT_EQ(network_->attempts(), 3u) << "two tokens: two retries of five";
  EXPECT_EQ(ErrorCodeOf(failing->status), EOVERCROWDED);

  CallOptions hedged;
  hedged.backup_request_delay = absl::Milliseconds(10);
  auto outcome = Start(hedged, &response);
  clock_->Advance(absl::Milliseconds(50));
  EXPECT_EQ(network_->attempts(), 4u) << "no token left for a backup request";
  network_->Answer(3, Reply("only"));
  EXPECT_TRUE(outcome->status.ok()) << outcome->status;
  EXPECT_EQ(response.message(), "only");
}

// Which failures are retried (max_retries 1): by whom and with what code.
TEST_F(CallControllerTest, OnlyRetryableFailuresAreRetried) {
  struct Case {
    bool answered_by_server;
    int32_t code;
    bool retried;
  };
  const Case cases[] = {
      {true, EINTERNAL, false},    {true, EFAILEDSOCKET, false}, {true, EOVERCROWDED, false},
      {true, ERPCTIMEDOUT, false}, {true, ELOGOFF, true},        {false, EFAILEDSOCKET, true},
      {false, EOVERCROWDED, true}, {false, EREQUEST, false},     {false, ERESPONSE, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat(c.answered_by_server ? "server" : "local", " code ", c.code));
    MakeCore();
    CallOptions options;
    options.max_retries = 1;
    EchoResponse response;
    auto outcome = Start(options, &response);
    if (c.answered_by_server) {
      network_->AnswerError(0, c.code);
    } else {
      network_->Fail(0, MakeRpcError(c.code, "local"));
    }
    clock_->Advance(absl::Milliseconds(10));
    EXPECT_EQ(network_->attempts(), c.retried ? 2u : 1u);
    EXPECT_EQ(outcome->completions, c.retried ? 0 : 1);
    if (!c.retried) {
      EXPECT_EQ(ErrorCodeOf(outcome->status), c.code);
    }
  }
}

TEST_F(CallControllerTest, ChosenCodesAreRetriedOnlyForIdempotentCalls) {
  ChannelCoreOptions core_options = DefaultOptions();
  core_options.retry.retryable_error_codes = {EINTERNAL};
  for (bool idempotent : {false, true}) {
    SCOPED_TRACE(idempotent ? "idempotent" : "not idempotent");
    MakeCore(core_options);
    CallOptions options;
    options.idempotent = idempotent;
    EchoResponse response;
    auto outcome = Start(options, &response);
    network_->AnswerError(0, EINTERNAL);
    clock_->Advance(absl::Milliseconds(10));
    if (!idempotent) {
      EXPECT_EQ(network_->attempts(), 1u);
      EXPECT_EQ(ErrorCodeOf(outcome->status), EINTERNAL);
      continue;
    }
    ASSERT_EQ(network_->attempts(), 2u);
    network_->Answer(1, Reply("second time lucky"));
    EXPECT_TRUE(outcome->status.ok()) << outcome->status;
    EXPECT_EQ(response.message(), "second time lucky");
  }
}

TEST_F(CallControllerTest, MaxRetriesZeroSendsOneAttempt) {
  MakeCore();
  CallOptions options;
  options.max_retries = 0;
  EchoResponse response;
  auto outcome = Start(options, &response);
  network_->Fail(0, MakeRpcError(EFAILEDSOCKET, "refused"));
  clock_->Advance(absl::Milliseconds(50));
  EXPECT_EQ(network_->attempts(), 1u);
  EXPECT_EQ(ErrorCodeOf(outcome->status), EFAILEDSOCKET);
}

// A failed attempt's decoder left a field in the caller's message: the retry
// starts from an empty message, whether it succeeds (merging its answer) or
// fails without touching the message.
TEST_F(CallControllerTest, RetryDoesNotMergeTheFailedAttemptsFields) {
  ChannelCoreOptions core_options = DefaultOptions();
  core_options.retry.retryable_error_codes = {ERESPONSE};
  for (bool retry_succeeds : {true, false}) {
    SCOPED_TRACE(retry_succeeds ? "retry succeeds" : "retry fails");
    MakeCore(core_options);
    CallOptions options;
    options.idempotent = true;
    google::protobuf::Duration response;
    auto outcome = Start(options, &response);
    network_->AnswerWith(0, [](google::protobuf::Message& message, CallInfo*) {
      static_cast<google::protobuf::Duration&>(message).set_nanos(7);
      return MakeRpcError(ERESPONSE, "truncated");
    });
    clock_->Advance(absl::Milliseconds(10));
    ASSERT_EQ(network_->attempts(), 2u);
    if (retry_succeeds) {
      google::protobuf::Duration answer;
      answer.set_seconds(5);
      std::string bytes = answer.SerializeAsString();
      network_->AnswerWith(1, [&](google::protobuf::Message& message, CallInfo*) {
        message.MergeFromString(bytes);
        return absl::OkStatus();
      });
      EXPECT_TRUE(outcome->status.ok()) << outcome->status;
      EXPECT_EQ(response.seconds(), 5);
    } else {
      network_->AnswerError(1, EINTERNAL);
      EXPECT_EQ(ErrorCodeOf(outcome->status), EINTERNAL);
    }
    EXPECT_EQ(response.nanos(), 0) << "the failed attempt's field leaked into the response";
  }
}

TEST_F(CallControllerTest, FailedFirstAttemptWaitsForTheRunningBackup) {
  MakeCore();
  CallOptions options;
  options.backup_request_delay = absl::Milliseconds(10);
  EchoResponse response;
  auto outcome = Start(options, &response);
  clock_->Advance(absl::Milliseconds(10));
  ASSERT_EQ(network_->attempts(), 2u);
  network_->Fail(0, MakeRpcError(EOVERCROWDED, "busy"));
  clock_->Advance(absl::Milliseconds(20));
  EXPECT_EQ(outcome->completions, 0);
  EXPECT_EQ(network_->attempts(), 2u) << "no retry while the backup may still answer";
  network_->Answer(1, Reply("backup"));
  EXPECT_TRUE(outcome->status.ok()) << outcome->status;
  EXPECT_EQ(response.message(), "backup");
}

TEST_F(CallControllerTest, NoBackupWhenTheDeadlineComesFirst) {
  MakeCore();
  CallOptions options;
  options.timeout = absl::Milliseconds(10);
  options.backup_request_delay = absl::Milliseconds(10);
  EchoResponse response;
  auto outcome = Start(options, &response);
  clock_->Advance(absl::Milliseconds(20));
  EXPECT_EQ(network_->attempts(), 1u);
  EXPECT_EQ(ErrorCodeOf(outcome->status), ERPCTIMEDOUT);
}

TEST_F(CallControllerTest, EmptyServerListFailsWithUnavailableAfterTheNamingWait) {
  ChannelCoreOptions core_options = DefaultOptions();
  core_options.naming_wait = absl::Milliseconds(50);
  MakeCore(core_options, "rr", {});
  EchoResponse response;
  auto outcome = Start(CallOptions(), &response);
  clock_->Advance(absl::Milliseconds(49));
  EXPECT_EQ(outcome->completions, 0);
  clock_->Advance(absl::Milliseconds(1));
  EXPECT_EQ(outcome->completions, 1);
  EXPECT_EQ(ErrorCodeOf(outcome->status), EFAILEDSOCKET) << outcome->status;
  EXPECT_EQ(network_->attempts(), 0u);
}

TEST_F(CallControllerTest, ZeroNamingWaitFailsAnEmptyListAtOnce) {
  ChannelCoreOptions core_options = DefaultOptions();
  core_options.naming_wait = absl::ZeroDuration();
  MakeCore(core_options, "rr", {});
  EchoResponse response;
  auto outcome = Start(CallOptions(), &response);
  EXPECT_EQ(outcome->completions, 1);
  EXPECT_EQ(ErrorCodeOf(outcome->status), EFAILEDSOCKET);
}

// Issue #18 (the c_hash race, channel side): a naming update that empties
// the list and refills it must not fail the calls that arrive in between.
TEST_F(CallControllerTest, CallMeetingAnEmptyListDuringAnUpdateWaitsForTheNewList) {
  for (const std::string policy : {"rr", "c_hash"}) {
    MakeCore(DefaultOptions(), policy, {"10.0.0.1:80"});
    SetEndpoints({});
    EchoResponse response;
    CallOptions options;
    options.hash_key = "user-42";
    auto outcome = Start(options, &response);
    clock_->Advance(absl::Milliseconds(10));
    EXPECT_EQ(outcome->completions, 0) << policy;
    SetEndpoints({"10.0.0.2:80", "10.0.0.3:80"});
    ASSERT_EQ(network_->attempts(), 1u) << policy;
    network_->Answer(0, Reply("after the update"));
    EXPECT_EQ(outcome->completions, 1) << policy;
    EXPECT_TRUE(outcome->status.ok()) << policy << ": " << outcome->status;
    EXPECT_EQ(response.message(), "after the update");
  }
}

TEST_F(CallControllerTest, WaitForEndpointsNeverOutlastsTheDeadline) {
  ChannelCoreOptions core_options = DefaultOptions();
  core_options.naming_wait = absl::Seconds(10);
  MakeCore(core_options, "rr", {});
  EchoResponse response;
  auto outcome = Start(CallOptions(), &response);  // 100 ms
  clock_->Advance(absl::Milliseconds(100));
  EXPECT_EQ(outcome->completions, 1);
  EXPECT_FALSE(outcome->status.ok());
  SetEndpoints(kAddresses);  // too late: no attempt
  EXPECT_EQ(network_->attempts(), 0u);
  EXPECT_EQ(outcome->completions, 1);
}

// ------------------------------------------------------------- Channel core

TEST_F(CallControllerTest, ConnectionFailureTakesTheEndpointOutUntilAProbeSucceeds) {
  MakeCore(DefaultOptions(), "rr", {"10.0.0.1:80", "10.0.0.2:80"});
  const std::string bad = "10.0.0.1:80";
  network_->SetReachable(bad, false);
  CallOptions options;
  options.max_retries = 0;
  options.timeout = absl::Seconds(10);
  EchoResponse response;
  // Find the call that lands on `bad` and fail its connection.
  for (int i = 0; i < 2; ++i) {
    auto outcome = Start(options, &response);
    size_t last = network_->attempts() - 1;
    if (network_->attempt(last).address == bad) {
      network_->Fail(last, MakeRpcError(EFAILEDSOCKET, "refused"));
    } else {
      network_->Answer(last, Reply("ok"));
    }
  }
  for (int i = 0; i < 4; ++i) {
    Start(options, &response);
    EXPECT_NE(network_->attempt(network_->attempts() - 1).address, bad) << "unhealthy endpoint";
    network_->Answer(network_->attempts() - 1, Reply("ok"));
  }
  // Probes after 100 ms, then 200 ms more (doubling) while unreachable.
  clock_->Advance(absl::Milliseconds(99));
  EXPECT_EQ(network_->probes(bad), 0);
  clock_->Advance(absl::Milliseconds(1));
  EXPECT_EQ(network_->probes(bad), 1);
  clock_->Advance(absl::Milliseconds(199));
  EXPECT_EQ(network_->probes(bad), 1);
  network_->SetReachable(bad, true);
  clock_->Advance(absl::Milliseconds(1));
  EXPECT_EQ(network_->probes(bad), 2);
  // Back in load balancing.
  std::set<std::string> seen;
  for (int i = 0; i < 2; ++i) {
    Start(options, &response);
    seen.insert(network_->attempt(network_->attempts() - 1).address);
    network_->Answer(network_->attempts() - 1, Reply("ok"));
  }
  EXPECT_TRUE(seen.contains(bad));
}

TEST_F(CallControllerTest, EndpointWhoseCallsFailIsEjectedThenGetsALittleTrafficAgain) {
  ChannelCoreOptions core_options = DefaultOptions();
  core_options.outlier.enabled = true;
  core_options.outlier.interval = absl::Milliseconds(100);
  core_options.outlier.min_requests = 5;
  core_options.outlier.base_ejection_time = absl::Seconds(1);
  MakeCore(core_options);
  core_->Watch(std::make_shared<StaticNamingService>(std::vector<ServerNode>{
      ServerNode{kAddresses[0]}, ServerNode{kAddresses[1]}, ServerNode{kAddresses[2]}}));
  const std::string& bad = kAddresses[0];
  CallOptions options;
  options.max_retries = 0;
  EchoResponse response;
  // The server at `bad` answers every call with EINTERNAL.
  auto run_calls = [&](int n) {
    int to_bad = 0;
    for (int i = 0; i < n; ++i) {
      Start(options, &response);
      const size_t last = network_->attempts() - 1;
      if (network_->attempt(last).address == bad) {
        ++to_bad;
        network_->AnswerError(last, EINTERNAL, "broken");
      } else {
        network_->Answer(last, Reply("ok"));
      }
    }
    return to_bad;
  };
  EXPECT_EQ(run_calls(30), 10);
  clock_->Advance(absl::Milliseconds(100));  // judged
  EXPECT_EQ(core_->outlier_stats().ejections, 1);
  EXPECT_EQ(core_->outlier_stats().ejected_now, 1);
  EXPECT_EQ(run_calls(30), 0) << "an ejected endpoint gets no calls";
  clock_->Advance(absl::Seconds(1));  // the ejection is over: probation
  EXPECT_EQ(core_->outlier_stats().on_probation, 1);
  const int trial = run_calls(240);
  EXPECT_GT(trial, 0);
  EXPECT_LT(trial, 40) << "about 1/8 of its share of 80";
}

TEST_F(CallControllerTest, AbandonedAttemptsDoNotCountAgainstTheirEndpoint) {
  ChannelCoreOptions core_options = DefaultOptions();
  core_options.outlier.enabled = true;
  core_options.outlier.interval = absl::Milliseconds(100);
  core_options.outlier.min_requests = 1;
  MakeCore(core_options, "rr", {kAddresses[0], kAddresses[1]});
  core_->Watch(std::make_shared<StaticNamingService>(
      std::vector<ServerNode>{ServerNode{kAddresses[0]}, ServerNode{kAddresses[1]}}));
  EchoResponse response;
  for (int i = 0; i < 10; ++i) {
    CancellationToken cancel;
    CallOptions options;
    options.cancel = cancel;
    Start(options, &response);
    cancel.Cancel();  // the attempt is given up, not failed
  }
  clock_->Advance(absl::Milliseconds(100));
  EXPECT_EQ(core_->outlier_stats().ejections, 0);
}

TEST_F(CallControllerTest, ServerAnsweredConnectionErrorKeepsTheEndpointHealthy) {
  MakeCore(DefaultOptions(), "rr", {"10.0.0.1:80"});
  CallOptions options;
  options.max_retries = 0;
  EchoResponse response;
  Start(options, &response);
  network_->AnswerError(0, EFAILEDSOCKET, "my downstream is down");
  clock_->Advance(absl::Seconds(1));
  EXPECT_EQ(network_->probes("10.0.0.1:80"), 0);
}

TEST_F(CallControllerTest, RemovedEndpointDrainsItsAttemptsThenShutsDown) {
  MakeCore(DefaultOptions(), "rr", {"10.0.0.1:80"});
  EchoResponse response;
  auto outcome = Start(CallOptions(), &response);
  SetEndpoints({"10.0.0.2:80"});
  clock_->Advance(absl::Milliseconds(60));
  EXPECT_EQ(network_->shutdowns(), 0) << "an attempt is still in flight there";
  network_->Answer(0, Reply("drained"));
  EXPECT_TRUE(outcome->status.ok()) << outcome->status;
  clock_->Advance(absl::Milliseconds(50));
  EXPECT_EQ(network_->shutdowns(), 1);
  Start(CallOptions(), &response);
  EXPECT_EQ(network_->attempt(1).address, "10.0.0.2:80");
}

// The window between an attempt's Select() and its Send(): an update that
// removes the endpoint then must not shut its transport down under it.
TEST_F(CallControllerTest, EndpointSelectedBeforeItsRemovalStaysUpUntilReleased) {
  MakeCore(DefaultOptions(), "rr", {"10.0.0.1:80"});
  EndpointPtr selected = core_->Select("", {});
  ASSERT_NE(selected, nullptr);
  SetEndpoints({"10.0.0.2:80"});
  clock_->Advance(absl::Milliseconds(60));
  EXPECT_EQ(network_->shutdowns(), 0) << "selected, so held until released";
  EXPECT_FALSE(selected->TryAcquire()) << "removed: no new attempt takes it";
  selected->Release();
  clock_->Advance(absl::Milliseconds(50));
  EXPECT_EQ(network_->shutdowns(), 1);
  EndpointPtr next = core_->Select("", {});
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(next->node.address, "10.0.0.2:80");
  next->Release();
}

TEST_F(CallControllerTest, ShutdownCancelsCallsInFlightAndRefusesNewOnes) {
  MakeCore();
  EchoResponse response;
  auto outcome = Start(CallOptions(), &response);
  core_->Shutdown();
  EXPECT_EQ(outcome->completions, 1);
  EXPECT_TRUE(absl::IsCancelled(outcome->status)) << outcome->status;
  auto late = Start(CallOptions(), &response);
  EXPECT_EQ(late->completions, 1);
  EXPECT_TRUE(absl::IsCancelled(late->status)) << late->status;
  EXPECT_EQ(core_->in_flight(), 0u);
}

// A naming service may call its watchers on a thread of its own (etcd) and
// join that thread when destroyed. The core's watcher holds the core while it
// runs; were the core to keep the service until its own destruction, a
// watcher holding the last reference to the core would destroy the service on
// the service's own thread. Shutdown() (the Channel's destructor, on the
// user's thread) lets go of it instead.
TEST_F(CallControllerTest, ShutdownLetsGoOfTheNamingService) {
  MakeCore();
  auto naming = std::make_shared<StaticNamingService>(std::vector<ServerNode>{{kAddresses[0]}});
  core_->Watch(naming);
  EXPECT_EQ(naming.use_count(), 2) << "the core holds it while it runs";
  core_->Shutdown();
  EXPECT_EQ(naming.use_count(), 1) << "the core still holds it after Shutdown()";
  naming->Update({ServerNode{kAddresses[1]}});  // its watcher finds the core shut down
  EXPECT_EQ(core_->in_flight(), 0u);
}

TEST_F(CallControllerTest, AttemptsAreCounted) {
  MakeCore();
  CallOptions options;
  options.backup_request_delay = absl::Milliseconds(10);
  EchoResponse response;
  Start(options, &response);
  clock_->Advance(absl::Milliseconds(10));
  EXPECT_EQ(core_->attempts(), 2);
}

// ------------------------------------------------------------------ FakeClock

TEST(FakeClockTest, AdvanceRunsDueTimersInOrderAtTheirDueTime) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  std::vector<std::pair<int, absl::Duration>> ran;
  clock.RunAfter(absl::Milliseconds(20), [&] { ran.emplace_back(2, clock.Now() - start); });
  clock.RunAfter(absl::Milliseconds(10), [&] {
    ran.emplace_back(1, clock.Now() - start);
    clock.RunAfter(absl::Milliseconds(5), [&] { ran.emplace_back(3, clock.Now() - start); });
  });
  Clock::TimerId cancelled = clock.RunAfter(absl::Milliseconds(12), [&] {
    ran.push_back({9, {}});
  });
  clock.Cancel(cancelled);
  clock.Advance(absl::Milliseconds(30));
  EXPECT_EQ(ran, (std::vector<std::pair<int, absl::Duration>>{{1, absl::Milliseconds(10)},
                                                              {3, absl::Milliseconds(15)},
                                                              {2, absl::Milliseconds(20)}}));
  EXPECT_EQ(clock.Now() - start, absl::Milliseconds(30));
  EXPECT_EQ(clock.pending(), 0u);
}

}  // namespace
}  // namespace nprpc
