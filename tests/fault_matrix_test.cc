// The fault matrix: a real nprpc::Server on loopback against misbehaving
// peers and failures, one TEST per case. Each case checks that
//   - the server keeps serving well-behaved clients (a Channel's calls),
//   - every call issued completes exactly once, counted by outcome (Channel
//     calls by their status; raw-socket calls as "answered" or "closed"),
//   - no fd leaks (netpoll::testing::CountOpenFds() before and after), and
//   - memory stays bounded (VmRSS growth below 64 MiB),
// and prints one summary line (FAULT_MATRIX | case | issued | outcomes | fd
// delta | RSS delta) for docs/reliability.md.
//
// The core cases (FaultMatrixEveryTransportTest) run over plaintext, TLS and
// mutual TLS (tests/harness/transport_security.h): the server then requires
// TLS, the Channel and the raw peers (BlockingClient::ConnectTls) complete a
// real handshake first, and every fault is sent inside TLS records.
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/link_buffer.h"
#include "netpoll/logging.h"
#include "netpoll/mutex.h"
#include "netpoll/testing/blocking_client.h"
#include "netpoll/testing/wait.h"
#include "proto/echo.pb.h"
#include "rpc/channel.h"
#include "rpc/errors.h"
#include "rpc/internal/frame_codec.h"
#include "rpc/server.h"
#include "rpc/service.h"
#include "tests/harness/attacker.h"
#include "tests/harness/echo_service.h"
#include "tests/harness/transport_security.h"

namespace nprpc {
namespace {

using example::EchoRequest;
using example::EchoResponse;
using netpoll::testing::BlockingClient;
using netpoll::testing::CountOpenFds;
using netpoll::testing::VmRssKiB;
using testing::Transport;

// Under ASan freed memory sits in a quarantine (256 MiB by default) and
// TSan keeps shadow memory, so RSS there says little about our own memory:
// those builds only check that it stays far from unbounded.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int64_t kMaxRssGrowthKiB = int64_t{1} << 20;  // 1 GiB
#else
constexpr int64_t kMaxRssGrowthKiB = 64 << 10;  // 64 MiB
#endif

// ------------------------------------------------------------------ helpers

using netpoll::testing::WaitFor;

std::string EncodeCall(absl::string_view method, int64_t correlation_id, int32_t code = 0,
                       absl::string_view service = "test.FaultService") {
  EchoRequest request;
  request.set_message(absl::StrCat("raw-", correlation_id));
  request.set_code(code);
  netpoll::LinkBuffer payload;
  EXPECT_TRUE(SerializeToLinkBuffer(request, payload).ok());
  RequestHeader header{.service_name = std::string(service),
                       .method_name = std::string(method),
                       .correlation_id = correlation_id};
  netpoll::LinkBuffer out;
  EXPECT_TRUE(EncodeRequest(header, std::move(payload), {}, out).ok());
  return out.ToString();
}

// Decodes the complete response frames at the head of `in`; returns their
// correlation ids and error codes. A malformed frame fails the test.
std::vector<std::pair<int64_t, int32_t>> TakeAnswers(netpoll::LinkBuffer& in) {
  std::vector<std::pair<int64_t, int32_t>> answers;
  const FrameDecoder decoder;
  for (;;) {
    DecodeResult r = decoder.Decode(in);
    if (r.need_more()) break;
    if (r.is_error()) {
      ADD_FAILURE() << "the server sent a malformed frame: " << r.status();
      break;
    }
    answers.emplace_back(r.frame().meta.correlation_id(), r.frame().meta.response().error_code());
  }
  return answers;
}

// Calls issued and how each completed. Thread-safe. A call completes only
// on an outcome the test observed (a status, answer bytes, EOF or reset), so
// a call that is lost stays incomplete and WaitAll() fails.
class Ledger {
 public:
  // Returns the call's index.
  int Issue() {
    netpoll::MutexLock lock(&mu_);
    completions_.push_back(0);
    return static_cast<int>(completions_.size()) - 1;
  }
  void Complete(int index, const std::string& outcome) {
    netpoll::MutexLock lock(&mu_);
    if (++completions_[index] == 1) ++outcomes_[outcome];
    cv_.SignalAll();
  }
  // Every issued call completed at least once (or the timeout passed).
  bool WaitAll(absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    netpoll::MutexLock lock(&mu_);
    while (!AllDoneLocked()) {
      if (cv_.WaitWithDeadline(&mu_, deadline)) return AllDoneLocked();
    }
    return true;
  }
  // Every issued call completed exactly once.
  void ExpectExactlyOnce() {
    netpoll::MutexLock lock(&mu_);
    for (size_t i = 0; i < completions_.size(); ++i) {
      EXPECT_EQ(completions_[i], 1) << "call " << i;
    }
  }
  int Count(const std::string& outcome) {
    netpoll::MutexLock lock(&mu_);
    auto it = outcomes_.find(outcome);
    return it == outcomes_.end() ? 0 : it->second;
  }
  int issued() {
    netpoll::MutexLock lock(&mu_);
    return static_cast<int>(completions_.size());
  }
  int completed() {
    netpoll::MutexLock lock(&mu_);
    int n = 0;
    for (const auto& [outcome, count] : outcomes_) n += count;
    return n;
  }
  std::string Outcomes() {
    netpoll::MutexLock lock(&mu_);
    std::vector<std::string> parts;
    for (const auto& [outcome, count] : outcomes_)
      parts.push_back(absl::StrCat(outcome, "=", count));
    return absl::StrJoin(parts, ",");
  }

 private:
  bool AllDoneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return std::none_of(completions_.begin(), completions_.end(), [](int c) { return c == 0; });
  }

