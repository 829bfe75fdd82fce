// Hostile HTTP/2 clients against the gRPC server (issue #16's fault cases):
// many streams that never read, a WINDOW_UPDATE storm, a rapid-reset flood
// (CVE-2023-44487), oversized headers, message prefixes announcing 4 GiB.
// Each: the attacker is bounded (memory, work) or disconnected, and the
// server keeps serving a well-behaved client.
#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "netpoll/testing/wait.h"
#include "proto/echo.pb.h"
#include "rpc/internal/grpc_protocol.h"
#include "rpc/internal/testing/h2_client.h"
#include "rpc/server.h"
#include "rpc/service.h"
#include "rpc/stream_core.h"
#include "tests/harness/echo_service.h"

namespace nprpc {
namespace {

using example::EchoRequest;
using example::EchoResponse;
using testing::H2Client;

// Server streaming: writes `code` copies of the request's message, each
// after the previous Write's callback; never reads more.
class Flood final : public MethodHandler {
 public:
  explicit Flood(std::atomic<int64_t>* written) : written_(written) {}
  std::unique_ptr<google::protobuf::Message> NewRequest() const override {
    return std::make_unique<EchoRequest>();
  }
  std::unique_ptr<google::protobuf::Message> NewResponse() const override {
    return std::make_unique<EchoResponse>();
  }
  void Call(ServerContext&, const google::protobuf::Message&, google::protobuf::Message*,
            Responder done) override {
    done(absl::UnimplementedError("streaming"));
  }
  ExecutionMode execution_mode() const override { return ExecutionMode::kIoLoop; }
  StreamKind stream_kind() const override { return StreamKind::kServerStreaming; }
  void CallStream(std::shared_ptr<ServerStreamCore> stream) override {
    auto state = std::make_shared<State>();
    state->stream = std::move(stream);
    state->written = written_;
    state->stream->Read(&state->request, [state](bool ok) {
      if (!ok) {
        state->stream->Finish(absl::InvalidArgumentError("no request"));
        return;
      }
      state->response.set_message(state->request.message());
      state->left = state->request.code();
      Next(state);
    });
  }

 private:
  struct State {
    std::shared_ptr<ServerStreamCore> stream;
    EchoRequest request;
    EchoResponse response;
    int left = 0;
    std::atomic<int64_t>* written = nullptr;
  };
  static void Next(const std::shared_ptr<State>& state) {
    if (state->left-- <= 0) {
      state->stream->Finish(absl::OkStatus());
      return;
    }
    state->stream->Write(state->response, [state](bool ok) {
      if (!ok) {
        state->stream->Finish(absl::CancelledError("gone"));
        return;
      }
      state->written->fetch_add(1);
      Next(state);
    });
  }
  std::atomic<int64_t>* const written_;
};

std::string Request(absl::string_view message, int code = 0) {
  EchoRequest request;
  request.set_message(std::string(message));
  if (code != 0) request.set_code(code);
  return request.SerializeAsString();
}

class GrpcAttackTest : public ::testing::Test {
 protected:
  void Start(ServerOptions options) {
    options.num_io_loops = 1;
    options.num_worker_threads = 2;
    server_ = std::make_unique<Server>(std::move(options));
    ASSERT_TRUE(server_->AddService(testing::NewEchoService()).ok());
    auto attack = std::make_unique<Service>("attack.Streams");
    ASSERT_TRUE(attack->AddMethod("Flood", std::make_unique<Flood>(&written_)).ok());
    ASSERT_TRUE(server_->AddService(std::move(attack)).ok());
    ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
  }

  std::unique_ptr<H2Client> Connect(H2Client::Options options = H2Client::Options()) {
    auto client = H2Client::Connect(server_->listen_address(), options);
    EXPECT_TRUE(client.ok()) << client.status();
    return std::move(*client);
  }

  // A well-behaved client's unary call succeeds.
  void ExpectServing() {
    auto client = Connect();
    const int32_t id = client->StartCall("/example.EchoService/Echo");
    client->SendMessage(id, Request("still serving"), true);
    ASSERT_TRUE(client->WaitClosed(id));
    EXPECT_EQ(client->stream(id).Status(), "0");
  }

