// The gRPC server end to end: a real Server on 127.0.0.1:0 and a raw HTTP/2
// client (rpc/internal/testing/h2_client.h) that sends frames as a gRPC
// client would, or as a hostile one would.
#include "rpc/internal/grpc_protocol.h"

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "netpoll/link_buffer.h"
#include "netpoll/mutex.h"
#include "netpoll/testing/wait.h"
#include "proto/echo.pb.h"
#include "rpc/authenticator.h"
#include "rpc/channel.h"
#include "rpc/errors.h"
#include "rpc/interceptor.h"
#include "rpc/internal/compression.h"
#include "rpc/internal/grpc_wire.h"
#include "rpc/internal/testing/function_stream_handler.h"
#include "rpc/internal/testing/h2_client.h"
#include "rpc/server.h"
#include "rpc/service.h"
#include "rpc/stream_core.h"

namespace nprpc {
namespace {

using example::EchoRequest;
using example::EchoResponse;
using testing::H2Client;

using StreamHandler = testing::FunctionStreamHandler;

// Blocking Read/Write for handlers on the worker pool.
bool SyncRead(ServerStreamCore& stream, google::protobuf::Message* msg) {
  std::promise<bool> promise;
  std::future<bool> result = promise.get_future();
  stream.Read(msg, [&promise](bool ok) { promise.set_value(ok); });
  return result.get();
}
bool SyncWrite(ServerStreamCore& stream, const google::protobuf::Message& msg) {
  std::promise<bool> promise;
  std::future<bool> result = promise.get_future();
  stream.Write(msg, [&promise](bool ok) { promise.set_value(ok); });
  return result.get();
}

// Reads requests and answers each with its message, on the loop.
class BidiEcho : public std::enable_shared_from_this<BidiEcho> {
 public:
  explicit BidiEcho(std::shared_ptr<ServerStreamCore> stream) : stream_(std::move(stream)) {}
  void Next() {
    stream_->Read(&request_, [self = shared_from_this()](bool ok) {
      if (!ok) {
        self->stream_->Finish(absl::OkStatus());
        return;
      }
      self->response_.set_message(self->request_.message());
      self->stream_->Write(self->response_, [self](bool written) {
        if (!written) {
          self->stream_->Finish(absl::CancelledError("write failed"));
          return;
        }
        self->Next();
      });
    });
  }

 private:
  const std::shared_ptr<ServerStreamCore> stream_;
  EchoRequest request_;
  EchoResponse response_;
};

std::string Request(absl::string_view message, int code = 0) {
  EchoRequest request;
  request.set_message(std::string(message));
  if (code != 0) request.set_code(code);
  return request.SerializeAsString();
}

std::string ResponseMessage(const std::string& bytes) {
  EchoResponse response;
  EXPECT_TRUE(response.ParseFromString(bytes));
  return response.message();
}

class GrpcProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(ServerOptions()); }