  netpoll::Mutex mu_;
  netpoll::CondVar cv_;
  std::vector<int> completions_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> outcomes_ ABSL_GUARDED_BY(mu_);
};

// The canonical code's name ("OK", "UNAVAILABLE", "DEADLINE_EXCEEDED", ...).
std::string OutcomeOf(const absl::Status& status) {
  return absl::StatusCodeToString(status.code());
}

// Many raw, non-blocking client connections, each sending one request frame
// (possibly byte by byte) and reading its answers; no netpoll code involved.
struct RawConn {
  int fd = -1;
  std::string request;
  size_t sent = 0;
  netpoll::LinkBuffer received;
  int answers = 0;
  bool connected = false;
  bool closed = false;  // EOF or reset seen
};

// Drives `conns` until each has one answer or is closed, or the timeout.
// Sends each request in full as soon as the socket is writable.
void DriveUntilAnswered(std::vector<RawConn>& conns, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<pollfd> fds(conns.size());
  while (absl::Now() < deadline) {
    size_t pending = 0;
    for (size_t i = 0; i < conns.size(); ++i) {
      RawConn& c = conns[i];
      bool done = c.fd < 0 || c.closed || c.answers > 0;
      // NOLINTNEXTLINE(google-runtime-int): pollfd::events is a short.
      auto events = static_cast<short>(POLLIN | (c.sent < c.request.size() ? POLLOUT : 0));
      fds[i] = {done ? -1 : c.fd, events, 0};
      if (!done) ++pending;
    }
    if (pending == 0) return;
    int n = ::poll(fds.data(), fds.size(), 50);
    if (n <= 0) continue;
    for (size_t i = 0; i < conns.size(); ++i) {
      RawConn& c = conns[i];
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      if ((fds[i].revents & POLLOUT) && c.sent < c.request.size()) {
        ssize_t w =
            ::send(c.fd, c.request.data() + c.sent, c.request.size() - c.sent, MSG_NOSIGNAL);
        if (w > 0) c.sent += static_cast<size_t>(w);
      }
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        absl::StatusOr<size_t> r = c.received.ReadFromFd(c.fd, 1 << 16);
        if (!r.ok()) {
          c.closed = true;
        } else {
          c.answers += static_cast<int>(TakeAnswers(c.received).size());
        }
      }
    }
  }
}

void CloseAll(std::vector<RawConn>& conns) {
  for (RawConn& c : conns) {
    if (c.fd >= 0) ::close(c.fd);
    c.fd = -1;
  }
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

// ------------------------------------------------------------------ fixture

// test.FaultService, on EchoRequest/EchoResponse:
//   Sleep  sleeps request.code() milliseconds on its worker, then echoes (a
//          slow handler is the behaviour; no check depends on its length)
//   Never  keeps its Responder and never answers (released at teardown)
class FaultMatrixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    netpoll::SetMinLogSeverity(netpoll::LogSeverity::kError);  // faults log warnings by design
    fds_before_ = CountOpenFds();
    rss_before_ = VmRssKiB();
    loops_ = std::move(*netpoll::EventLoopGroup::Create({.num_loops = 1, .name = "fm-client"}));
    fds_with_loops_ = CountOpenFds();
  }

  void TearDown() override {
    ReleaseHeld();
    channel_.reset();
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(2));
    server_.reset();
    // Connections close on their loops: wait for the fds to go.
    WaitFor([&] { return CountOpenFds() <= fds_with_loops_; });
    loops_->Stop();
    loops_.reset();
    const int fd_delta = CountOpenFds() - fds_before_;
    const int64_t rss_delta = VmRssKiB() - rss_before_;
    EXPECT_EQ(fd_delta, 0) << "fds leaked";
    EXPECT_LT(rss_delta, kMaxRssGrowthKiB) << "RSS grew by " << rss_delta << " KiB";
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::cout << "FAULT_MATRIX | " << info->name() << " | issued " << ledger_.issued()
              << " | completed " << ledger_.completed() << ": " << ledger_.Outcomes()
              << " | fd delta " << fd_delta << " | RSS delta " << rss_delta / 1024 << " MiB"
              << (note_.empty() ? "" : " | ") << note_ << std::endl;
  }

  // Over transport_: TLS servers refuse plaintext.
  void StartServer(ServerOptions options = ServerOptions(), int port = 0) {
    options.tls = testing::ServerTls(transport_);
    options.tls_required = options.tls != nullptr;
    server_ = std::make_unique<Server>(std::move(options));
    ASSERT_TRUE(server_->AddService(testing::NewEchoService()).ok());
    ASSERT_TRUE(server_->AddService(MakeFaultService()).ok());
    absl::Status s = server_->Start(absl::StrCat("127.0.0.1:", port));
    ASSERT_TRUE(s.ok()) << s;
    port_ = server_->listen_address().port();
  }

  void MakeChannel(ChannelOptions options = ChannelOptions()) {
    options.loops = loops_.get();
    options.tls = testing::ClientTls(transport_);
    options.reconnect_backoff = absl::Milliseconds(5);
    options.max_reconnect_backoff = absl::Milliseconds(50);
    options.retry.max_retries = 0;  // account for raw outcomes
    channel_ = std::move(*Channel::Create(absl::StrCat("127.0.0.1:", port_), options));
  }

  // A raw peer of the server over transport_ (with TLS: handshake done).
  absl::StatusOr<BlockingClient> ConnectPeer(absl::Duration timeout = absl::Seconds(5)) {
    return testing::ConnectPeer(server_->listen_address(), transport_, timeout);
  }

  // An async Channel call, accounted in ledger_.
  void IssueCall(absl::string_view method, int32_t code = 0,
                 absl::Duration timeout = absl::Seconds(5),
                 absl::string_view service = "test.FaultService") {
    const int index = ledger_.Issue();
    auto request = std::make_shared<EchoRequest>();
    request->set_message(absl::StrCat("call-", index));
    request->set_code(code);
    auto response = std::make_shared<EchoResponse>();
    CallOptions options;
    options.timeout = timeout;
    channel_->CallMethod(service, method, *request, response.get(), options,
                         [this, index, request, response](absl::Status status) {
                           if (status.ok() && response->message() != request->message()) {
                             status = absl::DataLossError("wrong response");
                           }
                           ledger_.Complete(index, OutcomeOf(status));
                         });
  }

  // A well-behaved client still gets served: `n` Echo calls all succeed.
  void ExpectServes(int n = 20) {
    for (int i = 0; i < n; ++i) IssueCall("Echo", 0, absl::Seconds(5), "example.EchoService");
  }

  // Records a raw-socket call and what was observed of it: each answer
  // completes it (so a second answer shows in ExpectExactlyOnce), else EOF
  // or a reset does; a call with neither stays incomplete.
  void RecordRaw(const RawConn& c) {
    const int index = ledger_.Issue();
    for (int i = 0; i < c.answers; ++i) ledger_.Complete(index, "answered");
    if (c.answers == 0 && c.closed) ledger_.Complete(index, "closed");
  }

  void ReleaseHeld() {
    std::vector<Responder> held;
    {
      netpoll::MutexLock lock(&held_mu_);
      held.swap(held_);
    }
    held.clear();  // dropped responders answer EINTERNAL (or nothing, late)
  }

  std::unique_ptr<Service> MakeFaultService() {
    auto service = std::make_unique<Service>("test.FaultService");
    const auto* req = &EchoRequest::default_instance();
    const auto* resp = &EchoResponse::default_instance();
    EXPECT_TRUE(service
                    ->AddMethod("Sleep", MakeUnaryMethodHandler(
                                             req, resp,
                                             [](ServerContext&, const google::protobuf::Message& m,
                                                google::protobuf::Message* r) {
                                               const auto& in = static_cast<const EchoRequest&>(m);
                                               absl::SleepFor(absl::Milliseconds(in.code()));
                                               static_cast<EchoResponse*>(r)->set_message(
                                                   in.message());
                                               return absl::OkStatus();
                                             }))
                    .ok());
    EXPECT_TRUE(
        service
            ->AddMethod("Never",
                        MakeMethodHandler(req, resp,
                                          [this](ServerContext&, const google::protobuf::Message&,
                                                 google::protobuf::Message*, Responder done) {
                                            netpoll::MutexLock lock(&held_mu_);
                                            held_.push_back(std::move(done));
                                          }))
            .ok());
    return service;
  }

  Transport transport_ = Transport::kPlaintext;
  int fds_before_ = 0;
  int fds_with_loops_ = 0;  // with the client loops' own fds (epoll, eventfd)
  int64_t rss_before_ = 0;
  std::unique_ptr<netpoll::EventLoopGroup> loops_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> channel_;
  int port_ = 0;
  Ledger ledger_;
  std::string note_;  // extra figures for the summary line
  netpoll::Mutex held_mu_;
  std::vector<Responder> held_ ABSL_GUARDED_BY(held_mu_);
};

