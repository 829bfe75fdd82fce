// Traces across real servers and channels: span ids per hop, the edge's
// trace id and sampling decision carried through a chain of services, spans
// in the ring, brpc's convention on the wire.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "netpoll/link_buffer.h"
#include "netpoll/mutex.h"
#include "netpoll/testing/blocking_client.h"
#include "netpoll/testing/wait.h"
#include "proto/echo.pb.h"
#include "rpc/channel.h"
#include "rpc/context_propagation.h"
#include "rpc/internal/frame_codec.h"
#include "rpc/server.h"
#include "rpc/service.h"
#include "rpc/tracing.h"

namespace nprpc {
namespace {

using example::EchoRequest;
using example::EchoResponse;

// The trace each server's handler saw.
class SeenTraces {
 public:
  void Set(std::string who, const TraceContext& trace) {
    netpoll::MutexLock lock(&mu_);
    seen_.emplace_back(std::move(who), trace);
  }
  std::optional<TraceContext> Get(absl::string_view who) const {
    netpoll::MutexLock lock(&mu_);
    for (const auto& [name, trace] : seen_) {
      if (name == who) return trace;
    }
    return std::nullopt;
  }

 private:
  mutable netpoll::Mutex mu_;
  std::vector<std::pair<std::string, TraceContext>> seen_ ABSL_GUARDED_BY(mu_);
};

std::unique_ptr<Service> NewService(
    std::function<absl::Status(ServerContext&, const EchoRequest&, EchoResponse*)> echo) {
  const google::protobuf::ServiceDescriptor* descriptor =
      EchoRequest::descriptor()->file()->FindServiceByName("EchoService");
  auto service = std::make_unique<Service>(descriptor);
  EXPECT_TRUE(
      service->AddMethod("Echo", TypedUnary<EchoRequest, EchoResponse>(std::move(echo))).ok());
  return service;
}

// Reads one whole answer frame; false when none arrived.
bool ReadAnswer(netpoll::testing::BlockingClient& client) {
  absl::StatusOr<std::string> header = client.ReadExactly(12);
  if (!header.ok()) return false;
  const auto* b = reinterpret_cast<const unsigned char*>(header->data());
  const uint32_t body =
      (uint32_t{b[4]} << 24) | (uint32_t{b[5]} << 16) | (uint32_t{b[6]} << 8) | b[7];
  return client.ReadExactly(body).ok();
}

class TracingE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TracingOptions tracing;
    tracing.max_sampled_per_second = 1000000;
    ConfigureTracing(tracing);
    SpanStore::Default().Clear();
    // back: annotates and records what it saw.
    back_ = std::make_unique<Server>();
    ASSERT_TRUE(back_
                    ->AddService(NewService(
                        [this](ServerContext& ctx, const EchoRequest& req, EchoResponse* resp) {
                          seen_.Set("back", ctx.trace());
                          ctx.Annotate("back handler ran");
                          resp->set_message(req.message());
                          return absl::OkStatus();
                        }))
                    .ok());
    ASSERT_TRUE(back_->Start("127.0.0.1:0").ok());
    auto channel = Channel::Create(back_->listen_address().ToString());
    ASSERT_TRUE(channel.ok());
    to_back_ = std::move(*channel);
    // front: calls back on behalf of its caller.
    front_ = std::make_unique<Server>();
    ASSERT_TRUE(front_
                    ->AddService(NewService(
                        [this](ServerContext& ctx, const EchoRequest& req, EchoResponse* resp) {
                          seen_.Set("front", ctx.trace());
                          ctx.Annotate("calling back");
                          return to_back_->CallMethod("example.EchoService", "Echo", req, resp,
                                                      PropagateContext(ctx, CallOptions()));
                        }))
                    .ok());
    ASSERT_TRUE(front_->Start("127.0.0.1:0").ok());
  }
  void TearDown() override {
    front_->Shutdown(absl::Seconds(5));
    back_->Shutdown(absl::Seconds(5));
    ConfigureTracing(TracingOptions());
    SpanStore::Default().Clear();
  }
  absl::Status CallFront(const CallOptions& options = {}) {
    auto channel = Channel::Create(front_->listen_address().ToString());
    EXPECT_TRUE(channel.ok());
    EchoRequest request;
    request.set_message("hi");
    EchoResponse response;
    return (*channel)->CallMethod("example.EchoService", "Echo", request, &response, options);
  }
  static const Span* Find(const std::vector<Span>& spans, Span::Kind kind,
                          absl::string_view peer_or_any, int64_t parent) {
    for (const Span& s : spans) {
      if (s.kind == kind && s.parent_span_id == parent &&
          (peer_or_any.empty() || s.peer == peer_or_any)) {
        return &s;
      }
    }
    return nullptr;
  }