  std::unique_ptr<Server> server_;
  std::atomic<int64_t> written_{0};
};

TEST_F(GrpcAttackTest, ManyStreamsThatNeverReadStopTheirWriters) {
  Start(ServerOptions());
  // 64 KiB windows, never acknowledged: each stream (and the connection)
  // takes at most that much.
  auto attacker = Connect({.initial_window = 65535, .acknowledge_data = false});
  constexpr int kStreams = 100;
  for (int i = 0; i < kStreams; ++i) {
    const int32_t id = attacker->StartCall("/attack.Streams/Flood");
    attacker->SendMessage(id, Request(std::string(1024, 'x'), 100000), true);
  }
  // The connection's window (65535) is all the attacker ever gets.
  ASSERT_TRUE(attacker->Pump([&] {
    size_t total = 0;
    for (int i = 0; i < kStreams; ++i) total += attacker->stream(2 * i + 1).data.size();
    return total >= 65535;
  }));
  attacker->Pump([] { return false; }, absl::Milliseconds(300));
  // Each handler waits for its Write callbacks: at most the stream's send
  // buffer (64 KiB) plus one message each was taken from it.
  const int64_t bound = kStreams * (kGrpcStreamSendBuffer / 1024 + 2) + 65535 / 1024 + 1;
  EXPECT_LE(written_.load(), bound);
  EXPECT_LT(server_->Stats().memory_held_peak_bytes, int64_t{64} << 20);
  ExpectServing();
}

TEST_F(GrpcAttackTest, WindowUpdateStormOnlyMovesCounters) {
  Start(ServerOptions());
  auto attacker = Connect();
  // 100000 WINDOW_UPDATE frames of 1 byte on the connection (frame header:
  // length 4, type 8, no flags, stream 0).
  std::string storm;
  const std::string frame("\x00\x00\x04\x08\x00\x00\x00\x00\x00\x00\x00\x00\x01", 13);
  for (int i = 0; i < 100000; ++i) storm += frame;
  attacker->SendRaw(storm);
  const int32_t id = attacker->StartCall("/example.EchoService/Echo");
  attacker->SendMessage(id, Request("after the storm"), true);
  ASSERT_TRUE(attacker->WaitClosed(id));
  EXPECT_EQ(attacker->stream(id).Status(), "0");
  ExpectServing();
}

TEST_F(GrpcAttackTest, RapidResetFloodIsCutOffWithEnhanceYourCalm) {
  Start(ServerOptions());  // 200 resets a second
  const int64_t received_before = server_->Stats().total.received;
  auto attacker = Connect();
  // HEADERS then RST_STREAM, 2000 times, as fast as the socket takes them.
  for (int i = 0; i < 2000 && !attacker->disconnected(); ++i) {
    const int32_t id = attacker->StartCall("/attack.Streams/Flood");
    attacker->Reset(id);
  }
  ASSERT_TRUE(attacker->WaitDisconnected());
  EXPECT_TRUE(attacker->goaway_received());
  EXPECT_EQ(attacker->goaway_error(), NGHTTP2_ENHANCE_YOUR_CALM);
  // Bounded work: the streams past the limit started nothing.
  EXPECT_LE(server_->Stats().total.received - received_before, 210);
  ExpectServing();
}

TEST_F(GrpcAttackTest, OversizedHeadersAreRefusedAndTheConnectionServesOn) {
  Start(ServerOptions());  // max_http_header_size 64 KiB
  auto attacker = Connect();
  H2Client::Metadata big;
  for (int i = 0; i < 20; ++i) big.emplace_back(absl::StrCat("x-big-", i), std::string(8000, 'h'));
  const int32_t id = attacker->StartCall("/example.EchoService/Echo", big);
  attacker->SendMessage(id, Request("m"), true);
  ASSERT_TRUE(attacker->WaitClosed(id));
  const H2Client::Stream& stream = attacker->stream(id);
  EXPECT_TRUE(stream.Status() == "8" || stream.close_error != 0) << stream.Status();
  ExpectServing();
}

TEST_F(GrpcAttackTest, FourGibPrefixesAreRefusedBeforeTheirBytes) {
  Start(ServerOptions());
  auto attacker = Connect();
  for (int i = 0; i < 50; ++i) {
    const int32_t id = attacker->StartCall("/example.EchoService/Echo");
    attacker->SendData(id, std::string("\x00\xff\xff\xff\xff", 5) + std::string(1000, 'a'), false);
  }
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(attacker->WaitClosed(2 * i + 1));
    EXPECT_EQ(attacker->stream(2 * i + 1).Status(), "8");
  }
  EXPECT_LT(server_->Stats().memory_held_peak_bytes, int64_t{16} << 20);
  // Every refused call was counted once, and none is left in flight.
  EXPECT_TRUE(netpoll::testing::WaitFor([&] {
    const ServerStats stats = server_->Stats();
    return stats.total.in_flight == 0 &&
           stats.total.received == stats.total.succeeded + stats.total.failed;
  }));
  ExpectServing();
}

}  // namespace
}  // namespace nprpc