// The core cases, over every transport (the test parameter).
class FaultMatrixEveryTransportTest : public FaultMatrixTest,
                                      public ::testing::WithParamInterface<Transport> {
 protected:
  void SetUp() override {
    transport_ = GetParam();
    FaultMatrixTest::SetUp();
  }
};

INSTANTIATE_TEST_SUITE_P(Transports, FaultMatrixEveryTransportTest,
                         ::testing::ValuesIn(testing::kEveryTransport),
                         testing::TransportParamName);

// The long cases, over plaintext and TLS: past the handshake, a client
// certificate changes nothing they exercise.
class FaultMatrixPlainAndTlsTest : public FaultMatrixEveryTransportTest {};

INSTANTIATE_TEST_SUITE_P(Transports, FaultMatrixPlainAndTlsTest,
                         ::testing::Values(Transport::kPlaintext, Transport::kTls),
                         testing::TransportParamName);

// ------------------------------------------------------------------ cases

TEST_P(FaultMatrixEveryTransportTest, PeerResetMidFrameClosesOnlyThatConnection) {
  StartServer();
  MakeChannel();
  const std::string frame = EncodeCall("Sleep", 1, 20);
  std::vector<BlockingClient> clients;
  for (int i = 0; i < 50; ++i) {
    absl::StatusOr<BlockingClient> c = ConnectPeer();
    ASSERT_TRUE(c.ok()) << c.status();
    // A whole call in flight, then half of the next frame.
    ASSERT_TRUE(c->SendAll(frame).ok());
    ASSERT_TRUE(c->SendAll(frame.substr(0, frame.size() / 2)).ok());
    clients.push_back(std::move(*c));
  }
  ExpectServes(100);
  for (BlockingClient& c : clients) c.Reset();
  clients.clear();
  ExpectServes(100);
  ASSERT_TRUE(ledger_.WaitAll(absl::Seconds(20)));
  ledger_.ExpectExactlyOnce();
  EXPECT_EQ(ledger_.Count("OK"), 200);
  // The calls of the reset connections finished and freed their slots.
  EXPECT_TRUE(WaitFor([&] { return server_->Stats().total.in_flight == 0; }));
  EXPECT_EQ(server_->Stats().protocol_errors, 0);
}