  SeenTraces seen_;
  std::unique_ptr<Server> back_;
  std::unique_ptr<Channel> to_back_;
  std::unique_ptr<Server> front_;
};

TEST_F(TracingE2eTest, EveryHopGetsANewSpanUnderItsCallersSpanInOneTrace) {
  ASSERT_TRUE(CallFront().ok());
  // client -> front server -> front's client -> back server: four spans.
  ASSERT_TRUE(netpoll::testing::WaitFor([] { return SpanStore::Default().recorded() >= 4; }));
  const std::vector<Span> spans = SpanStore::Default().Recent(10);
  ASSERT_EQ(spans.size(), 4u);
  const Span* client = Find(spans, Span::Kind::kClient, front_->listen_address().ToString(), 0);
  ASSERT_NE(client, nullptr) << "a root client span to the front server";
  const Span* front = Find(spans, Span::Kind::kServer, "", client->span_id);
  ASSERT_NE(front, nullptr);
  const Span* front_client = Find(spans, Span::Kind::kClient, "", front->span_id);
  ASSERT_NE(front_client, nullptr);
  EXPECT_EQ(front_client->peer, back_->listen_address().ToString());
  const Span* back = Find(spans, Span::Kind::kServer, "", front_client->span_id);
  ASSERT_NE(back, nullptr);
  for (const Span& s : spans) {
    EXPECT_EQ(s.trace_id, client->trace_id);
    EXPECT_EQ(s.method, "example.EchoService/Echo");
    EXPECT_EQ(s.error_code, 0);
    EXPECT_GT(s.request_bytes, 0u);
  }
  EXPECT_EQ(front->protocol, "baidu_std");
  ASSERT_EQ(front->annotations.size(), 1u);
  EXPECT_EQ(front->annotations[0].second, "calling back");
  ASSERT_EQ(back->annotations.size(), 1u);
  EXPECT_EQ(back->annotations[0].second, "back handler ran");
  // The handlers saw the same ids.
  EXPECT_EQ(seen_.Get("front")->span_id, front->span_id);
  EXPECT_EQ(seen_.Get("back")->parent_span_id, front_client->span_id);
  EXPECT_EQ(seen_.Get("back")->sampled, true);
  // Nested: the client span lasts at least as long as the server's.
  EXPECT_GE(client->duration, back->duration);
}

TEST_F(TracingE2eTest, AnUnsampledTraceKeepsItsIdAndRecordsNothing) {
  TracingOptions tracing;
  tracing.max_sampled_per_second = 0;
  ConfigureTracing(tracing);
  ASSERT_TRUE(CallFront().ok());
  const std::optional<TraceContext> front = seen_.Get("front");
  const std::optional<TraceContext> back = seen_.Get("back");
  ASSERT_TRUE(front && back);
  EXPECT_EQ(front->sampled, false);
  EXPECT_EQ(back->sampled, false);
  ASSERT_TRUE(front->trace_id.has_value());
  EXPECT_EQ(back->trace_id, front->trace_id);  // one trace, for the logs
  EXPECT_NE(back->span_id, front->span_id);
  EXPECT_EQ(SpanStore::Default().recorded(), 0);
}