  void StartServer(ServerOptions options) {
    server_.reset();
    options.num_io_loops = 1;
    options.num_worker_threads = 4;
    options.brpc_error_prefix = false;
    server_ = std::make_unique<Server>(std::move(options));
    auto echo = std::make_unique<Service>(
        EchoRequest::descriptor()->file()->FindServiceByName("EchoService"));
    ASSERT_TRUE(echo->AddMethod("Echo",
                                [](ServerContext& ctx, const google::protobuf::Message& req,
                                   google::protobuf::Message* resp) {
                                  const auto& request = static_cast<const EchoRequest&>(req);
                                  static_cast<EchoResponse*>(resp)->set_message(request.message());
                                  ctx.response_user_fields()["protocol"] =
                                      std::string(ctx.protocol());
                                  for (const auto& [key, value] : ctx.request_user_fields()) {
                                    if (key.rfind("x-", 0) != 0) continue;
                                    ctx.response_user_fields()[key] = value;
                                    ctx.response_trailers()["t-" + key] = value;
                                  }
                                  if (ctx.FindRequestUserField("x-compress") != nullptr) {
                                    ctx.set_response_compress_type(CompressType::kGzip);
                                  }
                                  return absl::OkStatus();
                                })
                    .ok());
    ASSERT_TRUE(echo->AddMethod("Fail",
                                [](ServerContext&, const google::protobuf::Message& req,
                                   google::protobuf::Message*) {
                                  const auto& request = static_cast<const EchoRequest&>(req);
                                  return absl::Status(static_cast<absl::StatusCode>(request.code()),
                                                      request.message());
                                })
                    .ok());
    // Answers only when cancelled (deadline, client reset).
    ASSERT_TRUE(echo->AddAsyncMethod("Missing",
                                     [this](ServerContext& ctx, const google::protobuf::Message&,
                                            google::protobuf::Message*, const Responder& done) {
                                       ctx.OnCancel([this, done] {
                                         cancelled_.Notify();
                                         done(absl::CancelledError("cancelled"));
                                       });
                                     })
                    .ok());
    ASSERT_TRUE(server_->AddService(std::move(echo)).ok());

    auto streams = std::make_unique<Service>("test.Streams");
    using Mode = MethodHandler::ExecutionMode;
    ASSERT_TRUE(streams
                    ->AddMethod("Bidi", std::make_unique<StreamHandler>(
                                            StreamKind::kBidiStreaming, Mode::kIoLoop,
                                            [](std::shared_ptr<ServerStreamCore> stream) {
                                              std::make_shared<BidiEcho>(std::move(stream))->Next();
                                            }))
                    .ok());
    ASSERT_TRUE(streams
                    ->AddMethod("ServerStream",
                                std::make_unique<StreamHandler>(
                                    StreamKind::kServerStreaming, Mode::kWorkerPool,
                                    [this](const std::shared_ptr<ServerStreamCore>& stream) {
                                      EchoRequest request;
                                      if (!SyncRead(*stream, &request)) {
                                        stream->Finish(absl::InvalidArgumentError("no request"));
                                        return;
                                      }
                                      EchoResponse response;
                                      response.set_message(request.message());
                                      for (int i = 0; i < request.code(); ++i) {
                                        if (!SyncWrite(*stream, response)) break;
                                        writes_done_.fetch_add(1);
                                      }
                                      stream->Finish(absl::OkStatus());
                                    }))
                    .ok());
    ASSERT_TRUE(
        streams
            ->AddMethod("ClientStream", std::make_unique<StreamHandler>(
                                            StreamKind::kClientStreaming, Mode::kWorkerPool,
                                            [](const std::shared_ptr<ServerStreamCore>& stream) {
                                              EchoRequest request;
                                              std::string all;
                                              int n = 0;
                                              while (SyncRead(*stream, &request)) {
                                                absl::StrAppend(&all, request.message());
                                                ++n;
                                              }
                                              EchoResponse response;
                                              response.set_message(absl::StrCat(n, ":", all));
                                              stream->context().response_trailers()["x-count"] =
                                                  absl::StrCat(n);
                                              SyncWrite(*stream, response);
                                              stream->Finish(absl::OkStatus());
                                            }))
            .ok());
    // Never reads; ends when cancelled.
    ASSERT_TRUE(
        streams
            ->AddMethod("Hang", std::make_unique<StreamHandler>(
                                    StreamKind::kBidiStreaming, Mode::kIoLoop,
                                    [this](const std::shared_ptr<ServerStreamCore>& stream) {
                                      ServerStreamCore* raw = stream.get();
                                      raw->context().OnCancel([this, stream] {
                                        cancelled_.Notify();
                                        stream->Finish(absl::CancelledError("gone"));
                                      });
                                    }))
            .ok());
    // Drops its stream without Finish().
    ASSERT_TRUE(streams
                    ->AddMethod("Drop", std::make_unique<StreamHandler>(
                                            StreamKind::kServerStreaming, Mode::kIoLoop,
                                            [](const std::shared_ptr<ServerStreamCore>&) {}))
                    .ok());
    ASSERT_TRUE(server_->AddService(std::move(streams)).ok());
    ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
  }