TEST_P(FaultMatrixEveryTransportTest, PeerHalfCloseStillGetsEveryAnswer) {
  StartServer();
  MakeChannel();
  std::vector<BlockingClient> clients;
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<BlockingClient> c = ConnectPeer();
    ASSERT_TRUE(c.ok()) << c.status();
    // Five calls, one of them slow (still running when the FIN arrives).
    std::string calls;
    for (int k = 0; k < 4; ++k) calls += EncodeCall("Sleep", k + 1, 0);
    calls += EncodeCall("Sleep", 5, 100);
    ASSERT_TRUE(c->SendAll(calls).ok());
    c->ShutdownWrite();
    clients.push_back(std::move(*c));
  }
  ExpectServes(50);
  int answered = 0;
  for (BlockingClient& c : clients) {
    absl::StatusOr<std::string> bytes = c.ReadUntilEof();
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    netpoll::LinkBuffer in;
    in.WriteString(*bytes);
    std::set<int64_t> ids;
    for (auto [id, code] : TakeAnswers(in)) {
      EXPECT_TRUE(ids.insert(id).second) << "answered twice: " << id;
      EXPECT_EQ(code, 0);
    }
    EXPECT_TRUE(in.empty());
    for (int64_t id = 1; id <= 5; ++id) {
      const int index = ledger_.Issue();
      if (ids.contains(id)) {
        ledger_.Complete(index, "answered");
        ++answered;
      }
    }
  }
  ASSERT_TRUE(ledger_.WaitAll(absl::Seconds(20)));
  ledger_.ExpectExactlyOnce();
  EXPECT_EQ(ledger_.Count("OK"), 50);
  EXPECT_EQ(answered, 100) << "calls issued before a half-close lost their answers";
}

TEST_P(FaultMatrixEveryTransportTest, FrameAnnouncingFourGiBIsClosedFromTheHeader) {
  StartServer();
  MakeChannel();
  const int64_t rss_start = VmRssKiB();
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<BlockingClient> c = ConnectPeer();
    ASSERT_TRUE(c.ok());
    const int index = ledger_.Issue();
    ASSERT_TRUE(c->SendAll(absl::string_view("PRPC\xff\xff\xff\xff\x00\x00\x00\x10", 12)).ok());
    if (c->WaitForClose(absl::Seconds(20))) ledger_.Complete(index, "closed");
  }
  ExpectServes();
  ASSERT_TRUE(ledger_.WaitAll(absl::Seconds(20)));
  ledger_.ExpectExactlyOnce();
  EXPECT_EQ(ledger_.Count("OK"), 20);
  EXPECT_EQ(ledger_.Count("closed"), 20);
  EXPECT_EQ(server_->Stats().protocol_errors, 20);
  // Nothing near 4 GiB (or the 64 MiB limit) was allocated.
  EXPECT_LT(VmRssKiB() - rss_start, kMaxRssGrowthKiB / 4);
}

TEST_P(FaultMatrixEveryTransportTest, GarbageMagicIsClosedAtOnce) {
  StartServer();
  MakeChannel();
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<BlockingClient> c = ConnectPeer();
    ASSERT_TRUE(c.ok());
    const int index = ledger_.Issue();
    // (An HTTP request is no garbage: HTTP shares the port, see the HTTP cases.)
    ASSERT_TRUE(c->SendAll("SSH-2.0-OpenSSH_9.2\r\n").ok());
    if (c->WaitForClose(absl::Seconds(20))) ledger_.Complete(index, "closed");
  }
  ExpectServes();
  ASSERT_TRUE(ledger_.WaitAll(absl::Seconds(20)));
  ledger_.ExpectExactlyOnce();
  EXPECT_EQ(ledger_.Count("OK"), 20);
  EXPECT_EQ(ledger_.Count("closed"), 20);
  EXPECT_EQ(server_->Stats().protocol_errors, 20);
}

TEST_P(FaultMatrixEveryTransportTest, ValidHeaderWithUnparsableMetaIsClosed) {
  StartServer();
  MakeChannel();
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<BlockingClient> c = ConnectPeer();
    ASSERT_TRUE(c.ok());
    // One good call first: it is answered before the bad frame closes.
    const int good = ledger_.Issue();
    ASSERT_TRUE(c->SendAll(EncodeCall("Echo", 1, 0, "example.EchoService")).ok());
    absl::StatusOr<std::string> header = c->ReadExactly(kBaiduStdHeaderSize);
    ASSERT_TRUE(header.ok()) << header.status();
    const auto* h = reinterpret_cast<const unsigned char*>(header->data());
    const uint32_t body =
        (uint32_t{h[4]} << 24) | (uint32_t{h[5]} << 16) | (uint32_t{h[6]} << 8) | h[7];
    absl::StatusOr<std::string> rest = c->ReadExactly(body);
    ASSERT_TRUE(rest.ok()) << rest.status();
    netpoll::LinkBuffer in;
    in.WriteString(*header + *rest);
    for (auto [id, code] : TakeAnswers(in)) {
      if (id == 1 && code == 0) ledger_.Complete(good, "answered");
    }
    const int bad = ledger_.Issue();
    ASSERT_TRUE(c->SendAll(absl::string_view("PRPC\x00\x00\x00\x08\x00\x00\x00\x08\xff\xff\xff\xff"
                                             "\xff\xff\xff\xff",
                                             20))
                    .ok());
    if (c->WaitForClose(absl::Seconds(20))) ledger_.Complete(bad, "closed");
  }
  ExpectServes();
  ASSERT_TRUE(ledger_.WaitAll(absl::Seconds(20)));
  ledger_.ExpectExactlyOnce();
  EXPECT_EQ(ledger_.Count("OK"), 20);
  EXPECT_EQ(ledger_.Count("closed"), 20);
  EXPECT_EQ(ledger_.Count("answered"), 20);
  EXPECT_EQ(server_->Stats().protocol_errors, 20);
}

