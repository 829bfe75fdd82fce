// The "grpc" client protocol against a real gRPC C++ server (Debian's
// libgrpc++) serving the interop TestService in this process: unary calls of
// every shape, status codes, metadata both ways, deadlines, cancellation,
// compression, each streaming kind, GOAWAY and retries.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "netpoll/mutex.h"
#include "netpoll/testing/wait.h"
#include "rpc/channel.h"
#include "rpc/errors.h"
#include "rpc/internal/client_protocol.h"
#include "rpc/internal/client_protocols.h"
#include "rpc/stream_core.h"
#include "tests/interop/interop.grpc.pb.h"
#include "tests/interop/interop.pb.h"

namespace nprpc {
namespace {

using interop::Empty;
using interop::SimpleRequest;
using interop::SimpleResponse;
using interop::StreamingInputCallRequest;
using interop::StreamingInputCallResponse;
using interop::StreamingOutputCallRequest;
using interop::StreamingOutputCallResponse;
using netpoll::testing::WaitFor;

constexpr char kService[] = "nprpc.interop.TestService";

// TestService with gRPC C++'s sync API. Request metadata whose key starts
// with "x-" is echoed: as initial metadata under the same key, and as
// trailing metadata under "x-trailer-<rest>".
class TestServiceImpl final : public interop::TestService::Service {
 public:
  grpc::Status EmptyCall(grpc::ServerContext* ctx, const Empty*, Empty*) override {
    EchoMetadata(ctx);
    return grpc::Status::OK;
  }

  grpc::Status UnaryCall(grpc::ServerContext* ctx, const SimpleRequest* request,
                         SimpleResponse* response) override {
    calls_.fetch_add(1);
    EchoMetadata(ctx);
    for (const auto& [key, value] : ctx->client_metadata()) {
      std::string k(key.data(), key.size());
      if (k.rfind("x-", 0) == 0 || k == "traceparent") {
        response->add_seen_metadata(absl::StrCat(k, "=", std::string(value.data(), value.size())));
      }
      if (k == "x-fail-first") {
        netpoll::MutexLock lock(&mu_);
        if (failed_once_.insert(std::string(value.data(), value.size())).second) {
          return grpc::Status(grpc::StatusCode::UNAVAILABLE, "failing the first attempt");
        }
      }
    }
    if (request->sleep_ms() > 0 && !SleepUnlessCancelled(ctx, request->sleep_ms())) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    }
    if (request->response_status().code() != 0) {
      return grpc::Status(static_cast<grpc::StatusCode>(request->response_status().code()),
                          request->response_status().message());
    }
    if (request->compress_response()) ctx->set_compression_algorithm(GRPC_COMPRESS_GZIP);
    if (request->response_size() > 0) {
      response->set_payload(std::string(request->response_size(), 'r'));
    } else {
      response->set_payload(request->payload());
    }
    return grpc::Status::OK;
  }

  grpc::Status StreamingOutputCall(
      grpc::ServerContext* ctx, const StreamingOutputCallRequest* request,
      grpc::ServerWriter<StreamingOutputCallResponse>* writer) override {
    EchoMetadata(ctx);
    for (const auto& params : request->response_parameters()) {
      if (params.interval_ms() > 0 && !SleepUnlessCancelled(ctx, params.interval_ms())) {
        return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
      }
      StreamingOutputCallResponse response;
      response.set_payload(std::string(params.size(), 's'));
      if (!writer->Write(response)) break;
      written_.fetch_add(1);
    }
    if (request->response_status().code() != 0) {
      return grpc::Status(static_cast<grpc::StatusCode>(request->response_status().code()),
                          request->response_status().message());
    }
    return grpc::Status::OK;
  }

  grpc::Status StreamingInputCall(grpc::ServerContext* ctx,
                                  grpc::ServerReader<StreamingInputCallRequest>* reader,
                                  StreamingInputCallResponse* response) override {
    EchoMetadata(ctx);
    StreamingInputCallRequest request;
    int32_t size = 0, count = 0;
    while (reader->Read(&request)) {
      size += static_cast<int32_t>(request.payload().size());
      ++count;
    }
    response->set_aggregated_payload_size(size);
    response->set_message_count(count);
    return grpc::Status::OK;
  }

