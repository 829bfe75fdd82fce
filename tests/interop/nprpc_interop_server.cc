// nprpc_interop_server: nprpc's server of the interop tests. Serves
// nprpc.interop.TestService (tests/interop/interop.proto) through the
// generated sync base, over every protocol the port speaks (gRPC included),
// with the server's own grpc.health.v1.Health.
//
//   nprpc_interop_server --port=0
//
// Prints "listening on 127.0.0.1:PORT" once it accepts (port 0 picks one),
// serves until SIGINT/SIGTERM. It behaves as grpc_cpp_server.cc and
// python_server.py do (the contract is in interop.proto), so gRPC's own
// clients (grpc_cpp_client, python_client.py) check it.
//
// Thread safety: the handlers run where the server runs blocking handlers,
// many at once; they share nothing.
#include <signal.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "netpoll/mutex.h"
#include "rpc/server.h"
#include "rpc/server_context.h"
#include "tests/interop/interop.nprpc.h"
#include "tests/interop/interop.pb.h"

ABSL_FLAG(int, port, 0, "port to serve on, on 127.0.0.1 (0: any)");

namespace {

using nprpc::ServerContext;
using nprpc::interop::EchoStatus;
using nprpc::interop::Empty;
using nprpc::interop::ResponseParameters;
using nprpc::interop::SimpleRequest;
using nprpc::interop::SimpleResponse;
using nprpc::interop::StreamingInputCallRequest;
using nprpc::interop::StreamingInputCallResponse;
using nprpc::interop::StreamingOutputCallRequest;
using nprpc::interop::StreamingOutputCallResponse;

// interop.proto: 4 MiB payloads travel both ways.
constexpr size_t kMaxMessageBytes = size_t{16} << 20;

// Echoes the request's "x-echo-initial*" metadata as initial metadata and its
// "x-echo-trailing*" metadata as trailing metadata (interop.proto's rule).
void EchoMetadata(ServerContext& context) {
  for (const auto& [key, value] : context.request_user_fields()) {
    if (absl::StartsWith(key, "x-echo-initial")) context.response_user_fields()[key] = value;
    if (absl::StartsWith(key, "x-echo-trailing")) context.response_trailers()[key] = value;
  }
}

// Sleeps `duration`, or less when the call is cancelled first; false when it
// was.
bool SleepUnlessCancelled(ServerContext& context, absl::Duration duration) {
  auto cancelled = std::make_shared<netpoll::Notification>();
  context.OnCancel([cancelled] { cancelled->Notify(); });
  return !cancelled->WaitForNotificationWithTimeout(duration);
}

absl::Status StatusOf(const EchoStatus& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.code()), status.message());
}

// Writes one response per response_parameters entry; false when the call
// went away.
template <typename Writer>
bool Answer(ServerContext& context, const StreamingOutputCallRequest& request, Writer* writer) {
  for (const ResponseParameters& parameters : request.response_parameters()) {
    if (parameters.interval_ms() > 0 &&
        !SleepUnlessCancelled(context, absl::Milliseconds(parameters.interval_ms()))) {
      return false;
    }
    StreamingOutputCallResponse response;
    response.set_payload(std::string(parameters.size(), '\0'));
    if (!writer->Write(response)) return false;
  }
  return true;
}

class TestServiceImpl final : public nprpc::interop::TestService::Service {
 public:
  absl::Status EmptyCall(ServerContext& context, const Empty& request, Empty* response) override {
    EchoMetadata(context);
    return absl::OkStatus();
  }

  absl::Status UnaryCall(ServerContext& context, const SimpleRequest& request,
                         SimpleResponse* response) override {
    EchoMetadata(context);
    if (request.sleep_ms() > 0 &&
        !SleepUnlessCancelled(context, absl::Milliseconds(request.sleep_ms()))) {
      return absl::CancelledError("cancelled while sleeping");
    }
    if (request.response_status().code() != 0) return StatusOf(request.response_status());
    if (request.compress_response()) context.set_response_compress_type(nprpc::CompressType::kGzip);
    if (request.response_size() > 0) {
      response->set_payload(std::string(request.response_size(), '\0'));
    } else {
      response->set_payload(request.payload());
    }
    std::vector<std::string> seen;
    for (const auto& [key, value] : context.request_user_fields()) {
      if (absl::StartsWith(key, "x-")) seen.push_back(absl::StrCat(key, "=", value));
    }
    std::sort(seen.begin(), seen.end());
    for (std::string& entry : seen) response->add_seen_metadata(std::move(entry));
    return absl::OkStatus();
  }

  absl::Status StreamingOutputCall(
      ServerContext& context, const StreamingOutputCallRequest& request,
      nprpc::ServerWriter<StreamingOutputCallResponse>* writer) override {
    EchoMetadata(context);
    if (!Answer(context, request, writer)) return absl::CancelledError("cancelled");
    if (request.response_status().code() != 0) return StatusOf(request.response_status());
    return absl::OkStatus();
  }

  absl::Status StreamingInputCall(ServerContext& context,
                                  nprpc::ServerReader<StreamingInputCallRequest>* reader,
                                  StreamingInputCallResponse* response) override {
    EchoMetadata(context);
    StreamingInputCallRequest request;
    int64_t bytes = 0;
    int count = 0;
    while (reader->Read(&request)) {
      bytes += static_cast<int64_t>(request.payload().size());
      ++count;
    }
    if (context.IsCancelled()) return absl::CancelledError("cancelled");
    response->set_aggregated_payload_size(static_cast<int32_t>(bytes));
    response->set_message_count(count);
    return absl::OkStatus();
  }

  absl::Status FullDuplexCall(
      ServerContext& context,
      nprpc::ServerReaderWriter<StreamingOutputCallResponse, StreamingOutputCallRequest>* stream)
      override {
    EchoMetadata(context);
    StreamingOutputCallRequest request;
    while (stream->Read(&request)) {
      if (!Answer(context, request, stream)) return absl::CancelledError("cancelled");
      if (request.response_status().code() != 0) return StatusOf(request.response_status());
    }
    return absl::OkStatus();
  }
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Wait for the stop signals synchronously on this thread; blocked before
  // the server starts its threads so that they inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  nprpc::ServerOptions options;
  options.grpc_max_receive_message_size = kMaxMessageBytes;
  TestServiceImpl test_service;
  nprpc::Server server(options);
  absl::Status status = server.AddService(&test_service);
  if (status.ok()) status = server.Start(absl::StrCat("127.0.0.1:", absl::GetFlag(FLAGS_port)));
  if (!status.ok()) {
    std::cerr << "cannot serve: " << status << std::endl;
    return 1;
  }
  std::cout << "listening on " << server.listen_address().ToString() << std::endl;

  int sig = 0;
  sigwait(&signals, &sig);
  server.Shutdown(absl::Seconds(1));
  return 0;
}