TEST_P(FaultMatrixPlainAndTlsTest, PipelinedFloodIsBoundedByTheInFlightLimit) {
  ServerOptions options;
  options.num_worker_threads = 2;
  options.max_in_flight_per_connection = 64;
  StartServer(options);
  MakeChannel();
  // ~5 MB of frames: decoded all at once they would take ~90 MiB.
  constexpr int kCalls = 100000;
  std::string flood;
  // One ledger entry per correlation id (1..kCalls), completed by its answer.
  std::vector<int> entry(kCalls + 1, -1);
  for (int i = 1; i <= kCalls; ++i) {
    entry[i] = ledger_.Issue();
    flood += EncodeCall("Sleep", i, i % 1000 == 0 ? 1 : 0);
  }
  absl::StatusOr<BlockingClient> c = ConnectPeer(absl::Seconds(30));
  ASSERT_TRUE(c.ok()) << c.status();
  const int64_t rss_start = VmRssKiB();
  std::atomic<int64_t> max_in_flight{0};
  std::atomic<int64_t> max_rss{0};
  std::atomic<bool> done{false};
  std::thread sampler([&] {
    while (!done.load()) {
      // The flood's method only (the channel's calls are Echo).
      int64_t f = server_->Stats().methods["test.FaultService/Sleep"].in_flight;
      if (f > max_in_flight.load()) max_in_flight.store(f);
      int64_t r = VmRssKiB();
      if (r > max_rss.load()) max_rss.store(r);
      absl::SleepFor(absl::Milliseconds(2));  // the sampling period
    }
  });
  ExpectServes(50);
  // Everything is sent without waiting for answers, which are read as they
  // come (one thread: an SSL object takes no concurrent reader and writer).
  std::set<int64_t> ids;
  netpoll::LinkBuffer in;
  std::string received;
  const absl::Status flooded = c->SendAllWhileReading(flood, received, [&](std::string& bytes) {
    in.WriteString(bytes);
    bytes.clear();
    for (auto [id, code] : TakeAnswers(in)) {
      EXPECT_TRUE(ids.insert(id).second) << "answered twice: " << id;
      if (id < 1 || id > kCalls) {
        ADD_FAILURE() << "an answer to no call: " << id;
        continue;
      }
      ledger_.Complete(entry[id], code == 0 ? "answered" : absl::StrCat("answered E", code));
    }
    return static_cast<int>(ids.size()) >= kCalls;
  });
  done = true;
  sampler.join();
  ASSERT_TRUE(flooded.ok()) << flooded << " after " << ids.size() << " answers";
  ASSERT_TRUE(ledger_.WaitAll(absl::Seconds(20)));
  ledger_.ExpectExactlyOnce();
  EXPECT_EQ(ledger_.Count("OK"), 50);
  // Held back by the per-connection limit.
  EXPECT_LE(max_in_flight.load(), 64);
  EXPECT_LT(max_rss.load() - rss_start, kMaxRssGrowthKiB);
  note_ = absl::StrCat("max in flight ", max_in_flight.load(), ", peak RSS +",
                       (max_rss.load() - rss_start) / 1024, " MiB");
}

TEST_F(FaultMatrixTest, SlowlorisConnectionsAreReapedAndOthersStayFast) {
  ServerOptions options;
  options.idle_timeout = absl::Seconds(2);
  options.read_timeout = absl::Milliseconds(500);
  StartServer(options);
  MakeChannel();
  EchoRequest request;
  request.set_message("p99");
  auto measure = [&](int n) {
    std::vector<double> us;
    for (int i = 0; i < n; ++i) {
      EchoResponse response;
      const int index = ledger_.Issue();
      absl::Time start = absl::Now();
      absl::Status s = channel_->CallMethod("example.EchoService", "Echo", request, &response);
      us.push_back(absl::ToDoubleMicroseconds(absl::Now() - start));
      ledger_.Complete(index, OutcomeOf(s));
    }
    return us;
  };
  measure(50);  // warm up
  const double unloaded_p99 = Percentile(measure(1000), 0.99);

  constexpr int kTricklers = 1000;
  const std::string frame = EncodeCall("Echo", 1, 0, "example.EchoService");
  std::vector<RawConn> conns(kTricklers);
  for (RawConn& c : conns) {
    c.fd = testing::ConnectLoopback(port_);
    ASSERT_GE(c.fd, 0) << std::strerror(errno);
  }
  // The slowloris state, not the connect burst (a case of its own below):
  // measure once the server holds every trickler's connection.
  ASSERT_TRUE(
      WaitFor([&] { return server_->Stats().connections >= kTricklers + 1; }, absl::Seconds(15)))
      << server_->Stats().connections << " connections accepted";
  // One byte per connection per second, from another thread.
  std::atomic<bool> stop{false};
  std::atomic<int> reaped{0};
  const absl::Time trickle_start = absl::Now();
  std::thread trickler([&] {
    while (!stop.load()) {
      int closed = 0;
      for (RawConn& c : conns) {
        if (c.closed) {
          ++closed;
          continue;
        }
        char byte = frame[c.sent % frame.size()];
        ssize_t w = ::send(c.fd, &byte, 1, MSG_NOSIGNAL);
        if (w == 1) ++c.sent;
        char sink[64];
        ssize_t r = ::recv(c.fd, sink, sizeof(sink), 0);
        if (r == 0 || (r < 0 && errno != EAGAIN) || (w < 0 && errno != EAGAIN)) {
          c.closed = true;
          ++closed;
        }
      }
      reaped.store(closed);
      if (closed == kTricklers) return;
      // The trickle rate is the fault under test (one byte per second); the
      // reaping is waited for below with a generous deadline.
      for (int i = 0; i < 20 && !stop.load(); ++i) absl::SleepFor(absl::Milliseconds(50));
    }
  });
  const double loaded_p99 = Percentile(measure(1000), 0.99);
  EXPECT_TRUE(WaitFor([&] { return reaped.load() == kTricklers; }, absl::Seconds(15)))
      << reaped.load() << " of " << kTricklers << " reaped";
  const double reap_seconds = absl::ToDoubleSeconds(absl::Now() - trickle_start);
  stop = true;
  trickler.join();
  for (RawConn& c : conns) {
    const int index = ledger_.Issue();
    if (c.closed) ledger_.Complete(index, "reaped");  // the trickler saw EOF or a reset
  }
  CloseAll(conns);
  ASSERT_TRUE(ledger_.WaitAll(absl::Seconds(5)));
  ledger_.ExpectExactlyOnce();
  EXPECT_EQ(ledger_.Count("OK"), 2050);
  const double ratio = loaded_p99 / std::max(unloaded_p99, 1.0);
  // Behaviour, not speed: every call of the well-behaved client succeeded
  // (the 2,050 OKs above) while 1,000 tricklers were connected, and they were
  // all reaped. The p99 ratio (target 2x) depends on the machine's load and
  // the build (sanitizers): it is printed in the summary line and recorded
  // in docs/reliability.md, not asserted.
  note_ =
      absl::StrCat("p99 unloaded ", static_cast<int>(unloaded_p99), " us, under 1000 tricklers ",
                   static_cast<int>(loaded_p99), " us (x", absl::StrFormat("%.2f", ratio),
                   "), all reaped within ", absl::StrFormat("%.1f", reap_seconds), " s");
}