  grpc::Status FullDuplexCall(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<StreamingOutputCallResponse, StreamingOutputCallRequest>* stream)
      override {
    EchoMetadata(ctx);
    StreamingOutputCallRequest request;
    while (stream->Read(&request)) {
      if (request.response_status().code() != 0) {
        return grpc::Status(static_cast<grpc::StatusCode>(request.response_status().code()),
                            request.response_status().message());
      }
      for (const auto& params : request.response_parameters()) {
        StreamingOutputCallResponse response;
        response.set_payload(std::string(params.size(), 'd'));
        if (!stream->Write(response)) return grpc::Status::OK;
      }
    }
    return grpc::Status::OK;
  }

  int cancelled() const { return cancelled_.load(); }
  int calls() const { return calls_.load(); }
  int written() const { return written_.load(); }
  // A handler is sleeping (a call to cancel is in the server).
  int sleeping() const { return sleeping_.load(); }

 private:
  static void EchoMetadata(grpc::ServerContext* ctx) {
    for (const auto& [key, value] : ctx->client_metadata()) {
      std::string k(key.data(), key.size());
      if (k.rfind("x-", 0) != 0) continue;
      std::string v(value.data(), value.size());
      ctx->AddInitialMetadata(k, v);
      ctx->AddTrailingMetadata(absl::StrCat("x-trailer-", k.substr(2)), v);
    }
  }

  // False when the call was cancelled (deadline, client cancel) meanwhile.
  bool SleepUnlessCancelled(grpc::ServerContext* ctx, int ms) {
    sleeping_.fetch_add(1);
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    bool cancelled = false;
    while (std::chrono::steady_clock::now() < end) {
      if (ctx->IsCancelled()) {
        cancelled = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    sleeping_.fetch_sub(1);
    if (cancelled) cancelled_.fetch_add(1);
    return !cancelled;
  }

  std::atomic<int> cancelled_{0};
  std::atomic<int> calls_{0};
  std::atomic<int> written_{0};
  std::atomic<int> sleeping_{0};
  netpoll::Mutex mu_;
  std::set<std::string> failed_once_ ABSL_GUARDED_BY(mu_);
};

// A gRPC C++ server on 127.0.0.1 with an ephemeral port.
class GrpcServer {
 public:
  struct Options {
    // Accepts keepalive pings at any rate (gRPC answers GOAWAY
    // too_many_pings otherwise).
    bool frequent_pings = false;
    // SETTINGS_MAX_CONCURRENT_STREAMS; 0: gRPC's default.
    int max_concurrent_streams = 0;
  };

  GrpcServer() : GrpcServer(Options{}) {}
  explicit GrpcServer(const Options& options) {
    grpc::ServerBuilder builder;
    if (options.frequent_pings) {
      builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1);
      builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
    }
    if (options.max_concurrent_streams > 0) {
      builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
    }
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
  }
  ~GrpcServer() { Shutdown(); }

  void Shutdown() {
    if (server_ != nullptr) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(10));
      server_->Wait();
      server_.reset();
    }
  }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  TestServiceImpl& service() { return service_; }
  grpc::Server* server() { return server_.get(); }