  std::unique_ptr<H2Client> Connect(H2Client::Options options = H2Client::Options()) {
    auto client = H2Client::Connect(server_->listen_address(), options);
    EXPECT_TRUE(client.ok()) << client.status();
    return std::move(*client);
  }

  // A whole unary call; returns the stream.
  H2Client::Stream Unary(H2Client& client, absl::string_view path, const std::string& request,
                         const H2Client::Metadata& metadata = {}) {
    const int32_t id = client.StartCall(path, metadata);
    client.SendMessage(id, request, /*end_stream=*/true);
    EXPECT_TRUE(client.WaitClosed(id));
    return client.stream(id);
  }

  std::unique_ptr<Server> server_;
  netpoll::Notification cancelled_;
  std::atomic<int> writes_done_{0};
};

TEST(GrpcSniffTest, ClaimsThePrefaceAndWaitsOnItsPrefixes) {
  const GrpcProtocol* protocol = GrpcProtocol::Get();
  netpoll::LinkBuffer whole;
  whole.WriteString(absl::StrCat(kHttp2ClientPreface, "\x00\x00"));
  EXPECT_EQ(protocol->Sniff(whole), SniffResult::kMine);
  netpoll::LinkBuffer prefix;
  prefix.WriteString("PRI * HT");
  EXPECT_EQ(protocol->Sniff(prefix), SniffResult::kNeedMore);
  netpoll::LinkBuffer other;
  other.WriteString("POST / HTTP/1.1\r\n");
  EXPECT_EQ(protocol->Sniff(other), SniffResult::kNotMine);
}

TEST_F(GrpcProtocolTest, UnaryEchoAnswersHeadersMessageAndOkTrailers) {
  auto client = Connect();
  H2Client::Stream stream = Unary(*client, "/example.EchoService/Echo", Request("hello"));
  EXPECT_EQ(stream.Find(":status"), "200");
  EXPECT_EQ(stream.Find("content-type"), "application/grpc");
  EXPECT_EQ(stream.Status(), "0");
  ASSERT_EQ(stream.Messages().size(), 1u);
  EXPECT_EQ(ResponseMessage(stream.Messages()[0]), "hello");
  EXPECT_FALSE(stream.trailers.empty());  // not trailers-only
  EXPECT_EQ(stream.Find("protocol"), "grpc");
  // The settings the server announced.
  EXPECT_EQ(client->server_settings().at(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS), 100u);
}

TEST_F(GrpcProtocolTest, ManyCallsOnOneConnection) {
  auto client = Connect();
  std::vector<int32_t> ids;
  for (int i = 0; i < 50; ++i) {
    ids.push_back(client->StartCall("/example.EchoService/Echo"));
    client->SendMessage(ids.back(), Request(absl::StrCat("m", i)), true);
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(client->WaitClosed(ids[i]));
    ASSERT_EQ(client->stream(ids[i]).Messages().size(), 1u);
    EXPECT_EQ(ResponseMessage(client->stream(ids[i]).Messages()[0]), absl::StrCat("m", i));
  }
}

TEST_F(GrpcProtocolTest, MetadataAsciiAndBinaryReachTheHandlerAndComeBack) {
  auto client = Connect();
  const std::string bytes("\x00\x01\xfe\xff", 4);
  H2Client::Stream stream =
      Unary(*client, "/example.EchoService/Echo", Request("m"),
            {{"x-text", "hello world"}, {"x-raw-bin", grpc_wire::EncodeBinaryValue(bytes)}});
  EXPECT_EQ(stream.Status(), "0");
  // Initial metadata in the headers, trailing metadata in the trailers.
  bool header_text = false;
  for (const auto& [key, value] : stream.headers) header_text |= key == "x-text";
  EXPECT_TRUE(header_text);
  EXPECT_EQ(stream.Find("x-text"), "hello world");
  EXPECT_EQ(grpc_wire::DecodeBinaryValue(*stream.Find("x-raw-bin")).value(), bytes);
  bool trailer_text = false;
  for (const auto& [key, value] : stream.trailers) trailer_text |= key == "t-x-text";
  EXPECT_TRUE(trailer_text);
  EXPECT_EQ(grpc_wire::DecodeBinaryValue(*stream.Find("t-x-raw-bin")).value(), bytes);
}