TEST_F(FaultMatrixTest, BurstOfTenThousandConnectsIsServed) {
  StartServer();
  MakeChannel();
  // In waves of 2,500 open at once: client and server ends share this
  // process's fd limit.
  constexpr int kWaves = 4;
  constexpr int kPerWave = 2500;
  int64_t next_id = 1;
  int failed_connects = 0;
  for (int wave = 0; wave < kWaves; ++wave) {
    std::vector<RawConn> conns(kPerWave);
    for (RawConn& c : conns) {
      c.fd = testing::ConnectLoopback(port_);
      if (c.fd < 0) ++failed_connects;
      c.request = EncodeCall("Echo", next_id++, 0, "example.EchoService");
    }
    if (wave == 1) ExpectServes(50);
    DriveUntilAnswered(conns, absl::Seconds(30));
    for (const RawConn& c : conns) RecordRaw(c);
    CloseAll(conns);
  }
  ASSERT_TRUE(ledger_.WaitAll(absl::Seconds(20)));
  ledger_.ExpectExactlyOnce();
  EXPECT_EQ(failed_connects, 0);
  EXPECT_EQ(ledger_.Count("answered"), kWaves * kPerWave);
  EXPECT_EQ(ledger_.Count("OK"), 50);
}

TEST_F(FaultMatrixTest, OutOfFdsShedsConnectionsAndRecovers) {
  StartServer();
  MakeChannel();
  ExpectServes(1);
  ASSERT_TRUE(ledger_.WaitAll(absl::Seconds(10)));
  // Client sockets made before the limit drops; connected after.
  constexpr int kClients = 60;
  std::vector<int> sockets;
  for (int i = 0; i < kClients; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockets.push_back(fd);
  }
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(CountOpenFds()) + 5;  // room for 4 accepts
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  std::vector<RawConn> conns(kClients);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < kClients; ++i) {
    conns[i].fd = sockets[i];
    conns[i].request = EncodeCall("Echo", i + 1, 0, "example.EchoService");
    int rc = ::connect(sockets[i], reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ASSERT_TRUE(rc == 0 || errno == EINPROGRESS) << std::strerror(errno);
  }
  // At the limit: the server sheds what it cannot accept and stays up.
  DriveUntilAnswered(conns, absl::Seconds(2));
  int answered_at_limit = 0;
  for (const RawConn& c : conns) answered_at_limit += c.answers;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
  // Recovered: the rest is accepted and answered; new clients are served.
  DriveUntilAnswered(conns, absl::Seconds(10));
  for (const RawConn& c : conns) RecordRaw(c);
  CloseAll(conns);
  ExpectServes();
  ASSERT_TRUE(ledger_.WaitAll(absl::Seconds(20)));
  ledger_.ExpectExactlyOnce();
  EXPECT_EQ(ledger_.Count("OK"), 21);
  EXPECT_EQ(ledger_.Count("answered") + ledger_.Count("closed"), kClients);
  EXPECT_LT(answered_at_limit, kClients) << "the limit was never reached";
  note_ = absl::StrCat(answered_at_limit, " answered while at the limit");
}

TEST_P(FaultMatrixEveryTransportTest, ServerKilledWithCallsInFlightFailsEachCallOnce) {
  StartServer();
  MakeChannel();
  for (int i = 0; i < 100; ++i) IssueCall("Never", 0, absl::Seconds(10));
  for (int i = 0; i < 100; ++i) IssueCall("Sleep", 0);
  EXPECT_TRUE(WaitFor([&] { return server_->Stats().total.in_flight >= 100; }));
  server_->Shutdown(absl::ZeroDuration());
  ASSERT_TRUE(ledger_.WaitAll(absl::Seconds(20)));
  ledger_.ExpectExactlyOnce();
  EXPECT_EQ(ledger_.Count("DEADLINE_EXCEEDED"), 0) << "failed calls waited for their deadline";
  EXPECT_EQ(ledger_.completed(), 200);
  // A new server on another port serves the same channel type at once.
  server_.reset();
  ReleaseHeld();
  StartServer();
  MakeChannel();
  ExpectServes();
  ASSERT_TRUE(ledger_.WaitAll(absl::Seconds(20)));
  ledger_.ExpectExactlyOnce();
}

