// grpc_stream_bench: streaming throughput of gRPC C++ on one stream, the
// baseline of stream_bench. One call of nprpc.interop.TestService
// (tests/interop/interop.proto) moves --messages messages of --payload bytes:
//   --direction=server  StreamingOutputCall: the server writes, we read
//   --direction=client  StreamingInputCall: we write, the server counts
// after --warmup_messages in a first call. Prints messages/s and MB/s (one
// JSON line with --json), checking every message's size.
//
//   grpc_stream_bench --server=127.0.0.1:41235 --direction=server --payload=16
//                     --messages=200000 [--json]
//
// Loopback only; sync API (a blocking reader or writer on one thread is the
// fastest way to drive one gRPC stream).
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "grpcpp/grpcpp.h"
#include "tests/interop/interop.grpc.pb.h"
#include "tests/interop/interop.pb.h"

ABSL_FLAG(std::string, server, "127.0.0.1:8000", "gRPC server, loopback host:port");
ABSL_FLAG(std::string, direction, "server", "server (server streams to us) or client (we stream)");
ABSL_FLAG(int, payload, 16, "bytes per message");
ABSL_FLAG(int, messages, 200000, "messages in the measured call");
ABSL_FLAG(int, warmup_messages, 20000, "messages in the warm-up call");
ABSL_FLAG(bool, json, false, "print one JSON line");

namespace {

using nprpc::interop::StreamingInputCallRequest;
using nprpc::interop::StreamingInputCallResponse;
using nprpc::interop::StreamingOutputCallRequest;
using nprpc::interop::StreamingOutputCallResponse;
using nprpc::interop::TestService;

// Seconds one call took, or a negative number on failure.
double ServerStreaming(TestService::Stub& stub, int payload, int messages) {
  StreamingOutputCallRequest request;
  for (int i = 0; i < messages; ++i) request.add_response_parameters()->set_size(payload);
  grpc::ClientContext context;
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<grpc::ClientReader<StreamingOutputCallResponse>> reader =
      stub.StreamingOutputCall(&context, request);
  StreamingOutputCallResponse response;
  int got = 0;
  while (reader->Read(&response)) {
    if (static_cast<int>(response.payload().size()) != payload) {
      std::fprintf(stderr, "grpc_stream_bench: message %d has %zu bytes\n", got,
                   response.payload().size());
      return -1;
    }
    ++got;
  }
  const grpc::Status status = reader->Finish();
  const auto end = std::chrono::steady_clock::now();
  if (!status.ok() || got != messages) {
    std::fprintf(stderr, "grpc_stream_bench: %d of %d messages, status %d %s\n", got, messages,
                 static_cast<int>(status.error_code()), status.error_message().c_str());
    return -1;
  }
  return std::chrono::duration<double>(end - start).count();
}

double ClientStreaming(TestService::Stub& stub, int payload, int messages) {
  StreamingInputCallRequest request;
  request.set_payload(std::string(static_cast<size_t>(payload), 'x'));
  StreamingInputCallResponse response;
  grpc::ClientContext context;
  const auto start = std::chrono::steady_clock::now();
  std::unique_ptr<grpc::ClientWriter<StreamingInputCallRequest>> writer =
      stub.StreamingInputCall(&context, &response);
  for (int i = 0; i < messages; ++i) {
    if (!writer->Write(request)) break;
  }
  writer->WritesDone();
  const grpc::Status status = writer->Finish();
  const auto end = std::chrono::steady_clock::now();
  if (!status.ok() || response.message_count() != messages) {
    std::fprintf(stderr, "grpc_stream_bench: server counted %d of %d, status %d %s\n",
                 response.message_count(), messages, static_cast<int>(status.error_code()),
                 status.error_message().c_str());
    return -1;
  }
  return std::chrono::duration<double>(end - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string direction = absl::GetFlag(FLAGS_direction);
  const int payload = absl::GetFlag(FLAGS_payload);
  const int messages = absl::GetFlag(FLAGS_messages);
  if (direction != "server" && direction != "client") {
    std::fprintf(stderr, "grpc_stream_bench: --direction must be server or client\n");
    return 2;
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      absl::GetFlag(FLAGS_server), grpc::InsecureChannelCredentials(), args);
  std::unique_ptr<TestService::Stub> stub = TestService::NewStub(channel);
  auto run = [&](int n) {
    return direction == "server" ? ServerStreaming(*stub, payload, n)
                                 : ClientStreaming(*stub, payload, n);
  };
  if (run(absl::GetFlag(FLAGS_warmup_messages)) < 0) return 1;
  const double seconds = run(messages);
  if (seconds <= 0) return 1;
  const double rate = messages / seconds;
  const double mbps = rate * payload / 1e6;
  if (absl::GetFlag(FLAGS_json)) {
    std::printf(
        "{\"tool\":\"grpc_stream_bench\",\"direction\":\"%s\",\"payload\":%d,\"messages\":%d,"
        "\"seconds\":%.4f,\"messages_per_second\":%.0f,\"mb_per_second\":%.2f}\n",
        direction.c_str(), payload, messages, seconds, rate, mbps);
  } else {
    std::printf(
        "grpc_stream_bench %s streaming, %d B: %d messages in %.3f s = %.0f msg/s, %.1f MB/s\n",
        direction.c_str(), payload, messages, seconds, rate, mbps);
  }
  return 0;
}