TEST_F(GrpcProtocolTest, EveryStatusCodeRoundTripsAsTrailersOnly) {
  auto client = Connect();
  for (int code = 1; code <= 16; ++code) {
    H2Client::Stream stream =
        Unary(*client, "/example.EchoService/Fail", Request(absl::StrCat("failed ", code), code));
    EXPECT_EQ(stream.Status(), absl::StrCat(code));
    EXPECT_EQ(grpc_wire::PercentDecode(stream.Find("grpc-message").value_or("")),
              absl::StrCat("failed ", code));
    EXPECT_TRUE(stream.trailers.empty()) << "trailers-only expected for code " << code;
    EXPECT_TRUE(stream.data.empty());
  }
}

TEST_F(GrpcProtocolTest, UnicodeStatusMessageIsPercentEncoded) {
  auto client = Connect();
  const std::string text = "échec 失败 ✓";
  H2Client::Stream stream = Unary(*client, "/example.EchoService/Fail", Request(text, 9));
  EXPECT_EQ(stream.Status(), "9");
  const std::string wire = stream.Find("grpc-message").value_or("");
  for (char c : wire) EXPECT_TRUE(c >= 0x20 && c <= 0x7e);
  EXPECT_EQ(grpc_wire::PercentDecode(wire), text);
}