TEST_P(FaultMatrixEveryTransportTest, ServerRestartedOnTheSamePortIsReachedWithoutHelp) {
  StartServer();
  const int port = port_;
  MakeChannel();
  ExpectServes();
  ASSERT_TRUE(ledger_.WaitAll(absl::Seconds(10)));
  server_->Shutdown(absl::Seconds(1));
  server_.reset();
  for (int i = 0; i < 20; ++i) IssueCall("Echo", 0, absl::Seconds(2), "example.EchoService");
  ASSERT_TRUE(ledger_.WaitAll(absl::Seconds(10)));
  StartServer(ServerOptions(), port);
  ASSERT_EQ(port_, port);
  // The same channel reconnects by itself within its backoff.
  EchoRequest request;
  request.set_message("back");
  absl::Status s;
  int tries = 0;
  EXPECT_TRUE(WaitFor([&] {
    EchoResponse response;
    const int index = ledger_.Issue();
    s = channel_->CallMethod("example.EchoService", "Echo", request, &response);
    ledger_.Complete(index, OutcomeOf(s));
    ++tries;
    return s.ok();
  })) << s;
  ExpectServes();
  ASSERT_TRUE(ledger_.WaitAll(absl::Seconds(10)));
  ledger_.ExpectExactlyOnce();
  note_ = absl::StrCat("reconnected after ", tries, " call(s)");
}

TEST_P(FaultMatrixEveryTransportTest, HandlerThatNeverAnswersFreesItsSlotAtTheDeadline) {
  ServerOptions options;
  options.method_max_concurrency["test.FaultService/Never"] = 10;
  StartServer(options);
  MakeChannel();
  for (int i = 0; i < 10; ++i) IssueCall("Never", 0, absl::Milliseconds(200));
  ASSERT_TRUE(ledger_.WaitAll(absl::Seconds(5)));
  EXPECT_EQ(ledger_.Count("DEADLINE_EXCEEDED"), 10);
  // The server gave the slots back at the deadline (its timer), although
  // the handler still holds its Responder.
  EXPECT_TRUE(WaitFor([&] { return server_->Stats().total.in_flight == 0; }));
  EXPECT_EQ(server_->Stats().methods["test.FaultService/Never"].in_flight, 0);
  // So ten more are admitted (not ELIMIT), and time out the same way.
  for (int i = 0; i < 10; ++i) IssueCall("Never", 0, absl::Milliseconds(200));
  ExpectServes();
  ASSERT_TRUE(ledger_.WaitAll(absl::Seconds(10)));
  ledger_.ExpectExactlyOnce();
  EXPECT_EQ(ledger_.Count("DEADLINE_EXCEEDED"), 20);
  EXPECT_EQ(ledger_.Count("RESOURCE_EXHAUSTED"), 0);  // no ELIMIT
  EXPECT_EQ(ledger_.Count("OK"), 20);
}

// ------------------------------------------------------------------ HTTP cases

// `request` on a new connection: the answer's status line, then whether the
// server closed the connection. Recorded as "<status> closed" or "<status>".
std::string HttpStatusLine(absl::string_view answer) {
  return std::string(answer.substr(0, answer.find("\r\n")));
}

TEST_P(FaultMatrixEveryTransportTest, HttpGarbageRequestLinesAre400AndClosed) {
  StartServer();
  MakeChannel();
  const std::string garbage[] = {"GET /\x01\x02 HTTP/1.1\r\n\r\n", "GET / HTTP/1.x\r\n\r\n",
                                 "POST  HTTP/1.1\r\n\r\n", "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
                                 std::string("PUT /\0 HTTP/1.1\r\n\r\n", 19)};
  int sent = 0;
  for (int round = 0; round < 4; ++round) {
    for (const std::string& bytes : garbage) {
      absl::StatusOr<BlockingClient> c = ConnectPeer();
      ASSERT_TRUE(c.ok());
      const int index = ledger_.Issue();
      ++sent;
      ASSERT_TRUE(c->SendAll(bytes).ok());
      c->ShutdownWrite();  // done sending: the server need not linger
      // The answer, then EOF: ReadUntilEof fails on a timeout.
      absl::StatusOr<std::string> answer = c->ReadUntilEof();
      ASSERT_TRUE(answer.ok()) << answer.status();
      EXPECT_EQ(HttpStatusLine(*answer), "HTTP/1.1 400 Bad Request") << *answer;
      ledger_.Complete(index, "400 closed");
    }
  }
  ExpectServes();
  ASSERT_TRUE(ledger_.WaitAll(absl::Seconds(20)));
  ledger_.ExpectExactlyOnce();
  EXPECT_EQ(ledger_.Count("OK"), 20);
  EXPECT_EQ(ledger_.Count("400 closed"), sent);
  EXPECT_EQ(server_->Stats().protocol_errors, sent);
}

TEST_F(FaultMatrixTest, HttpOversizedHeadersAre431AndClosedBeforeTheyEnd) {
  StartServer();  // max_http_header_size: 64 KiB
  MakeChannel();
  const int64_t rss_start = VmRssKiB();
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<BlockingClient> c = BlockingClient::Connect(server_->listen_address());
    ASSERT_TRUE(c.ok());
    const int index = ledger_.Issue();
    // 1 MiB of one header that never ends: refused at 64 KiB, not buffered.
    std::thread sender([&] {
      (void)c->SendAll(absl::StrCat("GET / HTTP/1.1\r\nX-Big: ", std::string(1 << 20, 'a')));
      c->ShutdownWrite();
    });
    absl::StatusOr<std::string> answer = c->ReadUntilEof();
    sender.join();
    if (answer.ok()) {
      EXPECT_EQ(HttpStatusLine(*answer), "HTTP/1.1 431 Request Header Fields Too Large");
      ledger_.Complete(index, "431 closed");
    } else {
      // A reset that discarded the 431: what the server's lingering close
      // (reading and dropping the rest of the header) prevents.
      EXPECT_TRUE(absl::StrContains(answer.status().message(), "reset")) << answer.status();
      ledger_.Complete(index, "reset");
    }
  }
  ExpectServes();
  ASSERT_TRUE(ledger_.WaitAll(absl::Seconds(20)));
  ledger_.ExpectExactlyOnce();
  EXPECT_EQ(ledger_.Count("OK"), 20);
  EXPECT_EQ(ledger_.Count("431 closed") + ledger_.Count("reset"), 20);
  EXPECT_EQ(server_->Stats().protocol_errors, 20);
  EXPECT_LT(VmRssKiB() - rss_start, kMaxRssGrowthKiB / 4);
}