 private:
  TestServiceImpl service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

std::unique_ptr<Channel> GrpcChannel(const std::string& target, ChannelOptions options = {}) {
  options.protocol = "grpc";
  auto channel = Channel::Create(target, options);
  EXPECT_TRUE(channel.ok()) << channel.status();
  return *std::move(channel);
}

// Blocking helpers over ClientStreamCore.
bool Read(ClientStreamCore& stream, google::protobuf::Message* msg) {
  netpoll::Notification done;
  bool ok = false;
  stream.Read(msg, [&](bool r) {
    ok = r;
    done.Notify();
  });
  done.WaitForNotification();
  return ok;
}
bool Write(ClientStreamCore& stream, const google::protobuf::Message& msg) {
  netpoll::Notification done;
  bool ok = false;
  stream.Write(msg, [&](bool r) {
    ok = r;
    done.Notify();
  });
  done.WaitForNotification();
  return ok;
}
bool WritesDone(ClientStreamCore& stream) {
  netpoll::Notification done;
  bool ok = false;
  stream.WritesDone([&](bool r) {
    ok = r;
    done.Notify();
  });
  done.WaitForNotification();
  return ok;
}
absl::Status Finish(ClientStreamCore& stream) {
  netpoll::Notification done;
  absl::Status status;
  stream.Finish([&](absl::Status s) {
    status = std::move(s);
    done.Notify();
  });
  done.WaitForNotification();
  return status;
}

std::string Find(const std::vector<std::pair<std::string, std::string>>& metadata,
                 const std::string& key) {
  for (const auto& [k, v] : metadata) {
    if (k == key) return v;
  }
  return "<absent>";
}

class GrpcClientTest : public ::testing::Test {
 protected:
  GrpcServer server_;
};

TEST_F(GrpcClientTest, UnaryEchoesPayload) {
  auto channel = GrpcChannel(server_.address());
  SimpleRequest request;
  request.set_payload("hello gRPC");
  SimpleResponse response;
  CallInfo info;
  CallOptions options;
  options.info = &info;
  ASSERT_TRUE(channel->CallMethod(kService, "UnaryCall", request, &response, options).ok());
  EXPECT_EQ(response.payload(), "hello gRPC");
  EXPECT_EQ(info.remote_address, server_.address());
}

TEST_F(GrpcClientTest, EmptyMessagesBothWays) {
  auto channel = GrpcChannel(server_.address());
  Empty request, response;
  EXPECT_TRUE(channel->CallMethod(kService, "EmptyCall", request, &response).ok());
}

TEST_F(GrpcClientTest, FourMiBMessagesBothWays) {
  auto channel = GrpcChannel(server_.address());
  constexpr int kSize = (4 << 20) - 1024;  // room for the rest of the message
  SimpleRequest request;
  request.set_payload(std::string(kSize, 'q'));
  SimpleResponse response;
  absl::Status status = channel->CallMethod(kService, "UnaryCall", request, &response);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(response.payload().size(), static_cast<size_t>(kSize));
  request.set_payload("small");
  request.set_response_size(kSize);
  ASSERT_TRUE(channel->CallMethod(kService, "UnaryCall", request, &response).ok());
  EXPECT_EQ(response.payload(), std::string(kSize, 'r'));
}

TEST_F(GrpcClientTest, ResponseAboveReceiveLimitIsResourceExhausted) {
  ChannelOptions options;
  options.max_receive_message_size = 1 << 20;
  auto channel = GrpcChannel(server_.address(), options);
  SimpleRequest request;
  request.set_response_size(2 << 20);
  SimpleResponse response;
  absl::Status status = channel->CallMethod(kService, "UnaryCall", request, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  // The connection stays usable.
  request.set_response_size(10);
  EXPECT_TRUE(channel->CallMethod(kService, "UnaryCall", request, &response).ok());
}

TEST_F(GrpcClientTest, MetadataAsciiAndBinaryBothWays) {
  auto channel = GrpcChannel(server_.address());
  SimpleRequest request;
  SimpleResponse response;
  CallInfo info;
  CallOptions options;
  // Not printable ASCII, so only a -bin key carries it (and valid UTF-8: the
  // server echoes it in a proto3 string).
  const std::string binary("\x00\x01\x7f b\xc3\xbc", 7);
  options.metadata = {{"x-ascii", "hello world"}, {"x-data-bin", binary}};
  options.info = &info;
  ASSERT_TRUE(channel->CallMethod(kService, "UnaryCall", request, &response, options).ok());
  std::vector<std::string> seen(response.seen_metadata().begin(), response.seen_metadata().end());
  EXPECT_NE(std::find(seen.begin(), seen.end(), "x-ascii=hello world"), seen.end());
  EXPECT_NE(std::find(seen.begin(), seen.end(), "x-data-bin=" + binary), seen.end());
  EXPECT_EQ(Find(info.response_metadata, "x-ascii"), "hello world");
  EXPECT_EQ(Find(info.response_metadata, "x-data-bin"), binary);
  EXPECT_EQ(Find(info.response_metadata, "x-trailer-ascii"), "hello world");
  EXPECT_EQ(Find(info.response_metadata, "x-trailer-data-bin"), binary);
}

TEST_F(GrpcClientTest, SampledTraceTravelsAsTraceparent) {
  auto channel = GrpcChannel(server_.address());
  SimpleRequest request;
  SimpleResponse response;
  CallOptions options;
  options.trace.trace_id = 0x1234;
  options.trace.span_id = 0x77;
  options.trace.sampled = true;
  ASSERT_TRUE(channel->CallMethod(kService, "UnaryCall", request, &response, options).ok());
  ASSERT_EQ(response.seen_metadata_size(), 1);
  const std::string& seen = response.seen_metadata(0);
  EXPECT_EQ(seen.rfind("traceparent=00-", 0), 0u) << seen;
  EXPECT_NE(seen.find("0000000000001234-"), std::string::npos) << seen;
  EXPECT_EQ(seen.substr(seen.size() - 3), "-01") << seen;
}

TEST_F(GrpcClientTest, HedgedCallCancelsTheLosingStream) {
  auto channel = GrpcChannel(server_.address());
  SimpleRequest request;
  request.set_sleep_ms(1000);
  request.set_payload("hedged");
  SimpleResponse response;
  CallOptions options;
  options.backup_request_delay = absl::Milliseconds(100);
  options.timeout = absl::Seconds(20);
  ASSERT_TRUE(channel->CallMethod(kService, "UnaryCall", request, &response, options).ok());
  EXPECT_EQ(response.payload(), "hedged");
  EXPECT_EQ(server_.service().calls(), 2);
  // The backup lost: RST_STREAM CANCEL ends its handler.
  EXPECT_TRUE(WaitFor([&] { return server_.service().cancelled() == 1; }));
}

TEST_F(GrpcClientTest, EveryStatusCodeAndUnicodeMessageArriveExactly) {
  auto channel = GrpcChannel(server_.address());
  const std::string message = "fehlgeschlagen: ünïcødé ✓ 100% \"quoted\"\n";
  for (int code = 1; code <= 16; ++code) {
    SimpleRequest request;
    request.mutable_response_status()->set_code(code);
    request.mutable_response_status()->set_message(message);
    SimpleResponse response;
    absl::Status status = channel->CallMethod(kService, "UnaryCall", request, &response);
    EXPECT_EQ(static_cast<int>(status.code()), code) << status;
    EXPECT_EQ(status.message(), message) << "code " << code;
  }
}

TEST_F(GrpcClientTest, DeadlineExceededOnSleepingServerReachesTheServer) {
  auto channel = GrpcChannel(server_.address());
  SimpleRequest request;
  request.set_sleep_ms(20000);
  SimpleResponse response;
  CallOptions options;
  options.timeout = absl::Milliseconds(200);
  absl::Status status = channel->CallMethod(kService, "UnaryCall", request, &response, options);
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  // grpc-timeout (and our RST_STREAM) end the handler's call.
  EXPECT_TRUE(WaitFor([&] { return server_.service().cancelled() == 1; }));
}

TEST_F(GrpcClientTest, CancelReachesTheServer) {
  auto channel = GrpcChannel(server_.address());
  SimpleRequest request;
  request.set_sleep_ms(20000);
  SimpleResponse response;
  CallOptions options;
  CancellationToken cancel;
  options.cancel = cancel;
  options.timeout = absl::Seconds(30);
  netpoll::Notification done;
  absl::Status status;
  channel->CallMethod(kService, "UnaryCall", request, &response, options, [&](absl::Status s) {
    status = std::move(s);
    done.Notify();
  });
  ASSERT_TRUE(WaitFor([&] { return server_.service().sleeping() == 1; }));
  cancel.Cancel();
  done.WaitForNotification();
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  EXPECT_TRUE(WaitFor([&] { return server_.service().cancelled() == 1; }));
}

TEST_F(GrpcClientTest, UnknownMethodAndServiceAreUnimplemented) {
  auto channel = GrpcChannel(server_.address());
  Empty request, response;
  EXPECT_EQ(channel->CallMethod(kService, "UnimplementedCall", request, &response).code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(channel
                ->CallMethod("nprpc.interop.UnimplementedService", "UnimplementedCall", request,
                             &response)
                .code(),
            absl::StatusCode::kUnimplemented);
}

TEST_F(GrpcClientTest, GzipAndDeflateBothWays) {
  auto channel = GrpcChannel(server_.address());
  for (CompressType type : {CompressType::kGzip, CompressType::kZlib}) {
    SimpleRequest request;
    request.set_payload(std::string(100000, 'z'));
    request.set_response_size(200000);
    request.set_compress_response(true);
    SimpleResponse response;
    CallOptions options;
    options.compress_type = type;
    absl::Status status = channel->CallMethod(kService, "UnaryCall", request, &response, options);
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_EQ(response.payload(), std::string(200000, 'r'));
  }
}

TEST_F(GrpcClientTest, ManyConcurrentCallsShareOneConnection) {
  auto channel = GrpcChannel(server_.address());
  constexpr int kCalls = 200;
  std::vector<SimpleRequest> requests(kCalls);
  std::vector<SimpleResponse> responses(kCalls);
  std::atomic<int> ok{0}, done{0};
  netpoll::Notification all;
  for (int i = 0; i < kCalls; ++i) {
    requests[i].set_payload(absl::StrCat("call ", i));
    channel->CallMethod(kService, "UnaryCall", requests[i], &responses[i], {},
                        [&](const absl::Status& s) {
                          if (s.ok()) ok.fetch_add(1);
                          if (done.fetch_add(1) + 1 == kCalls) all.Notify();
                        });
  }
  all.WaitForNotification();
  EXPECT_EQ(ok.load(), kCalls);
  for (int i = 0; i < kCalls; ++i) EXPECT_EQ(responses[i].payload(), absl::StrCat("call ", i));
}

TEST_F(GrpcClientTest, ServerStreamingDeliversEveryMessageThenStatus) {
  auto channel = GrpcChannel(server_.address());
  CallOptions options;
  options.metadata = {{"x-tag", "stream"}};
  auto stream = channel->NewStream(kService, "StreamingOutputCall", options);
  StreamingOutputCallRequest request;
  for (int size : {1, 10, 100, 100000}) request.add_response_parameters()->set_size(size);
  ASSERT_TRUE(Write(*stream, request));
  WritesDone(*stream);  // false when the server already ended the call
  StreamingOutputCallResponse response;
  for (int size : {1, 10, 100, 100000}) {
    ASSERT_TRUE(Read(*stream, &response));
    EXPECT_EQ(response.payload().size(), static_cast<size_t>(size));
  }
  EXPECT_EQ(Find(stream->initial_metadata(), "x-tag"), "stream");
  EXPECT_FALSE(Read(*stream, &response));
  EXPECT_TRUE(Finish(*stream).ok());
  EXPECT_EQ(Find(stream->trailing_metadata(), "x-trailer-tag"), "stream");
}

TEST_F(GrpcClientTest, EmptyServerStreamEndsWithOk) {
  auto channel = GrpcChannel(server_.address());
  auto stream = channel->NewStream(kService, "StreamingOutputCall");
  ASSERT_TRUE(Write(*stream, StreamingOutputCallRequest()));
  WritesDone(*stream);  // false when the server already ended the call
  StreamingOutputCallResponse response;
  EXPECT_FALSE(Read(*stream, &response));
  EXPECT_TRUE(Finish(*stream).ok());
}

TEST_F(GrpcClientTest, ServerStreamErrorStatusArrivesAfterMessages) {
  auto channel = GrpcChannel(server_.address());
  auto stream = channel->NewStream(kService, "StreamingOutputCall");
  StreamingOutputCallRequest request;
  request.add_response_parameters()->set_size(5);
  request.mutable_response_status()->set_code(static_cast<int>(absl::StatusCode::kAborted));
  request.mutable_response_status()->set_message("stopped ✗");
  ASSERT_TRUE(Write(*stream, request));
  WritesDone(*stream);  // false when the server already ended the call
  StreamingOutputCallResponse response;
  ASSERT_TRUE(Read(*stream, &response));
  EXPECT_FALSE(Read(*stream, &response));
  absl::Status status = Finish(*stream);
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(status.message(), "stopped ✗");
}

TEST_F(GrpcClientTest, ClientStreamingAggregatesAndEmptyStreamWorks) {
  auto channel = GrpcChannel(server_.address());
  {
    auto stream = channel->NewStream(kService, "StreamingInputCall");
    StreamingInputCallRequest request;
    for (int size : {3, 30, 300000}) {
      request.set_payload(std::string(size, 'c'));
      ASSERT_TRUE(Write(*stream, request));
    }
    ASSERT_TRUE(WritesDone(*stream));
    StreamingInputCallResponse response;
    ASSERT_TRUE(Read(*stream, &response));
    EXPECT_EQ(response.aggregated_payload_size(), 300033);
    EXPECT_EQ(response.message_count(), 3);
    EXPECT_TRUE(Finish(*stream).ok());
  }
  {
    auto stream = channel->NewStream(kService, "StreamingInputCall");
    ASSERT_TRUE(WritesDone(*stream));
    StreamingInputCallResponse response;
    ASSERT_TRUE(Read(*stream, &response));
    EXPECT_EQ(response.message_count(), 0);
    EXPECT_TRUE(Finish(*stream).ok());
  }
}

TEST_F(GrpcClientTest, BidiPingPongAndEmptyBidiStream) {
  auto channel = GrpcChannel(server_.address());
  {
    auto stream = channel->NewStream(kService, "FullDuplexCall");
    for (int round = 1; round <= 5; ++round) {
      StreamingOutputCallRequest request;
      request.add_response_parameters()->set_size(round * 7);
      ASSERT_TRUE(Write(*stream, request));
      StreamingOutputCallResponse response;
      ASSERT_TRUE(Read(*stream, &response));
      EXPECT_EQ(response.payload().size(), static_cast<size_t>(round * 7));
    }
    ASSERT_TRUE(WritesDone(*stream));
    StreamingOutputCallResponse response;
    EXPECT_FALSE(Read(*stream, &response));
    EXPECT_TRUE(Finish(*stream).ok());
  }
  {
    auto stream = channel->NewStream(kService, "FullDuplexCall");
    ASSERT_TRUE(WritesDone(*stream));
    StreamingOutputCallResponse response;
    EXPECT_FALSE(Read(*stream, &response));
    EXPECT_TRUE(Finish(*stream).ok());
  }
}

TEST_F(GrpcClientTest, CancelAfterFirstResponseEndsStreamOnBothSides) {
  auto channel = GrpcChannel(server_.address());
  auto stream = channel->NewStream(kService, "StreamingOutputCall");
  StreamingOutputCallRequest request;
  request.add_response_parameters()->set_size(1);
  for (int i = 0; i < 5; ++i) {
    auto* params = request.add_response_parameters();
    params->set_size(1);
    params->set_interval_ms(20000);
  }
  ASSERT_TRUE(Write(*stream, request));
  StreamingOutputCallResponse response;
  ASSERT_TRUE(Read(*stream, &response));
  stream->Cancel();
  EXPECT_EQ(Finish(*stream).code(), absl::StatusCode::kCancelled);
  EXPECT_FALSE(Read(*stream, &response));
  EXPECT_FALSE(Write(*stream, request));
  EXPECT_TRUE(WaitFor([&] { return server_.service().cancelled() == 1; }));
}

TEST_F(GrpcClientTest, StreamDeadlineExceeded) {
  auto channel = GrpcChannel(server_.address());
  CallOptions options;
  options.timeout = absl::Milliseconds(200);
  auto stream = channel->NewStream(kService, "StreamingOutputCall", options);
  StreamingOutputCallRequest request;
  auto* params = request.add_response_parameters();
  params->set_size(1);
  params->set_interval_ms(20000);
  ASSERT_TRUE(Write(*stream, request));
  StreamingOutputCallResponse response;
  EXPECT_FALSE(Read(*stream, &response));
  EXPECT_EQ(Finish(*stream).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(WaitFor([&] { return server_.service().cancelled() == 1; }));
}

TEST_F(GrpcClientTest, DroppingAnUnfinishedStreamCancelsIt) {
  auto channel = GrpcChannel(server_.address());
  {
    auto stream = channel->NewStream(kService, "StreamingOutputCall");
    StreamingOutputCallRequest request;
    auto* params = request.add_response_parameters();
    params->set_size(1);
    params->set_interval_ms(20000);
    ASSERT_TRUE(Write(*stream, request));
    ASSERT_TRUE(WaitFor([&] { return server_.service().sleeping() == 1; }));
  }
  EXPECT_TRUE(WaitFor([&] { return server_.service().cancelled() == 1; }));
}

TEST_F(GrpcClientTest, SlowReaderStopsTheServerWriter) {
  auto channel = GrpcChannel(server_.address());
  auto stream = channel->NewStream(kService, "StreamingOutputCall");
  constexpr int kMessages = 400;
  constexpr int kSize = 64 * 1024;  // 25 MiB in all
  StreamingOutputCallRequest request;
  for (int i = 0; i < kMessages; ++i) request.add_response_parameters()->set_size(kSize);
  ASSERT_TRUE(Write(*stream, request));
  ASSERT_TRUE(WritesDone(*stream));  // the server cannot end before the reader reads
  StreamingOutputCallResponse response;
  ASSERT_TRUE(Read(*stream, &response));
  // Without reads, flow control stops the server well before the end: the
  // condition must stay false for the whole (bounded) wait.
  EXPECT_FALSE(
      WaitFor([&] { return server_.service().written() >= kMessages; }, absl::Milliseconds(500)));
  EXPECT_LT(server_.service().written(), kMessages / 2);
  int read = 1;
  while (Read(*stream, &response)) ++read;
  EXPECT_EQ(read, kMessages);
  EXPECT_TRUE(Finish(*stream).ok());
}

TEST_F(GrpcClientTest, StreamingOverBaiduStdFailsClearly) {
  ChannelOptions options;
  auto channel = Channel::Create(server_.address(), options);
  ASSERT_TRUE(channel.ok());
  auto stream = (*channel)->NewStream(kService, "FullDuplexCall");
  absl::Status status = Finish(*stream);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
}

TEST(GrpcClientRetryTest, UnavailableEndpointIsRetriedOnAnother) {
  GrpcServer live;
  // A port nothing listens on.
  int dead_port = 0;
  {
    GrpcServer gone;
    dead_port = std::stoi(gone.address().substr(gone.address().rfind(':') + 1));
  }
  auto channel = GrpcChannel(absl::StrCat("list://127.0.0.1:", dead_port, ",", live.address()));
  for (int i = 0; i < 6; ++i) {
    SimpleRequest request;
    request.set_payload("retry me");
    SimpleResponse response;
    absl::Status status = channel->CallMethod(kService, "UnaryCall", request, &response);
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_EQ(response.payload(), "retry me");
  }
}

TEST(GrpcClientRetryTest, ServerUnavailableIsRetriedWhenIdempotentAndListed) {
  GrpcServer server;
  ChannelOptions channel_options;
  channel_options.retry.retryable_error_codes = {EFAILEDSOCKET};
  auto channel = GrpcChannel(server.address(), channel_options);
  SimpleRequest request;
  SimpleResponse response;
  CallOptions options;
  options.metadata = {{"x-fail-first", "a"}};
  absl::Status status = channel->CallMethod(kService, "UnaryCall", request, &response, options);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << "not idempotent: not retried";
  options.metadata = {{"x-fail-first", "b"}};
  options.idempotent = true;
  status = channel->CallMethod(kService, "UnaryCall", request, &response, options);
  EXPECT_TRUE(status.ok()) << status;
}

TEST(GrpcClientGoawayTest, ServerShutdownFinishesInFlightCallsAndMovesNewOnes) {
  GrpcServer first, second;
  ChannelOptions options;
  options.load_balancer = "c_hash";
  auto channel =
      GrpcChannel(absl::StrCat("list://", first.address(), ",", second.address()), options);
  // A hash key whose calls go to the first server (over one connection).
  CallOptions pinned;
  CallInfo info;
  pinned.info = &info;
  for (int key = 0; info.remote_address != first.address(); ++key) {
    ASSERT_LT(key, 1000);
    pinned.hash_key = absl::StrCat("key", key);
    Empty request, response;
    ASSERT_TRUE(channel->CallMethod(kService, "EmptyCall", request, &response, pinned).ok());
  }
  // A slow call there; the server shuts down gracefully (GOAWAY) while it runs.
  SimpleRequest slow;
  slow.set_sleep_ms(1000);
  slow.set_payload("slow");
  SimpleResponse slow_response;
  netpoll::Notification slow_done;
  absl::Status slow_status;
  CallOptions slow_options = pinned;
  slow_options.info = nullptr;
  channel->CallMethod(kService, "UnaryCall", slow, &slow_response, slow_options,
                      [&](absl::Status s) {
                        slow_status = std::move(s);
                        slow_done.Notify();
                      });
  ASSERT_TRUE(WaitFor([&] { return first.service().sleeping() == 1; }));
  std::thread shutdown([&] { first.Shutdown(); });
  // The in-flight call finishes on the draining connection (its answer
  // comes after the GOAWAY).
  slow_done.WaitForNotification();
  EXPECT_TRUE(slow_status.ok()) << slow_status;
  EXPECT_EQ(slow_response.payload(), "slow");
  // New calls with the same key move to the other server.
  for (int i = 0; i < 10; ++i) {
    SimpleRequest request;
    request.set_payload(absl::StrCat("after ", i));
    SimpleResponse response;
    absl::Status status = channel->CallMethod(kService, "UnaryCall", request, &response, pinned);
    ASSERT_TRUE(status.ok()) << i << ": " << status;
    EXPECT_EQ(info.remote_address, second.address());
  }
  shutdown.join();
}

TEST(GrpcClientKeepaliveTest, KeepalivePingsKeepTheConnectionUsable) {
  GrpcServer server(GrpcServer::Options{.frequent_pings = true, .max_concurrent_streams = 0});
  ChannelOptions options;
  options.keepalive_time = absl::Milliseconds(50);
  options.keepalive_timeout = absl::Seconds(5);
  auto channel = GrpcChannel(server.address(), options);
  SimpleRequest request;
  request.set_sleep_ms(300);  // several pings while the call runs
  SimpleResponse response;
  EXPECT_TRUE(channel->CallMethod(kService, "UnaryCall", request, &response).ok());
}

TEST(GrpcClientConcurrencyTest, CallsBeyondMaxConcurrentStreamsWaitForAStream) {
  GrpcServer server(GrpcServer::Options{.frequent_pings = false, .max_concurrent_streams = 2});
  auto channel = GrpcChannel(server.address());
  constexpr int kCalls = 12;
  std::vector<SimpleRequest> requests(kCalls);
  std::vector<SimpleResponse> responses(kCalls);
  std::atomic<int> ok{0}, done{0};
  netpoll::Notification all;
  for (int i = 0; i < kCalls; ++i) {
    requests[i].set_payload(absl::StrCat("queued ", i));
    requests[i].set_sleep_ms(20);
    channel->CallMethod(kService, "UnaryCall", requests[i], &responses[i], {},
                        [&](const absl::Status& s) {
                          if (s.ok()) ok.fetch_add(1);
                          if (done.fetch_add(1) + 1 == kCalls) all.Notify();
                        });
  }
  all.WaitForNotification();
  EXPECT_EQ(ok.load(), kCalls);
  EXPECT_EQ(server.service().calls(), kCalls);  // none refused and retried
}

// Probe() results, through the protocol a channel would use.
class GrpcProbeTest : public ::testing::Test {
 protected:
  absl::Status Probe(const std::string& address) {
    ClientProtocolOptions options;
    options.loops = DefaultClientLoops();
    options.connect_timeout = absl::Seconds(5);
    auto protocol = CreateClientProtocol("grpc", options);
    EXPECT_TRUE(protocol.ok()) << protocol.status();
    netpoll::Notification done;
    absl::Status result;
    (*protocol)->Probe(address, [&](absl::Status s) {
      result = std::move(s);
      done.Notify();
    });
    done.WaitForNotification();
    (*protocol)->Shutdown();
    return result;
  }
};

TEST_F(GrpcProbeTest, SucceedsAgainstAGrpcServer) {
  GrpcServer server;
  EXPECT_TRUE(Probe(server.address()).ok());
}

TEST_F(GrpcProbeTest, FailsWhenNothingListens) {
  std::string address;
  {
    GrpcServer gone;
    address = gone.address();
  }
  EXPECT_FALSE(Probe(address).ok());
}

TEST_F(GrpcProbeTest, FailsAgainstAServerThatDoesNotSpeakHttp2) {
  // Answers any connection with an HTTP/1.1 error and closes it.
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::thread server([listener] {
    int conn = accept(listener, nullptr, nullptr);
    if (conn < 0) return;
    constexpr char kAnswer[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    (void)!write(conn, kAnswer, sizeof(kAnswer) - 1);
    char buf[256];
    while (read(conn, buf, sizeof(buf)) > 0) {
    }
    close(conn);
  });
  absl::Status status = Probe(absl::StrCat("127.0.0.1:", ntohs(addr.sin_port)));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  server.join();
  close(listener);
}

}  // namespace
}  // namespace nprpc