TEST_F(GrpcProtocolTest, GrpcTimeoutBecomesTheDeadlineAndCancelsTheHandler) {
  auto client = Connect();
  H2Client::Stream stream =
      Unary(*client, "/example.EchoService/Missing", Request("m"), {{"grpc-timeout", "50m"}});
  EXPECT_EQ(stream.Status(), "4");  // DEADLINE_EXCEEDED
  EXPECT_TRUE(cancelled_.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

TEST_F(GrpcProtocolTest, UnknownMethodAndServiceAreUnimplemented) {
  auto client = Connect();
  EXPECT_EQ(Unary(*client, "/example.EchoService/Nope", Request("m")).Status(), "12");
  EXPECT_EQ(Unary(*client, "/no.Such/Echo", Request("m")).Status(), "12");
  EXPECT_EQ(Unary(*client, "/bad", Request("m")).Status(), "12");
}

TEST_F(GrpcProtocolTest, NonGrpcContentTypeIsAnswered415) {
  auto client = Connect();
  const int32_t id = client->StartCall("/example.EchoService/Echo", {}, "application/json");
  client->SendData(id, "{}", true);
  ASSERT_TRUE(client->WaitClosed(id));
  EXPECT_EQ(client->stream(id).Find(":status"), "415");
}

TEST_F(GrpcProtocolTest, GzipRequestAndGzipResponse) {
  auto client = Connect();
  netpoll::LinkBuffer plain, compressed;
  plain.WriteString(Request(std::string(1000, 'z')));
  ASSERT_TRUE(Compress(CompressType::kGzip, plain, compressed).ok());
  const int32_t id = client->StartCall(
      "/example.EchoService/Echo",
      {{"grpc-encoding", "gzip"}, {"grpc-accept-encoding", "gzip"}, {"x-compress", "1"}});
  client->SendMessage(id, compressed.ToString(), true, /*compressed=*/true);
  ASSERT_TRUE(client->WaitClosed(id));
  H2Client::Stream& stream = client->stream(id);
  EXPECT_EQ(stream.Status(), "0");
  EXPECT_EQ(stream.Find("grpc-encoding"), "gzip");
  ASSERT_GE(stream.data.size(), 5u);
  EXPECT_EQ(stream.data[0], 1);  // compressed flag
  ASSERT_EQ(stream.Messages().size(), 1u);
  netpoll::LinkBuffer wire, out;
  wire.WriteString(stream.Messages()[0]);
  ASSERT_TRUE(Decompress(CompressType::kGzip, wire, 1 << 20, out).ok());
  EXPECT_EQ(ResponseMessage(out.ToString()), std::string(1000, 'z'));
}

TEST_F(GrpcProtocolTest, UnknownEncodingIsUnimplementedWithAcceptEncoding) {
  auto client = Connect();
  H2Client::Stream stream =
      Unary(*client, "/example.EchoService/Echo", Request("m"), {{"grpc-encoding", "br"}});
  EXPECT_EQ(stream.Status(), "12");
  EXPECT_EQ(stream.Find("grpc-accept-encoding"), grpc_wire::kAcceptEncoding);
}

TEST_F(GrpcProtocolTest, MessagePrefixAnnouncingFourGibIsResourceExhaustedBeforeItsBytes) {
  auto client = Connect();
  const int32_t id = client->StartCall("/example.EchoService/Echo");
  client->SendData(id, std::string("\x00\xff\xff\xff\xff", 5), /*end_stream=*/false);
  ASSERT_TRUE(client->WaitClosed(id));
  EXPECT_EQ(client->stream(id).Status(), "8");
  // The connection still serves.
  EXPECT_EQ(Unary(*client, "/example.EchoService/Echo", Request("after")).Status(), "0");
}

TEST_F(GrpcProtocolTest, OversizedHeadersAreRefusedOnTheirStream) {
  ServerOptions options;
  options.max_http_header_size = 4096;
  StartServer(options);
  auto client = Connect();
  const int32_t id =
      client->StartCall("/example.EchoService/Echo", {{"x-big", std::string(8000, 'a')}});
  client->SendMessage(id, Request("m"), true);
  ASSERT_TRUE(client->WaitClosed(id));
  // Refused with RESOURCE_EXHAUSTED (or reset by nghttp2's own header limit).
  const H2Client::Stream& stream = client->stream(id);
  EXPECT_TRUE(stream.Status() == "8" || stream.close_error != 0) << stream.Status();
}

TEST_F(GrpcProtocolTest, BidiStreamingEchoesEachMessageInTurn) {
  auto client = Connect();
  const int32_t id = client->StartCall("/test.Streams/Bidi");
  for (int i = 0; i < 5; ++i) {
    client->SendMessage(id, Request(absl::StrCat("ping", i)), false);
    ASSERT_TRUE(
        client->Pump([&] { return client->stream(id).Messages().size() == size_t(i + 1); }));
    EXPECT_EQ(ResponseMessage(client->stream(id).Messages()[i]), absl::StrCat("ping", i));
  }
  client->SendData(id, "", true);
  ASSERT_TRUE(client->WaitClosed(id));
  EXPECT_EQ(client->stream(id).Status(), "0");
}

TEST_F(GrpcProtocolTest, ServerStreamingSendsEveryMessage) {
  auto client = Connect();
  const int32_t id = client->StartCall("/test.Streams/ServerStream");
  client->SendMessage(id, Request("part", 100), true);
  ASSERT_TRUE(client->WaitClosed(id));
  EXPECT_EQ(client->stream(id).Status(), "0");
  EXPECT_EQ(client->stream(id).Messages().size(), 100u);
}

TEST_F(GrpcProtocolTest, ClientStreamingReadsEveryMessageAndEmptyStreams) {
  auto client = Connect();
  const int32_t id = client->StartCall("/test.Streams/ClientStream");
  for (int i = 0; i < 10; ++i) client->SendMessage(id, Request("a"), i == 9);
  ASSERT_TRUE(client->WaitClosed(id));
  EXPECT_EQ(client->stream(id).Status(), "0");
  ASSERT_EQ(client->stream(id).Messages().size(), 1u);
  EXPECT_EQ(ResponseMessage(client->stream(id).Messages()[0]), "10:aaaaaaaaaa");
  EXPECT_EQ(client->stream(id).Find("x-count"), "10");

  const int32_t empty = client->StartCall("/test.Streams/ClientStream");
  client->SendData(empty, "", true);
  ASSERT_TRUE(client->WaitClosed(empty));
  EXPECT_EQ(client->stream(empty).Status(), "0");
  EXPECT_EQ(ResponseMessage(client->stream(empty).Messages().at(0)), "0:");
}

TEST_F(GrpcProtocolTest, ClientResetCancelsTheHandler) {
  auto client = Connect();
  const int32_t id = client->StartCall("/test.Streams/Hang");
  client->SendMessage(id, Request("m"), false);
  client->Reset(id);
  EXPECT_TRUE(cancelled_.WaitForNotificationWithTimeout(absl::Seconds(10)));
  // The connection still serves.
  EXPECT_EQ(Unary(*client, "/example.EchoService/Echo", Request("after")).Status(), "0");
}

TEST_F(GrpcProtocolTest, HandlerCancellingEndsTheClientsCall) {
  auto client = Connect();
  H2Client::Stream stream = Unary(*client, "/example.EchoService/Fail", Request("stop", 1));
  EXPECT_EQ(stream.Status(), "1");  // CANCELLED
}

TEST_F(GrpcProtocolTest, HandlerThatDropsItsStreamEndsTheCallWithInternal) {
  auto client = Connect();
  const int32_t id = client->StartCall("/test.Streams/Drop");
  client->SendMessage(id, Request("m"), true);
  ASSERT_TRUE(client->WaitClosed(id));
  EXPECT_EQ(client->stream(id).Status(), "13");
  EXPECT_TRUE(netpoll::testing::WaitFor(
      [&] { return server_->Stats().methods["test.Streams/Drop"].in_flight == 0; }));
}

TEST_F(GrpcProtocolTest, ShutdownSendsGoawayAndLetsOpenStreamsFinish) {
  auto client = Connect();
  const int32_t id = client->StartCall("/test.Streams/Bidi");
  client->SendMessage(id, Request("before"), false);
  ASSERT_TRUE(client->Pump([&] { return client->stream(id).Messages().size() == 1; }));
  std::thread shutdown([this] { server_->Shutdown(absl::Seconds(20)); });
  // The notice, then (after a PING round trip) the final GOAWAY.
  ASSERT_TRUE(client->Pump([&] { return client->goaway_count() >= 2; }));
  EXPECT_EQ(client->goaway_error(), NGHTTP2_NO_ERROR);
  EXPECT_EQ(client->goaway_last_stream(), id);
  // The open stream still works and finishes.
  client->SendMessage(id, Request("after"), true);
  ASSERT_TRUE(client->WaitClosed(id));
  EXPECT_EQ(client->stream(id).Messages().size(), 2u);
  EXPECT_EQ(client->stream(id).Status(), "0");
  EXPECT_TRUE(client->WaitDisconnected());
  shutdown.join();
}

TEST_F(GrpcProtocolTest, StreamsOpenedWhileStoppingAreRefused) {
  auto client = Connect();
  const int32_t hang = client->StartCall("/test.Streams/Bidi");
  client->SendMessage(hang, Request("x"), false);
  ASSERT_TRUE(client->Pump([&] { return client->stream(hang).Messages().size() == 1; }));
  std::thread shutdown([this] { server_->Shutdown(absl::Seconds(20)); });
  ASSERT_TRUE(client->Pump([&] { return client->goaway_received(); }));
  // Opened after the notice: refused (REFUSED_STREAM) or ignored by the
  // final GOAWAY; either way it never runs.
  const int32_t late = client->StartCall("/example.EchoService/Echo");
  client->SendMessage(late, Request("late"), true);
  client->Pump([&] { return client->stream(late).closed || client->goaway_count() >= 2; });
  EXPECT_TRUE(client->stream(late).Messages().empty());
  client->SendData(hang, "", true);
  ASSERT_TRUE(client->WaitClosed(hang));
  shutdown.join();
}

TEST_F(GrpcProtocolTest, RapidResetClosesTheConnectionWithEnhanceYourCalm) {
  ServerOptions options;
  options.grpc_max_resets_per_second = 10;
  StartServer(options);
  auto client = Connect();
  for (int i = 0; i < 50 && !client->disconnected(); ++i) {
    const int32_t id = client->StartCall("/test.Streams/Hang");
    client->Reset(id);
  }
  ASSERT_TRUE(client->WaitDisconnected());
  EXPECT_TRUE(client->goaway_received());
  EXPECT_EQ(client->goaway_error(), NGHTTP2_ENHANCE_YOUR_CALM);
  EXPECT_GE(server_->Stats().protocol_errors, 1);
}

TEST_F(GrpcProtocolTest, ClientThatDoesNotReadStopsTheHandlersWrites) {
  auto client = Connect({.initial_window = 65535, .acknowledge_data = false});
  const int32_t id = client->StartCall("/test.Streams/ServerStream");
  client->SendMessage(id, Request(std::string(4096, 'w'), 10000), true);
  // The client's windows (65535 bytes) fill up, then nothing more arrives.
  ASSERT_TRUE(client->Pump([&] { return client->stream(id).data.size() >= 65535; }));
  client->Pump([] { return false; }, absl::Milliseconds(300));
  EXPECT_EQ(client->stream(id).data.size(), 65535u);
  // The handler waits for its Write callbacks: what it wrote is bounded by
  // the window and the stream's send buffer.
  const int written = writes_done_.load();
  EXPECT_LT(written, (65535 + 2 * kGrpcStreamSendBuffer) / 4096 + 4);
  client->Reset(id);
  ASSERT_TRUE(client->WaitClosed(id));
}

TEST_F(GrpcProtocolTest, ClientThatOutpacesTheHandlerIsStoppedByTheWindow) {
  ServerOptions options;
  options.grpc_stream_window_bytes = 65536;
  StartServer(options);
  auto client = Connect();
  const int32_t id = client->StartCall("/test.Streams/Hang");
  const std::string big = Request(std::string(16 << 10, 'b'));
  for (int i = 0; i < 64; ++i) client->SendMessage(id, big, false);  // 1 MiB
  client->Pump([] { return false; }, absl::Milliseconds(300));
  // The handler reads nothing: most of it is still on the client.
  EXPECT_GT(client->unsent(id), size_t{800} << 10);
  client->Reset(id);
  EXPECT_TRUE(cancelled_.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

TEST_F(GrpcProtocolTest, PingIsAnswered) {
  auto client = Connect();
  client->Ping();
  // The server is alive afterwards, and the PING ack does not upset nghttp2.
  EXPECT_EQ(Unary(*client, "/example.EchoService/Echo", Request("p")).Status(), "0");
}

TEST_F(GrpcProtocolTest, StreamingMethodOverBaiduStdFailsClearly) {
  auto channel = Channel::Create(server_->listen_address().ToString());
  ASSERT_TRUE(channel.ok());
  EchoRequest request;
  request.set_message("m");
  EchoResponse response;
  absl::Status s = (*channel)->CallMethod("test.Streams", "ServerStream", request, &response);
  EXPECT_EQ(ErrorCodeOf(s), ENOMETHOD) << s;
  EXPECT_NE(s.message().find("server streaming method: call it over gRPC"), std::string::npos) << s;
  // Unary methods of the server still work over baidu_std.
  EXPECT_TRUE((*channel)->CallMethod("example.EchoService", "Echo", request, &response).ok());
}

// Accepts "Bearer good" only.
class TokenAuthenticator final : public Authenticator {
 public:
  absl::StatusOr<std::string> GenerateCredential() const override { return "Bearer good"; }
  absl::Status VerifyCredential(absl::string_view credential, const netpoll::SocketAddress&,
                                AuthContext& context) const override {
    if (credential != "Bearer good") return absl::PermissionDeniedError("bad token");
    context.user = "alice";
    return absl::OkStatus();
  }
};

TEST_F(GrpcProtocolTest, AuthorizationHeaderIsVerifiedOnTheFirstCall) {
  ServerOptions options;
  options.authenticator = std::make_shared<TokenAuthenticator>();
  StartServer(options);
  auto good = Connect();
  EXPECT_EQ(
      Unary(*good, "/example.EchoService/Echo", Request("m"), {{"authorization", "Bearer good"}})
          .Status(),
      "0");
  // Later calls of the connection share its verdict.
  EXPECT_EQ(Unary(*good, "/example.EchoService/Echo", Request("m")).Status(), "0");

  auto bad = Connect();
  H2Client::Stream refused =
      Unary(*bad, "/example.EchoService/Echo", Request("m"), {{"authorization", "Bearer bad"}});
  EXPECT_EQ(refused.Status(), "16");  // UNAUTHENTICATED
  EXPECT_TRUE(bad->WaitDisconnected());
  EXPECT_GE(server_->Stats().auth_failures, 1);
}

// Counts the calls it sees and refuses those carrying x-deny.
class CountingInterceptor final : public ServerInterceptor {
 public:
  absl::Status BeforeCall(ServerContext& ctx) override {
    before.fetch_add(1);
    if (ctx.FindRequestUserField("x-deny") != nullptr) {
      return absl::PermissionDeniedError("denied by interceptor");
    }
    return absl::OkStatus();
  }
  void AfterCall(const ServerContext&, const CallOutcome&) override { after.fetch_add(1); }
  std::atomic<int> before{0};
  std::atomic<int> after{0};
};

TEST_F(GrpcProtocolTest, InterceptorsRunAroundUnaryAndStreamingCalls) {
  auto interceptor = std::make_shared<CountingInterceptor>();
  ServerOptions options;
  options.interceptors = {interceptor};
  StartServer(options);
  auto client = Connect();
  EXPECT_EQ(Unary(*client, "/example.EchoService/Echo", Request("m")).Status(), "0");
  EXPECT_EQ(Unary(*client, "/example.EchoService/Echo", Request("m"), {{"x-deny", "1"}}).Status(),
            "7");
  const int32_t id = client->StartCall("/test.Streams/Bidi");
  client->SendMessage(id, Request("s"), true);
  ASSERT_TRUE(client->WaitClosed(id));
  EXPECT_EQ(client->stream(id).Status(), "0");
  EXPECT_TRUE(netpoll::testing::WaitFor([&] { return interceptor->after.load() == 3; }));
  EXPECT_EQ(interceptor->before.load(), 3);
}

TEST_F(GrpcProtocolTest, TraceparentIsAcceptedAsTheCallsTrace) {
  auto client = Connect();
  H2Client::Stream stream =
      Unary(*client, "/example.EchoService/Echo", Request("m"),
            {{"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}});
  EXPECT_EQ(stream.Status(), "0");
}

TEST_F(GrpcProtocolTest, MethodConcurrencyLimitIsResourceExhausted) {
  ServerOptions options;
  options.method_max_concurrency["example.EchoService/Missing"] = 1;
  StartServer(options);
  auto client = Connect();
  const int32_t first = client->StartCall("/example.EchoService/Missing");
  client->SendMessage(first, Request("a"), true);
  ASSERT_TRUE(netpoll::testing::WaitFor([&] {
    client->Pump([] { return false; }, absl::Milliseconds(10));
    return server_->Stats().methods["example.EchoService/Missing"].in_flight == 1;
  }));
  H2Client::Stream second = Unary(*client, "/example.EchoService/Missing", Request("b"));
  EXPECT_EQ(second.Status(), "8");
  client->Reset(first);
  EXPECT_TRUE(cancelled_.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

}  // namespace
}  // namespace nprpc
