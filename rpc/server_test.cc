#include "rpc/server.h"

#include <algorithm>
#include <atomic>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "netpoll/link_buffer.h"
#include "netpoll/mutex.h"
#include "netpoll/testing/blocking_client.h"
#include "netpoll/testing/wait.h"
#include "netpoll/tls_context.h"
#include "proto/echo.pb.h"
#include "rpc/errors.h"
#include "rpc/internal/frame_codec.h"
#include "tests/harness/echo_service.h"

namespace nprpc {
namespace {

using example::EchoRequest;
using example::EchoResponse;
using netpoll::testing::BlockingClient;

// ------------------------------------------------------------------ helpers

const char* const kVectorCases[] = {
    "echo_basic",
    "echo_attachment_logid",
    "echo_user_fields",
    "echo_request_id",
    "echo_gzip",
    "echo_zlib",
    "echo_snappy",
    "echo_gzip_response",
    "echo_large_200k",
    "echo_checksum",
    "echo_timeout_delivered",
    "fail_internal",
    "fail_custom_code",
    "no_method",
    "no_service",
};

// The address the brpc server of the captures listened on (in error_text).
constexpr absl::string_view kCapturedServerPrefix = "[127.0.0.1:9201]";

std::string ReadVector(absl::string_view name, absl::string_view file) {
  const std::string path = absl::StrCat("tests/data/baidu_std/", name, "/", file);
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

DecodedFrame DecodeOne(absl::string_view bytes) {
  netpoll::LinkBuffer in;
  in.WriteString(bytes);
  DecodeResult r = FrameDecoder().Decode(in);
  EXPECT_TRUE(r.has_frame()) << r.status();
  return r.TakeFrame();
}

struct RequestSpec {
  std::string service = "example.EchoService";
  std::string method = "Echo";
  std::string message = "hello";
  int32_t code = 0;
  int64_t correlation_id = 1;
  std::optional<int32_t> timeout_ms{};
};

std::string EncodeEcho(const RequestSpec& spec) {
  EchoRequest request;
  request.set_message(spec.message);
  if (spec.code != 0) request.set_code(spec.code);
  netpoll::LinkBuffer payload;
  EXPECT_TRUE(SerializeToLinkBuffer(request, payload).ok());
  RequestHeader header{.service_name = spec.service,
                       .method_name = spec.method,
                       .correlation_id = spec.correlation_id};
  header.timeout_ms = spec.timeout_ms;
  netpoll::LinkBuffer out;
  EXPECT_TRUE(EncodeRequest(header, std::move(payload), {}, out).ok());
  return out.ToString();
}

// One response as read off the socket.
struct Reply {
  bool ok = false;  // a frame was read
  std::string bytes;
  int64_t correlation_id = -1;
  int32_t error_code = -1;
  std::string error_text;
  std::string message;  // EchoResponse.message on success
};

Reply ReadReply(BlockingClient& client) {
  Reply reply;
  absl::StatusOr<std::string> header = client.ReadExactly(kBaiduStdHeaderSize);
  if (!header.ok()) return reply;
  const auto* h = reinterpret_cast<const unsigned char*>(header->data());
  uint32_t body = (uint32_t{h[4]} << 24) | (uint32_t{h[5]} << 16) | (uint32_t{h[6]} << 8) | h[7];
  absl::StatusOr<std::string> rest = client.ReadExactly(body);
  if (!rest.ok()) return reply;
  reply.ok = true;
  reply.bytes = *header + *rest;
  DecodedFrame frame = DecodeOne(reply.bytes);
  reply.correlation_id = frame.meta.correlation_id();
  reply.error_code = frame.meta.response().error_code();
  reply.error_text = frame.meta.response().error_text();
  if (reply.error_code == 0) {
    absl::StatusOr<netpoll::LinkBuffer> payload = UncompressPayload(frame);
    EchoResponse response;
    if (payload.ok() && ParseFromLinkBuffer(*payload, response).ok()) {
      reply.message = response.message();
    }
  }
  return reply;
}

Reply Roundtrip(BlockingClient& client, const RequestSpec& spec) {
  EXPECT_TRUE(client.SendAll(EncodeEcho(spec)).ok());
  return ReadReply(client);
}

// Waits (bounded, generously) until `predicate` holds.
template <typename Predicate>
bool Eventually(Predicate predicate) {
  return netpoll::testing::WaitFor(predicate);
}

// ------------------------------------------------------------------ fixture

// example.EchoService plus "test.TestService", whose methods block, hold,
// complete late or twice, on EchoRequest/EchoResponse.
class ServerTest : public ::testing::Test {
 protected:
  ~ServerTest() override {
    release_.Notify();
    std::vector<Held> held;
    {
      netpoll::MutexLock lock(&mu_);
      held.swap(held_);
    }
    held.clear();  // dropped responders answer EINTERNAL, freeing their slots
    if (server_) server_->Shutdown(absl::Seconds(5));
  }

  void StartServer(ServerOptions options = ServerOptions()) {
    server_ = std::make_unique<Server>(std::move(options));
    ASSERT_TRUE(server_->AddService(testing::NewEchoService()).ok());
    ASSERT_TRUE(server_->AddService(MakeTestService()).ok());
    ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
  }

  BlockingClient Connect() {
    absl::StatusOr<BlockingClient> client = BlockingClient::Connect(server_->listen_address());
    EXPECT_TRUE(client.ok()) << client.status();
    return std::move(*client);
  }

  std::unique_ptr<Service> MakeTestService() {
    auto service = std::make_unique<Service>("test.TestService");
    const auto* req = &EchoRequest::default_instance();
    const auto* resp = &EchoResponse::default_instance();
    // Blocks its worker until release_.
    EXPECT_TRUE(
        service
            ->AddMethod("Block", MakeUnaryMethodHandler(
                                     req, resp,
                                     [this](ServerContext&, const auto& rq, auto* rs) {
                                       int now = ++running_;
                                       int peak = peak_running_.load();
                                       while (now > peak &&
                                              !peak_running_.compare_exchange_weak(peak, now)) {
                                       }
                                       ++started_;
                                       release_.WaitForNotificationWithTimeout(absl::Seconds(20));
                                       --running_;
                                       static_cast<EchoResponse*>(rs)->set_message(
                                           static_cast<const EchoRequest&>(rq).message());
                                       return absl::OkStatus();
                                     }))
            .ok());
    // Answers the order in which it ran (1, 2, ...) as the message.
    EXPECT_TRUE(service
                    ->AddMethod("Order", MakeUnaryMethodHandler(
                                             req, resp,
                                             [this](ServerContext&, const auto&, auto* rs) {
                                               static_cast<EchoResponse*>(rs)->set_message(
                                                   absl::StrCat(++ordered_));
                                               return absl::OkStatus();
                                             }))
                    .ok());
    // Counts the calls that started.
    EXPECT_TRUE(service
                    ->AddMethod("Count", MakeUnaryMethodHandler(
                                             req, resp,
                                             [this](ServerContext&, const auto&, auto* rs) {
                                               ++counted_;
                                               static_cast<EchoResponse*>(rs)->set_message(
                                                   "counted");
                                               return absl::OkStatus();
                                             }))
                    .ok());
    // Never answers by itself: keeps its responder.
    EXPECT_TRUE(service
                    ->AddMethod("Hold", MakeMethodHandler(req, resp,
                                                          [this](ServerContext& ctx, const auto&,
                                                                 auto* rs, Responder done) {
                                                            netpoll::MutexLock lock(&mu_);
                                                            held_.push_back({done, rs, &ctx});
                                                          }))
                    .ok());
    // Answers from a thread of its own, a little later.
    EXPECT_TRUE(
        service
            ->AddMethod("Later",
                        MakeMethodHandler(
                            req, resp,
                            [](ServerContext&, const auto& rq, auto* rs, const Responder& done) {
                              std::string message = static_cast<const EchoRequest&>(rq).message();
                              std::thread([rs, done, message] {
                                // After the handler returned (the behaviour);
                                // no check depends on the length.
                                absl::SleepFor(absl::Milliseconds(20));
                                static_cast<EchoResponse*>(rs)->set_message("later " + message);
                                done(absl::OkStatus());
                              }).detach();
                            }))
            .ok());
    // Releases Block.
    EXPECT_TRUE(service
                    ->AddMethod("Release", MakeUnaryMethodHandler(
                                               req, resp,
                                               [this](ServerContext&, const auto&, auto* rs) {
                                                 release_.Notify();
                                                 static_cast<EchoResponse*>(rs)->set_message(
                                                     "released");
                                                 return absl::OkStatus();
                                               }))
                    .ok());
    // Runs on the I/O loop (a handler that declares it never blocks).
    EXPECT_TRUE(service
                    ->AddMethod("OnLoop", MakeUnaryMethodHandler(
                                              req, resp,
                                              [](ServerContext&, const auto&, auto* rs) {
                                                static_cast<EchoResponse*>(rs)->set_message(
                                                    "from the loop");
                                                return absl::OkStatus();
                                              },
                                              MethodHandler::ExecutionMode::kIoLoop))
                    .ok());
    // Completes twice.
    EXPECT_TRUE(
        service
            ->AddMethod(
                "Twice",
                MakeMethodHandler(req, resp,
                                  [](ServerContext&, const auto&, auto* rs, const Responder& done) {
                                    static_cast<EchoResponse*>(rs)->set_message("once");
                                    EXPECT_TRUE(done.Finish(absl::OkStatus()));
                                    EXPECT_FALSE(done.Finish(absl::InternalError("twice")));
                                  }))
            .ok());
    return service;
  }

  struct Held {
    Responder done;
    google::protobuf::Message* response;
    ServerContext* context;
  };

  std::unique_ptr<Server> server_;
  netpoll::Notification release_;
  std::atomic<int> running_{0};
  std::atomic<int> peak_running_{0};
  std::atomic<int> started_{0};
  std::atomic<int> counted_{0};
  std::atomic<int> ordered_{0};
  netpoll::Mutex mu_;
  std::vector<Held> held_ ABSL_GUARDED_BY(mu_);
};

// ------------------------------------------------------------------ brpc vectors

// Every captured brpc request, one connection each as in the capture, gets
// brpc's answer: byte-identical for successes; for errors identical once the
// "[127.0.0.1:9201]" server prefix of error_text is replaced by ours (the
// frame is re-encoded around the substituted text, so the lengths follow).
TEST_F(ServerTest, ReplaysEveryBrpcVectorWithBrpcIdenticalAnswers) {
  StartServer();
  const std::string our_prefix = absl::StrCat("[", server_->listen_address().ToString(), "]");
  for (const char* name : kVectorCases) {
    SCOPED_TRACE(name);
    std::string request = ReadVector(name, "request.bin");
    std::string expected = ReadVector(name, "response.bin");
    DecodedFrame want = DecodeOne(expected);
    if (want.meta.response().error_code() != 0) {
      std::string* text = want.meta.mutable_response()->mutable_error_text();
      ASSERT_EQ(text->rfind(std::string(kCapturedServerPrefix), 0), 0u) << *text;
      *text = absl::StrReplaceAll(*text, {{kCapturedServerPrefix, our_prefix}});
      netpoll::LinkBuffer out;
      ASSERT_TRUE(
          EncodeFrame(want.meta, std::move(want.payload), std::move(want.attachment), out).ok());
      expected = out.ToString();
    }
    BlockingClient client = Connect();
    ASSERT_TRUE(client.SendAll(request).ok());
    Reply reply = ReadReply(client);
    ASSERT_TRUE(reply.ok);
    EXPECT_EQ(reply.bytes.size(), expected.size());
    EXPECT_TRUE(reply.bytes == expected) << "got error_text=" << reply.error_text;
  }
}

TEST_F(ServerTest, ErrorTextWithoutBrpcPrefixWhenDisabled) {
  StartServer(ServerOptions{.brpc_error_prefix = false});
  BlockingClient client = Connect();
  Reply reply = Roundtrip(client, {.method = "Fail", .message = "hello"});
  EXPECT_EQ(reply.error_code, EINTERNAL);
  EXPECT_EQ(reply.error_text, "deliberate failure: hello");
}

// ------------------------------------------------------------------ errors

TEST_F(ServerTest, UnknownServiceAndMethodAnswer1002AndKeepTheConnectionOpen) {
  StartServer(ServerOptions{.brpc_error_prefix = false});
  BlockingClient client = Connect();
  Reply no_service = Roundtrip(client, {.service = "example.NoSuchService", .correlation_id = 1});
  EXPECT_EQ(no_service.correlation_id, 1);
  EXPECT_EQ(no_service.error_code, ENOMETHOD);
  EXPECT_EQ(no_service.error_text, "Fail to find method=example.NoSuchService/Echo");
  Reply no_method = Roundtrip(client, {.method = "Bogus", .correlation_id = 2});
  EXPECT_EQ(no_method.error_code, ENOMETHOD);
  EXPECT_EQ(no_method.error_text, "Fail to find method=example.EchoService/Bogus");
  Reply echo = Roundtrip(client, {.message = "still here", .correlation_id = 3});
  EXPECT_EQ(echo.correlation_id, 3);
  EXPECT_EQ(echo.error_code, 0);
  EXPECT_EQ(echo.message, "still here");
  ServerStats stats = server_->Stats();
  EXPECT_EQ(stats.total.received, 3);
  EXPECT_EQ(stats.total.failed, 2);
  EXPECT_EQ(stats.total.succeeded, 1);
  EXPECT_EQ(stats.methods["example.EchoService/Echo"].succeeded, 1);
  EXPECT_EQ(stats.connections, 1);  // kept open
}

TEST_F(ServerTest, UnparsablePayloadAnswersERequestAndKeepsTheConnection) {
  StartServer();
  BlockingClient client = Connect();
  netpoll::LinkBuffer payload;
  payload.WriteString("\xff\xff\xff");  // not an EchoRequest
  netpoll::LinkBuffer out;
  ASSERT_TRUE(
      EncodeRequest(
          {.service_name = "example.EchoService", .method_name = "Echo", .correlation_id = 9},
          std::move(payload), {}, out)
          .ok());
  ASSERT_TRUE(client.SendAll(out.ToString()).ok());
  Reply reply = ReadReply(client);
  EXPECT_EQ(reply.correlation_id, 9);
  EXPECT_EQ(reply.error_code, EREQUEST);
  EXPECT_NE(reply.error_text.find("Fail to parse request message"), std::string::npos);
  EXPECT_EQ(Roundtrip(client, {.message = "ok"}).message, "ok");
}

TEST_F(ServerTest, CorruptCompressedPayloadAnswersERequest) {
  StartServer();
  BlockingClient client = Connect();
  // echo_gzip with the gzip stream damaged (a byte of the deflate data).
  std::string request = ReadVector("echo_gzip", "request.bin");
  request[request.size() - 12] ^= 0x5a;
  ASSERT_TRUE(client.SendAll(request).ok());
  Reply reply = ReadReply(client);
  EXPECT_EQ(reply.error_code, EREQUEST) << reply.error_text;
  EXPECT_EQ(Roundtrip(client, {.message = "ok"}).message, "ok");
}

TEST_F(ServerTest, ChecksumMismatchAnswersERequest) {
  StartServer();
  BlockingClient client = Connect();
  std::string request = ReadVector("echo_checksum", "request.bin");
  request.back() ^= 0x01;  // the payload's last byte: "hellp"
  ASSERT_TRUE(client.SendAll(request).ok());
  Reply reply = ReadReply(client);
  EXPECT_EQ(reply.error_code, EREQUEST);
  EXPECT_NE(reply.error_text.find("checksum"), std::string::npos) << reply.error_text;
  EXPECT_EQ(Roundtrip(client, {.message = "ok"}).message, "ok");
}

struct ProtocolErrorCase {
  const char* name;
  std::string bytes;
};

std::string Header(uint32_t body_size, uint32_t meta_size) {
  std::string h = "PRPC";
  for (uint32_t v : {body_size, meta_size}) {
    for (int shift = 24; shift >= 0; shift -= 8) h.push_back(static_cast<char>(v >> shift));
  }
  return h;
}

std::string ResponseFrame() {
  netpoll::LinkBuffer out;
  EXPECT_TRUE(EncodeResponse({.correlation_id = 1}, {}, {}, out).ok());
  return out.ToString();
}

TEST_F(ServerTest, ProtocolErrorsCloseOnlyThatConnection) {
  StartServer();
  const ProtocolErrorCase cases[] = {
      {"garbage magic", "GARBAGE-GARBAGE-GARBAGE"},
      {"4 GiB body_size", Header(0xffffffffu, 10)},
      {"meta_size > body_size", Header(5, 9) + "xxxxx"},
      {"unparsable meta", Header(6, 6) + std::string(6, '\xff')},
      {"response sent to a server", ResponseFrame()},
  };
  BlockingClient good = Connect();
  int64_t expected_errors = 0;
  for (const ProtocolErrorCase& c : cases) {
    SCOPED_TRACE(c.name);
    BlockingClient bad = Connect();
    ASSERT_TRUE(bad.SendAll(c.bytes).ok());
    EXPECT_TRUE(bad.WaitForClose(absl::Seconds(5)));
    ++expected_errors;
    EXPECT_EQ(Roundtrip(good, {.message = c.name}).message, c.name);
  }
  EXPECT_EQ(server_->Stats().protocol_errors, expected_errors);
}

TEST_F(ServerTest, AnswersOfCallsAdmittedBeforeAProtocolErrorAreSentBeforeTheClose) {
  StartServer();
  BlockingClient client = Connect();
  // Two calls whose handlers answer later, then garbage, in one write: the
  // calls were admitted before the error, so their answers arrive, then the
  // close.
  std::string bytes = EncodeEcho({.service = "test.TestService",
                                  .method = "Later",
                                  .message = "first",
                                  .correlation_id = 1}) +
                      EncodeEcho({.service = "test.TestService",
                                  .method = "Later",
                                  .message = "second",
                                  .correlation_id = 2}) +
                      "GARBAGE-GARBAGE-GARBAGE";
  ASSERT_TRUE(client.SendAll(bytes).ok());
  std::set<std::string> messages;
  for (int i = 0; i < 2; ++i) {
    Reply reply = ReadReply(client);
    ASSERT_TRUE(reply.ok);
    EXPECT_EQ(reply.error_code, 0);
    messages.insert(reply.message);
  }
  EXPECT_EQ(messages, (std::set<std::string>{"later first", "later second"}));
  EXPECT_TRUE(client.WaitForClose(absl::Seconds(5)));
  EXPECT_EQ(server_->Stats().protocol_errors, 1);
}

// ------------------------------------------------------------------ limits

TEST_F(ServerTest, ServerConcurrencyLimitAnswersELimit) {
  StartServer(ServerOptions{.max_concurrency = 1});
  BlockingClient a = Connect();
  BlockingClient b = Connect();
  ASSERT_TRUE(a.SendAll(EncodeEcho({.service = "test.TestService", .method = "Block"})).ok());
  ASSERT_TRUE(Eventually([&] { return started_.load() == 1; }));
  Reply limited = Roundtrip(b, {.message = "x"});
  EXPECT_EQ(limited.error_code, ELIMIT);
  EXPECT_NE(limited.error_text.find("max_concurrency=1"), std::string::npos);
  release_.Notify();
  EXPECT_EQ(ReadReply(a).message, "hello");
  EXPECT_TRUE(Eventually([&] { return server_->Stats().total.in_flight == 0; }));
  EXPECT_EQ(Roundtrip(b, {.message = "x"}).message, "x");
}

TEST_F(ServerTest, MethodConcurrencyLimitAnswersELimitOnlyForThatMethod) {
  ServerOptions options;
  options.method_max_concurrency["test.TestService/Block"] = 1;
  StartServer(options);
  BlockingClient a = Connect();
  BlockingClient b = Connect();
  ASSERT_TRUE(a.SendAll(EncodeEcho({.service = "test.TestService", .method = "Block"})).ok());
  ASSERT_TRUE(Eventually([&] { return started_.load() == 1; }));
  EXPECT_EQ(Roundtrip(b, {.service = "test.TestService", .method = "Block"}).error_code, ELIMIT);
  EXPECT_EQ(Roundtrip(b, {.message = "other method"}).message, "other method");
  release_.Notify();
  EXPECT_EQ(ReadReply(a).error_code, 0);
}

TEST_F(ServerTest, FullWorkerQueueAnswersELimitToConnectionsHoldingTheirShare) {
  StartServer(ServerOptions{.num_worker_threads = 1,
                            .max_queued_calls = 1,
                            .handler_threads = ServerOptions::HandlerThreads::kWorkerPool});
  BlockingClient a = Connect();
  BlockingClient b = Connect();
  ASSERT_TRUE(a.SendAll(EncodeEcho({.service = "test.TestService", .method = "Block"})).ok());
  ASSERT_TRUE(Eventually([&] { return started_.load() == 1; }));
  // b fills the queue (its call waits behind Block); its second call finds
  // the queue full while b holds its whole share.
  ASSERT_TRUE(b.SendAll(EncodeEcho({.method = "Echo", .correlation_id = 1})).ok());
  ASSERT_TRUE(Eventually([&] { return server_->Stats().total.in_flight == 2; }));
  Reply overflow = Roundtrip(b, {.correlation_id = 2});
  EXPECT_EQ(overflow.error_code, ELIMIT);
  EXPECT_NE(overflow.error_text.find("worker queue is full"), std::string::npos);
  // Another connection holds nothing: it is admitted beyond the limit (up to
  // twice it), so one connection cannot take the whole queue from others.
  BlockingClient c = Connect();
  ASSERT_TRUE(c.SendAll(EncodeEcho({.method = "Echo", .correlation_id = 3})).ok());
  ASSERT_TRUE(Eventually([&] { return server_->Stats().total.in_flight == 3; }));
  // At twice the limit every connection is refused.
  BlockingClient d = Connect();
  EXPECT_EQ(Roundtrip(d, {.correlation_id = 4}).error_code, ELIMIT);
  release_.Notify();
  EXPECT_EQ(ReadReply(a).error_code, 0);
  EXPECT_EQ(ReadReply(b).error_code, 0);
  EXPECT_EQ(ReadReply(c).error_code, 0);
}

TEST_F(ServerTest, WorkersServeConnectionsInTurnNotOneConnectionsFloodFirst) {
  StartServer(ServerOptions{.num_worker_threads = 1,
                            .handler_threads = ServerOptions::HandlerThreads::kWorkerPool});
  BlockingClient a = Connect();
  BlockingClient flood = Connect();
  BlockingClient single = Connect();
  ASSERT_TRUE(a.SendAll(EncodeEcho({.service = "test.TestService", .method = "Block"})).ok());
  ASSERT_TRUE(Eventually([&] { return started_.load() == 1; }));
  std::string calls;
  for (int i = 1; i <= 50; ++i) {
    calls += EncodeEcho({.service = "test.TestService", .method = "Order", .correlation_id = i});
  }
  ASSERT_TRUE(flood.SendAll(calls).ok());
  ASSERT_TRUE(Eventually([&] { return server_->Stats().total.in_flight == 51; }));
  ASSERT_TRUE(single
                  .SendAll(EncodeEcho(
                      {.service = "test.TestService", .method = "Order", .correlation_id = 99}))
                  .ok());
  ASSERT_TRUE(Eventually([&] { return server_->Stats().total.in_flight == 52; }));
  release_.Notify();
  // The single call runs second (after the flood's first), not 51st.
  Reply reply = ReadReply(single);
  EXPECT_EQ(reply.error_code, 0);
  EXPECT_EQ(reply.message, "2");
  for (int i = 0; i < 50; ++i) EXPECT_EQ(ReadReply(flood).error_code, 0);
  EXPECT_EQ(ReadReply(a).error_code, 0);
}

TEST_F(ServerTest, IoLoopHandlerAnswersWhileEveryWorkerIsBusy) {
  StartServer(ServerOptions{.num_worker_threads = 1,
                            .handler_threads = ServerOptions::HandlerThreads::kWorkerPool});
  BlockingClient a = Connect();
  ASSERT_TRUE(a.SendAll(EncodeEcho({.service = "test.TestService", .method = "Block"})).ok());
  ASSERT_TRUE(Eventually([&] { return started_.load() == 1; }));
  // The only worker is blocked; a pool handler would wait behind it.
  BlockingClient b = Connect();
  Reply reply = Roundtrip(b, {.service = "test.TestService", .method = "OnLoop"});
  EXPECT_EQ(reply.error_code, 0);
  EXPECT_EQ(reply.message, "from the loop");
  EXPECT_EQ(started_.load(), 1);
  release_.Notify();
  EXPECT_EQ(ReadReply(a).error_code, 0);
}

// ------------------------------------------------------------------ where handlers run

TEST_F(ServerTest, ShortSyncHandlersRunOnTheIoLoopByDefault) {
  StartServer();
  BlockingClient client = Connect();
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(Roundtrip(client, {.message = "x", .correlation_id = i}).message, "x");
  }
  const ServerStats stats = server_->Stats();
  const MethodStats& echo = stats.methods.at("example.EchoService/Echo");
  EXPECT_EQ(echo.ran_on_loop, 20);
  EXPECT_EQ(echo.ran_on_pool, 0);
  EXPECT_TRUE(echo.on_loop_now);
  EXPECT_EQ(echo.moves_to_pool, 0);
  EXPECT_EQ(stats.loop_handoffs, 0);
}

TEST_F(ServerTest, ABlockingHandlerHandsItsLoopOffAndItsMethodMovesToThePool) {
  // One loop: the blocked handler holds the only one.
  StartServer(ServerOptions{.num_io_loops = 1});
  BlockingClient a = Connect();
  BlockingClient b = Connect();
  ASSERT_TRUE(a.SendAll(EncodeEcho({.service = "test.TestService", .method = "Block"})).ok());
  ASSERT_TRUE(Eventually([&] { return started_.load() == 1; }));
  // The loop serves other connections while the handler blocks.
  EXPECT_EQ(Roundtrip(b, {.message = "meanwhile"}).message, "meanwhile");
  ASSERT_TRUE(Eventually([&] { return server_->Stats().loop_handoffs >= 1; }));
  release_.Notify();
  EXPECT_EQ(ReadReply(a).error_code, 0);
  // The method moved to the pool: its next call runs there.
  EXPECT_EQ(Roundtrip(a, {.service = "test.TestService", .method = "Block"}).error_code, 0);
  const MethodStats block = server_->Stats().methods.at("test.TestService/Block");
  EXPECT_EQ(block.ran_on_loop, 1);
  EXPECT_EQ(block.ran_on_pool, 1);
  EXPECT_EQ(block.moves_to_pool, 1);
  EXPECT_FALSE(block.on_loop_now);
  EXPECT_TRUE(server_->Stats().methods.at("example.EchoService/Echo").on_loop_now);
}

TEST_F(ServerTest, AHandlerWaitingForALaterCallOfItsOwnConnectionDoesNotDeadlock) {
  StartServer(ServerOptions{.num_io_loops = 1});
  BlockingClient client = Connect();
  // One write: Block waits for Release, which its loop reads after it. With
  // handlers run in the read (kIoLoop) this waits until Block's own timeout.
  ASSERT_TRUE(
      client
          .SendAll(
              EncodeEcho({.service = "test.TestService", .method = "Block", .correlation_id = 1}) +
              EncodeEcho({.service = "test.TestService", .method = "Release", .correlation_id = 2}))
          .ok());
  std::set<int64_t> answered;
  for (int i = 0; i < 2; ++i) {
    Reply reply = ReadReply(client);
    ASSERT_TRUE(reply.ok);
    EXPECT_EQ(reply.error_code, 0);
    answered.insert(reply.correlation_id);
  }
  EXPECT_EQ(answered, (std::set<int64_t>{1, 2}));
  EXPECT_GE(server_->Stats().loop_handoffs, 1);
}

TEST_F(ServerTest, TheWorkerPoolModeNeverRunsSyncHandlersOnTheLoop) {
  StartServer(ServerOptions{.handler_threads = ServerOptions::HandlerThreads::kWorkerPool});
  BlockingClient client = Connect();
  for (int i = 0; i < 5; ++i) ASSERT_EQ(Roundtrip(client, {.message = "p"}).message, "p");
  const MethodStats echo = server_->Stats().methods.at("example.EchoService/Echo");
  EXPECT_EQ(echo.ran_on_pool, 5);
  EXPECT_EQ(echo.ran_on_loop, 0);
  EXPECT_FALSE(echo.on_loop_now);
}

// ------------------------------------------------------------------ deadlines

TEST_F(ServerTest, CallPastItsDeadlineInTheQueueIsNotStarted) {
  StartServer(ServerOptions{.num_worker_threads = 1,
                            .handler_threads = ServerOptions::HandlerThreads::kWorkerPool});
  BlockingClient a = Connect();
  BlockingClient b = Connect();
  ASSERT_TRUE(a.SendAll(EncodeEcho({.service = "test.TestService", .method = "Block"})).ok());
  ASSERT_TRUE(Eventually([&] { return started_.load() == 1; }));
  // Queued behind Block, with 50 ms to live.
  Reply late = Roundtrip(
      b, {.service = "test.TestService", .method = "Count", .correlation_id = 5, .timeout_ms = 50});
  EXPECT_EQ(late.correlation_id, 5);
  EXPECT_EQ(late.error_code, ERPCTIMEDOUT);
  release_.Notify();
  EXPECT_EQ(ReadReply(a).error_code, 0);
  // The single worker has dequeued the expired call by the time it serves this.
  EXPECT_EQ(Roundtrip(b, {.message = "after"}).message, "after");
  EXPECT_EQ(counted_.load(), 0);
  EXPECT_EQ(server_->Stats().methods["test.TestService/Count"].failed, 1);
}

TEST_F(ServerTest, HandlerSeesTheDeadlineFromTimeoutMs) {
  StartServer();
  BlockingClient client = Connect();
  absl::Time before = absl::Now();
  ASSERT_TRUE(client
                  .SendAll(EncodeEcho(
                      {.service = "test.TestService", .method = "Hold", .timeout_ms = 10000}))
                  .ok());
  ASSERT_TRUE(Eventually([&] {
    netpoll::MutexLock lock(&mu_);
    return held_.size() == 1;
  }));
  netpoll::MutexLock lock(&mu_);
  ServerContext& ctx = *held_[0].context;
  EXPECT_EQ(ctx.timeout_ms(), 10000);
  EXPECT_GE(ctx.deadline(), before + absl::Seconds(10));
  EXPECT_LE(ctx.deadline(), absl::Now() + absl::Seconds(10));
  EXPECT_FALSE(ctx.IsCancelled());
  EXPECT_EQ(ctx.method_name(), "Hold");
  EXPECT_EQ(ctx.service_name(), "test.TestService");
}

TEST_F(ServerTest, NeverAnsweringHandlerIsAnsweredAndFreedAtItsDeadline) {
  StartServer(ServerOptions{.max_concurrency = 1});
  BlockingClient client = Connect();
  Reply reply = Roundtrip(
      client,
      {.service = "test.TestService", .method = "Hold", .correlation_id = 7, .timeout_ms = 100});
  EXPECT_EQ(reply.correlation_id, 7);
  EXPECT_EQ(reply.error_code, ERPCTIMEDOUT);
  EXPECT_TRUE(Eventually([&] { return server_->Stats().total.in_flight == 0; }));
  {
    netpoll::MutexLock lock(&mu_);
    ASSERT_EQ(held_.size(), 1u);
    EXPECT_TRUE(held_[0].context->IsCancelled());
  }
  // The slot is free again (max_concurrency 1).
  EXPECT_EQ(Roundtrip(client, {.message = "next", .correlation_id = 8}).message, "next");
  // A late answer is dropped: the next frame on the wire is the next call's.
  {
    netpoll::MutexLock lock(&mu_);
    static_cast<EchoResponse*>(held_[0].response)->set_message("too late");
    held_[0].done(absl::OkStatus());
  }
  Reply next = Roundtrip(client, {.message = "after", .correlation_id = 9});
  EXPECT_EQ(next.correlation_id, 9);
  EXPECT_EQ(next.message, "after");
  EXPECT_EQ(server_->Stats().methods["test.TestService/Hold"].failed, 1);
  EXPECT_EQ(server_->Stats().methods["test.TestService/Hold"].succeeded, 0);
}

// ------------------------------------------------------------------ completion

TEST_F(ServerTest, HandlerMayCompleteFromItsOwnThread) {
  StartServer();
  BlockingClient client = Connect();
  Reply reply = Roundtrip(client, {.service = "test.TestService", .method = "Later"});
  EXPECT_EQ(reply.error_code, 0);
  EXPECT_EQ(reply.message, "later hello");
}

TEST_F(ServerTest, DoubleCompletionSendsOneAnswer) {
  StartServer();
  BlockingClient client = Connect();
  Reply once =
      Roundtrip(client, {.service = "test.TestService", .method = "Twice", .correlation_id = 1});
  EXPECT_EQ(once.message, "once");
  Reply next = Roundtrip(client, {.message = "next", .correlation_id = 2});
  EXPECT_EQ(next.correlation_id, 2);
  EXPECT_EQ(server_->Stats().methods["test.TestService/Twice"].succeeded, 1);
}

TEST_F(ServerTest, HandlersMayRunInlineOnTheIoLoop) {
  StartServer(ServerOptions{.handler_threads = ServerOptions::HandlerThreads::kIoLoop});
  BlockingClient client = Connect();
  EXPECT_EQ(Roundtrip(client, {.message = "inline"}).message, "inline");
  EXPECT_EQ(Roundtrip(client, {.service = "test.TestService", .method = "Later"}).message,
            "later hello");
}

// ------------------------------------------------------------------ shutdown

TEST_F(ServerTest, GracefulShutdownFinishesInFlightCallsAndAnswersNewOnesELogoff) {
  StartServer();
  BlockingClient busy = Connect();
  BlockingClient other = Connect();
  ASSERT_TRUE(
      busy.SendAll(EncodeEcho(
                       {.service = "test.TestService", .method = "Block", .message = "in flight"}))
          .ok());
  ASSERT_TRUE(Eventually([&] { return started_.load() == 1; }));
  std::thread stopper([&] { server_->Shutdown(absl::Seconds(10)); });
  // New calls on an existing connection are refused once stopping.
  int64_t id = 100;
  Reply r;
  EXPECT_TRUE(Eventually([&] {
    r = Roundtrip(other, {.correlation_id = id++});
    return !r.ok || r.error_code == ELOGOFF;
  }));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.error_code, ELOGOFF);
  EXPECT_NE(r.error_text.find("Server is stopping"), std::string::npos);
  release_.Notify();
  Reply finished = ReadReply(busy);
  EXPECT_EQ(finished.error_code, 0);
  EXPECT_EQ(finished.message, "in flight");
  stopper.join();
  EXPECT_TRUE(busy.WaitForClose(absl::Seconds(5)));
  EXPECT_TRUE(other.WaitForClose(absl::Seconds(5)));
  EXPECT_EQ(server_->Stats().total.in_flight, 0);
}

TEST_F(ServerTest, ShutdownGivesUpOnHeldCallsAtTheDeadline) {
  StartServer();
  BlockingClient client = Connect();
  ASSERT_TRUE(client.SendAll(EncodeEcho({.service = "test.TestService", .method = "Hold"})).ok());
  ASSERT_TRUE(Eventually([&] {
    netpoll::MutexLock lock(&mu_);
    return held_.size() == 1;
  }));
  absl::Time start = absl::Now();
  server_->Shutdown(absl::Milliseconds(200));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(client.WaitForClose(absl::Seconds(5)));
  netpoll::MutexLock lock(&mu_);
  EXPECT_TRUE(held_[0].context->IsCancelled());
  held_[0].done(absl::OkStatus());  // after the server is gone: dropped
}

// Stats() and listen_address() may run on any thread while Shutdown() tears
// the transport down (TSan and ASan catch the unlocked read this once was).
TEST_F(ServerTest, StatsAndListenAddressAreSafeDuringShutdown) {
  StartServer();
  const netpoll::SocketAddress address = server_->listen_address();
  BlockingClient client = Connect();
  EXPECT_EQ(Roundtrip(client, {}).error_code, 0);
  std::atomic<bool> done{false};
  std::atomic<int64_t> reads{0};
  std::thread reader([&] {
    while (!done.load()) {
      ServerStats stats = server_->Stats();
      EXPECT_GE(stats.connections, 0);
      EXPECT_EQ(server_->listen_address().port(), address.port());
      reads.fetch_add(1);
    }
  });
  ASSERT_TRUE(Eventually([&] { return reads.load() > 10; }));
  server_->Shutdown(absl::Seconds(1));
  const int64_t after = reads.load();
  ASSERT_TRUE(Eventually([&] { return reads.load() > after + 10; }));
  done = true;
  reader.join();
  EXPECT_EQ(server_->Stats().connections, 0);
}

// Answers read the "[address]" error prefix; it is published before the
// first connection can be accepted, so even a client that connects in the
// first instant sees the whole prefix.
TEST_F(ServerTest, ErrorPrefixIsInPlaceForTheFirstConnection) {
  // A free port, taken again by the server below.
  int port = 0;
  {
    Server probe;
    ASSERT_TRUE(probe.AddService(testing::NewEchoService()).ok());
    ASSERT_TRUE(probe.Start("127.0.0.1:0").ok());
    port = probe.listen_address().port();
  }
  const std::string address = absl::StrCat("127.0.0.1:", port);
  std::atomic<bool> stop{false};
  Reply first;
  netpoll::Notification answered;
  std::thread client_thread([&] {
    auto parsed = netpoll::SocketAddress::Parse(address);
    while (!stop.load()) {
      absl::StatusOr<BlockingClient> client = BlockingClient::Connect(*parsed);
      if (!client.ok()) continue;  // not listening yet
      first = Roundtrip(*client, {.service = "no.Such"});
      answered.Notify();
      return;
    }
  });
  server_ = std::make_unique<Server>();
  ASSERT_TRUE(server_->AddService(testing::NewEchoService()).ok());
  ASSERT_TRUE(server_->Start(address).ok());
  const bool got_answer = answered.WaitForNotificationWithTimeout(absl::Seconds(20));
  stop = true;
  client_thread.join();
  ASSERT_TRUE(got_answer);
  ASSERT_TRUE(first.ok);
  EXPECT_EQ(first.error_code, ENOMETHOD);
  EXPECT_TRUE(absl::StartsWith(first.error_text, absl::StrCat("[", address, "][E1002]")))
      << first.error_text;
}

// A huge unknown method name is quoted only in part in the answer.
TEST_F(ServerTest, UnknownMethodErrorQuotesABoundedPrefixOfTheName) {
  StartServer();
  BlockingClient client = Connect();
  Reply reply = Roundtrip(client, {.method = std::string(1 << 20, 'x')});
  EXPECT_EQ(reply.error_code, ENOMETHOD);
  EXPECT_LT(reply.error_text.size(), 1024u);
  EXPECT_NE(reply.error_text.find("...(1048576 bytes)"), std::string::npos) << reply.error_text;
}

// A connection whose first bytes no protocol claims is closed (and counted),
// before any request is read; other connections are unaffected.
TEST_F(ServerTest, UnknownProtocolClosesOnlyThatConnection) {
  StartServer();
  BlockingClient good = Connect();
  BlockingClient bad = Connect();
  ASSERT_TRUE(bad.SendAll("SSH-2.0-OpenSSH_9.2\r\n").ok());
  EXPECT_TRUE(bad.WaitForClose(absl::Seconds(5)));
  EXPECT_EQ(Roundtrip(good, {}).error_code, 0);
  EXPECT_EQ(server_->Stats().protocol_errors, 1);
}

// A connection may send its first bytes one at a time: the protocol is
// picked once enough have arrived.
TEST_F(ServerTest, ProtocolIsPickedFromFirstBytesArrivingOneByOne) {
  StartServer();
  BlockingClient client = Connect();
  const std::string request = EncodeEcho({.message = "slow start"});
  for (size_t i = 0; i < 6; ++i) ASSERT_TRUE(client.SendAll(request.substr(i, 1)).ok());
  ASSERT_TRUE(client.SendAll(request.substr(6)).ok());
  Reply reply = ReadReply(client);
  EXPECT_EQ(reply.error_code, 0);
  EXPECT_EQ(reply.message, "slow start");
}

// ------------------------------------------------------------------ flood

// A client pipelining far more calls than max_in_flight_per_connection:
// the server stops reading (the client's sends block) instead of buffering
// them, never runs more than the limit at once, and answers every call.
TEST_F(ServerTest, PipelinedFloodIsBoundedByPausingReads) {
  constexpr int kLimit = 4;
  constexpr int kCalls = 1000;
  StartServer(ServerOptions{
      .num_worker_threads = 8, .max_in_flight_per_connection = kLimit, .max_body_size = 64 << 10});
  BlockingClient client = Connect();
  std::string flood;
  for (int i = 1; i <= kCalls; ++i) {
    flood += EncodeEcho({.service = "test.TestService",
                         .method = "Block",
                         .message = std::string(16 << 10, 'f'),
                         .correlation_id = i});
  }
  std::atomic<bool> sent_all{false};
  std::thread sender([&] {
    EXPECT_TRUE(client.SendAll(flood).ok());
    sent_all = true;
  });
  ASSERT_TRUE(Eventually([&] { return started_.load() == kLimit; }));
  // A window for a server that keeps reading to take in the flood; one
  // that stops reading passes whatever its length.
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(sent_all.load()) << "the server read the whole 16 MiB flood";
  EXPECT_EQ(started_.load(), kLimit);
  EXPECT_LE(server_->Stats().total.received, kLimit);
  release_.Notify();
  std::set<int64_t> answered;
  for (int i = 0; i < kCalls; ++i) {
    Reply r = ReadReply(client);
    ASSERT_TRUE(r.ok) << "after " << i << " answers";
    EXPECT_EQ(r.error_code, 0);
    answered.insert(r.correlation_id);
  }
  sender.join();
  EXPECT_EQ(answered.size(), static_cast<size_t>(kCalls));
  EXPECT_LE(peak_running_.load(), kLimit);
}

TEST(ServerAdminTlsTest, AdminTlsNeedsAServerContextAndRequiredNeedsTls) {
  ServerOptions options;
  options.builtin_pages = ServerOptions::BuiltinPages::kAdminPort;
  options.admin_address = "127.0.0.1:0";
  options.admin_tls_required = true;  // without admin_tls
  Server required(options);
  absl::Status started = required.Start("127.0.0.1:0");
  EXPECT_TRUE(absl::IsInvalidArgument(started)) << started;
  EXPECT_TRUE(absl::StrContains(started.message(), "admin_tls_required without admin_tls"));

  absl::StatusOr<std::shared_ptr<netpoll::TlsContext>> client =
      netpoll::TlsContext::NewClient(netpoll::TlsClientOptions());
  ASSERT_TRUE(client.ok()) << client.status();
  options.admin_tls = *client;
  Server wrong_side(options);
  started = wrong_side.Start("127.0.0.1:0");
  EXPECT_TRUE(absl::IsInvalidArgument(started)) << started;
  EXPECT_TRUE(absl::StrContains(started.message(), "server context")) << started;
}

}  // namespace
}  // namespace nprpc