TEST_F(TracingE2eTest, ACallersSamplingDecisionIsKeptDownstream) {
  // The edge is the caller here: it sampled the trace, although the
  // servers' own edge sampling would sample nothing.
  TracingOptions tracing;
  tracing.max_sampled_per_second = 0;
  ConfigureTracing(tracing);
  CallOptions options;
  options.trace.trace_id = 0x5eed;
  options.trace.span_id = 0x77;
  options.trace.sampled = true;
  ASSERT_TRUE(CallFront(options).ok());
  ASSERT_TRUE(netpoll::testing::WaitFor([] { return SpanStore::Default().recorded() >= 4; }));
  EXPECT_EQ(seen_.Get("back")->trace_id, 0x5eed);
  EXPECT_EQ(seen_.Get("front")->parent_span_id, 0x77);
}

TEST_F(TracingE2eTest, ABrpcRequestWithSpanIdsIsTracedUnderItsSpan) {
  // What a brpc client with rpcz sends: trace_id, span_id (its client span),
  // no decision. brpc's convention: ids travel only with traced calls.
  TracingOptions tracing;
  tracing.max_sampled_per_second = 0;
  ConfigureTracing(tracing);
  EchoRequest request;
  request.set_message("hi");
  netpoll::LinkBuffer payload;
  ASSERT_TRUE(SerializeToLinkBuffer(request, payload).ok());
  RequestHeader header{
      .service_name = "example.EchoService", .method_name = "Echo", .correlation_id = 1};
  header.trace.trace_id = 0x1111;
  header.trace.span_id = 0x2222;
  netpoll::LinkBuffer frame;
  ASSERT_TRUE(EncodeRequest(header, std::move(payload), {}, frame).ok());
  auto client = netpoll::testing::BlockingClient::Connect(back_->listen_address());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client->SendAll(frame.ToString()).ok());
  ASSERT_TRUE(ReadAnswer(*client));
  ASSERT_TRUE(netpoll::testing::WaitFor([] { return SpanStore::Default().recorded() >= 1; }));
  const std::vector<Span> spans = SpanStore::Default().Recent(10);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].trace_id, 0x1111);
  EXPECT_EQ(spans[0].parent_span_id, 0x2222);
  EXPECT_NE(spans[0].span_id, 0x2222);
  // Without span ids (an unsampled trace) nothing is recorded.
  header.trace.span_id.reset();
  header.correlation_id = 2;
  netpoll::LinkBuffer payload2;
  ASSERT_TRUE(SerializeToLinkBuffer(request, payload2).ok());
  netpoll::LinkBuffer frame2;
  ASSERT_TRUE(EncodeRequest(header, std::move(payload2), {}, frame2).ok());
  ASSERT_TRUE(client->SendAll(frame2.ToString()).ok());
  ASSERT_TRUE(client->ReadExactly(12).ok());
  EXPECT_EQ(seen_.Get("back")->sampled, true);  // the first call's
  back_->Shutdown(absl::Seconds(5));            // the second call's span would be in by now
  EXPECT_EQ(SpanStore::Default().recorded(), 1);
}

TEST_F(TracingE2eTest, ATraceparentUserFieldDecides) {
  TracingOptions tracing;
  tracing.max_sampled_per_second = 0;
  ConfigureTracing(tracing);
  CallOptions options;
  options.metadata = {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}};
  auto channel = Channel::Create(back_->listen_address().ToString());
  ASSERT_TRUE(channel.ok());
  EchoRequest request;
  request.set_message("hi");
  EchoResponse response;
  // A raw client could send this; through our channel its own (unsampled)
  // trace id differs from the field's, so send with no trace of its own by
  // giving the channel the field's ids.
  options.trace = *ParseTraceparent(options.metadata[0].second);
  options.trace.sampled.reset();
  options.trace.span_id.reset();
  ASSERT_TRUE(
      (*channel)->CallMethod("example.EchoService", "Echo", request, &response, options).ok());
  const std::optional<TraceContext> back = seen_.Get("back");
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->sampled, true);
  EXPECT_EQ(static_cast<uint64_t>(*back->trace_id_high), 0x4bf92f3577b34da6u);
  EXPECT_EQ(static_cast<uint64_t>(*back->parent_span_id), 0x00f067aa0ba902b7u);
}

}  // namespace
}  // namespace nprpc