TEST_F(FaultMatrixTest, HttpSlowlorisIsReapedAndOthersAreServed) {
  ServerOptions options;
  options.read_timeout = absl::Milliseconds(500);
  StartServer(options);
  MakeChannel();
  // A request that is never finished: its header section trickles in.
  const std::string request = absl::StrCat("POST /example.EchoService/Echo HTTP/1.1\r\nHost: x\r\n",
                                           std::string(4096, 'X'));
  constexpr int kTricklers = 200;
  std::vector<RawConn> conns(kTricklers);
  for (RawConn& c : conns) {
    c.fd = testing::ConnectLoopback(port_);
    ASSERT_GE(c.fd, 0) << std::strerror(errno);
  }
  ASSERT_TRUE(
      WaitFor([&] { return server_->Stats().connections >= kTricklers; }, absl::Seconds(15)));
  std::atomic<bool> stop{false};
  std::atomic<int> reaped{0};
  const absl::Time start = absl::Now();
  std::thread trickler([&] {
    while (!stop.load()) {
      int closed = 0;
      for (RawConn& c : conns) {
        if (c.closed) {
          ++closed;
          continue;
        }
        ssize_t w = ::send(c.fd, request.data() + c.sent % request.size(), 1, MSG_NOSIGNAL);
        if (w == 1) ++c.sent;
        char sink[256];
        ssize_t r = ::recv(c.fd, sink, sizeof(sink), 0);
        if (r == 0 || (r < 0 && errno != EAGAIN) || (w < 0 && errno != EAGAIN)) {
          c.closed = true;
          ++closed;
        }
      }
      reaped.store(closed);
      if (closed == kTricklers) return;
      // One byte per connection per second is the fault under test.
      for (int i = 0; i < 20 && !stop.load(); ++i) absl::SleepFor(absl::Milliseconds(50));
    }
  });
  ExpectServes(50);
  EXPECT_TRUE(WaitFor([&] { return reaped.load() == kTricklers; }, absl::Seconds(15)))
      << reaped.load() << " of " << kTricklers << " reaped";
  const double reap_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  stop = true;
  trickler.join();
  for (RawConn& c : conns) {
    const int index = ledger_.Issue();
    if (c.closed) ledger_.Complete(index, "reaped");
  }
  CloseAll(conns);
  ASSERT_TRUE(ledger_.WaitAll(absl::Seconds(10)));
  ledger_.ExpectExactlyOnce();
  EXPECT_EQ(ledger_.Count("OK"), 50);
  EXPECT_EQ(ledger_.Count("reaped"), kTricklers);
  note_ = absl::StrCat("all reaped within ", absl::StrFormat("%.1f", reap_seconds), " s");
}

TEST_F(FaultMatrixTest, HttpPipelinedRequestsWithAReaderThatNeverReadsArePaused) {
  ServerOptions options;
  options.max_in_flight_per_connection = 64;
  StartServer(options);
  MakeChannel();
  const int64_t rss_start = VmRssKiB();
  // Pipelined calls with 16 KiB answers on a connection whose reader never
  // reads: the answers fill the socket, then the server's output, which
  // stops reading that connection (output backpressure).
  const std::string body = absl::StrCat(R"({"message":")", std::string(16 << 10, 'm'), "\"}");
  const std::string one = absl::StrCat("POST /example.EchoService/Echo HTTP/1.1\r\nHost: x\r\n",
                                       "Content-Length: ", body.size(), "\r\n\r\n", body);
  std::string batch;
  for (int i = 0; i < 64; ++i) batch += one;
  const int fd = testing::ConnectLoopback(port_, /*small_receive_buffer=*/true);
  ASSERT_GE(fd, 0);
  // Send until the server stops taking bytes for a second (its reading is
  // paused and the socket buffers are full), at most 256 MiB.
  int64_t sent = 0;
  absl::Time last_progress = absl::Now();
  size_t offset = 0;
  while (absl::Now() - last_progress < absl::Seconds(1) && sent < (int64_t{256} << 20)) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    ssize_t w = ::send(fd, batch.data() + offset, batch.size() - offset, MSG_NOSIGNAL);
    if (w <= 0) break;  // closed by the server
    sent += w;
    offset = (offset + static_cast<size_t>(w)) % batch.size();
    last_progress = absl::Now();
  }
  const int index = ledger_.Issue();
  EXPECT_TRUE(WaitFor([&] { return server_->Stats().output_pauses >= 1; }))
      << "the server did not stop reading the connection";
  ledger_.Complete(index, "paused");
  const int64_t rss_paused = VmRssKiB() - rss_start;
  // Others are still served meanwhile.
  ExpectServes(50);
  ASSERT_TRUE(ledger_.WaitAll(absl::Seconds(20)));
  ledger_.ExpectExactlyOnce();
  EXPECT_EQ(ledger_.Count("OK"), 50);
  EXPECT_LT(rss_paused, kMaxRssGrowthKiB);
  EXPECT_LE(server_->Stats().methods["example.EchoService/Echo"].in_flight, 64);
  ::close(fd);
  note_ = absl::StrCat("sent ", sent >> 20, " MiB before the server stopped reading, RSS +",
                       rss_paused / 1024, " MiB while paused");
}

}  // namespace
}  // namespace nprpc
